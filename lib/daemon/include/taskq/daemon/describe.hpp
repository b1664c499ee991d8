#pragma once
// Each daemon's one-line summary of its configuration: printed by --check-config after
// "FILE: OK: ", and in its systemd STATUS and log lines.
#include <cstdint>
#include <string>

#include "taskq/config/config.hpp"

namespace taskq::daemon {

/// "queues default=16, mail=4; kinds thumbnail + noop, sleep, fail"
std::string describe_worker(const taskq::config::Config& c);
/// "lease_ttl 30s; 2 periodic schedule(s) (nightly, hourly)"
std::string describe_scheduler(const taskq::config::Config& c);
/// A scheduler's lease: "leading (term 7)", or "standby" for term 0.
std::string describe_term(std::int64_t leading_term);
/// "listen 127.0.0.1:8080; 2 I/O thread(s), 4 database connection(s); 1 token(s)"
std::string describe_api(const taskq::config::Config& c);

/// Where a daemon serves GET /metrics: the config key (named in errors) and its value ("": none).
struct MetricsEndpoint {
  std::string key;
  std::string listen;
};
MetricsEndpoint worker_metrics_endpoint(const taskq::config::Config& c);
MetricsEndpoint scheduler_metrics_endpoint(const taskq::config::Config& c);

}  // namespace taskq::daemon
