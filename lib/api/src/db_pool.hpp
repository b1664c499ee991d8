#pragma once
// The database side of taskq-apid: `size` threads, each with its own connection (a Client),
// taking work from one queue, so database calls never block the I/O threads. A connection lost
// is reopened on the next task (with backoff); meanwhile tasks answer 503.
//
// No request waits on the pool for long, whatever a database session does: a task that finds
// no free connection within `acquire_timeout` is answered 503 "busy" with Retry-After by the
// reaper thread; tasks that may wait on a row lock (cancel, retry, pause, resume: `may_lock`)
// run on at most half the connections (at least one), so a locked job or queue row never takes
// the connections that reads and enqueues need; and each statement is bounded by the session's
// statement and lock timeouts (database.*_timeout). stalled_for() tells /readyz and the systemd
// watchdog when every connection has been busy without one finishing.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "response.hpp"
#include "taskq/queue/client.hpp"

namespace taskq::api {

class DbPool {
 public:
  using Task = std::function<Response(queue::Client&)>;
  using Done = std::function<void(Response)>;
  using EnqueueAnswer = std::function<Response(const EnqueueResult&)>;
  using GetAnswer = std::function<Response(JobId, const Job*)>;

  /// `answer` turns an enqueue's result into its response, `get_answer` a job (or none) into
  /// the response to GET /v1/jobs/{id}.
  DbPool(queue::ClientOptions options, int size, Duration acquire_timeout, EnqueueAnswer answer, GetAnswer get_answer);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  /// Opens one connection now, or throws Error(unavailable) (start-up fails fast).
  void check_connect();
  /// Runs `task` on a pool thread; `done` gets its response there (errors become responses).
  /// `may_lock`: the task may wait on a row lock (it runs on at most max_lockers() connections).
  void submit(Task task, Done done, bool may_lock = false);
  /// Enqueues one validated job. Jobs waiting together are grouped: one transaction, one INSERT
  /// and one commit for up to max_group of them (the group commit that lets concurrent single
  /// POSTs beat one commit per job). A group that fails as a whole is retried job by job, so one
  /// job's error is never another's.
  void submit_enqueue(EnqueueParams job, Done done);
  static constexpr std::size_t max_group = 500;
  /// Reads one job. Reads waiting together are grouped like enqueues: one statement for up to
  /// max_group ids.
  void submit_get(JobId id, Done done);
  /// Groups committing at once: while one commits, the next gathers (measured on 2 cores: one
  /// group at a time gave the most enqueues per second).
  static constexpr int max_groups_at_once = 1;
  /// The same for grouped reads: more at once only splits them into smaller statements.
  static constexpr int max_reads_at_once = 1;
  /// Lets queued tasks finish, then stops the threads. Idempotent.
  void stop();

  /// How long every connection has been busy without one finishing a task (zero while one is
  /// free: an idle pool is healthy).
  [[nodiscard]] Duration stalled_for() const;
  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] int max_lockers() const noexcept { return max_lockers_; }
  [[nodiscard]] Duration acquire_timeout() const noexcept { return acquire_timeout_; }
  /// Requests answered 503 "busy" since the start (no connection within acquire_timeout).
  [[nodiscard]] std::int64_t refused_busy() const noexcept { return refused_.load(); }

  /// The answer to a request that found no free connection in time.
  static Response busy(Duration acquire_timeout);

 private:
  using Clock = std::chrono::steady_clock;
  struct Item {
    Task task;
    Done done;
    bool may_lock = false;
    Clock::time_point queued{};
  };
  struct EnqueueItem {
    EnqueueParams job;
    Done done;
    Clock::time_point queued{};
  };
  struct GetItem {
    JobId id;
    Done done;
    Clock::time_point queued{};
  };
  // One pool thread's connection: reopened on the next work after a loss, with backoff.
  struct Connection {
    int index = 0;
    queue::ClientOptions options;  // named "... db<index>" in pg_stat_activity
    std::unique_ptr<queue::Client> client;
    std::chrono::milliseconds backoff{0};
    Clock::time_point next_attempt = Clock::now();
    bool down_logged = false;
  };
  // What a thread took: a group of reads, a group of enqueues, or else one task.
  struct Work {
    std::vector<GetItem> reads;
    std::vector<EnqueueItem> group;
    Item item;
  };
  static Response unavailable();
  // A pool thread: takes work, (re)connects when it may, does the work, answers.
  void run(int index);
  // Waits for work a thread may start now; false once stopping and nothing is left.
  bool take_work(Work& work);
  void connect(Connection& conn);
  void run_reads(Connection& conn, std::vector<GetItem>& reads);
  void run_enqueues(Connection& conn, std::vector<EnqueueItem>& group);
  void run_task(Connection& conn, Item& item);
  void run_group(queue::Client& client, std::vector<EnqueueItem>& group, bool& lost);
  void reap();
  // The first task of queue_ that may start now (lockers only while fewer than max_lockers_
  // run), or queue_.end(). Under mu_.
  std::deque<Item>::iterator next_task();
  // A thread starts or ends a piece of work (under mu_).
  void took();
  void finished();

  queue::ClientOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::deque<EnqueueItem> enqueues_;
  std::deque<GetItem> gets_;
  EnqueueAnswer answer_;
  GetAnswer get_answer_;
  int groups_running_ = 0;
  int reads_running_ = 0;
  int lockers_running_ = 0;
  int busy_ = 0;                   // threads working on something
  Clock::time_point last_change_;  // a thread took or finished work
  bool stopping_ = false;
  int size_;
  int max_lockers_;
  Duration acquire_timeout_;
  std::atomic<std::int64_t> refused_{0};
  std::condition_variable reaper_cv_;
  std::jthread reaper_;
  std::vector<std::jthread> threads_;
};

}  // namespace taskq::api
