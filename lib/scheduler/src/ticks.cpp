// Which ticks of a schedule to fire: pure functions of a cron expression and the clock.
#include <algorithm>

#include "taskq/scheduler/scheduler.hpp"

namespace taskq::scheduler {

std::optional<Timestamp> latest_tick(const cron::Expression& expr, const std::string& zone, Timestamp after,
                                     Timestamp until) {
  if (until <= after) return std::nullopt;
  using std::chrono::hours;
  using std::chrono::minutes;
  static constexpr Duration spans[] = {minutes{2},     hours{2},        hours{48},
                                       hours{24 * 40}, hours{24 * 400}, hours{24 * 3000}};
  for (const Duration span : spans) {
    const Timestamp start = std::max(after, until - span);
    auto t = expr.next_after(start, zone);
    if (t && *t <= until) {
      Timestamp latest = *t;
      // Bounded: a span is only reached when the smaller one held no tick.
      for (int i = 0; i < 200000; ++i) {
        const auto n = expr.next_after(latest, zone);
        if (!n || *n > until) break;
        latest = *n;
      }
      return latest;
    }
    if (start == after) return std::nullopt;
  }
  const auto t = expr.next_after(after, zone);
  if (t && *t <= until) return t;
  return std::nullopt;
}

TickPlan plan_ticks(const cron::Expression& expr, const std::string& zone, std::optional<Timestamp> last, Timestamp now,
                    Duration window, bool run_once, std::size_t max_ticks) {
  TickPlan plan;
  if (!last) {
    plan.next = expr.next_after(now, zone);
    return plan;
  }
  auto t = expr.next_after(*last, zone);
  const Timestamp edge = now - window;
  if (t && *t <= edge) {
    if (run_once) {
      if (auto old = latest_tick(expr, zone, *last, edge)) plan.fire.push_back(*old);
    } else {
      plan.skipped_old = 1;
    }
    t = expr.next_after(edge, zone);
  }
  while (t && *t <= now && plan.fire.size() < max_ticks) {
    plan.fire.push_back(*t);
    t = expr.next_after(*t, zone);
  }
  plan.next = t;
  return plan;
}

}  // namespace taskq::scheduler
