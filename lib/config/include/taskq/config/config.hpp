#pragma once
// The shared configuration file (/etc/taskq/taskq.toml). One table of keys (config_keys()) is the
// single source of truth: it drives parsing, unknown-key errors, and the test that checks
// config/taskq.example.toml and man/taskq.toml.5 document every key with its default.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskq/core/time.hpp"

namespace taskq {

struct DatabaseConfig {
  std::string url;  // libpq URL or key=value string; empty = libpq defaults (PGHOST, ...)
  std::string schema = "taskq";
  Duration connect_timeout = std::chrono::seconds{5};
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error, off
  std::string format = "text";  // text, json
};

struct JobsConfig {
  std::size_t max_args_bytes = 1024 * 1024;
};

struct Config {
  DatabaseConfig database;
  LogConfig log;
  JobsConfig jobs;
  std::string source = "(defaults)";  // where it came from, for messages
  std::string log_level_source;       // set when an environment variable overrides log.level
};

struct ConfigKey {
  std::string_view name;           // "database.url"
  std::string_view type;           // "string", "duration", "integer"
  std::string_view default_value;  // as written in TOML
  std::string_view description;
};

const std::vector<ConfigKey>& config_keys();

/// Parses TOML text. Unknown keys, wrong types and bad values throw Error(invalid_input) naming
/// the source, the line and the key.
Config parse_config(std::string_view toml_text, std::string_view source_name);
/// Reads a file. A missing file throws Error(invalid_input) naming the path.
Config load_config_file(const std::string& path);

/// The default config path (/etc/taskq/taskq.toml) when it exists, else nothing.
std::optional<std::string> default_config_path();

/// Applies environment overrides: TASKQ_DATABASE_URL, TASKQ_SCHEMA, TASKQ_LOG_LEVEL.
void apply_env_overrides(Config& config);

/// Checks the values that have a fixed set or shape (schema name, log level/format).
void validate_config(const Config& config);
/// Schema names: lower-case letters, digits and '_', not starting with a digit, at most 48 bytes.
void validate_schema_name(std::string_view schema);

}  // namespace taskq
