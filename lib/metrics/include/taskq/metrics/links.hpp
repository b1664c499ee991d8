#pragma once
// The state of a daemon's database connections as series: <prefix>_db_up{connection} (1 while
// the connection reaches PostgreSQL) and <prefix>_db_reconnects_total{connection}.
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "taskq/metrics/registry.hpp"

namespace taskq::metrics {

struct LinkState {
  std::int64_t reconnects = 0;
  bool up = false;
};

/// Registers both families under `prefix` ("taskq_worker") and reads `links` (by connection
/// role) at each render.
void add_link_metrics(Registry& registry, const std::string& prefix,
                      std::function<std::map<std::string, LinkState>()> links);

}  // namespace taskq::metrics
