#pragma once
// Starting one exec handler process per job: its own process group, the configured environment,
// working directory and rlimits, args on stdin, stdout/stderr captured, fd 3 as a side channel.
// Everything the parent keeps is non-blocking and close-on-exec; the child keeps only fds 0-3,
// whatever else the worker has open; exit is observed through a pidfd.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "taskq/config/config.hpp"
#include "taskq/core/fd.hpp"

namespace taskq::worker {

struct SpawnOptions {
  std::vector<std::string> argv;                         // argv[0] is a path (absolute or relative to cwd)
  std::vector<std::pair<std::string, std::string>> env;  // the child's whole environment
  std::optional<std::string> working_dir;
  taskq::config::ResourceLimits limits;
};

/// A started child. The parent's ends are non-blocking and close-on-exec.
struct SpawnedProcess {
  pid_t pid = -1;  // also its process group id
  Fd pidfd;        // readable once the process has exited (pidfd_open)
  Fd stdin_w;      // write the args JSON, then close
  Fd stdout_r;
  Fd stderr_r;
  Fd side_r;  // the child's fd 3
};

/// Starts the process (vfork + exec, so it stays cheap whatever the parent's size). Throws
/// Error(invalid_input) when the program cannot be executed ("cannot run /x: No such file or
/// directory"), naming argv[0] and errno's text; no child is left behind in that case.
SpawnedProcess spawn_process(const SpawnOptions& options);

/// Sends a signal to the whole process group; ESRCH is not an error.
void signal_group(pid_t pgid, int sig) noexcept;

struct ExitStatus {
  std::optional<int> code;    // exited normally
  std::optional<int> signal;  // killed by a signal
  bool core_dumped = false;
};

/// Reaps the exited child (non-blocking: call once the pidfd is readable). nullopt if not yet exited.
std::optional<ExitStatus> try_reap(pid_t pid);

}  // namespace taskq::worker
