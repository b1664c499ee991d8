#include "taskq/scheduler/scheduler.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "taskq/core/error.hpp"
#include "taskq/core/fd.hpp"
#include "taskq/store/db_link.hpp"

namespace taskq::scheduler {

using steady = std::chrono::steady_clock;

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

namespace {

std::string random_suffix() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

struct Schedule {
  PeriodicConfig config;
  cron::Expression expr;
  std::optional<Timestamp> last;  // last tick handled (fired, found fired, or paused) in this term
  std::optional<Timestamp> next;  // first tick after `last`, for the wait
};

}  // namespace

struct Scheduler::Impl {
  SchedulerOptions o;
  std::string holder;
  std::vector<Schedule> schedules;  // work thread only

  // Shared between the threads, under mu.
  mutable std::mutex mu;
  std::condition_variable cv;
  LeaseTimer timer;
  std::int64_t term = 0;  // held by the lease thread (0: standby)
  bool stopping = false;
  bool recheck = false;                                    // the work thread saw an action fenced: renew now
  std::optional<std::vector<Schedule>> pending_schedules;  // reloaded, for the work thread

  std::atomic<std::int64_t> public_term{0};
  std::atomic<std::int64_t> lease_round{0}, work_round{0};
  std::optional<WakeFd> wake;  // wakes the lease thread; from start() to stop()
  std::unique_ptr<DbLink> lease_link, work_link;
  std::jthread lease_thread, work_thread;
  bool started = false, stopped = false;
  DbClock db_clock;  // under mu: sampled at each term's start and at every lease acquire or renewal

  explicit Impl(SchedulerOptions options)
      : o(std::move(options)), timer(o.config.lease_ttl), clock(o.clock ? *o.clock : SystemClock::instance()) {}

  const Clock& clock;  // the local wall clock

  void sample_db_clock(Timestamp before, Timestamp db, Timestamp after) {
    std::lock_guard lk(mu);
    db_clock.sample(before, db, after);
  }

  void wake_lease_thread() const { wake->notify(); }

