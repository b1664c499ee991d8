#pragma once
// The skeleton every taskq daemon runs. A daemon's main() says what it checks and builds (a
// Daemon); run() does the rest, the same way for each:
//
//   1. flags: -c/--config FILE, --check-config, --version, --help (help and version: exit 0; a
//      usage error: 2);
//   2. the config: load_config() with the daemon's check (invalid: "NAME: why" on stderr, 78);
//      under --check-config, "FILE: OK: <describe>" on stdout (and the config file warning on
//      stderr) and exit 0;
//   3. logging set up, the config file warning logged, signals blocked (before any thread);
//   4. when the daemon has a metrics endpoint configured, a registry with build info and process
//      metrics, handed to the Service to record into, served on GET /metrics from before the
//      service starts (a port in use: 69) until after it stopped;
//   5. the Service built and started ("cannot start: why" logged: 69, 70 or 78);
//      READY, then the service's STATUS;
//   6. until SIGTERM or SIGINT: the watchdog fed while the service is healthy, the STATUS kept
//      current, and SIGHUP reloading the config file (an invalid one changes nothing);
//   7. "SIGTERM: stopping..." logged, STOPPING, the service stopped, exit 0.
#include <functional>
#include <memory>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/time.hpp"
#include "taskq/daemon/app.hpp"
#include "taskq/daemon/describe.hpp"       // for the mains: the summaries of their configs
#include "taskq/daemon/store_options.hpp"  // for the mains: how they connect
#include "taskq/metrics/registry.hpp"

namespace taskq::daemon {

/// What a daemon runs, as the skeleton drives it. Every hook but start and stop may be left empty.
struct Service {
  /// Set by run() before the daemon's build when its metrics endpoint is configured (else
  /// null): the registry the service records its series into.
  std::shared_ptr<taskq::metrics::Registry> metrics;
  /// Connects and starts the threads, then logs what the daemon announces. An Error stops the
  /// daemon (see invalid_input_at_start_is_config).
  std::function<void()> start;
  /// The STATUS for systemd: asked after READY and each round of the main loop (at least every
  /// second), sent when it changed ("" sends nothing).
  std::function<std::string()> status;
  /// Each round when systemd expects a watchdog (the argument: half its timeout): whether the
  /// daemon is making progress, so that the watchdog is fed.
  std::function<bool(Duration watchdog)> healthy;
  /// SIGHUP, once the file has been loaded and checked and logging set up again from it: applies
  /// what can change at once; returns the line to log. Throwing refuses the reload.
  std::function<std::string(const taskq::config::Config& config)> reload;
  /// Appended to "SIGTERM: stopping" and "SIGINT: stopping" in the log.
  std::string stopping_graceful;
  std::string stopping_now;
  /// Stops the service: gracefully after SIGTERM, at once after SIGINT.
  std::function<void(bool graceful)> stop;
  /// true: an Error(invalid_input) from start is a configuration error, exit 78 (a TLS key that
  /// does not match its certificate); otherwise, and for other errors, exit_code_for_start().
  bool invalid_input_at_start_is_config = false;
};

/// A taskq daemon: its name and its own parts.
struct Daemon {
  std::string name;     // "taskq-workerd": for messages, the log and --version
  std::string version;  // printed by --version after the name
  std::string summary;  // what it does: --help says "NAME: SUMMARY (see man NAME)"
  /// The daemon's checks of its sections, after validate_config() (throws Error(invalid_input)).
  std::function<void(const taskq::config::Config& config)> check;
  /// The summary printed by --check-config after "FILE: OK: ".
  std::function<std::string(const taskq::config::Config& config)> describe;
  /// Builds the service (fills in its hooks), after logging is set up and signals are blocked.
  std::function<void(const taskq::config::Config& config, Service& service)> build;
  /// Where the daemon serves GET /metrics, if anywhere (worker_metrics_endpoint, ...).
  std::function<MetricsEndpoint(const taskq::config::Config& config)> metrics = {};
};

/// Runs the daemon as main() would (see the top of this file); returns the exit code.
int run(int argc, char** argv, const Daemon& daemon);

}  // namespace taskq::daemon
