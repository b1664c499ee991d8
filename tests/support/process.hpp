#pragma once
// Runs a real program (taskctl) as a child process and captures what it printed.
#include <map>
#include <string>
#include <vector>

namespace taskq::test {

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;
  std::string err;
};

/// argv and envp for execve, built before fork (only async-signal-safe calls in the child): the
/// caller's environment with `env` added, overriding, or (empty value) removing variables.
class ExecArgs {
 public:
  ExecArgs(const std::string& program, const std::vector<std::string>& args,
           const std::map<std::string, std::string>& env);
  ExecArgs(const ExecArgs&) = delete;
  ExecArgs& operator=(const ExecArgs&) = delete;
  std::vector<char*> argv, envp;

 private:
  std::vector<std::string> strings_;
};

/// Runs `program args...` with `input` on stdin; `env` entries are added to (or override) the
/// environment; an entry with an empty value removes that variable. Waits for it to exit.
RunResult run_program(const std::string& program, const std::vector<std::string>& args, const std::string& input = "",
                      const std::map<std::string, std::string>& env = {});

}  // namespace taskq::test
