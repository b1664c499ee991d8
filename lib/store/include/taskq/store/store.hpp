#pragma once
// The store owns ALL of taskq's SQL: every statement the library runs is in lib/store/src, in the
// file of its area, named at the top of that file and written against the schema named at open():
// enqueue.cpp (insert, batches, streams), jobs.cpp (get, list, cancel, retry, prune), claims.cpp
// (claims, outcomes, progress: the worker's hot path), workers.cpp (workers, rescue, stuck
// jobs), queues.cpp, leases.cpp, periodic.cpp, events.cpp (LISTEN/NOTIFY, event listeners), and
// store.cpp (connection, migrations, clock). Nothing outside db/ and store/ sees libpqxx. The
// types of each area are in the headers next to this one.
//
// A Store owns one PostgreSQL connection and is not thread-safe: use one Store per thread.
// Invariants it keeps: a job is claimed by one worker at a time (FOR UPDATE SKIP LOCKED); an
// outcome applies only to a job still running for the worker that reports it; operations on a
// list of ids are all-or-nothing (one bad id changes nothing); jobs that become available wake
// listeners with one NOTIFY per queue per transaction (channel "<schema>_insert", payload queue);
// cancel requests for running jobs notify "<schema>_cancel" with the job id.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "taskq/core/job.hpp"
#include "taskq/core/session.hpp"
#include "taskq/core/time.hpp"
#include "taskq/store/events.hpp"
#include "taskq/store/jobs.hpp"
#include "taskq/store/leases.hpp"
#include "taskq/store/outcomes.hpp"
#include "taskq/store/periodic.hpp"
#include "taskq/store/queues.hpp"
#include "taskq/store/workers.hpp"

namespace taskq::store {

struct StoreOptions {
  std::string url;
  std::string schema = "taskq";
  Duration connect_timeout = std::chrono::seconds{5};
  std::string application_name = "taskq";
  // false: this session's commits do not wait for the WAL flush (synchronous_commit = off). Only
  // for writes whose loss in a server crash is harmless, such as claims: a lost claim puts the
  // job back to available, and at-least-once delivery already allows it to run again.
  bool synchronous_commit = true;
  // Statement, lock and idle-in-transaction timeouts, keepalives: set in the startup packet.
  // (Defaults here are all off but keepalives; programs take theirs from DatabaseConfig::session.)
  SessionSettings session{};
};

struct MigrationInfo {
  int version;
  std::string name;
  std::optional<Timestamp> applied_at;
};

class Store {
 public:
  /// Connects. Throws Error(unavailable) when the database cannot be reached.
  static std::unique_ptr<Store> open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  [[nodiscard]] const std::string& schema() const;

  std::vector<int> migrate();
  std::vector<MigrationInfo> migration_status();
  /// Throws Error(not_migrated) naming the first migration not applied ("run taskctl migrate").
  void require_current_schema();

  /// Inserts one validated job. With a unique key that a live job holds, returns that job and
  /// duplicate=true instead.
  EnqueueResult insert(const EnqueueParams& params);
  /// Inserts validated jobs in one transaction and returns one result per job, in order (a job
  /// whose unique key a live job holds returns that job with duplicate=true). All or nothing.
  std::vector<EnqueueResult> insert_batch(const std::vector<EnqueueParams>& jobs);
  /// Streams validated jobs through COPY in one transaction. `next` fills the next job and
  /// returns false at the end; if it (or the database) throws, nothing is inserted.
  BulkInsertResult insert_stream(const std::function<bool(EnqueueParams&)>& next);

  std::optional<Job> get(JobId id);
  /// The jobs of these ids that exist (any order); one prepared statement.
  std::vector<Job> get_many(const std::vector<JobId>& ids);
  std::vector<Job> list(const JobFilter& filter);
  /// list(), and whether `max_bytes` cut the page short (jobs past its last one match too).
  JobPage list_page(const JobFilter& filter);

