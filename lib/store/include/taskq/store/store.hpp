#pragma once
// The store owns ALL of taskq's SQL: every statement the library runs is in store.cpp, written
// against the schema named at open(). Nothing outside db/ and store/ sees libpqxx.
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
#include "taskq/core/time.hpp"

namespace taskq {

struct StoreOptions {
  std::string url;
  std::string schema = "taskq";
  Duration connect_timeout = std::chrono::seconds{5};
  std::string application_name = "taskq";
};

struct MigrationInfo {
  int version;
  std::string name;
  std::optional<Timestamp> applied_at;
};

/// Which jobs an operation looks at. Empty lists and unset fields match everything.
struct JobFilter {
  std::vector<std::string> queues{};
  std::vector<JobState> states{};
  std::optional<std::string> kind{};
  std::optional<std::string> tag{};
  std::optional<JobId> after_id{};  // keyset pagination: only ids greater than this
  int limit = 100;
};

/// One job touched by cancel or retry.
struct JobChange {
  JobId id;
  std::string queue;
  std::string kind;
  JobState from;
  JobState to;  // for a running job being cancelled: running (cancel requested)
  bool cancel_requested = false;
};

struct QueueStats {
  std::string queue;
  std::optional<Timestamp> paused_at;
  std::int64_t scheduled = 0, available = 0, running = 0, completed = 0, failed = 0, cancelled = 0;
  std::optional<Duration> oldest_available_age;
  std::int64_t finished_last_minute = 0;
};

struct BulkInsertResult {
  std::int64_t inserted = 0;
  std::int64_t duplicates = 0;  // lines whose unique key matched a live job
};

struct QueueChange {
  std::string queue;
  bool changed;  // false: it was already paused (or not paused, for resume)
};

/// What a worker reports for a job it ran.
struct Outcome {
  enum class Kind { completed, retry, failed, snoozed, cancelled };
  JobId id = 0;
  Kind kind = Kind::completed;
  std::optional<std::string> result{};  // JSON text, kept on the job
  std::optional<std::string> error{};   // JSON object text, appended to the job's errors
  std::optional<Timestamp> run_at{};    // retry/snooze: when to run next
};

struct WorkerRegistration {
  std::string host{};
  int pid = 0;
  std::vector<std::string> queues{};
  int concurrency = 0;
  std::string version{};
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

  /// Inserts one validated job. With a unique key that a live job holds, returns that job and
  /// duplicate=true instead.
  EnqueueResult insert(const EnqueueParams& params);
  /// Streams validated jobs through COPY in one transaction. `next` fills the next job and
  /// returns false at the end; if it (or the database) throws, nothing is inserted.
  BulkInsertResult insert_stream(const std::function<bool(EnqueueParams&)>& next);

  std::optional<Job> get(JobId id);
  std::vector<Job> list(const JobFilter& filter);

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
  /// Running jobs of these queues (id order), for drain.
  std::vector<Job> running_jobs(const std::vector<std::string>& queues);

  /// Deletes (or counts, on dry run) up to `batch` finished jobs older than `older_than`.
  std::int64_t prune_batch(Duration older_than, const std::vector<JobState>& states, int batch, bool dry_run);

  // Worker primitives.
  std::int64_t register_worker(const WorkerRegistration& registration);
  void heartbeat(std::int64_t worker_id);
  void unregister_worker(std::int64_t worker_id);
  /// Claims up to n available jobs of a (not paused) queue for the worker, in (priority, run_at,
  /// id) order. Returned jobs carry id, queue, kind, args, priority, attempt, max_attempts,
  /// timeout and metadata only.
  std::vector<Job> claim(std::int64_t worker_id, const std::string& queue, int n);
  /// Applies outcomes of jobs still running for this worker; returns how many applied.
  std::size_t complete(std::int64_t worker_id, const std::vector<Outcome>& outcomes);
  /// Moves due scheduled jobs (of these queues, or all when empty) to available; returns count.
  std::int64_t promote_due(const std::vector<std::string>& queues, int limit);

  /// The database's current time.
  Timestamp now();

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskq
