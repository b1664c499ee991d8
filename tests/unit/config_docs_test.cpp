// The config key table (config_keys()) is the single source of truth: the sample config and the
// man page must document every key with its default, and the sample must load as the defaults.
// Also: parse_config's errors name the file, the line and the key.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

using taskq::config::api_table_keys;
using taskq::config::Config;
using taskq::config::config_keys;
using taskq::config::ConfigKey;
using taskq::config::kind_keys;
using taskq::config::load_config_file;
using taskq::config::parse_config;
using taskq::config::periodic_keys;
using taskq::config::Program;
using taskq::config::validate_config;
using taskq::config::validate_worker_config;

using namespace taskq;

namespace {

// TASKQ_SOURCE_DIR is not defined for unit tests: the repo root is three levels up from
// tests/unit/config_docs_test.cpp.
std::filesystem::path repo_root() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

std::filesystem::path example_path() {
  return repo_root() / "config" / "taskq.example.toml";
}
std::filesystem::path man_path() {
  return repo_root() / "man" / "taskq.toml.5";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path.string());
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

// Drops a trailing "# comment" that is outside a basic string.
std::string strip_comment(const std::string& line) {
  bool in_string = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string && c == '\\')
      ++i;
    else if (c == '"')
      in_string = !in_string;
    else if (c == '#' && !in_string)
      return line.substr(0, i);
  }
  return line;
}

// "section.key" -> value text exactly as written, for every uncommented assignment. Each key
// may appear once.
std::map<std::string, std::string> assignments(const std::string& toml) {
  std::map<std::string, std::string> out;
  std::istringstream in(toml);
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(strip_comment(line));
    if (line.empty()) continue;
    if (line.front() == '[') {
      REQUIRE(line.back() == ']');
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    const auto eq = line.find('=');
    INFO("line: " << line);
    REQUIRE(eq != std::string::npos);
    const std::string name = (section.empty() ? "" : section + ".") + trim(line.substr(0, eq));
    INFO("key " << name << " is assigned twice");
    REQUIRE(out.count(name) == 0);
    out[name] = trim(line.substr(eq + 1));
  }
  return out;
}

// Runs `f`, expecting Error(invalid_input); returns its message.
template <typename F>
std::string invalid_input_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    return e.what();
  }
  FAIL("no error was thrown");
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Each key has its own entry in man taskq.toml: ".B NAME", "Type: T.", "Default: D.".
void check_man_entries(const std::vector<ConfigKey>& keys) {
  const std::string man = read_file(man_path());
  REQUIRE_FALSE(keys.empty());
  for (const auto& key : keys) {
    INFO("key " << key.name << " in " << man_path().string());
    CHECK(contains(man, ".B " + std::string(key.name) + "\nType: " + std::string(key.type) +
                            ".\nDefault: " + std::string(key.default_value) + "."));
  }
}

}  // namespace

TEST_CASE("the sample config sets every key to its default", "[config][docs]") {
  const auto values = assignments(read_file(example_path()));
  REQUIRE_FALSE(config_keys().empty());
  for (const auto& key : config_keys()) {
    const std::string name(key.name);
    INFO("key " << name << " in " << example_path().string());
    REQUIRE(values.count(name) == 1);
    CHECK(values.at(name) == std::string(key.default_value));
  }
  // And nothing else: no key the table does not know.
  for (const auto& [name, value] : values) {
    INFO("key " << name << " = " << value << " is not in config_keys()");
    bool known = false;
    for (const auto& key : config_keys()) known = known || key.name == name;
    CHECK(known);
  }
}

TEST_CASE("the man page documents every key with its default", "[config][docs]") {
  const std::string man = read_file(man_path());
  for (const auto& key : config_keys()) {
    INFO("key " << key.name << " in " << man_path().string());
    CHECK(contains(man, std::string(key.name)));
    CHECK(contains(man, "Default: " + std::string(key.default_value)));
    CHECK(contains(man, std::string(key.type)));
  }
}

TEST_CASE("the man page documents every [kinds.NAME] key with its default", "[config][docs]") {
  check_man_entries(kind_keys());
}

