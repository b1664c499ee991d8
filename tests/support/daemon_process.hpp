#pragma once
// Runs a real daemon (taskq-workerd) in the background for a system test: its stderr goes to a
// log file the test can read and wait on; it is killed (SIGKILL) if still running at the end.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace taskq::test {

/// Polls `condition` every few milliseconds until it holds or `timeout` passes; returns whether
/// it held. Tests wait with this, never with a bare sleep.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

class DaemonProcess {
 public:
  /// Starts `program args...`; `env` adds to (or, with an empty value, removes from) the
  /// environment, as in run_program().
  DaemonProcess(const std::string& program, const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const;
  /// Waits for the process to exit; its exit code (128 + signal when killed), or nothing on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();
  /// Everything it wrote to stderr so far.
  [[nodiscard]] std::string log() const;
  /// Waits until its stderr contains `needle`.
  bool wait_log(const std::string& needle, std::chrono::milliseconds timeout) const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

}  // namespace taskq::test
