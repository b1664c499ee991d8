// System tests of taskctl as a program: --version, --help everywhere, global options, the config
// file and environment, and `migrate` / `migrate status`.
#include <future>
#include <string>
#include <vector>

#include "system_helpers.hpp"

using namespace taskq::systest;
using Catch::Matchers::Contains;
using Catch::Matchers::Matches;
using Catch::Matchers::StartsWith;

TEST_CASE("taskctl --version prints the version on stdout", "[cli]") {
  const auto r = taskctl_raw({"--version"});
  REQUIRE_EXIT(r, 0);
  CHECK_THAT(r.out, Matches("taskctl [0-9]+\\.[0-9]+\\.[0-9]+.*\n"));
  CHECK(r.err.empty());
}

TEST_CASE("help: --help works on every command without a database and shows an example", "[cli]") {
  const std::vector<std::vector<std::string>> commands = {
      {},          {"migrate"}, {"migrate", "status"},
      {"enqueue"}, {"list"},    {"show"},
      {"cancel"},  {"retry"},   {"pause"},
      {"resume"},  {"drain"},   {"stats"},
      {"prune"},
  };
  for (const auto& cmd : commands) {
    std::vector<std::string> args{"--database-url", unreachable_url};
    args.insert(args.end(), cmd.begin(), cmd.end());
    args.push_back("--help");
    std::string name = cmd.empty() ? "taskctl" : cmd.front() + (cmd.size() > 1 ? " " + cmd.back() : "");
    INFO("taskctl " << name << " --help");
    const auto r = taskctl_raw(args);
    CHECK_EXIT(r, 0);
    CHECK_THAT(r.out, Contains("Usage:"));
    if (!cmd.empty()) {
      CHECK_THAT(r.out, Contains("Example"));
      CHECK_THAT(r.out, Contains("taskctl " + cmd.front()));
    }
    CHECK(r.err.empty());
  }
  const auto top = taskctl_raw({"--help"});
  CHECK_THAT(top.out, Contains("Exit codes") && Contains("69"));
  for (const char* cmd :
       {"migrate", "enqueue", "list", "show", "cancel", "retry", "pause", "resume", "drain", "stats", "prune"})
    CHECK_THAT(top.out, Contains(std::string("\n  ") + cmd + " "));
  const auto short_help = taskctl_raw({"enqueue", "-h"});
  CHECK_EXIT(short_help, 0);
  CHECK_THAT(short_help.out, Contains("--unique-key"));
}

TEST_CASE("usage errors are exit 2 with a message on stderr and nothing on stdout", "[cli][errors]") {
  const std::vector<std::vector<std::string>> cases = {
      {},                            // no command
      {"frobnicate"},                // unknown command
      {"--no-such-option", "list"},  // unknown global option
      {"-o", "yaml", "list"},        // unknown output format
      {"list", "--bogus"},           // unknown command option
      {"--database-url"},            // option without its value
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    INFO("taskctl " << shown);
    const auto r = taskctl_raw(args);
    CHECK_EXIT(r, 2);
    CHECK(r.out.empty());
    CHECK(!trim(r.err).empty());
  }
  const auto unknown = taskctl_raw({"frobnicate"});
  CHECK_THAT(unknown.err, Contains("frobnicate"));
  const auto missing_value = taskctl_raw({"list", "--limit"});
  CHECK_EXIT(missing_value, 2);
  CHECK_THAT(missing_value.err, Contains("--limit"));
}

// ---------------------------------------------------------------------------------------------
// migrate

TEST_CASE("migrate creates the schema once, a second run is a no-op", "[migrate]") {
  TestSchema db(false);
  const auto status_before = taskctl(db, {"migrate", "status"});
  REQUIRE_EXIT(status_before, 0);
  CHECK_THAT(status_before.out, StartsWith("VERSION") && Contains("initial") && Contains("pending"));

  const auto first = taskctl(db, {"migrate"});
  REQUIRE_EXIT(first, 0);
  CHECK(first.out == "schema " + db.name() + ": applied 5 migration(s): 1 2 3 4 5\n");
  CHECK(db.scalar("SELECT count(*) FROM schema_migrations") == "5");
  CHECK(db.scalar("SELECT to_regclass('" + db.name() + ".jobs') IS NOT NULL") == "t");

  const auto second = taskctl(db, {"migrate"});
  REQUIRE_EXIT(second, 0);
  CHECK(second.out == "schema " + db.name() + " is up to date\n");
  CHECK(db.scalar("SELECT count(*) FROM schema_migrations") == "5");

  const auto status = taskctl(db, {"migrate", "status"});
  REQUIRE_EXIT(status, 0);
  CHECK_THAT(status.out, Contains("initial"));
  CHECK_THAT(status.out, !Contains("pending"));

  const auto json_status = taskctl(db, {"-o", "json", "migrate", "status"});
  REQUIRE_EXIT(json_status, 0);
  const auto v = json(json_status.out).as_array();
  REQUIRE(v.size() >= 1);
  CHECK(v[0].at("version").as_int64() == 1);
  CHECK(v[0].at("name").as_string() == "initial");
  CHECK(v[0].at("applied_at").is_string());

  const auto json_migrate = taskctl(db, {"-o", "json", "migrate"});
  REQUIRE_EXIT(json_migrate, 0);
  const auto m = json(json_migrate.out);
  CHECK(m.at("schema").as_string() == db.name());
  CHECK(m.at("applied").as_array().empty());
}