TEST_CASE("the sample config loads and equals the defaults", "[config][docs]") {
  const Config loaded = load_config_file(example_path().string());
  const Config defaults;
  CHECK(loaded.database.url == defaults.database.url);
  CHECK(loaded.database.schema == defaults.database.schema);
  CHECK(loaded.database.connect_timeout == defaults.database.connect_timeout);
  for (auto p : {Program::apid, Program::workerd, Program::schedulerd, Program::taskctl}) {
    const auto a = loaded.database.session(p), b = defaults.database.session(p);
    CHECK(a.statement_timeout == b.statement_timeout);
    CHECK(a.lock_timeout == b.lock_timeout);
    CHECK(a.idle_in_transaction_timeout == b.idle_in_transaction_timeout);
    CHECK(a.keepalives == b.keepalives);
    CHECK(a.keepalives_idle == b.keepalives_idle);
    CHECK(a.keepalives_interval == b.keepalives_interval);
    CHECK(a.keepalives_count == b.keepalives_count);
    CHECK(a.tcp_user_timeout == b.tcp_user_timeout);
  }
  CHECK(loaded.log.level == defaults.log.level);
  CHECK(loaded.log.format == defaults.log.format);
  CHECK(loaded.jobs.max_args_bytes == defaults.jobs.max_args_bytes);
  CHECK(loaded.worker.queues == defaults.worker.queues);
  CHECK(loaded.worker.shutdown_timeout == defaults.worker.shutdown_timeout);
  CHECK(loaded.worker.heartbeat_interval == defaults.worker.heartbeat_interval);
  CHECK(loaded.worker.poll_interval == defaults.worker.poll_interval);
  CHECK(loaded.worker.delete_completed == defaults.worker.delete_completed);
  CHECK(loaded.kinds.empty());
  CHECK_NOTHROW(validate_worker_config(loaded));
  CHECK(loaded.scheduler.lease_ttl == defaults.scheduler.lease_ttl);
  CHECK(loaded.scheduler.rescue_interval == defaults.scheduler.rescue_interval);
  CHECK(loaded.scheduler.worker_grace == defaults.scheduler.worker_grace);
  CHECK(loaded.scheduler.stuck_grace == defaults.scheduler.stuck_grace);
  CHECK(loaded.scheduler.prune_interval == defaults.scheduler.prune_interval);
  CHECK(loaded.scheduler.prune_batch == defaults.scheduler.prune_batch);
  CHECK(loaded.scheduler.retention.completed == defaults.scheduler.retention.completed);
  CHECK(loaded.scheduler.retention.cancelled == defaults.scheduler.retention.cancelled);
  CHECK(loaded.scheduler.retention.failed == defaults.scheduler.retention.failed);
  CHECK(loaded.scheduler.missed_run_once == defaults.scheduler.missed_run_once);
  CHECK(loaded.scheduler.periodic.empty());
  CHECK(loaded.scheduler_errors.empty());
  CHECK(loaded.api.listen == defaults.api.listen);
  CHECK(loaded.api.threads == defaults.api.threads);
  CHECK(loaded.api.db_pool == defaults.api.db_pool);
  CHECK(loaded.api.db_acquire_timeout == defaults.api.db_acquire_timeout);
  CHECK(loaded.api.max_body == defaults.api.max_body);
  CHECK(loaded.api.request_timeout == defaults.api.request_timeout);
  CHECK(loaded.api.shutdown_timeout == defaults.api.shutdown_timeout);
  CHECK(loaded.api.insecure_no_auth == defaults.api.insecure_no_auth);
  CHECK(loaded.api.metrics_auth == defaults.api.metrics_auth);
  CHECK_FALSE(loaded.api.tls.has_value());
  CHECK(loaded.api.tokens.empty());
  CHECK(loaded.api_errors.empty());
  CHECK(loaded.source == example_path().string());
  CHECK_NOTHROW(validate_config(loaded));
}

TEST_CASE("config values are read into the structs", "[config]") {
  const Config c = parse_config(
      "[database]\nurl = \"postgresql://db.example/jobs\"\nschema = \"tenant_a\"\nconnect_timeout = \"1m\"\n"
      "[log]\nlevel = \"debug\"\nformat = \"json\"\n[jobs]\nmax_args_bytes = 4096\n",
      "t.toml");
  CHECK(c.database.url == "postgresql://db.example/jobs");
  CHECK(c.database.schema == "tenant_a");
  CHECK(c.database.connect_timeout == std::chrono::minutes{1});
  CHECK(c.log.level == "debug");
  CHECK(c.log.format == "json");
  CHECK(c.jobs.max_args_bytes == 4096);
  CHECK(c.source == "t.toml");
  CHECK_NOTHROW(validate_config(c));
}

TEST_CASE("sections of other components are left to them", "[config]") {
  const Config c = parse_config("[workers]\nconcurrency = 8\n[database]\nschema = \"x\"\n", "t.toml");
  CHECK(c.database.schema == "x");
}

TEST_CASE("an unknown key in a known section names the file, line and key", "[config]") {
  const std::string msg = invalid_input_message(
      [] { parse_config("[database]\nurl = \"\"\n\nsceham = \"taskq\"\n", "/etc/taskq/taskq.toml"); });
  CHECK(contains(msg, "/etc/taskq/taskq.toml:4"));
  CHECK(contains(msg, "database.sceham"));
  CHECK(contains(msg, "unknown key"));

  CHECK(contains(invalid_input_message([] { parse_config("[log]\ncolour = true\n", "a.toml"); }), "log.colour"));
  CHECK(contains(invalid_input_message([] { parse_config("[jobs]\nmax_arg_bytes = 1\n", "a.toml"); }),
                 "jobs.max_arg_bytes"));
}

