// The lease thread: acquires the lease as a standby, renews it every ttl/3 as the leader, and
// resigns it on stop; it LISTENs for "leader" (a resignation) to try again at once.
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "scheduler_impl.hpp"

using taskq::store::Lease;
using taskq::store::Notification;
using taskq::store::Store;

namespace taskq::scheduler {

void Scheduler::Impl::lease_loop() {
  next_try = steady::now();
  logged_standby = false;
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
    if (t != 0 && (now >= renewal_due || recheck_now))
      renew(t);
    else if (t == 0 && now >= next_try)
      try_acquire();
    wait_lease_round();
  }
  // Stopping: the work thread has finished its step; give the lease up so a standby takes over.
  resign();
}

void Scheduler::Impl::renew(std::int64_t t) {
  const Duration ttl = o.config.lease_ttl;
  const auto sent = steady::now();
  const Timestamp wall_before = clock.now();
  std::optional<Timestamp> renewed;
  const bool reached = lease_link->with([&](Store& s) { renewed = s.renew_lease(o.lease_name, holder, t, ttl); });
  if (metrics) metrics->renewal(reached && renewed);
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
}

void Scheduler::Impl::try_acquire() {
  const Duration ttl = o.config.lease_ttl;
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
    return;
  }
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

void Scheduler::Impl::wait_lease_round() {
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
  if (!lease_link->connected() || !lease_link->with([&](Store& s) { notes = s.wait_notifications(wait, wake->fd()); }))
    sleep_on_wake(wait);
  wake->clear();
  for (const auto& n : notes)
    if (n.event == "leader") next_try = steady::now();  // the leader resigned: try at once
}

void Scheduler::Impl::resign() {
  if (term == 0) return;
  const std::int64_t t = term;
  bool resigned = false;
  lease_link->with([&](Store& s) { resigned = s.resign_lease(o.lease_name, holder, t); });
  if (resigned)
    spdlog::info("resigned the lease (term {}); a standby takes over now", t);
  else
    spdlog::warn("could not resign the lease (term {}); it expires within {}", t, format_duration(o.config.lease_ttl));
  std::lock_guard lk(mu);
  term = 0;
  timer.lost();
  public_term.store(0);
}

void Scheduler::Impl::become_leader(std::int64_t t, steady::time_point sent) {
  if (metrics) metrics->acquired();
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

void Scheduler::Impl::lose(const std::string& why) {
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

void Scheduler::Impl::sleep_on_wake(Duration d) const {
  pollfd p{wake->fd(), POLLIN, 0};
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  ::poll(&p, 1, static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1000)));
}

Duration Scheduler::Impl::jitter(Duration d) {
  std::uniform_real_distribution<double> f(0.8, 1.2);
  return Duration{static_cast<std::int64_t>(static_cast<double>(d.count()) * f(rng))};
}

}  // namespace taskq::scheduler