TEST_CASE("migrate status of a missing schema lists pending migrations as JSON null", "[migrate]") {
  TestSchema db(false);
  const auto r = taskctl(db, {"-o", "jsonl", "migrate", "status"});
  REQUIRE_EXIT(r, 0);
  const auto lines = lines_of(trim(r.out));
  REQUIRE(!lines.empty());
  CHECK(json(lines[0]).at("applied_at").is_null());
  CHECK(db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = '" + db.name() + "'") == "0");
}

TEST_CASE("two concurrent migrate runs both succeed and apply each migration once", "[migrate]") {
  TestSchema db(false);
  auto run = [&] { return taskctl(db, {"-o", "json", "migrate"}); };
  auto a = std::async(std::launch::async, run);
  auto b = std::async(std::launch::async, run);
  const auto ra = a.get();
  const auto rb = b.get();
  REQUIRE_EXIT(ra, 0);
  REQUIRE_EXIT(rb, 0);
  const auto applied_a = json(ra.out).at("applied").as_array().size();
  const auto applied_b = json(rb.out).at("applied").as_array().size();
  CHECK(applied_a + applied_b == 5);
  CHECK(db.scalar("SELECT count(*) FROM schema_migrations") == "5");
}

TEST_CASE("schemas are isolated: jobs of one are invisible to the other", "[migrate]") {
  TestSchema a;
  TestSchema b;
  const long long id = enqueue(a, {"k", "--queue", "shared"});
  REQUIRE_EXIT(taskctl(a, {"-q", "pause", "shared"}), 0);

  const auto list_b = taskctl(b, {"-o", "json", "list"});
  REQUIRE_EXIT(list_b, 0);
  CHECK(json(list_b.out).as_array().empty());
  CHECK_EXIT(taskctl(b, {"show", std::to_string(id)}), 3);
  const auto stats_b = taskctl(b, {"-o", "json", "stats"});
  REQUIRE_EXIT(stats_b, 0);
  CHECK(json(stats_b.out).as_array().empty());
  CHECK(count_jobs(b) == 0);
  CHECK(count_jobs(a) == 1);
}

// ---------------------------------------------------------------------------------------------
// Where settings come from: flags, environment, config file.

TEST_CASE("database URL and schema come from flags, else the environment, else the config", "[cli][config]") {
  TestSchema db;
  const long long id = enqueue(db, {"k"});
  const std::vector<std::string> show{"-q", "show", std::to_string(id)};

  SECTION("environment variables") {
    const auto r = taskctl_raw(show, "", {{"TASKQ_DATABASE_URL", db.url()}, {"TASKQ_SCHEMA", db.name()}});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Contains("id:                  " + std::to_string(id)));
  }
  SECTION("flags win over the environment") {
    std::vector<std::string> args{"--database-url", db.url(), "--schema", db.name()};
    args.insert(args.end(), show.begin(), show.end());
    const auto r = taskctl_raw(args, "", {{"TASKQ_DATABASE_URL", unreachable_url}, {"TASKQ_SCHEMA", "nowhere"}});
    REQUIRE_EXIT(r, 0);
  }
  SECTION("config file") {
    TempFile config("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() + "\"\n", ".toml");
    std::vector<std::string> args{"--config", config.path()};
    args.insert(args.end(), show.begin(), show.end());
    const auto r = taskctl_raw(args);
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Contains(std::to_string(id)));
  }
  SECTION("the environment wins over the config file") {
    TempFile config("[database]\nurl = \"" + unreachable_url + "\"\nschema = \"" + db.name() + "\"\n", ".toml");
    std::vector<std::string> args{"--config", config.path()};
    args.insert(args.end(), show.begin(), show.end());
    const auto r = taskctl_raw(args, "", {{"TASKQ_DATABASE_URL", db.url()}});
    REQUIRE_EXIT(r, 0);
    const auto without_env = taskctl_raw(args);
    CHECK_EXIT(without_env, 69);
  }
  SECTION("sections of other components are not taskctl's business") {
    TempFile config("[database]\nschema = \"" + db.name() + "\"\n[worker]\nconcurrency = 8\n", ".toml");
    std::vector<std::string> args{"--database-url", db.url(), "--config", config.path()};
    args.insert(args.end(), show.begin(), show.end());
    REQUIRE_EXIT(taskctl_raw(args), 0);
  }
}

