#pragma once
// Private to taskq_config: what the files of this module share to read a TOML file into Config.
//
// Each section's keys are a table of KeyHandler (the key as config_keys() documents it, and how
// its value is read), in its own file: database_section.cpp ([database], [log], [jobs]),
// worker_section.cpp ([worker], [kinds.NAME]), scheduler_section.cpp ([scheduler] and its
// [[scheduler.periodic]] entries), api_section.cpp ([api], api.tls, [[api.tokens]]). config.cpp
// joins the tables in that order and walks the file; values.cpp holds the readers of one value
// (string, duration, size, ...) that every section uses; checks.cpp holds the checks per daemon.
//
// Every reader throws Error(invalid_input) as "<where>: <key>: <why>", where is "file:line".
#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "taskq/config/config.hpp"

namespace taskq::config::parsing {

/// One fixed key: its documentation (config_keys()) and how its value lands in Config.
struct KeyHandler {
  ConfigKey key;
  std::function<void(Config&, const toml::node&, const std::string& where)> apply;
};
using KeyHandlers = std::vector<KeyHandler>;

/// Every fixed key, section by section: [database], [log], [jobs], [worker], [scheduler], [api].
const KeyHandlers& handlers();

// The tables of each section (in the order handlers() joins them).
KeyHandlers database_handlers();    // [database]
KeyHandlers log_jobs_handlers();    // [log] and [jobs]
KeyHandlers worker_handlers();      // [worker]
KeyHandlers scheduler_handlers();   // [scheduler]
KeyHandlers api_server_handlers();  // [api]: listening, threads, the pool, requests
KeyHandlers api_limit_handlers();   // [api]: connection and stream limits, shutdown, authentication

// --- Readers of one value (values.cpp) ------------------------------------------------------

[[noreturn]] void bad(const std::string& where, std::string_view key, const std::string& why);
/// "file:line" of a node (the line only when toml++ knows it).
std::string where_of(std::string_view source, const toml::node& n);

std::string get_string(const toml::node& n, const std::string& where, std::string_view key);
/// A listening address: HOST:PORT or [IPV6]:PORT, port 0 to 65535.
bool is_listen_address(const std::string& address);
std::string get_listen_address(const toml::node& n, const std::string& where, std::string_view key);
/// A duration is a string ("5s", "1h30m") or a number of seconds.
Duration get_duration(const toml::node& n, const std::string& where, std::string_view key);
Duration get_duration_at_least(const toml::node& n, const std::string& where, std::string_view key, Duration min,
                               const char* min_text);
std::int64_t get_int(const toml::node& n, const std::string& where, std::string_view key, std::int64_t min,
                     std::int64_t max);
bool get_bool(const toml::node& n, const std::string& where, std::string_view key);
const toml::table& get_table(const toml::node& n, const std::string& where, std::string_view key);
/// "512MiB", "1GiB", "100MB", "4096" or an integer: bytes. KiB/MiB/GiB/TiB are 1024-based,
/// KB/MB/GB/TB 1000-based.
std::uint64_t get_size(const toml::node& n, const std::string& where, std::string_view key);
/// A table of strings (headers, environment variables), in file order. env_names: the names
/// must be usable as environment variable names.
std::vector<std::pair<std::string, std::string>> get_string_table(const toml::node& n, const std::string& where,
                                                                  std::string_view key, bool env_names);

// --- The tables inside sections --------------------------------------------------------------

/// One [kinds.NAME] table (worker_section.cpp).
KindConfig parse_kind(std::string_view name, const toml::node& node, std::string_view source);
/// One [[scheduler.periodic]] entry (scheduler_section.cpp).
PeriodicConfig parse_periodic(const toml::node& node, std::size_t index, std::string_view source);
/// [api] tls = { cert = "...", key = "..." } (api_section.cpp).
ApiTls parse_tls(const toml::node& node, const std::string& where);
/// One [[api.tokens]] entry (api_section.cpp).
ApiToken parse_token(const toml::node& node, std::size_t index, std::string_view source);

}  // namespace taskq::config::parsing