  void sleep_on_wake(Duration d) const {
    pollfd p{wake->fd(), POLLIN, 0};
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    ::poll(&p, 1, static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1000)));
  }

  // --- Lease thread -----------------------------------------------------------------------------

  void become_leader(std::int64_t t, steady::time_point sent) {
    {
      std::lock_guard lk(mu);
      term = t;
      timer.renewed(sent);
    }
    public_term.store(t);
    cv.notify_all();
    spdlog::info("leading (term {}): lease '{}' held as {} for {}", t, o.lease_name, holder,
                 format_duration(o.config.lease_ttl));
  }

  void lose(const std::string& why) {
    std::int64_t was = 0;
    {
      std::lock_guard lk(mu);
      was = std::exchange(term, 0);
      timer.lost();
    }
    public_term.store(0);
    cv.notify_all();
    if (was) spdlog::warn("stopped leading (term {}): {}; acting stopped at once", was, why);
  }

  void lease_loop() {
    std::mt19937_64 rng(std::random_device{}());
    const Duration ttl = o.config.lease_ttl;
    auto jitter = [&](Duration d) {
      std::uniform_real_distribution<double> f(0.8, 1.2);
      return Duration{static_cast<std::int64_t>(static_cast<double>(d.count()) * f(rng))};
    };
    steady::time_point next_try = steady::now();
    bool logged_standby = false;
    for (;;) {
      lease_round.store(steady_ns());
      std::int64_t t = 0;
      bool recheck_now = false;
      steady::time_point renewal_due{};
      {
        std::lock_guard lk(mu);
        if (stopping) break;
        t = term;
        recheck_now = std::exchange(recheck, false);
        renewal_due = timer.next_renewal();
      }
      const auto now = steady::now();
      if (t != 0 && (now >= renewal_due || recheck_now)) {
        const auto sent = steady::now();
        const Timestamp wall_before = clock.now();
        std::optional<Timestamp> renewed;
        const bool reached = lease_link->with([&](Store& s) { renewed = s.renew_lease(o.lease_name, holder, t, ttl); });
        if (reached && renewed) {
          // The new expiry is the database's now() plus the ttl: a fresh reading of its clock.
          sample_db_clock(wall_before, *renewed - ttl, clock.now());
          std::lock_guard lk(mu);
          timer.renewed(sent);
        } else if (reached) {
          lose("the lease expired or was taken over before it could be renewed");
        } else {
          bool still = false;
          {
            std::lock_guard lk(mu);
            still = timer.acting(steady::now());
          }
          if (!still) lose("PostgreSQL was unreachable until the lease ran out");
        }
        cv.notify_all();
      } else if (t == 0 && now >= next_try) {
        const auto sent = steady::now();
        const Timestamp wall_before = clock.now();
        std::optional<Lease> got, current;
        const bool reached = lease_link->with([&](Store& s) {
          got = s.acquire_lease(o.lease_name, holder, ttl, o.host, o.pid);
          if (!got) current = s.lease(o.lease_name);
        });
        if (reached && got) {
          sample_db_clock(wall_before, got->renewed_at, clock.now());
          become_leader(got->term, sent);
          logged_standby = false;
        } else {
          Duration wait = jitter(ttl / 3);
          if (current) {
            // Try again right after it expires, if that is sooner.
            wait = std::min(wait, current->expires_in + jitter(std::chrono::milliseconds{25}));
            if (!logged_standby)
              spdlog::info("standby: lease '{}' is held by {} (term {})", o.lease_name, current->holder, current->term);
            logged_standby = true;
          }
          next_try = steady::now() + wait;
        }
      }
      // Wait for the next renewal or attempt, a "leader" notification, or stop.
      steady::time_point until;
      {
        std::lock_guard lk(mu);
        until = term != 0 ? timer.next_renewal() : next_try;
        if (recheck || stopping) until = steady::now();
      }
      Duration wait = std::chrono::duration_cast<Duration>(until - steady::now());
      wait = std::clamp<Duration>(wait, Duration{}, std::chrono::seconds{1});
      if (!lease_link->connected())
        wait = std::max<Duration>(std::min(wait, lease_link->retry_in()), std::chrono::milliseconds{20});
      std::vector<Notification> notes;
      if (!lease_link->connected() ||
          !lease_link->with([&](Store& s) { notes = s.wait_notifications(wait, wake->fd()); }))
        sleep_on_wake(wait);
      wake->clear();
      for (const auto& n : notes)
        if (n.event == "leader") next_try = steady::now();  // the leader resigned: try at once
    }
    // Stopping: the work thread has finished its step; give the lease up so a standby takes over.
    if (term != 0) {
      const std::int64_t t = term;
      bool resigned = false;
      lease_link->with([&](Store& s) { resigned = s.resign_lease(o.lease_name, holder, t); });
      if (resigned)
        spdlog::info("resigned the lease (term {}); a standby takes over now", t);
      else
        spdlog::warn("could not resign the lease (term {}); it expires within {}", t,
                     format_duration(o.config.lease_ttl));
      std::lock_guard lk(mu);
      term = 0;
      timer.lost();
      public_term.store(0);
    }
  }

  // --- Work thread ------------------------------------------------------------------------------

  // True while the lease is held by term `t` with time to spare.
  bool acting(std::int64_t t) const {
    std::lock_guard lk(mu);
    return !stopping && term == t && timer.acting(steady::now());
  }

  void fenced(std::int64_t t, const std::string& what) {
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

  Timestamp db_now() const {
    const Timestamp local = clock.now();
    std::lock_guard lk(mu);
    return db_clock.now(local);
  }

  // A new term: record the configured schedules and learn what the last leader fired.
  bool begin_term(const LeaseFence& fence) {
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

  void fire_due(const LeaseFence& fence) {
    const Duration window = 2 * o.config.lease_ttl;
    for (auto& sched : schedules) {
      const Timestamp now = db_now();
      if (sched.next && *sched.next > now) continue;
      const auto plan =
          plan_ticks(sched.expr, sched.config.timezone, sched.last, now, window, o.config.missed_run_once);
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
            spdlog::info("periodic {}: enqueued job {} (queue {}, kind {}) for tick {}", sched.config.name,
                         r.job.value_or(0), sched.config.job.queue, sched.config.job.kind, tick_text);
            break;
          case FireResult::Outcome::duplicate:
            spdlog::info("periodic {}: tick {} was already enqueued as job {} (queue {}, kind {})", sched.config.name,
                         tick_text, r.job.value_or(0), sched.config.job.queue, sched.config.job.kind);
            break;
          case FireResult::Outcome::already_fired:
            spdlog::debug("periodic {}: tick {} was fired by an earlier leader", sched.config.name, tick_text);
            break;
          case FireResult::Outcome::paused:
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
    }
  }

  struct Maintenance {
    steady::time_point promote{}, rescue{}, prune{};
  };

  void maintain(const LeaseFence& fence, Maintenance& due) {
    const auto& c = o.config;
    auto now = steady::now();
    if (now >= due.promote && acting(fence.term)) {
      std::int64_t n = 0;
      if (work_link->with([&](Store& s) { n = s.promote_due({}, 10000, &fence); })) {
        if (n > 0) spdlog::debug("promoted {} due scheduled job(s)", n);
        due.promote = n == 10000 ? now : now + std::chrono::seconds{1};
      }
    }
    if (now >= due.rescue && acting(fence.term)) {
      bool ok = true;
      for (int round = 0; round < 10 && ok && acting(fence.term); ++round) {
        RescueResult r;
        ok = work_link->with([&](Store& s) { r = s.rescue(c.worker_grace, 1000, false, &fence); });
        for (const auto id : r.vanished_workers)
          spdlog::warn(
              "worker {} has running jobs but no row in workers (deleted?); they are rescued unless it heartbeats "
              "within {}",
              id, format_duration(c.worker_grace));
        for (const auto& j : r.jobs)
          spdlog::warn("rescued job {} (queue {}, kind {}): its worker is dead; now {}", j.id, j.queue, j.kind,
                       to_string(j.to));
        if (r.forgotten_workers > 0) spdlog::info("forgot {} worker(s) dead for over a day", r.forgotten_workers);
        if (r.jobs.size() < 1000) break;
      }
      std::vector<JobChange> stuck;
      if (ok && acting(fence.term))
        ok = work_link->with([&](Store& s) { stuck = s.fail_stuck(c.stuck_grace, 1000, &fence); });
      for (const auto& j : stuck)
        spdlog::warn("job {} (queue {}, kind {}) is stuck past its timeout on a live worker: failed attempt; now {}",
                     j.id, j.queue, j.kind, to_string(j.to));
      if (ok) due.rescue = steady::now() + c.rescue_interval;
    }
    now = steady::now();
    if (now >= due.prune && acting(fence.term)) {
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
          if (!ok || n < c.prune_batch) break;
        }
        if (!ok || more) break;
      }
      if (total > 0)
        spdlog::info("pruned {} finished job(s) past their retention ({} transaction(s), longest {} ms)", total,
                     batches, std::chrono::duration_cast<std::chrono::milliseconds>(longest).count());
      if (ok) due.prune = more ? steady::now() : steady::now() + c.prune_interval;
    }
  }

  void work_loop() {
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
      fire_due(fence);
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
};

