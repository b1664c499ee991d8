// taskq-apid: the HTTP/JSON API. Reads top to bottom: parse flags, load and check the config,
// start the server, wait for signals, stop. See man taskq-apid(8).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>

#include "taskq/api/rlimits.hpp"
#include "taskq/api/server.hpp"
#include "taskq/api/tls_files.hpp"
#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/daemon/app.hpp"
#include "taskq/daemon/daemon.hpp"
#include "taskq/log/log.hpp"

namespace {

using namespace taskq::daemon;  // exit codes, Flags

std::string describe(const taskq::Config& c) {
  std::string listen;
  for (const auto& l : c.api.listen) listen += (listen.empty() ? "" : ", ") + l;
  return "listen " + listen + "; " + std::to_string(c.api.threads) + " I/O thread(s), " +
         std::to_string(c.api.db_pool) + " database connection(s); " +
         (c.api.tokens.empty() ? std::string("no authentication (insecure_no_auth)")
                               : std::to_string(c.api.tokens.size()) + " token(s)");
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const auto rc = parse_flags(argc, argv, "taskq-apid", TASKQ_VERSION,
                                  "taskq-apid: the HTTP/JSON API of taskq (see man taskq-apid)", flags))
    return *rc;

  taskq::Config config;
  try {
    config = load_config(flags, taskq::api::check_config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskq-apid: %s\n", e.what());
    return exit_config;
  }
  if (flags.check_config) {
    if (const auto warning = config_file_warning(config))
      std::fprintf(stderr, "taskq-apid: warning: %s\n", warning->c_str());
    std::printf("%s: OK: %s\n", config.source.c_str(), describe(config).c_str());
    return exit_ok;
  }
  taskq::setup_logging(config.log, "taskq-apid");
  if (const auto warning = config_file_warning(config)) spdlog::warn("{}", *warning);
  taskq::daemon::block_signals();
  if (const auto warning = taskq::api::open_files_warning(taskq::api::raise_open_files())) spdlog::warn("{}", *warning);

  taskq::api::ApiOptions options;
  options.store = {config.database.url, config.database.schema, config.database.connect_timeout, "taskq-apid"};
  options.store.session = config.database.session(taskq::Program::apid);
  options.config = config.api;
  options.limits.max_args_bytes = config.jobs.max_args_bytes;
  options.version = TASKQ_VERSION;
  taskq::api::Server server(options);
  try {
    server.start();
  } catch (const taskq::Error& e) {
    spdlog::error("cannot start: {}", e.what());
    return e.code() == taskq::Errc::invalid_input ? exit_config : exit_code_for_start(e);
  }
  for (const auto& e : server.endpoints()) spdlog::info("listening on {}://{}", config.api.tls ? "https" : "http", e);
  if (config.api.tokens.empty()) spdlog::warn("serving WITHOUT authentication (api.insecure_no_auth = true)");
  taskq::daemon::notify_ready();
  taskq::daemon::notify_status(describe(config));

  const auto watchdog = taskq::daemon::watchdog_interval();
  const taskq::Duration tick = watchdog ? std::min<taskq::Duration>(*watchdog, std::chrono::seconds{1})
                                        : taskq::Duration{std::chrono::seconds{1}};
  for (;;) {
    const auto sig = taskq::daemon::wait_signal(tick);
    // Fed only while the I/O loop turns and database work moves: a pool whose every connection
    // has been busy for a watchdog interval without one finishing is stuck (each statement is
    // bounded by database.statement_timeout), and systemd restarts it.
    if (watchdog && server.healthy(std::chrono::seconds{30}) && server.db_moving(*watchdog))
      taskq::daemon::notify_watchdog();
    if (!sig) continue;
    if (*sig == taskq::daemon::Signal::reload) {
      try {
        const auto c = load_config(flags, taskq::api::check_config);
        taskq::setup_logging(c.log, "taskq-apid");
        spdlog::info("reloaded [log] from {} (the other keys apply at restart)", c.source);
      } catch (const std::exception& e) {
        spdlog::error("reload refused, keeping the running configuration: {}", e.what());
      }
      continue;
    }
    const bool graceful = *sig == taskq::daemon::Signal::terminate;
    spdlog::info(
        "{}: stopping{}", graceful ? "SIGTERM" : "SIGINT",
        graceful ? " (in-flight requests may finish within " + taskq::format_duration(config.api.shutdown_timeout) + ")"
                 : " now");
    taskq::daemon::notify_stopping();
    server.stop(graceful ? config.api.shutdown_timeout : taskq::Duration{});
    break;
  }
  return exit_ok;
}
