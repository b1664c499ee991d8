#include "taskq/daemon/run.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <utility>

#include "taskq/daemon/daemon.hpp"
#include "taskq/log/log.hpp"
#include "taskq/metrics/exporter.hpp"
#include "taskq/metrics/process.hpp"

using taskq::config::Config;

using taskq::log::setup_logging;

namespace taskq::daemon {
namespace {

// --check-config with a config that loaded and passed the checks.
int check_only(const Daemon& daemon, const Config& config) {
  if (const auto warning = config_file_warning(config))
    std::fprintf(stderr, "%s: warning: %s\n", daemon.name.c_str(), warning->c_str());
  std::printf("%s: OK: %s\n", config.source.c_str(), daemon.describe(config).c_str());
  return exit_ok;
}

// SIGHUP: the file loaded and checked again, then applied. An invalid file changes nothing.
void reload(const Daemon& daemon, const Flags& flags, Service& service) {
  try {
    const Config c = load_config(flags, daemon.check);
    setup_logging(c.log, daemon.name);
    const std::string done = service.reload ? service.reload(c) : std::string();
    if (!done.empty()) spdlog::info("{}", done);
  } catch (const std::exception& e) {
    spdlog::error("reload refused, keeping the running configuration: {}", e.what());
  }
}

// The service's STATUS, sent when it differs from the one `shown` last.
void update_status(const Service& service, std::string& shown) {
  if (!service.status) return;
  if (std::string now = service.status(); now != shown) {
    notify_status(now);
    shown = std::move(now);
  }
}

// The main loop, from READY to the stopping signal.
void serve(const Daemon& daemon, const Flags& flags, Service& service) {
  const auto watchdog = watchdog_interval();
  const Duration tick =
      watchdog ? std::min<Duration>(*watchdog, std::chrono::seconds{1}) : Duration{std::chrono::seconds{1}};
  std::string shown;
  update_status(service, shown);
  for (;;) {
    const auto sig = wait_signal(tick);
    if (watchdog && service.healthy && service.healthy(*watchdog)) notify_watchdog();
    update_status(service, shown);
    if (!sig) continue;
    if (*sig == Signal::reload) {
      reload(daemon, flags, service);
      continue;
    }
    const bool graceful = *sig == Signal::terminate;
    spdlog::info("{}: stopping{}", graceful ? "SIGTERM" : "SIGINT",
                 graceful ? service.stopping_graceful : service.stopping_now);
    notify_stopping();
    service.stop(graceful);
    return;
  }
}

}  // namespace

int run(int argc, char** argv, const Daemon& daemon) {
  Flags flags;
  const std::string description = daemon.name + ": " + daemon.summary + " (see man " + daemon.name + ")";
  if (const auto rc = parse_flags(argc, argv, daemon.name, daemon.version, description, flags)) return *rc;

  Config config;
  try {
    config = load_config(flags, daemon.check);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", daemon.name.c_str(), e.what());
    return exit_config;
  }
  if (flags.check_config) return check_only(daemon, config);
  setup_logging(config.log, daemon.name);
  if (const auto warning = config_file_warning(config)) spdlog::warn("{}", *warning);
  block_signals();

  Service service;
  const MetricsEndpoint endpoint = daemon.metrics ? daemon.metrics(config) : MetricsEndpoint{};
  if (!endpoint.listen.empty()) {
    service.metrics = std::make_shared<taskq::metrics::Registry>();
    taskq::metrics::add_process_metrics(*service.metrics, daemon.name, daemon.version);
  }
  daemon.build(config, service);
  std::optional<taskq::metrics::Exporter> exporter;  // destroyed before the service
  try {
    if (service.metrics) {
      exporter.emplace(taskq::metrics::ExporterOptions{.listen = endpoint.listen, .config_key = endpoint.key},
                       [m = service.metrics] { return m->render(); });
      exporter->start();
      spdlog::info("metrics on http://{}/metrics", exporter->endpoint());
    }
    service.start();
  } catch (const Error& e) {
    spdlog::error("cannot start: {}", e.what());
    if (service.invalid_input_at_start_is_config && e.code() == Errc::invalid_input) return exit_config;
    return exit_code_for_start(e);
  }
  notify_ready();
  serve(daemon, flags, service);
  if (exporter) exporter->stop();
  return exit_ok;
}

}  // namespace taskq::daemon
