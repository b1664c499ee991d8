#pragma once
// Private to taskq_scheduler: the state the two threads of a Scheduler share, and their steps.
//
// lease_thread.cpp: the lease thread (acquire, renew, resign; LISTEN leader). work_thread.cpp:
// the work thread (a term's start, periodic ticks, the loop). maintenance.cpp: the work thread's
// maintenance (promotion, rescue and stuck jobs, pruning). scheduler.cpp: start, stop, reload.
//
// Locking: `mu` guards the fields under "Shared"; the lease thread alone writes `term` and
// feeds `timer`; the work thread alone touches `schedules`. A fenced action on the work thread
// marks the lease lost and wakes the lease thread (`wake`) to check it at once.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "scheduler_metrics.hpp"
#include "taskq/core/fd.hpp"
#include "taskq/scheduler/scheduler.hpp"
#include "taskq/store/db_link.hpp"

namespace taskq::scheduler {

using steady = std::chrono::steady_clock;

struct Schedule {
  taskq::config::PeriodicConfig config;
  cron::Expression expr;
  std::optional<Timestamp> last;  // last tick handled (fired, found fired, or paused) in this term
  std::optional<Timestamp> next;  // first tick after `last`, for the wait
};

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
  std::atomic<std::int64_t> lease_round{0}, work_round{0};  // steady_ns() of each loop's last round
  std::optional<WakeFd> wake;                               // wakes the lease thread; from start() to stop()
  std::mutex links_mu;                                      // guards resetting the links against metrics reading them
  std::unique_ptr<store::DbLink> lease_link, work_link;
  std::unique_ptr<SchedulerMetrics> metrics;  // when o.metrics is set
  std::jthread lease_thread, work_thread;
  bool started = false, stopped = false;
  DbClock db_clock;  // under mu: sampled at each term's start and at every lease acquire or renewal

  // Lease thread only.
  std::mt19937_64 rng{std::random_device{}()};  // jitter of the attempts to acquire
  steady::time_point next_try{};                // the next attempt to acquire, as a standby
  bool logged_standby = false;                  // "standby: held by ..." logged once per holder

  explicit Impl(SchedulerOptions options)
      : o(std::move(options)), timer(o.config.lease_ttl), clock(o.clock ? *o.clock : SystemClock::instance()) {}

  const Clock& clock;  // the local wall clock

  // --- Both threads (scheduler.cpp) -------------------------------------------------------------

  void sample_db_clock(Timestamp before, Timestamp db, Timestamp after);
  void wake_lease_thread() const;

  // --- Lease thread (lease_thread.cpp) ----------------------------------------------------------

  void lease_loop();
  void renew(std::int64_t t);  // renews term t, or loses it
  void try_acquire();          // as a standby: acquire, or plan the next attempt
  void wait_lease_round();     // until the next renewal or attempt, a "leader" notification, or stop
  void resign();               // on stop: give the lease up so a standby takes over at once
  void become_leader(std::int64_t t, steady::time_point sent);
  void lose(const std::string& why);
  void sleep_on_wake(Duration d) const;
  Duration jitter(Duration d);  // d +-20%

  // --- Work thread (work_thread.cpp, maintenance.cpp) -------------------------------------------

  struct Maintenance {
    steady::time_point promote{}, rescue{}, prune{};
  };

  void work_loop();
  bool acting(std::int64_t t) const;  // the lease is held by term t with time to spare
  Timestamp db_now() const;           // the database's clock, from the local one
  void fenced(std::int64_t t, const std::string& what);
  bool begin_term(const store::LeaseFence& fence);
  void fire_due(const store::LeaseFence& fence);
  void maintain(const store::LeaseFence& fence, Maintenance& due);
  void promote(const store::LeaseFence& fence, Maintenance& due, steady::time_point now);
  void rescue(const store::LeaseFence& fence, Maintenance& due);
  void prune(const store::LeaseFence& fence, Maintenance& due);
};

}  // namespace taskq::scheduler