  /// Waiting jobs become cancelled; running ones get a cancel request and a NOTIFY. All ids must
  /// exist (else not_found) and none may be finished (else conflict); otherwise nothing changes.
  std::vector<JobChange> cancel(const std::vector<JobId>& ids, bool dry_run);
  /// Every waiting or running job matching the filter (filter.limit is ignored).
  std::vector<JobChange> cancel_matching(const JobFilter& filter, bool dry_run);
  /// Jobs go back to available now; a job out of attempts gets one more. Running jobs are a
  /// conflict. All-or-nothing like cancel().
  std::vector<JobChange> retry(const std::vector<JobId>& ids, bool dry_run);
  /// Every matching job that is not running (filter.limit is ignored).
  std::vector<JobChange> retry_matching(const JobFilter& filter, bool dry_run);

  std::vector<QueueChange> set_paused(const std::vector<std::string>& queues, bool paused);
  /// Every queue that has jobs or a settings row.
  std::vector<std::string> known_queues();
  std::vector<QueueStats> stats(const std::optional<std::string>& queue);
  /// Finished jobs per queue and minute over the last `minutes` minutes, the current one included.
  Throughput throughput(int minutes);
  /// Running jobs of these queues (id order), for drain.
  std::vector<Job> running_jobs(const std::vector<std::string>& queues);

  /// Deletes (or counts, on dry run) up to `batch` finished jobs older than `older_than`. With a
  /// fence, only while it holds (else 0), checked in the same transaction.
  std::int64_t prune_batch(Duration older_than, const std::vector<JobState>& states, int batch, bool dry_run,
                           const LeaseFence* fence = nullptr);

  // Worker primitives.
  std::int64_t register_worker(const WorkerRegistration& registration);
  /// Renews the worker's heartbeat. When its row vanished (deleted by hand, or replaced by the
  /// placeholder rescue() puts in), puts it back under the same id, so the jobs that name this
  /// worker stay its own; returns true then.
  bool heartbeat(std::int64_t worker_id, const WorkerRegistration& registration);
  /// Of these runs (id, attempt), those whose job is no longer running for this worker on that
  /// attempt (rescued, cancelled by hand, or finished), in id order.
  std::vector<std::pair<JobId, int>> not_owned(std::int64_t worker_id, const std::vector<std::pair<JobId, int>>& runs);
  void unregister_worker(std::int64_t worker_id);
  /// Claims up to n available jobs of a (not paused) queue for the worker, in (priority, run_at,
  /// id) order. Returned jobs carry id, queue, kind, args, priority, attempt, max_attempts,
  /// timeout and metadata only.
  std::vector<Job> claim(std::int64_t worker_id, const std::string& queue, int n);
  /// Applies outcomes of jobs still running for this worker (on the reported attempt) in one
  /// transaction; returns how many applied. With delete_completed, completed jobs are deleted.
  std::size_t complete(std::int64_t worker_id, const std::vector<Outcome>& outcomes, bool delete_completed = false);
  /// Records progress of jobs still running for this worker; one statement.
  void set_progress(std::int64_t worker_id, const std::vector<ProgressUpdate>& updates);
  /// Running jobs of this worker: (id, attempt).
  std::vector<std::pair<JobId, int>> running_of_worker(std::int64_t worker_id);
  /// Running jobs of this worker that have a cancel request.
  std::vector<JobId> cancel_requested_of_worker(std::int64_t worker_id);
  /// Workers with their running jobs, live and dead (by heartbeat age).
  std::vector<WorkerInfo> workers();
  /// Running jobs of workers whose heartbeat is older than `grace` go back to be retried after
  /// the default backoff (taskq/core/backoff.hpp: attempt^4 s ±10 %, at most 24 h), or to failed when out of attempts,
  /// or to cancelled when a cancel was requested; each gets a "worker lost" error entry. At most `limit` jobs per call.
  /// With a fence, only while it holds (else nothing), checked in the same transaction.
  /// A worker whose row vanished while jobs name it gets a placeholder row (see heartbeat()), so
  /// its jobs are rescued only if it does not heartbeat within the grace.
  RescueResult rescue(Duration grace, int limit, bool dry_run, const LeaseFence* fence = nullptr);
  /// Running jobs whose attempt started more than their timeout plus `grace` ago (the worker
  /// should have stopped them long ago: it is stuck) get a failed attempt ("stuck: ...") and go
  /// to retry after the default backoff, failed, or cancelled, like rescue(). At most `limit`.
  std::vector<JobChange> fail_stuck(Duration grace, int limit, const LeaseFence* fence = nullptr);

