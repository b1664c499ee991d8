// The checks of a whole Config: the values every program needs (validate_config), and the
// sections of one daemon, whose parse errors were kept for it (taskq-workerd, taskq-apid;
// taskq-schedulerd's is scheduler::validate_config).
#include <string>
#include <vector>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

namespace taskq::config {

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

void validate_api_config(const Config& config) {
  std::vector<std::string> errors = config.api_errors;
  std::vector<std::string> names;
  for (const auto& t : config.api.tokens) {
    const std::string at =
        config.source + (t.line > 0 ? ":" + std::to_string(t.line) : "") + ": api.tokens '" + t.name + "'";
    for (const auto& n : names)
      if (n == t.name) errors.push_back(at + ": duplicate token name");
    names.push_back(t.name);
  }
  if (config.api.tokens.empty() && !config.api.insecure_no_auth && errors.empty())
    errors.push_back(config.source +
                     ": [api]: no [[api.tokens]] configured; add one (name, sha256, scopes) or set "
                     "insecure_no_auth = true to serve without authentication");
  throw_if_any(errors);
}

void validate_worker_config(const Config& config) {
  throw_if_any(config.worker_errors);
  const auto where = config.source + ": ";
  if (config.worker.queues.empty())
    throw Error(Errc::invalid_input, where + "worker.queues: needs at least one queue, e.g. { default = 16 }");
  for (const auto& [name, limit] : config.worker.queues)
    if (limit < 1 || limit > 10000)
      throw Error(Errc::invalid_input, where + "worker.queues." + name + ": must be between 1 and 10000");
  if (config.worker.heartbeat_interval < std::chrono::milliseconds{100})
    throw Error(Errc::invalid_input, where + "worker.heartbeat_interval: must be at least 100ms");
  if (config.worker.poll_interval < std::chrono::milliseconds{10})
    throw Error(Errc::invalid_input, where + "worker.poll_interval: must be at least 10ms");
  if (config.worker.shutdown_timeout < Duration{})
    throw Error(Errc::invalid_input, where + "worker.shutdown_timeout: must not be negative");
  for (const auto& [name, k] : config.kinds) {
    const std::string at = config.source + (k.line > 0 ? ":" + std::to_string(k.line) : "") + ": kinds." + name;
    if (k.exec.empty() && !k.http)
      throw Error(Errc::invalid_input, at + ": needs exec = [...] or http = { url = ... }");
    if (!k.exec.empty() && k.http) throw Error(Errc::invalid_input, at + ": has both exec and http; choose one");
  }
}

}  // namespace taskq::config
