#include "taskq/daemon/daemon.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace taskq::daemon {
namespace {

// The sd_notify protocol is one datagram to the unix socket named by NOTIFY_SOCKET ('@' for the
// abstract namespace). Written here rather than linking libsystemd, which would pull half a dozen
// compression and crypto libraries into every daemon's memory for this one call.
void send_notify(const std::string& message) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  (void)::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), addr_len);
  ::close(fd);
}

}  // namespace

void notify_ready() {
  send_notify("READY=1");
}
void notify_stopping() {
  send_notify("STOPPING=1");
}
void notify_status(std::string_view status) {
  send_notify("STATUS=" + std::string(status));
}
void notify_watchdog() {
  send_notify("WATCHDOG=1");
}

std::optional<Duration> watchdog_interval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (!usec || !*usec) return std::nullopt;
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid && *pid && std::atol(pid) != static_cast<long>(::getpid()))
    return std::nullopt;
  const long long value = std::atoll(usec);
  if (value <= 0) return std::nullopt;
  return Duration{value / 2};
}

namespace {
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

void block_signals() {
  const sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::optional<Signal> wait_signal(Duration timeout) {
  const sigset_t set = handled_signals();
  const auto us = std::max<std::int64_t>(0, timeout.count());
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  switch (sig) {
    case SIGTERM:
      return Signal::terminate;
    case SIGINT:
      return Signal::interrupt;
    case SIGHUP:
      return Signal::reload;
    default:
      return std::nullopt;  // timeout or EINTR
  }
}

}  // namespace taskq::daemon