Scheduler::Scheduler(SchedulerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& d = *impl_;
  d.holder =
      (d.o.host.empty() ? std::string("host") : d.o.host) + ":" + std::to_string(d.o.pid) + ":" + random_suffix();
  for (const auto& p : d.o.config.periodic)
    d.schedules.push_back({p, cron::Expression::parse(p.cron), std::nullopt, std::nullopt});
}

Scheduler::~Scheduler() {
  stop();
}

void Scheduler::reload_schedules(const std::vector<PeriodicConfig>& periodic) {
  std::vector<Schedule> fresh;
  for (const auto& p : periodic) fresh.push_back({p, cron::Expression::parse(p.cron), std::nullopt, std::nullopt});
  {
    std::lock_guard lk(impl_->mu);
    impl_->pending_schedules = std::move(fresh);
  }
  impl_->cv.notify_all();
}

const std::string& Scheduler::holder() const {
  return impl_->holder;
}

std::int64_t Scheduler::leading_term() const {
  return impl_->public_term.load();
}

bool Scheduler::healthy(Duration max_stall) const {
  const auto now = steady_ns();
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(max_stall).count();
  return now - impl_->lease_round.load() < limit && now - impl_->work_round.load() < limit;
}

void Scheduler::start() {
  auto& d = *impl_;
  if (d.started) return;
  Store::open(d.o.store)->require_current_schema();
  d.lease_link =
      std::make_unique<DbLink>(d.o.store.schema + " lease", d.o.store, [](Store& s) { s.listen({"leader"}); });
  d.work_link = std::make_unique<DbLink>(d.o.store.schema + " work", d.o.store);
  d.lease_link->connect_or_throw();
  d.work_link->connect_or_throw();
  d.wake.emplace();
  d.lease_round.store(steady_ns());
  d.work_round.store(steady_ns());
  d.lease_thread = std::jthread([&d] { d.lease_loop(); });
  d.work_thread = std::jthread([&d] { d.work_loop(); });
  d.started = true;
}

void Scheduler::stop() {
  auto& d = *impl_;
  if (!d.started || d.stopped) return;
  d.stopped = true;
  {
    std::lock_guard lk(d.mu);
    d.stopping = true;
  }
  d.cv.notify_all();
  d.work_thread.join();  // finishes its current step first
  d.wake_lease_thread();
  d.lease_thread.join();  // resigns the lease
  d.work_link.reset();
  d.lease_link.reset();
  d.wake.reset();
}

}  // namespace taskq::scheduler
