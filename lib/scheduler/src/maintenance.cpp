// The leader's maintenance, on the work thread between periodic ticks: promotion of due
// scheduled jobs, rescue of dead workers' jobs and failure of stuck ones, and pruning of finished
// jobs past their retention. Every statement is fenced by the lease (LeaseFence).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "scheduler_impl.hpp"
#include "taskq/core/trace.hpp"

using taskq::store::JobChange;
using taskq::store::LeaseFence;
using taskq::store::RescueResult;
using taskq::store::Store;

namespace taskq::scheduler {

namespace {

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

}  // namespace

void Scheduler::Impl::maintain(const LeaseFence& fence, Maintenance& due) {
  const auto now = steady::now();
  if (now >= due.promote && acting(fence.term)) {
    promote(fence, due, now);
    if (metrics) metrics->step("promote", seconds_since(now));
  }
  if (const auto t = steady::now(); t >= due.rescue && acting(fence.term)) {
    rescue(fence, due);
    if (metrics) metrics->step("rescue", seconds_since(t));
  }
  if (const auto t = steady::now(); t >= due.prune && acting(fence.term)) {
    prune(fence, due);
    if (metrics) metrics->step("prune", seconds_since(t));
  }
}

void Scheduler::Impl::promote(const LeaseFence& fence, Maintenance& due, steady::time_point now) {
  std::int64_t n = 0;
  if (work_link->with([&](Store& s) { n = s.promote_due({}, 10000, &fence); })) {
    if (metrics) metrics->promoted(n);
    if (n > 0) spdlog::debug("promoted {} due scheduled job(s)", n);
    due.promote = n == 10000 ? now : now + std::chrono::seconds{1};
  }
}

void Scheduler::Impl::rescue(const LeaseFence& fence, Maintenance& due) {
  const auto& c = o.config;
  bool ok = true;
  for (int round = 0; round < 10 && ok && acting(fence.term); ++round) {
    RescueResult r;
    ok = work_link->with([&](Store& s) { r = s.rescue(c.worker_grace, 1000, false, &fence); });
    for (const auto id : r.vanished_workers)
      spdlog::warn(
          "worker {} has running jobs but no row in workers (deleted?); they are rescued unless it heartbeats "
          "within {}",
          id, format_duration(c.worker_grace));
    if (metrics) metrics->rescued(r.jobs.size());
    for (const auto& j : r.jobs)
      spdlog::warn("rescued {}: its worker is dead; now {}", job_log_label(j.id, j.queue, j.kind, j.trace_id),
                   to_string(j.to));
    if (r.forgotten_workers > 0) spdlog::info("forgot {} worker(s) dead for over a day", r.forgotten_workers);
    if (r.jobs.size() < 1000) break;
  }
  std::vector<JobChange> stuck;
  if (ok && acting(fence.term))
    ok = work_link->with([&](Store& s) { stuck = s.fail_stuck(c.stuck_grace, 1000, &fence); });
  if (metrics) metrics->stuck_failed(stuck.size());
  for (const auto& j : stuck)
    spdlog::warn("{} is stuck past its timeout on a live worker: failed attempt; now {}",
                 job_log_label(j.id, j.queue, j.kind, j.trace_id), to_string(j.to));
  if (ok) due.rescue = steady::now() + c.rescue_interval;
}

void Scheduler::Impl::prune(const LeaseFence& fence, Maintenance& due) {
  const auto& c = o.config;
  // At most 50 batches per step, so periodic ticks are never delayed long; the rest follows
  // at once in the next round.
  const std::pair<JobState, Duration> states[] = {{JobState::completed, c.retention.completed},
                                                  {JobState::cancelled, c.retention.cancelled},
                                                  {JobState::failed, c.retention.failed}};
  std::int64_t total = 0;
  int batches = 0;
  steady::duration longest{};
  bool more = false, ok = true;
  for (const auto& [state, keep] : states) {
    for (;;) {
      if (batches >= 50 || !acting(fence.term)) {
        more = true;
        break;
      }
      std::int64_t n = 0;
      const auto batch_start = steady::now();
      ok = work_link->with([&](Store& s) { n = s.prune_batch(keep, {state}, c.prune_batch, false, &fence); });
      longest = std::max(longest, steady::now() - batch_start);
      ++batches;
      total += n;
      if (metrics && ok) metrics->pruned(n);
      if (!ok || n < c.prune_batch) break;
    }
    if (!ok || more) break;
  }
  if (total > 0)
    spdlog::info("pruned {} finished job(s) past their retention ({} transaction(s), longest {} ms)", total, batches,
                 std::chrono::duration_cast<std::chrono::milliseconds>(longest).count());
  if (ok) due.prune = more ? steady::now() : steady::now() + c.prune_interval;
}

}  // namespace taskq::scheduler
