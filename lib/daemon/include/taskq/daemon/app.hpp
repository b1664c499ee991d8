#pragma once
// What the daemons' main() functions share: the flags every taskq daemon takes (--config,
// --check-config, --version), loading and checking the config file, and the exit codes of
// their man pages (sysexits.h values).
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

namespace taskq::daemon {

inline constexpr int exit_ok = 0;
inline constexpr int exit_usage = 2;
inline constexpr int exit_unavailable = 69;  // EX_UNAVAILABLE: database unreachable or not migrated
inline constexpr int exit_internal = 70;     // EX_SOFTWARE
inline constexpr int exit_config = 78;       // EX_CONFIG

struct Flags {
  std::optional<std::string> config_path;
  bool check_config = false;
};

/// Parses `name [-c FILE] [--check-config] [--version] [--help]`. Returns the exit code when the
/// program is done (help or version printed: 0; a usage error, explained on stderr: 2).
std::optional<int> parse_flags(int argc, char** argv, const std::string& name, std::string_view version,
                               const std::string& description, Flags& flags);

/// The file named by --config, else /etc/taskq/taskq.toml when it exists, else the defaults;
/// then the environment overrides, validate_config(), and the daemon's own `check` of its
/// sections. Throws Error(invalid_input) naming the file, line and key.
taskq::config::Config load_config(const Flags& flags, const std::function<void(const taskq::config::Config&)>& check);

/// The config file may hold secrets (a database URL with its password, webhook headers, token
/// hashes). A warning naming the file, its mode and the fix when other users may read or change
/// it: readable or writable by everyone, writable by its group, or readable by a group other than
/// the daemon's own (`640 root:taskq` with the daemons in group taskq is fine). Nothing for the
/// defaults or a file that cannot be examined.
std::optional<std::string> config_file_warning(const taskq::config::Config& config);

/// The exit code for an error while starting: 69 when the database is unreachable or the schema
/// not migrated, 70 otherwise.
int exit_code_for_start(const Error& e);

}  // namespace taskq::daemon
