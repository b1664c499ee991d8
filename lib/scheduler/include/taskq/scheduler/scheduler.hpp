#pragma once
// The scheduler service that taskq-schedulerd runs: any number may run, one leads. The leader
// holds a lease row in PostgreSQL and, fenced by its term, fires periodic jobs and keeps the
// queue healthy (promotion, rescue of dead workers' jobs, stuck jobs, pruning). Standbys wait
// for the lease, woken by the leader's NOTIFY when it resigns.
//
// Two threads, one connection each: the lease thread (acquire, renew, resign; LISTEN leader)
// and the work thread (cron and maintenance). The work thread acts only while the lease thread
// says the lease is held with time to spare; every action also checks the lease and term in its
// own transaction, so a paused or partitioned old leader can never act after losing.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "taskq/config/config.hpp"
#include "taskq/core/time.hpp"
#include "taskq/cron/cron.hpp"
#include "taskq/metrics/registry.hpp"
#include "taskq/store/store.hpp"

namespace taskq::scheduler {

/// Checks [scheduler] for taskq-schedulerd: errors found while parsing, then each schedule's cron
/// expression, time zone, name (unique) and job. Throws Error(invalid_input) naming the file, the
/// line and the schedule.
void validate_config(const taskq::config::Config& config);

struct SchedulerOptions {
  store::StoreOptions store;  // application_name names the connections ("taskq-schedulerd lease", ...)
  taskq::config::SchedulerConfig config;
  EnqueueLimits limits;
  std::string lease_name = store::scheduler_lease_name;
  std::string host;  // for the lease row (`taskctl leader`)
  int pid = 0;
  const Clock* clock = nullptr;  // the local wall clock (tests shift it); null: the system's
  /// Where the scheduler's series go (taskq_scheduler_*, see docs/metrics.md); none: nothing is
  /// recorded. Render it only while the scheduler exists.
  std::shared_ptr<taskq::metrics::Registry> metrics;
};

/// The database's clock as seen from here: the database's now() minus the local wall clock,
/// from a reading of now() taken between two local readings (the midpoint is assumed). Pure; the
/// scheduler samples it at the start of each term and at every lease acquire or renewal (every
/// ttl/3), so a step of either clock during a term is followed within ttl/3.
class DbClock {
 public:
  void sample(Timestamp local_before, Timestamp db, Timestamp local_after) {
    offset_ = db - (local_before + (local_after - local_before) / 2);
    sampled_ = true;
  }
  [[nodiscard]] Timestamp now(Timestamp local) const { return local + offset_; }
  [[nodiscard]] Duration offset() const { return offset_; }
  [[nodiscard]] bool sampled() const { return sampled_; }

 private:
  Duration offset_{};
  bool sampled_ = false;
};

/// When the lease is still ours, by the local monotonic clock. Pure; the lease thread feeds it.
/// A renewal sent at `sent` made the lease valid until at least sent + ttl by the database's
/// clock (the database stamped it later), so acting stops at sent + ttl - margin, margin being a
/// tenth of the ttl: a leader that cannot renew stops acting before a standby can take over.
class LeaseTimer {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  explicit LeaseTimer(Duration ttl) : ttl_(ttl) {}

  /// The lease was acquired or renewed by a statement sent at `sent`.
  void renewed(time_point sent) {
    valid_until_ = sent + ttl_ - ttl_ / 10;
    next_renewal_ = sent + ttl_ / 3;
  }
  /// Lost (renewal refused, resigned, or a fenced action): stop acting now.
  void lost() { valid_until_.reset(); }

  [[nodiscard]] bool acting(time_point now) const { return valid_until_ && now < *valid_until_; }
  [[nodiscard]] std::optional<time_point> valid_until() const { return valid_until_; }
  [[nodiscard]] time_point next_renewal() const { return next_renewal_; }

 private:
  Duration ttl_;
  std::optional<time_point> valid_until_;
  time_point next_renewal_{};
};

/// The ticks of a schedule to enqueue at `now`, given the last one fired (none: a schedule new
/// to this database fires from now on). Ticks at most `window` old are all enqueued, oldest
/// first, at most `max_ticks` (a failover or a slow loop delays them, it does not lose them).
/// Older missed ticks are skipped, or with run_once the latest of them is enqueued once (a
/// catch-up). `next` is the first tick after those returned.
struct TickPlan {
  std::vector<Timestamp> fire;
  std::optional<Timestamp> next;
  std::int64_t skipped_old = 0;  // 1 when older ticks were skipped (their number is not counted)
};
TickPlan plan_ticks(const cron::Expression& expr, const std::string& zone, std::optional<Timestamp> last, Timestamp now,
                    Duration window, bool run_once, std::size_t max_ticks = 100);

/// The latest tick in (after, until], if any. Searches backwards in growing spans, so a rare
/// schedule after a long outage costs a few dozen steps.
std::optional<Timestamp> latest_tick(const cron::Expression& expr, const std::string& zone, Timestamp after,
                                     Timestamp until);

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Connects (both connections) and starts the threads. Throws Error(unavailable) when the
  /// database cannot be reached and Error(not_migrated) when the schema is not current.
  void start();
  /// Stops the cron loop after its current step, resigns the lease (NOTIFY, so a standby takes
  /// over at once) and closes the connections. Idempotent.
  void stop();

  /// Replaces the periodic schedules (SIGHUP): the leader records them at once, as at the start
  /// of a term (last fired ticks come from the database, so nothing fires twice); a standby
  /// uses them when it leads. Throws Error(invalid_input) for an invalid cron expression.
  void reload_schedules(const std::vector<taskq::config::PeriodicConfig>& periodic);

  [[nodiscard]] const std::string& holder() const;
  /// The term it leads with, or 0 as a standby.
  [[nodiscard]] std::int64_t leading_term() const;
  /// Both loops went round within `max_stall` (for the systemd watchdog).
  [[nodiscard]] bool healthy(Duration max_stall) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskq::scheduler
