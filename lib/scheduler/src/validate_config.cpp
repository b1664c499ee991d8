// The check of [scheduler] that taskq-schedulerd runs before it starts (and on SIGHUP).
#include <set>
#include <string>
#include <vector>

#include "taskq/core/error.hpp"
#include "taskq/scheduler/scheduler.hpp"

using taskq::config::Config;
using taskq::config::validate_config;

namespace taskq::scheduler {

void validate_config(const Config& config) {
  std::vector<std::string> errors = config.scheduler_errors;
  std::set<std::string> seen;
  EnqueueLimits limits;
  limits.max_args_bytes = config.jobs.max_args_bytes;
  for (const auto& p : config.scheduler.periodic) {
    const std::string at =
        config.source + (p.line > 0 ? ":" + std::to_string(p.line) : "") + ": scheduler.periodic '" + p.name + "'";
    if (!seen.insert(p.name).second)
      errors.push_back(at + ": duplicate schedule name (each [[scheduler.periodic]] needs its own name)");
    try {
      const auto expr = cron::Expression::parse(p.cron);
      cron::validate_zone(p.timezone);
      if (!expr.next_after(SystemClock::instance().now(), p.timezone))
        errors.push_back(at + ": cron '" + p.cron + "' never fires (no matching date within 8 years)");
    } catch (const Error& e) {
      errors.push_back(at + ": " + e.what());
    }
    try {
      validate_enqueue(p.job, limits, JsonCheck::parse);
    } catch (const Error& e) {
      errors.push_back(at + ": " + e.what());
    }
  }
  if (config.scheduler.worker_grace <= config.scheduler.rescue_interval / 2)
    errors.push_back(config.source + ": scheduler.worker_grace: must be longer than half of scheduler.rescue_interval");
  throw_if_any(errors);
}

}  // namespace taskq::scheduler
