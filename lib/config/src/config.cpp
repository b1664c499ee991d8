// The config file as a whole: the table of fixed keys, section by section; the walk over a
// file's sections, deciding where each section's errors go; the file and the environment.
#include "taskq/config/config.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "config_parse.hpp"
#include "taskq/core/error.hpp"

namespace taskq::config {
namespace parsing {

const KeyHandlers& handlers() {
  static const KeyHandlers table = [] {
    KeyHandlers out;
    for (auto section : {database_handlers, log_jobs_handlers, worker_handlers, scheduler_handlers, api_server_handlers,
                         api_limit_handlers})
      for (auto& h : section()) out.push_back(std::move(h));
    return out;
  }();
  return table;
}

namespace {

toml::table parse_toml(std::string_view toml_text, std::string_view source_name) {
  try {
    return toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    throw Error(Errc::invalid_input, std::string(source_name) + ":" + std::to_string(e.source().begin.line) + ": " +
                                         std::string(e.description()));
  }
}

// Where the errors of a section go. A daemon's own sections keep them for that daemon's check,
// so a typo there does not stop the other programs: [worker] and [kinds.*] for
// validate_worker_config() (taskq-workerd), [scheduler] for taskq-schedulerd, [api] for
// taskq-apid (validate_api_config()). Null: the error stops parsing.
std::vector<std::string>* kept_errors(Config& config, std::string_view section) {
  if (section == "worker" || section == "kinds") return &config.worker_errors;
  if (section == "scheduler") return &config.scheduler_errors;
  if (section == "api") return &config.api_errors;
  return nullptr;
}

// The sections whose keys this module checks; the others belong to other components.
bool own_section(std::string_view section) {
  return section == "database" || section == "log" || section == "jobs" || section == "worker" || section == "kinds" ||
         section == "scheduler" || section == "api";
}

const KeyHandler* find_handler(std::string_view full_name) {
  for (const auto& h : handlers())
    if (h.key.name == full_name) return &h;
  return nullptr;
}

// [kinds.NAME] tables: each one is kept or its error is.
void read_kinds(Config& config, const toml::table& kinds, std::string_view source) {
  for (const auto& [name, kind] : kinds) {
    try {
      config.kinds[std::string(name.str())] = parse_kind(name.str(), kind, source);
    } catch (const Error& e) {
      config.worker_errors.emplace_back(e.what());
    }
  }
}

// [[scheduler.periodic]]: each entry is kept or its error is.
void read_periodic(Config& config, const toml::node& value, std::string_view source) {
  const auto* entries = value.as_array();
  if (!entries)
    bad(where_of(source, value), "scheduler.periodic", "write each schedule as a [[scheduler.periodic]] table");
  std::size_t index = 0;
  for (const auto& entry : *entries) {
    try {
      config.scheduler.periodic.push_back(parse_periodic(entry, index++, source));
    } catch (const Error& e) {
      config.scheduler_errors.emplace_back(e.what());
    }
  }
}

// api.tls, or [[api.tokens]] (the first bad token ends the list).
void read_api_table(Config& config, std::string_view key, const toml::node& value, std::string_view source) {
  if (key == "tls") {
    config.api.tls = parse_tls(value, where_of(source, value));
    return;
  }
  const auto* entries = value.as_array();
  if (!entries) bad(where_of(source, value), "api.tokens", "write each token as an [[api.tokens]] table");
  std::size_t index = 0;
  for (const auto& entry : *entries) config.api.tokens.push_back(parse_token(entry, index++, source));
}

// A fixed key, through its handler; an unknown one is an error in our own sections only.
void read_key(Config& config, std::string_view section, std::string_view key, const toml::node& value,
              const std::string& where) {
  const std::string full = std::string(section) + "." + std::string(key);
  if (const KeyHandler* handler = find_handler(full)) {
    handler->apply(config, value, where);
    return;
  }
  // Sections of other components are theirs to validate; only our own keys are checked.
  if (own_section(section)) bad(where, full, "unknown key (see man taskq.toml)");
}

void read_section(Config& config, std::string_view section, const toml::table& table, std::string_view source) {
  std::vector<std::string>* kept = kept_errors(config, section);
  for (const auto& [key, value] : table) {
    try {
      if (section == "api" && (key.str() == "tokens" || key.str() == "tls"))
        read_api_table(config, key.str(), value, source);
      else if (section == "scheduler" && key.str() == "periodic")
        read_periodic(config, value, source);
      else
        read_key(config, section, key.str(), value, where_of(source, value));
    } catch (const Error& e) {
      if (!kept) throw;
      kept->emplace_back(e.what());
    }
  }
}

}  // namespace
}  // namespace parsing

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& h : parsing::handlers()) out.push_back(h.key);
    return out;
  }();
  return keys;
}

Config parse_config(std::string_view toml_text, std::string_view source_name) {
  const toml::table root = parsing::parse_toml(toml_text, source_name);
  Config config;
  config.source = std::string(source_name);
  for (const auto& [section, node] : root) {
    const auto* table = node.as_table();
    if (!table) parsing::bad(parsing::where_of(source_name, node), section.str(), "expected a [section] table");
    if (section.str() == "kinds")
      parsing::read_kinds(config, *table, source_name);
    else
      parsing::read_section(config, section.str(), *table, source_name);
  }
  return config;
}

Config load_config_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(Errc::invalid_input, "config file " + path + ": does not exist");
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
  // A bad value is the daemon's error (kept like its section's), not taskctl's.
  const std::tuple<const char*, std::string*, std::vector<std::string>*> listens[] = {
      {"TASKQ_WORKER_METRICS_LISTEN", &config.worker.metrics_listen, &config.worker_errors},
      {"TASKQ_SCHEDULER_METRICS_LISTEN", &config.scheduler.metrics_listen, &config.scheduler_errors}};
  for (const auto& [name, field, errors] : listens)
    if (const char* v = std::getenv(name); v && *v) {
      if (parsing::is_listen_address(v))
        *field = v;
      else
        errors->push_back(std::string("environment variable ") + name + ": '" + v +
                          "' is not HOST:PORT or [IPV6]:PORT (port 0 to 65535)");
    }
  if (const char* v = std::getenv("TASKQ_LOG_LEVEL"); v && *v) {
    config.log.level = v;
    config.log_level_source = "environment variable TASKQ_LOG_LEVEL";
  }
}

}  // namespace taskq::config