TEST_CASE("a value of the wrong type names the file, line and key", "[config]") {
  SECTION("string expected") {
    const std::string msg = invalid_input_message([] { parse_config("[database]\nschema = 5\n", "b.toml"); });
    CHECK(contains(msg, "b.toml:2"));
    CHECK(contains(msg, "database.schema"));
    CHECK(contains(msg, "must be a string"));
  }
  SECTION("integer expected") {
    const std::string msg =
        invalid_input_message([] { parse_config("[jobs]\nmax_args_bytes = \"1MiB\"\n", "b.toml"); });
    CHECK(contains(msg, "b.toml:2"));
    CHECK(contains(msg, "jobs.max_args_bytes"));
    CHECK(contains(msg, "must be an integer"));
  }
  SECTION("a duration is a string or a number of seconds") {
    CHECK(parse_config("[database]\nconnect_timeout = 7\n", "b.toml").database.connect_timeout ==
          std::chrono::seconds{7});
    const std::string msg =
        invalid_input_message([] { parse_config("[database]\nconnect_timeout = true\n", "b.toml"); });
    CHECK(contains(msg, "b.toml:2"));
    CHECK(contains(msg, "database.connect_timeout"));
    CHECK(contains(msg, "must be a duration"));
    const std::string bad_unit =
        invalid_input_message([] { parse_config("[database]\nconnect_timeout = \"5parsecs\"\n", "b.toml"); });
    CHECK(bad_unit.find("database.connect_timeout") == bad_unit.rfind("database.connect_timeout"));  // said once
  }
  SECTION("a section must be a table") {
    const std::string msg = invalid_input_message([] { parse_config("database = \"x\"\n", "b.toml"); });
    CHECK(contains(msg, "b.toml:1"));
    CHECK(contains(msg, "database"));
  }
}

TEST_CASE("bad values name the key", "[config]") {
  CHECK(contains(invalid_input_message([] { parse_config("[database]\nconnect_timeout = \"soon\"\n", "c.toml"); }),
                 "database.connect_timeout"));
  const std::string range = invalid_input_message([] { parse_config("[jobs]\nmax_args_bytes = 1\n", "c.toml"); });
  CHECK(contains(range, "c.toml:2"));
  CHECK(contains(range, "jobs.max_args_bytes"));
  CHECK(contains(range, "between 2 and 268435456"));
}

TEST_CASE("TOML syntax errors name the file and line", "[config]") {
  const std::string msg = invalid_input_message([] { parse_config("[log]\nlevel = \"info\n", "d.toml"); });
  CHECK(contains(msg, "d.toml:2"));
}

TEST_CASE("validate_config rejects a bad log level, format, schema or timeout", "[config]") {
  Config c = parse_config("[log]\nlevel = \"loud\"\n", "e.toml");  // parsing accepts any string
  CHECK(c.log.level == "loud");
  const std::string level = invalid_input_message([&] { validate_config(c); });
  CHECK(contains(level, "e.toml"));
  CHECK(contains(level, "log.level"));
  CHECK(contains(level, "'loud'"));

  c = parse_config("[log]\nformat = \"xml\"\n", "e.toml");
  CHECK(contains(invalid_input_message([&] { validate_config(c); }), "log.format"));

  c = parse_config("[database]\nschema = \"Tenant-A\"\n", "e.toml");
  CHECK(contains(invalid_input_message([&] { validate_config(c); }), "Tenant-A"));

  c = parse_config("[database]\nconnect_timeout = \"500ms\"\n", "e.toml");
  CHECK(contains(invalid_input_message([&] { validate_config(c); }), "database.connect_timeout"));

  for (const char* ok : {"trace", "debug", "info", "warn", "error", "off"}) {
    Config good;
    good.log.level = ok;
    CHECK_NOTHROW(validate_config(good));
  }
}

TEST_CASE("a missing config file is named", "[config]") {
  const std::string msg = invalid_input_message([] { load_config_file("/nonexistent/taskq.toml"); });
  CHECK(contains(msg, "/nonexistent/taskq.toml"));
}

TEST_CASE("the man page documents every [[scheduler.periodic]] key with its default", "[config][docs]") {
  check_man_entries(periodic_keys());
}

TEST_CASE("the man page documents api.tls and every [[api.tokens]] key with its default", "[config][docs]") {
  check_man_entries(api_table_keys());
}
