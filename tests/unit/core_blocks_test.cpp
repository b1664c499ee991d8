// The shared building blocks of lib/core: the eventfd wake, error joining, the host name and the
// monotonic clock.
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "taskq/core/error.hpp"
#include "taskq/core/fd.hpp"
#include "taskq/core/host.hpp"
#include "taskq/core/time.hpp"

using namespace taskq;

namespace {
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}
}  // namespace

TEST_CASE("a WakeFd is readable after notify until cleared, and notifications before the wait are kept", "[core]") {
  WakeFd wake;
  CHECK_FALSE(readable(wake.fd()));
  CHECK_FALSE(wake.clear());
  wake.notify();
  wake.notify();
  CHECK(readable(wake.fd()));
  CHECK(wake.clear());
  CHECK_FALSE(readable(wake.fd()));
  CHECK_FALSE(wake.clear());
}

TEST_CASE("an Fd closes what it owns and moves ownership", "[core]") {
  WakeFd source;
  Fd a(::dup(source.fd()));
  const int raw = a.get();
  REQUIRE(raw >= 0);
  Fd b(std::move(a));
  CHECK_FALSE(a);
  CHECK(b.get() == raw);
  b.reset();
  CHECK_FALSE(b);
  pollfd p{raw, POLLIN, 0};
  ::poll(&p, 1, 0);
  CHECK((p.revents & POLLNVAL) != 0);  // closed
}

TEST_CASE("throw_if_any reports every error, one per line, and nothing when there is none", "[core]") {
  CHECK_NOTHROW(throw_if_any({}));
  try {
    throw_if_any({"a.toml:3: first", "a.toml:9: second"});
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    CHECK(std::string(e.what()) == "a.toml:3: first\na.toml:9: second");
  }
  try {
    throw_if_any({"x"}, Errc::conflict);
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::conflict);
  }
}

TEST_CASE("host_name is never empty and steady_ns never goes back", "[core]") {
  CHECK_FALSE(host_name().empty());
  const auto a = steady_ns();
  const auto b = steady_ns();
  CHECK(a > 0);
  CHECK(b >= a);
}
