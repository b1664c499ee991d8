#include "subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "taskq/core/error.hpp"

using taskq::config::ResourceLimits;

namespace taskq::worker {

namespace {

struct Pipe {
  Fd read, write;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(Errc::internal, std::string("cannot create a pipe: ") + std::strerror(errno));
  return {Fd(fds[0]), Fd(fds[1])};
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    throw Error(Errc::internal, std::string("fcntl O_NONBLOCK: ") + std::strerror(errno));
}

// Where the child failed before exec, written by the child into memory it shares with the parent
// (vfork), read by the parent once the child has exec'd or exited.
enum class ChildStep : int { none = 0, setpgid, rlimit, chdir, dup, close, exec };

struct ChildReport {
  volatile int step = 0;
  volatile int error = 0;
};

// The PATH-resolved candidates for argv[0], computed before vfork (no allocation in the child).
std::vector<std::string> candidates(const SpawnOptions& o) {
  const std::string& prog = o.argv.front();
  if (prog.find('/') != std::string::npos) return {prog};
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& [name, value] : o.env)
    if (name == "PATH") path = value;
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto colon = path.find(':', start);
    std::string candidate = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (candidate.empty()) candidate.push_back('.');
    candidate.push_back('/');
    candidate.append(prog);
    out.push_back(std::move(candidate));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

struct Limit {
  int resource;
  rlimit value;
};

// What the child does between vfork and exec, all prepared by the parent.
struct ChildPlan {
  char* const* argv;
  char* const* envp;
  const std::vector<std::string>* paths;
  const char* cwd;
  const std::vector<Limit>* limits;
  const int* child_fds;  // become 0, 1, 2, 3
  int max_fd;            // RLIMIT_NOFILE: where closing one by one stops when close_range is missing
  ChildReport* report;
  pid_t parent;
};

[[noreturn]] void child_failed(const ChildPlan& plan, ChildStep step, int error) {
  plan.report->step = static_cast<int>(step);
  plan.report->error = error;
  ::_exit(127);
}

// Only fds 0-3 survive into the handler, whatever the worker holds open at that moment (database
// and webhook sockets, pidfds, eventfds, fds some library opened without close-on-exec).
void close_inherited(const ChildPlan& plan) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 4U, ~0U, 0U) == 0) return;
  if (errno != ENOSYS && errno != EINVAL) child_failed(plan, ChildStep::close, errno);
#endif
  // Kernels before 5.9: one by one up to the limit the parent read (EBADF for the unused ones).
  for (int fd = 4; fd < plan.max_fd; ++fd) ::close(fd);
}

// Runs in the vforked child: system calls only, no allocation, no locks.
[[noreturn]] __attribute__((noinline)) void run_child(const ChildPlan& plan) {
  // Default dispositions (ignored signals would stay ignored across exec), then an empty mask.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s)
    if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
  if (::setpgid(0, 0) != 0) child_failed(plan, ChildStep::setpgid, errno);
  // A handler does not outlive the worker that runs it (its job is rescued and run again): the
  // kernel sends SIGKILL when the spawning thread dies. If that already happened, stop here.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != plan.parent)
    child_failed(plan, ChildStep::setpgid, ESRCH);
  for (const auto& l : *plan.limits)
    if (::setrlimit(l.resource, &l.value) != 0) child_failed(plan, ChildStep::rlimit, errno);
  if (plan.cwd && ::chdir(plan.cwd) != 0) child_failed(plan, ChildStep::chdir, errno);
  for (int target = 0; target < 4; ++target)
    if (::dup2(plan.child_fds[target], target) < 0) child_failed(plan, ChildStep::dup, errno);
  close_inherited(plan);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int exec_error = ENOENT;
  for (const auto& p : *plan.paths) {
    ::execve(p.c_str(), plan.argv, plan.envp);
    // Keep looking along PATH only when this candidate does not exist; report anything else.
    if (errno != ENOENT && errno != ENOTDIR) {
      exec_error = errno;
      break;
    }
  }
  child_failed(plan, ChildStep::exec, exec_error);
}

// argv and envp as execve takes them, pointing into strings held here. Built in place and never
// moved, so the pointers stay valid.
class ExecStrings {
 public:
  explicit ExecStrings(const SpawnOptions& o) : args_(o.argv) {
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (const auto& [name, value] : o.env) env_.push_back(name + "=" + value);
    for (auto& e : env_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }
  ExecStrings(const ExecStrings&) = delete;
  ExecStrings& operator=(const ExecStrings&) = delete;
  [[nodiscard]] char* const* argv() const { return argv_.data(); }
  [[nodiscard]] char* const* envp() const { return envp_.data(); }

 private:
  std::vector<std::string> args_, env_;
  std::vector<char*> argv_, envp_;
};

std::vector<Limit> limits_of(const ResourceLimits& r) {
  std::vector<Limit> limits;
  if (r.memory_bytes) limits.push_back({RLIMIT_AS, {*r.memory_bytes, *r.memory_bytes}});
  if (r.cpu_seconds) limits.push_back({RLIMIT_CPU, {*r.cpu_seconds, *r.cpu_seconds}});
  if (r.open_files) limits.push_back({RLIMIT_NOFILE, {*r.open_files, *r.open_files}});
  return limits;
}

// Moves `fd` to a number of at least 10 (close-on-exec).
void lift(Fd& fd) {
  const int high = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 10);
  if (high < 0) throw Error(Errc::internal, std::string("fcntl F_DUPFD: ") + std::strerror(errno));
  fd = Fd(high);
}

