#include "taskq/daemon/app.hpp"

#include <CLI/CLI.hpp>

using taskq::config::apply_env_overrides;
using taskq::config::Config;
using taskq::config::default_config_path;
using taskq::config::load_config_file;
using taskq::config::validate_config;

namespace taskq::daemon {

std::optional<int> parse_flags(int argc, char** argv, const std::string& name, std::string_view version,
                               const std::string& description, Flags& flags) {
  CLI::App app{description};
  app.set_version_flag("--version", name + " " + std::string(version));
  app.add_option("-c,--config", flags.config_path, "Configuration file (default /etc/taskq/taskq.toml if present)");
  app.add_flag("--check-config", flags.check_config, "Check the configuration and exit (0 valid, 78 invalid)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }
  return std::nullopt;
}

Config load_config(const Flags& flags, const std::function<void(const Config&)>& check) {
  Config c;
  if (flags.config_path)
    c = load_config_file(*flags.config_path);
  else if (auto path = default_config_path())
    c = load_config_file(*path);
  apply_env_overrides(c);
  validate_config(c);
  if (check) check(c);
  return c;
}

int exit_code_for_start(const Error& e) {
  return e.code() == Errc::unavailable || e.code() == Errc::not_migrated ? exit_unavailable : exit_internal;
}

}  // namespace taskq::daemon
