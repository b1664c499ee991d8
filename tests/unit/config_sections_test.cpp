// How parse_config walks a file's sections: the key table section by section, and where each
// section's mistakes go (thrown at once for [database], [log], [jobs]; kept for the daemon that
// owns [worker] and [kinds.*], [scheduler] or [api]; sections of other components left alone).
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

using taskq::config::Config;
using taskq::config::config_keys;
using taskq::config::parse_config;
using taskq::config::validate_config;
using taskq::config::validate_worker_config;

using namespace taskq;

namespace {

std::string thrown(const std::string& toml) {
  try {
    parse_config(toml, "c.toml");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    return e.what();
  }
  FAIL("accepted:\n" << toml);
  return "";
}

std::string section_of(std::string_view key) {
  return std::string(key.substr(0, key.find('.')));
}

}  // namespace

TEST_CASE("config keys: one block per section, in order, each name once", "[config][sections]") {
  std::vector<std::string> sections;
  std::set<std::string> names;
  for (const auto& k : config_keys()) {
    CHECK(names.insert(std::string(k.name)).second);
    if (sections.empty() || sections.back() != section_of(k.name)) sections.push_back(section_of(k.name));
  }
  CHECK(sections == std::vector<std::string>{"database", "log", "jobs", "worker", "scheduler", "api"});
}

TEST_CASE("config sections: each daemon's mistakes are kept for it, in its own list", "[config][sections]") {
  const Config c = parse_config(
      "[worker]\nbogus = 1\n[scheduler]\nbogus = 1\n[api]\nbogus = 1\n[elsewhere]\nbogus = 1\n"
      "[database]\nschema = \"x\"\n",
      "c.toml");
  CHECK(c.worker_errors == std::vector<std::string>{"c.toml:2: worker.bogus: unknown key (see man taskq.toml)"});
  CHECK(c.scheduler_errors == std::vector<std::string>{"c.toml:4: scheduler.bogus: unknown key (see man taskq.toml)"});
  CHECK(c.api_errors == std::vector<std::string>{"c.toml:6: api.bogus: unknown key (see man taskq.toml)"});
  CHECK(c.database.schema == "x");
  CHECK_NOTHROW(validate_config(c));
}

TEST_CASE("config sections: a section that is not a table stops parsing", "[config][sections]") {
  CHECK(thrown("database = 5\n") == "c.toml:1: database: expected a [section] table");
  CHECK(thrown("kinds = 5\n") == "c.toml:1: kinds: expected a [section] table");
  CHECK(thrown("[log]\nlevel = 5\n") == "c.toml:2: log.level: must be a string");
}

TEST_CASE("config sections: schedules and tokens written as plain keys are kept as mistakes", "[config][sections]") {
  const Config c = parse_config("[scheduler]\nperiodic = 5\n[api]\ntokens = 5\n", "c.toml");
  CHECK(
      c.scheduler_errors ==
      std::vector<std::string>{"c.toml:2: scheduler.periodic: write each schedule as a [[scheduler.periodic]] table"});
  CHECK(c.api_errors == std::vector<std::string>{"c.toml:4: api.tokens: write each token as an [[api.tokens]] table"});
}

TEST_CASE("config sections: a bad kind or schedule does not drop the good ones", "[config][sections]") {
  const Config c = parse_config(
      "[kinds.bad]\nexec = 5\n[kinds.good]\nexec = [\"/bin/true\"]\n"
      "[[scheduler.periodic]]\nname = \"bad\"\ncron = \"* * * * *\"\n"
      "[[scheduler.periodic]]\nname = \"good\"\ncron = \"* * * * *\"\nkind = \"k\"\n",
      "c.toml");
  REQUIRE(c.kinds.size() == 1);
  CHECK(c.kinds.count("good") == 1);
  REQUIRE(c.worker_errors.size() == 1);
  CHECK(c.worker_errors[0].rfind("c.toml:2: kinds.bad.exec: ", 0) == 0);
  REQUIRE(c.scheduler.periodic.size() == 1);
  CHECK(c.scheduler.periodic[0].name == "good");
  REQUIRE(c.scheduler_errors.size() == 1);
  CHECK(c.scheduler_errors[0].find("scheduler.periodic 'bad': needs a kind") != std::string::npos);
}

TEST_CASE("config sections: the tokens after a bad one are not read", "[config][sections]") {
  const std::string hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const auto token = [&](const std::string& name, const std::string& scopes) {
    return "[[api.tokens]]\nname = \"" + name + "\"\nsha256 = \"" + hash + "\"\nscopes = " + scopes + "\n";
  };
  const Config c =
      parse_config(token("a", "[\"read\"]") + token("b", "[\"root\"]") + token("c", "[\"read\"]"), "c.toml");
  REQUIRE(c.api.tokens.size() == 1);
  CHECK(c.api.tokens[0].name == "a");
  REQUIRE(c.api_errors.size() == 1);
  CHECK(c.api_errors[0].find("api.tokens 'b': scopes") != std::string::npos);
}

TEST_CASE("config sections: the worker's check reports every kept mistake, one per line", "[config][sections]") {
  const Config c = parse_config("[worker]\nbogus = 1\n[kinds.x]\nexec = 5\n", "c.toml");
  REQUIRE(c.worker_errors.size() == 2);
  try {
    validate_worker_config(c);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    CHECK(std::string(e.what()) == c.worker_errors[0] + "\n" + c.worker_errors[1]);
  }
}