// The child's stdin, stdout, stderr and fd 3, each a pipe.
struct ChildPipes {
  Pipe in, out, err, side;
};

ChildPipes make_child_pipes() {
  ChildPipes p{make_pipe(), make_pipe(), make_pipe(), make_pipe()};
  // The child's ends are moved to fds 0-3 by run_child. Lift them above 3 first so that no dup2
  // can overwrite an end still to be moved (pipe fds may themselves be 0-3 in odd parents).
  lift(p.in.read);
  lift(p.out.write);
  lift(p.err.write);
  lift(p.side.write);
  return p;
}

// RLIMIT_NOFILE, where closing fds one by one stops when close_range is missing.
int max_open_fds() {
  rlimit nofile{};
  int max_fd = 1 << 20;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
    max_fd = static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, static_cast<rlim_t>(INT_MAX)));
  return max_fd;
}

// vfork, the child running `plan`. Returns once the child has exec'd or exited.
pid_t start_child(const ChildPlan& plan) {
  sigset_t all, old;
  sigfillset(&all);
  // No signal handler of the parent may run in the child while it shares the parent's memory.
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::vfork();
  if (pid == 0) run_child(plan);
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) throw Error(Errc::internal, std::string("cannot start a process: ") + std::strerror(fork_errno));
  return pid;
}

// The child failed before exec: reaps it and throws what its report says.
[[noreturn]] void throw_child_failure(pid_t pid, const ChildReport& report, const SpawnOptions& options) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string what = std::strerror(report.error);
  const std::string prog = options.argv.front();
  switch (static_cast<ChildStep>(report.step)) {
    case ChildStep::chdir:
      throw Error(Errc::invalid_input,
                  "cannot run " + prog + ": working directory " + options.working_dir.value_or("") + ": " + what);
    case ChildStep::rlimit:
      throw Error(Errc::invalid_input, "cannot run " + prog + ": cannot set its resource limits: " + what);
    case ChildStep::exec:
      throw Error(Errc::invalid_input, "cannot run " + prog + ": " + what);
    default:
      throw Error(Errc::internal, "cannot run " + prog + ": " + what);
  }
}

// A pidfd for the started child; without one the child is killed and reaped.
Fd open_pidfd(pid_t pid) {
  // The raw system call: glibc 2.36 declares pidfd_open without C linkage for C++.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int e = errno;
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw Error(Errc::internal, std::string("pidfd_open: ") + std::strerror(e));
  }
  return Fd(pidfd);  // pidfds are close-on-exec
}

}  // namespace

SpawnedProcess spawn_process(const SpawnOptions& options) {
  if (options.argv.empty() || options.argv.front().empty())
    throw Error(Errc::invalid_input, "cannot run a job: the command is empty");

  // Everything the child needs is prepared here: after vfork it only makes system calls.
  const ExecStrings strings(options);
  const std::vector<std::string> paths = candidates(options);
  const char* cwd = options.working_dir ? options.working_dir->c_str() : nullptr;
  const std::vector<Limit> limits = limits_of(options.limits);
  ChildPipes pipes = make_child_pipes();
  const int child_fds[4] = {pipes.in.read.get(), pipes.out.write.get(), pipes.err.write.get(), pipes.side.write.get()};

  ChildReport report;
  const ChildPlan plan{.argv = strings.argv(),
                       .envp = strings.envp(),
                       .paths = &paths,
                       .cwd = cwd,
                       .limits = &limits,
                       .child_fds = child_fds,
                       .max_fd = max_open_fds(),
                       .report = &report,
                       .parent = ::getpid()};
  const pid_t pid = start_child(plan);
  // vfork returns once the child has exec'd or exited: its report is complete.
  if (report.step != 0) throw_child_failure(pid, report, options);

  SpawnedProcess p;
  p.pid = pid;
  p.pidfd = open_pidfd(pid);
  p.stdin_w = std::move(pipes.in.write);
  p.stdout_r = std::move(pipes.out.read);
  p.stderr_r = std::move(pipes.err.read);
  p.side_r = std::move(pipes.side.read);
  for (const Fd* fd : {&p.pidfd, &p.stdin_w, &p.stdout_r, &p.stderr_r, &p.side_r}) set_nonblocking(fd->get());
  return p;
}

void signal_group(pid_t pgid, int sig) noexcept {
  if (pgid > 0) ::kill(-pgid, sig);
}

std::optional<ExitStatus> try_reap(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return std::nullopt;
  ExitStatus s;
  if (WIFEXITED(status)) s.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
    s.core_dumped = WCOREDUMP(status);
  }
  return s;
}

}  // namespace taskq::worker
