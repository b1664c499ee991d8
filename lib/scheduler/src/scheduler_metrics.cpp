#include "scheduler_metrics.hpp"

using taskq::metrics::Registry;

namespace taskq::scheduler {

SchedulerMetrics::SchedulerMetrics(Registry& r, std::function<std::int64_t()> term)
    : renewals_(r.counter("taskq_scheduler_lease_renewals_total", "Lease renewals that succeeded.").with({})),
      renewal_failures_(
          r.counter("taskq_scheduler_lease_renewal_failures_total",
                    "Lease renewals that failed: refused (the lease was lost) or the database unreachable.")
              .with({})),
      acquired_(r.counter("taskq_scheduler_lease_acquired_total", "Times this instance became the leader.").with({})),
      rescued_(r.counter("taskq_scheduler_jobs_rescued_total",
                         "Running jobs of dead workers put back (or failed when out of attempts).")
                   .with({})),
      stuck_(r.counter("taskq_scheduler_stuck_jobs_failed_total",
                       "Jobs running past their timeout on a live worker, failed by the scheduler.")
                 .with({})),
      pruned_(r.counter("taskq_scheduler_jobs_pruned_total", "Finished jobs deleted past their retention.").with({})),
      promoted_(r.counter("taskq_scheduler_jobs_promoted_total", "Due scheduled jobs made available by the scheduler.")
                    .with({})),
      fires_(r.counter("taskq_scheduler_periodic_fires_total", "Periodic jobs enqueued, by schedule.", {"schedule"})),
      skipped_(r.counter("taskq_scheduler_periodic_skipped_ticks_total",
                         "Periodic ticks not enqueued, by schedule and reason: missed (older than the catch-up "
                         "window; counted once per gap) or paused.",
                         {"schedule", "reason"})),
      next_fire_(r.gauge("taskq_scheduler_periodic_next_fire_timestamp_seconds",
                         "When the schedule fires next (Unix time), as the leader planned it.", {"schedule"})),
      steps_(r.histogram("taskq_scheduler_maintenance_duration_seconds",
                         "How long each step of the leader's work took: periodic, promote, rescue, prune.", {"step"},
                         taskq::metrics::statement_buckets())) {
  auto& leader = r.gauge("taskq_scheduler_leader", "1 while this instance holds the scheduler lease, else 0.").with({});
  auto& term_gauge = r.gauge("taskq_scheduler_term", "The lease term this instance leads (0 as a standby).").with({});
  r.on_collect([term = std::move(term), &leader, &term_gauge] {
    const auto t = term();
    leader.set(t > 0 ? 1 : 0);
    term_gauge.set(static_cast<double>(t));
  });
}

void SchedulerMetrics::renewal(bool ok) {
  (ok ? renewals_ : renewal_failures_).inc();
}

void SchedulerMetrics::acquired() {
  acquired_.inc();
}

void SchedulerMetrics::fired(const std::string& schedule) {
  fires_.with({schedule}).inc();
}

void SchedulerMetrics::skipped(const std::string& schedule, const char* reason) {
  skipped_.with({schedule, reason}).inc();
}

void SchedulerMetrics::next_fire(const std::string& schedule, double epoch_seconds) {
  next_fire_.with({schedule}).set(epoch_seconds);
}

void SchedulerMetrics::rescued(std::size_t jobs) {
  rescued_.inc(jobs);
}

void SchedulerMetrics::stuck_failed(std::size_t jobs) {
  stuck_.inc(jobs);
}

void SchedulerMetrics::pruned(std::int64_t jobs) {
  if (jobs > 0) pruned_.inc(static_cast<std::uint64_t>(jobs));
}

void SchedulerMetrics::promoted(std::int64_t jobs) {
  if (jobs > 0) promoted_.inc(static_cast<std::uint64_t>(jobs));
}

void SchedulerMetrics::step(const char* name, double seconds) {
  steps_.with({name}).observe(seconds);
}

}  // namespace taskq::scheduler
