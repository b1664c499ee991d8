// The work thread: at the start of each term it records the schedules and learns what the last
// leader fired, then fires due periodic ticks and runs maintenance (maintenance.cpp) while the
// lease is held with time to spare.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "scheduler_impl.hpp"
#include "taskq/core/trace.hpp"

using taskq::store::FireResult;
using taskq::store::LeaseFence;
using taskq::store::PeriodicDef;
using taskq::store::PeriodicFire;
using taskq::store::PeriodicInfo;
using taskq::store::Store;

namespace taskq::scheduler {

void Scheduler::Impl::work_loop() {
  std::int64_t my_term = 0;
  Maintenance due;
  for (;;) {
    work_round.store(steady_ns());
    std::int64_t t = 0;
    {
      std::unique_lock lk(mu);
      if (stopping) break;
      if (pending_schedules) {
        // Reloaded (SIGHUP): take the new schedules and record them as at a new term.
        schedules = std::move(*pending_schedules);
        pending_schedules.reset();
        my_term = 0;
      }
      if (term == 0 || !timer.acting(steady::now())) {
        my_term = 0;
        cv.wait_for(lk, std::chrono::seconds{1});
        continue;
      }
      t = term;
    }
    const LeaseFence fence{o.lease_name, holder, t};
    if (my_term != t) {
      if (!begin_term(fence)) {
        std::unique_lock lk(mu);
        cv.wait_for(lk, std::max<Duration>(work_link->retry_in(), std::chrono::milliseconds{100}));
        continue;
      }
      my_term = t;
      due = Maintenance{};
    }
    const auto fire_start = steady::now();
    fire_due(fence);
    if (metrics) metrics->step("periodic", std::chrono::duration<double>(steady::now() - fire_start).count());
    maintain(fence, due);

    // Sleep until the next tick or maintenance step (at most a second), or a change of lease.
    auto until = std::min({due.promote, due.rescue, due.prune, steady::now() + std::chrono::seconds{1}});
    const Timestamp now = db_now();
    for (const auto& sched : schedules)
      if (sched.next) until = std::min(until, steady::now() + std::max<Duration>(*sched.next - now, Duration{}));
    if (!work_link->connected()) until = std::max(until, steady::now() + work_link->retry_in());
    std::unique_lock lk(mu);
    cv.wait_until(lk, until, [&] { return stopping || term != t || pending_schedules.has_value(); });
  }
}

// True while the lease is held by term `t` with time to spare.
bool Scheduler::Impl::acting(std::int64_t t) const {
  std::lock_guard lk(mu);
  return !stopping && term == t && timer.acting(steady::now());
}

void Scheduler::Impl::fenced(std::int64_t t, const std::string& what) {
  spdlog::warn("{} was refused: the lease is no longer held with term {}; checking it", what, t);
  {
    std::lock_guard lk(mu);
    if (term == t) {
      timer.lost();
      recheck = true;
    }
  }
  wake_lease_thread();
}

Timestamp Scheduler::Impl::db_now() const {
  const Timestamp local = clock.now();
  std::lock_guard lk(mu);
  return db_clock.now(local);
}

// A new term: record the configured schedules and learn what the last leader fired.
bool Scheduler::Impl::begin_term(const LeaseFence& fence) {
  std::vector<PeriodicDef> defs;
  std::optional<std::vector<PeriodicInfo>> rows;
  const bool ok = work_link->with([&](Store& s) {
    const Timestamp before = clock.now();
    const Timestamp db = s.now();
    sample_db_clock(before, db, clock.now());
    for (const auto& sched : schedules)
      defs.push_back({sched.config.name, sched.config.cron, sched.config.timezone, sched.config.job,
                      sched.expr.next_after(db, sched.config.timezone)});
    rows = s.sync_periodic(defs, fence);
  });
  if (!ok) return false;
  if (!rows) {
    fenced(fence.term, "recording the schedules");
    return false;
  }
  const Timestamp now = db_now();
  for (auto& sched : schedules) {
    sched.last.reset();
    sched.next.reset();
    for (const auto& r : *rows)
      if (r.name == sched.config.name) sched.last = r.last_fire_at;
    if (!sched.last) sched.last = now;  // new schedule: it fires from now on
  }
  if (!schedules.empty()) spdlog::info("{} periodic schedule(s) recorded", schedules.size());
  return true;
}

void Scheduler::Impl::fire_due(const LeaseFence& fence) {
  const Duration window = 2 * o.config.lease_ttl;
  for (auto& sched : schedules) {
    const Timestamp now = db_now();
    if (sched.next && *sched.next > now) continue;
    const auto plan = plan_ticks(sched.expr, sched.config.timezone, sched.last, now, window, o.config.missed_run_once);
    if (plan.skipped_old && metrics) metrics->skipped(sched.config.name, "missed");
    if (plan.skipped_old)
      spdlog::info("periodic {}: ticks missed more than {} ago are skipped (missed_ticks = skip)", sched.config.name,
                   format_duration(window));
    for (const Timestamp tick : plan.fire) {
      if (!acting(fence.term)) return;
      PeriodicFire f{sched.config.name,
                     sched.config.cron,
                     sched.config.timezone,
                     tick,
                     sched.expr.next_after(tick, sched.config.timezone),
                     sched.config.job};
      FireResult r;
      if (!work_link->with([&](Store& s) { r = s.fire_periodic(f, fence); })) return;
      const std::string tick_text = format_rfc3339(tick);
      switch (r.outcome) {
        case FireResult::Outcome::enqueued:
          if (metrics) metrics->fired(sched.config.name);
          spdlog::info("periodic {}: enqueued {} for tick {}", sched.config.name,
                       job_log_label(r.job.value_or(0), sched.config.job.queue, sched.config.job.kind, r.trace_id),
                       tick_text);
          break;
        case FireResult::Outcome::duplicate:
          spdlog::info("periodic {}: tick {} was already enqueued as {}", sched.config.name, tick_text,
                       job_log_label(r.job.value_or(0), sched.config.job.queue, sched.config.job.kind, r.trace_id));
          break;
        case FireResult::Outcome::already_fired:
          spdlog::debug("periodic {}: tick {} was fired by an earlier leader", sched.config.name, tick_text);
          break;
        case FireResult::Outcome::paused:
          if (metrics) metrics->skipped(sched.config.name, "paused");
          spdlog::info("periodic {}: paused; tick {} not enqueued", sched.config.name, tick_text);
          break;
        case FireResult::Outcome::fenced:
          fenced(fence.term, "periodic " + sched.config.name + " tick " + tick_text);
          return;
      }
      sched.last = tick;
    }
    if (plan.fire.empty() && plan.skipped_old) sched.last = now;
    sched.next = plan.next;
    if (metrics && sched.next)
      metrics->next_fire(sched.config.name, static_cast<double>(sched.next->time_since_epoch().count()) *
                                                (static_cast<double>(Timestamp::period::num) / Timestamp::period::den));
  }
}

}  // namespace taskq::scheduler