  // Leader leases. All times are the database's (now()), so holders' clocks never matter.
  /// Takes the lease when it is free, expired or resigned (term + 1), or extends it when
  /// `holder` already holds it. Returns the lease when `holder` holds it afterwards.
  std::optional<Lease> acquire_lease(const std::string& name, const std::string& holder, Duration ttl,
                                     const std::string& host = {}, int pid = 0);
  /// Extends the lease only while `holder` holds it with `term` and it has not expired; the new
  /// expiry, or nothing when the lease is lost (the holder must stop acting at once).
  std::optional<Timestamp> renew_lease(const std::string& name, const std::string& holder, std::int64_t term,
                                       Duration ttl);
  /// Gives the lease up (expires it now; the term stays so terms never repeat) and notifies
  /// "<schema>_leader" so standbys take over at once. False when it was not held.
  bool resign_lease(const std::string& name, const std::string& holder, std::int64_t term);
  std::optional<Lease> lease(const std::string& name);

  /// Enqueues one tick exactly once: in one transaction, only while `fence` holds, only when the
  /// schedule's last fired tick is earlier, with the unique key "periodic:<name>:<tick>" and
  /// metadata {"periodic": name, "tick": RFC 3339 UTC}; records the tick on the `periodic` row.
  FireResult fire_periodic(const PeriodicFire& fire, const LeaseFence& fence);
  std::optional<PeriodicState> periodic_state(const std::string& name);
  /// Records the configured schedules (upsert of their definitions; rows of schedules no longer
  /// configured are deleted) while `fence` holds; returns every row, or nothing when fenced.
  std::optional<std::vector<PeriodicInfo>> sync_periodic(const std::vector<PeriodicDef>& defs, const LeaseFence& fence);
  std::vector<PeriodicInfo> list_periodic();
  /// Pauses or resumes a schedule; false when it already was. Throws not_found.
  bool set_periodic_paused(const std::string& name, bool paused);
  /// Enqueues one job of the schedule now (metadata {"periodic": name, "trigger": "manual"}),
  /// without touching its fire times. Throws not_found.
  EnqueueResult trigger_periodic(const std::string& name);

  /// LISTEN to events ("insert", "cancel", "leader", "events"); wait_notifications returns what
  /// arrived, waiting up to `timeout` for the first one, or until `wake_fd` (if >= 0) becomes
  /// readable. "events" are the job events of migration 3 (payload: a JSON array of
  /// [op, id, queue, kind, state, attempt, progress]), sent only while a listener is registered.
  /// A query on a listening connection is fine: notifications that arrive meanwhile are kept.
  void listen(const std::vector<std::string>& events);
  std::vector<Notification> wait_notifications(Duration timeout, int wake_fd = -1);

  /// Registers (or renews) an event listener: while its row lives, changes of the jobs and queues
  /// it watches (every queue with `watch.all_queues`) are announced on "<schema>_events". The row
  /// expires after `ttl` unless renewed, so a killed listener stops the announcements by itself.
  void register_event_listener(const std::string& name, const std::string& host, int pid, const EventWatch& watch,
                               Duration ttl);
  /// Removes the listener's row (no-op when absent).
  void unregister_event_listener(const std::string& name);
  /// Whether job events are being announced now (some listener is registered and live).
  bool events_wanted();
  /// Moves due scheduled jobs (of these queues, or all when empty) to available; returns count.
  std::int64_t promote_due(const std::vector<std::string>& queues, int limit, const LeaseFence* fence = nullptr);

  /// The database's current time.
  Timestamp now();

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskq::store
