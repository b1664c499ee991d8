#include "context.hpp"

#include <charconv>
#include <iostream>

#include "taskq/core/error.hpp"

using taskq::config::apply_env_overrides;
using taskq::config::Config;
using taskq::config::default_config_path;
using taskq::config::load_config_file;
using taskq::config::Program;
using taskq::config::validate_config;

using taskq::queue::Client;
using taskq::queue::ClientOptions;

namespace taskq::ctl {

int exit_code_for(Errc code) {
  switch (code) {
    case Errc::invalid_input:
      return exit_usage;
    case Errc::not_found:
      return exit_not_found;
    case Errc::conflict:
      return exit_conflict;
    case Errc::locked:
      return exit_locked;
    case Errc::timeout:
      return exit_timeout;
    case Errc::unavailable:
    case Errc::not_migrated:
      return exit_unavailable;
    case Errc::internal:
      return exit_internal;
  }
  return exit_internal;
}

const Config& Context::config() {
  if (!config_) {
    Config c;
    if (globals.config_path)
      c = load_config_file(*globals.config_path);
    else if (auto path = default_config_path())
      c = load_config_file(*path);
    apply_env_overrides(c);
    if (globals.database_url) c.database.url = *globals.database_url;
    if (globals.schema) c.database.schema = *globals.schema;
    validate_config(c);
    config_ = std::move(c);
  }
  return *config_;
}

Client& Context::client() {
  if (!client_) {
    const Config& c = config();
    ClientOptions options;
    options.store.url = c.database.url;
    options.store.schema = c.database.schema;
    options.store.connect_timeout = c.database.connect_timeout;
    options.store.application_name = "taskctl";
    options.store.session = c.database.session(Program::taskctl);
    options.limits.max_args_bytes = c.jobs.max_args_bytes;
    client_ = Client::connect(options);
  }
  return *client_;
}

OutputFormat Context::output() const {
  if (globals.output == "json") return OutputFormat::json;
  if (globals.output == "jsonl") return OutputFormat::jsonl;
  return OutputFormat::table;
}

void Context::note(const std::string& message) const {
  if (!globals.quiet) std::cerr << message << '\n';
}

JobId parse_job_id(const std::string& text) {
  JobId id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc{} || ptr != text.data() + text.size() || id <= 0)
    throw Error(Errc::invalid_input, "invalid job id '" + text + "' (expected a positive integer)");
  return id;
}

std::vector<JobId> parse_job_ids(const std::vector<std::string>& texts) {
  std::vector<JobId> ids;
  ids.reserve(texts.size());
  for (const auto& t : texts) ids.push_back(parse_job_id(t));
  return ids;
}

}  // namespace taskq::ctl
