#include "taskq/metrics/links.hpp"

namespace taskq::metrics {

void add_link_metrics(Registry& registry, const std::string& prefix,
                      std::function<std::map<std::string, LinkState>()> links) {
  auto& reconnects =
      registry.counter_read(prefix + "_db_reconnects_total",
                            "Database connections opened again after one was lost, by connection.", {"connection"});
  auto& up = registry.gauge(prefix + "_db_up", "1 while the connection reaches the database, 0 while it is lost.",
                            {"connection"});
  registry.on_collect([links = std::move(links), &reconnects, &up] {
    for (const auto& [role, link] : links()) {
      reconnects.with({role}).set(static_cast<double>(link.reconnects));
      up.with({role}).set(link.up ? 1 : 0);
    }
  });
}

}  // namespace taskq::metrics