TEST_CASE("config errors are exit 2, name the file and the key, and change nothing", "[cli][config][errors]") {
  TestSchema db;
  enqueue(db, {"k"});
  const std::string before = snapshot(db);
  struct Case {
    std::string toml;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"[database]\nbogus = 1\n", {":2", "database.bogus", "unknown key"}},
      {"[jobs]\nmax_arg_bytes = 100\n", {"jobs.max_arg_bytes", "unknown key"}},
      {"[log]\nlevel = \"verbose\"\n", {"log.level", "verbose"}},
      {"[log]\nformat = \"xml\"\n", {"log.format", "xml"}},
      {"[jobs]\nmax_args_bytes = \"big\"\n", {"jobs.max_args_bytes", "integer"}},
      {"[jobs]\nmax_args_bytes = 1\n", {"jobs.max_args_bytes", "between"}},
      {"[database]\nconnect_timeout = \"soon\"\n", {"database.connect_timeout"}},
      {"[database]\nschema = \"Bad-Name\"\n", {"Bad-Name"}},
      {"[database\nurl = 1\n", {":1"}},
  };
  for (const auto& c : cases) {
    TempFile config(c.toml, ".toml");
    INFO("config:\n" << c.toml);
    // --schema would override the config's schema: leave it out where the schema is the point.
    const bool schema_case = c.expect.front() == "Bad-Name";
    std::vector<std::string> args{"--database-url", db.url(), "--config", config.path()};
    if (!schema_case) args.insert(args.end(), {"--schema", db.name()});
    args.insert(args.end(), {"enqueue", "k"});
    const auto r = taskctl_raw(args);
    CHECK_EXIT(r, 2);
    CHECK(r.out.empty());
    CHECK(lines_of(trim(r.err)).size() == 1);
    if (!schema_case) CHECK_THAT(r.err, Contains(config.path()));
    for (const auto& e : c.expect) CHECK_THAT(r.err, Contains(e));
  }
  const auto missing = taskctl(db, {"--config", "/nonexistent/taskq.toml", "enqueue", "k"});
  CHECK_EXIT(missing, 2);
  CHECK_THAT(missing.err, Contains("/nonexistent/taskq.toml") && Contains("does not exist"));
  const auto bad_schema = taskctl_raw({"--database-url", db.url(), "--schema", "x; DROP SCHEMA public", "list"});
  CHECK_EXIT(bad_schema, 2);
  CHECK_THAT(bad_schema.err, Contains("schema 'x; DROP SCHEMA public'"));
  const auto bad_env_schema = taskctl_raw({"--database-url", db.url(), "list"}, "", {{"TASKQ_SCHEMA", "9lives"}});
  CHECK_EXIT(bad_env_schema, 2);
  CHECK_THAT(bad_env_schema.err, Contains("9lives"));
  CHECK(snapshot(db) == before);
}

// An explicitly empty --schema must not silently mean the default schema "taskq": a script with an
// unset $SCHEMA would then operate on the production schema instead of failing.
TEST_CASE("an empty --schema is refused, not replaced by the default schema", "[cli][config][regression]") {
  TestSchema db;
  const auto r = taskctl_raw({"--database-url", db.url(), "--schema", "", "list"});
  CHECK_EXIT(r, 2);
  CHECK_THAT(r.err, Contains("schema"));
  CHECK_THAT(r.err, !Contains("'taskq'"));
}

// The error should say where the bad value came from: the environment, not "(defaults)".
TEST_CASE("a bad TASKQ_LOG_LEVEL is exit 2 and the message names the variable", "[cli][config][regression]") {
  TestSchema db;
  const auto r =
      taskctl_raw({"--database-url", db.url(), "--schema", db.name(), "list"}, "", {{"TASKQ_LOG_LEVEL", "chatty"}});
  CHECK_EXIT(r, 2);
  CHECK_THAT(r.err, Contains("chatty"));
  CHECK_THAT(r.err, Contains("TASKQ_LOG_LEVEL"));
}

TEST_CASE("quiet: -q silences notes and hints but never data or errors", "[cli]") {
  TestSchema db;
  const long long id = enqueue(db, {"k", "--unique-key", "once"});
  enqueue(db, {"k"});

  const auto noisy = taskctl(db, {"enqueue", "k", "--unique-key", "once"});
  REQUIRE_EXIT(noisy, 0);
  CHECK(!noisy.err.empty());
  const auto quiet = taskctl(db, {"--quiet", "enqueue", "k", "--unique-key", "once"});
  REQUIRE_EXIT(quiet, 0);
  CHECK(quiet.err.empty());
  CHECK(parse_id(quiet) == id);

  const auto quiet_list = taskctl(db, {"-q", "list", "--limit", "1"});
  REQUIRE_EXIT(quiet_list, 0);
  CHECK(quiet_list.err.empty());
  CHECK_THAT(quiet_list.out, Contains(std::to_string(id)));

  const auto quiet_cancel = taskctl(db, {"-q", "cancel", std::to_string(id)});
  REQUIRE_EXIT(quiet_cancel, 0);
  CHECK(quiet_cancel.err.empty());
  CHECK_THAT(quiet_cancel.out, Contains("cancelled"));

  const auto quiet_error = taskctl(db, {"-q", "show", "999999"});
  CHECK_EXIT(quiet_error, 3);
  CHECK_THAT(quiet_error.err, Contains("no job with id 999999"));
}
