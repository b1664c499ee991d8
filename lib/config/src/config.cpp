#include "taskq/config/config.hpp"

#include <toml++/toml.h>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "taskq/core/error.hpp"

namespace taskq {
namespace {

struct KeyHandler {
  ConfigKey key;
  std::function<void(Config&, const toml::node&, const std::string& where)> apply;
};

[[noreturn]] void bad(const std::string& where, std::string_view key, const std::string& why) {
  throw Error(Errc::invalid_input, where + ": " + std::string(key) + ": " + why);
}

std::string get_string(const toml::node& n, const std::string& where, std::string_view key) {
  if (auto s = n.value<std::string>(); s && n.is_string()) return *s;
  bad(where, key, "must be a string");
}

// A duration is a string ("5s", "1h30m") or a number of seconds.
Duration get_duration(const toml::node& n, const std::string& where, std::string_view key) {
  if (n.is_integer() || n.is_floating_point()) {
    const double secs = n.value<double>().value_or(-1);
    if (secs < 0) bad(where, key, "must not be negative");
    return Duration{static_cast<std::int64_t>(secs * 1e6)};
  }
  if (!n.is_string()) bad(where, key, "must be a duration such as \"5s\" or a number of seconds");
  try {
    return parse_duration(*n.value<std::string>());
  } catch (const Error& e) {
    bad(where, key, e.what());
  }
}

const std::vector<KeyHandler>& handlers() {
  static const std::vector<KeyHandler> table = {
      {{"database.url", "string", "\"\"",
        "PostgreSQL connection URL (libpq URI or key=value). Empty: libpq defaults (PGHOST, PGPORT, ...). "
        "The environment variable TASKQ_DATABASE_URL overrides it."},
       [](Config& c, const toml::node& n, const std::string& w) { c.database.url = get_string(n, w, "database.url"); }},
      {{"database.schema", "string", "\"taskq\"",
        "Schema holding taskq's tables. Several deployments can share a database with different schemas."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.schema = get_string(n, w, "database.schema");
       }},
      {{"database.connect_timeout", "duration", "\"5s\"",
        "How long to wait for a connection to PostgreSQL before giving up (whole seconds; at least 1s)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.connect_timeout = get_duration(n, w, "database.connect_timeout");
       }},
      {{"log.level", "string", "\"info\"", "Least severe level logged: trace, debug, info, warn, error, off."},
       [](Config& c, const toml::node& n, const std::string& w) { c.log.level = get_string(n, w, "log.level"); }},
      {{"log.format", "string", "\"text\"", "text (one line per event) or json (one JSON object per line)."},
       [](Config& c, const toml::node& n, const std::string& w) { c.log.format = get_string(n, w, "log.format"); }},
      {{"jobs.max_args_bytes", "integer", "1048576",
        "Largest accepted args JSON of one job, in bytes. Larger jobs are refused at enqueue."},
       [](Config& c, const toml::node& n, const std::string& w) {
         auto v = n.value<std::int64_t>();
         if (!v || !n.is_integer()) bad(w, "jobs.max_args_bytes", "must be an integer");
         if (*v < 2 || *v > 256LL * 1024 * 1024) bad(w, "jobs.max_args_bytes", "must be between 2 and 268435456");
         c.jobs.max_args_bytes = static_cast<std::size_t>(*v);
       }},
  };
  return table;
}

std::string where_of(std::string_view source, const toml::node& n) {
  std::string w(source);
  if (n.source().begin.line > 0) w += ":" + std::to_string(n.source().begin.line);
  return w;
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& h : handlers()) out.push_back(h.key);
    return out;
  }();
  return keys;
}

Config parse_config(std::string_view toml_text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    throw Error(Errc::invalid_input, std::string(source_name) + ":" + std::to_string(e.source().begin.line) + ": " +
                                         std::string(e.description()));
  }
  Config config;
  config.source = std::string(source_name);
  for (const auto& [section, node] : root) {
    const std::string where = where_of(source_name, node);
    const auto* table = node.as_table();
    if (!table) bad(where, section.str(), "expected a [section] table");
    for (const auto& [key, value] : *table) {
      const std::string full = std::string(section.str()) + "." + std::string(key.str());
      const KeyHandler* handler = nullptr;
      for (const auto& h : handlers())
        if (h.key.name == full) handler = &h;
      if (!handler) {
        // Sections of other components are theirs to validate; only our own keys are checked.
        if (section.str() == "database" || section.str() == "log" || section.str() == "jobs")
          bad(where_of(source_name, value), full, "unknown key (see man taskq.toml)");
        continue;
      }
      handler->apply(config, value, where_of(source_name, value));
    }
  }
  return config;
}

Config load_config_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(Errc::invalid_input, "config file " + path + ": does not exist");
  toml::table root;
  std::string text;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(Errc::invalid_input, "config file " + path + ": cannot be read");
    char buf[8192];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return parse_config(text, path);
}

std::optional<std::string> default_config_path() {
  std::error_code ec;
  const std::string p = "/etc/taskq/taskq.toml";
  if (std::filesystem::exists(p, ec)) return p;
  return std::nullopt;
}

void apply_env_overrides(Config& config) {
  if (const char* v = std::getenv("TASKQ_DATABASE_URL"); v && *v) config.database.url = v;
  if (const char* v = std::getenv("TASKQ_SCHEMA"); v && *v) config.database.schema = v;
  if (const char* v = std::getenv("TASKQ_LOG_LEVEL"); v && *v) {
    config.log.level = v;
    config.log_level_source = "environment variable TASKQ_LOG_LEVEL";
  }
}

void validate_schema_name(std::string_view schema) {
  auto fail = [&](const std::string& why) {
    throw Error(Errc::invalid_input, "schema '" + std::string(schema) + "': " + why);
  };
  if (schema.empty()) fail("must not be empty");
  if (schema.size() > 48) fail("longer than 48 bytes");
  if (schema[0] >= '0' && schema[0] <= '9') fail("must not start with a digit");
  for (char c : schema)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      fail("use only lower-case letters, digits and '_'");
}

void validate_config(const Config& config) {
  validate_schema_name(config.database.schema);
  const auto& level = config.log.level;
  if (level != "trace" && level != "debug" && level != "info" && level != "warn" && level != "error" && level != "off")
    throw Error(Errc::invalid_input,
                (config.log_level_source.empty() ? config.source + ": log.level" : config.log_level_source) + ": '" +
                    level + "' is not one of trace, debug, info, warn, error, off");
  if (config.log.format != "text" && config.log.format != "json")
    throw Error(Errc::invalid_input, config.source + ": log.format: '" + config.log.format + "' is not text or json");
  if (config.database.connect_timeout < std::chrono::seconds{1})
    throw Error(Errc::invalid_input, config.source + ": database.connect_timeout: must be at least 1s");
}

}  // namespace taskq
