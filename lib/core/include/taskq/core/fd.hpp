#pragma once
// File descriptors owned by value, and the eventfd every loop uses to be woken from another thread.
#include <utility>

namespace taskq {

/// A file descriptor owned by value: closed on destruction, move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept;
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// A non-blocking, close-on-exec eventfd: one thread waits for it to become readable (poll), any
/// other thread (or a signal handler) calls notify(). Notifications made before the wait are not
/// lost; clear() consumes them all at once.
class WakeFd {
 public:
  /// Throws Error(internal) naming errno's text when the kernel refuses an eventfd.
  WakeFd();
  /// Safe from any thread and from a signal handler (one write(2)).
  void notify() const noexcept;
  /// Consumes every pending notification; returns true when there was at least one.
  bool clear() const noexcept;
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  Fd fd_;
};

}  // namespace taskq
