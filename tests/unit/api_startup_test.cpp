// What taskq-apid checks and adjusts before it serves (lib/api tls_files, rlimits): the TLS files
// named in the config can be read, and the open files limit is raised, with a warning when low.
#include <sys/resource.h>
#include <catch2/catch.hpp>

#include <string>

#include "taskq/api/rlimits.hpp"
#include "taskq/api/tls_files.hpp"
#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

using taskq::config::ApiTls;
using taskq::config::Config;

using namespace taskq;

TEST_CASE("api TLS files: each must be readable, named with the config file and the key", "[api][config]") {
  Config c;
  c.source = "api.toml";
  REQUIRE_NOTHROW(api::check_tls_files(c));  // no [api.tls]
  c.api.tls = ApiTls{};
  c.api.tls->cert = "/proc/self/status";  // readable by anyone
  c.api.tls->key = "/nonexistent/taskq.key";
  try {
    api::check_tls_files(c);
    FAIL("an unreadable key passed");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    CHECK(std::string(e.what()) ==
          "api.toml: api.tls.key: cannot read '/nonexistent/taskq.key': No such file or directory");
  }
  c.api.tls->cert = "/nonexistent/taskq.crt";
  CHECK_THROWS_WITH(api::check_tls_files(c), Catch::StartsWith("api.toml: api.tls.cert: cannot read"));
}

TEST_CASE("api open files: the soft limit goes up to the hard one, a warning under 4096", "[api]") {
  rlimit before{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &before) == 0);
  const std::uint64_t limit = api::raise_open_files();
  rlimit after{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &after) == 0);
  CHECK(limit == after.rlim_cur);
  CHECK(after.rlim_cur >= before.rlim_cur);
  if (before.rlim_max != RLIM_INFINITY) CHECK(after.rlim_cur == before.rlim_max);
  CHECK(api::open_files_warning(1024) ==
        "open files limit is 1024: at most about 960 connections and event streams (raise LimitNOFILE)");
  CHECK_FALSE(api::open_files_warning(4096).has_value());
  CHECK_FALSE(api::open_files_warning(0).has_value());
}
