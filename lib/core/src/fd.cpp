#include "taskq/core/fd.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "taskq/core/error.hpp"

namespace taskq {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Fd::~Fd() {
  reset();
}

void Fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

WakeFd::WakeFd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!fd_) throw Error(Errc::internal, std::string("eventfd: ") + std::strerror(errno));
}

void WakeFd::notify() const noexcept {
  const std::uint64_t one = 1;
  const int saved = errno;  // callers may be signal handlers
  [[maybe_unused]] const auto n = ::write(fd_.get(), &one, sizeof one);
  errno = saved;
}

bool WakeFd::clear() const noexcept {
  std::uint64_t count = 0;
  return ::read(fd_.get(), &count, sizeof count) == static_cast<ssize_t>(sizeof count) && count > 0;
}

}  // namespace taskq
