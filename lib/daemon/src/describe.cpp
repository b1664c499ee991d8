#include "taskq/daemon/describe.hpp"

using taskq::config::Config;

namespace taskq::daemon {

std::string describe_worker(const Config& c) {
  std::string queues, kinds;
  for (const auto& [name, limit] : c.worker.queues)
    queues += (queues.empty() ? "" : ", ") + name + "=" + std::to_string(limit);
  for (const auto& [name, k] : c.kinds) kinds += (kinds.empty() ? "" : ", ") + name;
  return "queues " + queues + "; kinds " + (kinds.empty() ? "(built-ins only)" : kinds) + " + noop, sleep, fail";
}

std::string describe_scheduler(const Config& c) {
  const auto& s = c.scheduler;
  std::string names;
  for (const auto& p : s.periodic) names += (names.empty() ? "" : ", ") + p.name;
  return "lease_ttl " + format_duration(s.lease_ttl) + "; " + std::to_string(s.periodic.size()) +
         " periodic schedule(s)" + (names.empty() ? "" : " (" + names + ")");
}

std::string describe_term(std::int64_t leading_term) {
  return leading_term ? "leading (term " + std::to_string(leading_term) + ")" : "standby";
}

std::string describe_api(const Config& c) {
  std::string listen;
  for (const auto& l : c.api.listen) listen += (listen.empty() ? "" : ", ") + l;
  return "listen " + listen + "; " + std::to_string(c.api.threads) + " I/O thread(s), " +
         std::to_string(c.api.db_pool) + " database connection(s); " +
         (c.api.tokens.empty() ? std::string("no authentication (insecure_no_auth)")
                               : std::to_string(c.api.tokens.size()) + " token(s)");
}

MetricsEndpoint worker_metrics_endpoint(const Config& c) {
  return {"worker.metrics_listen", c.worker.metrics_listen};
}

MetricsEndpoint scheduler_metrics_endpoint(const Config& c) {
  return {"scheduler.metrics_listen", c.scheduler.metrics_listen};
}

}  // namespace taskq::daemon
