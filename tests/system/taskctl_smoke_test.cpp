#include <catch2/catch.hpp>

#include "process.hpp"

TEST_CASE("taskctl --version prints the version", "[taskctl]") {
  auto r = taskq::test::run_program(TASKCTL_PATH, {"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("taskctl ") == 0);
}
