#pragma once
// The client API of taskq: what taskctl, taskq-apid and programs embedding the library use to
// put work in and manage it. It validates every request (limits from the config), then hands it
// to the store. It owns one Store (one connection) and is not thread-safe.
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "taskq/core/job.hpp"
#include "taskq/core/time.hpp"
#include "taskq/store/store.hpp"

namespace taskq::queue {

struct ClientOptions {
  store::StoreOptions store;
  EnqueueLimits limits;
};

struct DrainReport {
  std::vector<Job> waited_for;  // jobs that were running when the drain started
  Duration waited{0};
};

struct PruneReport {
  std::int64_t deleted = 0;  // or, on a dry run, that would be deleted
  int batches = 0;
};

/// The longest window Client::throughput reports: a day of minutes.
constexpr int max_throughput_minutes = 1440;

class Client {
 public:
  /// Connects. Throws Error(unavailable) when PostgreSQL cannot be reached.
  static std::unique_ptr<Client> connect(const ClientOptions& options);
  explicit Client(std::unique_ptr<store::Store> store, EnqueueLimits limits = {});
  /// A client over a connection someone else owns and keeps open for as long as the client lives
  /// (ClientLink hands one to each of its calls).
  Client(store::Store& borrowed, EnqueueLimits limits);

  std::vector<int> migrate() { return store_->migrate(); }
  std::vector<store::MigrationInfo> migration_status() { return store_->migration_status(); }

  /// Validates and inserts one job.
  EnqueueResult enqueue(const EnqueueParams& params);
  /// Streams jobs, validating each, in one all-or-nothing transaction. `next` returns false at end.
  /// Validates every job (an error names the job's position, 1-based, and inserts nothing), then
  /// inserts all of them in one transaction; one result per job, in order.
  std::vector<EnqueueResult> enqueue_batch(const std::vector<EnqueueParams>& jobs);
  /// Jobs the caller has already checked with validate_enqueue() against this client's limits:
  /// taskq-apid checks each request as it arrives, then inserts the requests that came in
  /// together as one group. All in one transaction; one result per job, in order.
  std::vector<EnqueueResult> enqueue_validated(const std::vector<EnqueueParams>& jobs) {
    return store_->insert_batch(jobs);
  }
  EnqueueResult enqueue_validated(const EnqueueParams& job) { return store_->insert(job); }
  store::BulkInsertResult enqueue_many(const std::function<bool(EnqueueParams&)>& next);
  /// JSON Lines: one job object per line (see enqueue_params_from_json); blank lines are
  /// skipped. Any bad line aborts the whole batch with "<source>:<line>: <what is wrong>".
  store::BulkInsertResult enqueue_jsonl(std::istream& in, const std::string& source_name);

  std::optional<Job> get(JobId id) { return store_->get(id); }
  /// Throws Error(not_found).
  Job get_existing(JobId id);
  /// Several jobs in one statement; ids that do not exist are left out. Order not guaranteed.
  std::vector<Job> get_many(const std::vector<JobId>& ids) { return store_->get_many(ids); }
  std::vector<Job> list(const store::JobFilter& filter);
  /// list(), telling whether filter.max_bytes ended the page early.
  store::JobPage list_page(const store::JobFilter& filter);

  std::vector<store::JobChange> cancel(const std::vector<JobId>& ids, bool dry_run);
  std::vector<store::JobChange> cancel_matching(const store::JobFilter& filter, bool dry_run);
  std::vector<store::JobChange> retry(const std::vector<JobId>& ids, bool dry_run);
  std::vector<store::JobChange> retry_matching(const store::JobFilter& filter, bool dry_run);

  std::vector<store::QueueChange> pause(const std::vector<std::string>& queues);
  std::vector<store::QueueChange> resume(const std::vector<std::string>& queues);
  /// Every queue with jobs or settings.
  std::vector<std::string> queues() { return store_->known_queues(); }

  /// Pauses the queues, then waits until none of their jobs is running. On timeout throws
  /// Error(timeout) naming what still runs; the queues stay paused. `on_wait` is called after
  /// each poll with what still runs (for progress output).
  DrainReport drain(const std::vector<std::string>& queues, Duration timeout, const Clock& clock,
                    const std::function<void(const std::vector<Job>&)>& on_wait = {});

  std::vector<store::QueueStats> stats(const std::optional<std::string>& queue) { return store_->stats(queue); }
  /// Finished jobs per queue and minute over the last `minutes` (1 to 1440) minutes.
  store::Throughput throughput(int minutes);

  /// Deletes finished jobs older than `older_than` in batches of `batch_size` (each its own
  /// transaction, so a large prune never holds locks for long).
  PruneReport prune(Duration older_than, const std::vector<JobState>& states, int batch_size, bool dry_run);

  /// Registered workers, live and dead, with what they run.
  std::vector<store::WorkerInfo> workers() { return store_->workers(); }

  /// Puts the running jobs of workers whose heartbeat is older than `grace` (or that are no
  /// longer registered) back to be retried, or failed / cancelled; in batches of 1000, each its
  /// own transaction. A dry run reports without changing anything.
  store::RescueResult rescue(Duration grace, bool dry_run);

  /// The database's current time (ages and "5m ago" are measured against it).
  Timestamp now() { return store_->now(); }
  /// Throws Error(not_migrated) naming the first migration not applied ("run taskctl migrate").
  void require_current_schema() { store_->require_current_schema(); }

  /// The lease of taskq-schedulerd (who leads, with which term, until when); none before a
  /// scheduler first ran on this schema.
  std::optional<store::Lease> scheduler_lease() { return store_->lease(store::scheduler_lease_name); }

  /// Periodic schedules as the leading scheduler recorded them.
  std::vector<store::PeriodicInfo> periodic_schedules() { return store_->list_periodic(); }
  /// Pauses or resumes a schedule; false when it already was. Throws Error(not_found).
  bool set_periodic_paused(const std::string& name, bool paused) { return store_->set_periodic_paused(name, paused); }
  /// Enqueues one job of the schedule now, its fire times untouched. Throws Error(not_found).
  EnqueueResult trigger_periodic(const std::string& name) { return store_->trigger_periodic(name); }

  // Live events (taskq-apid's event streams). See Store::listen and register_event_listener.
  /// LISTEN to taskq's notification channels on this connection ("events", "insert", ...).
  void listen(const std::vector<std::string>& events) { store_->listen(events); }
  /// Notifications that arrived, waiting up to `timeout` for the first; a readable `wake_fd`
  /// ends the wait early.
  std::vector<store::Notification> wait_notifications(Duration timeout, int wake_fd = -1) {
    return store_->wait_notifications(timeout, wake_fd);
  }
  /// Registers or renews an event listener: while it lives (`ttl` past the last renewal), the
  /// database announces the changes of the jobs and queues in `watch`.
  void register_event_listener(const std::string& name, const std::string& host, int pid,
                               const store::EventWatch& watch, Duration ttl) {
    store_->register_event_listener(name, host, pid, watch, ttl);
  }
  void unregister_event_listener(const std::string& name) { store_->unregister_event_listener(name); }

 private:
  std::unique_ptr<store::Store> owned_;  // empty for a client over a borrowed connection
  store::Store* store_;
  EnqueueLimits limits_;
};

}  // namespace taskq::queue
