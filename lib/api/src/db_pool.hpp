#pragma once
// The database side of taskq-apid: `size` threads, each with its own connection (a Client),
// taking work from one queue, so database calls never block the I/O threads. A connection lost
// is reopened on the next task (with backoff); meanwhile tasks answer 503.
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
  using Task = std::function<Response(Client&)>;
  using Done = std::function<void(Response)>;
  using EnqueueAnswer = std::function<Response(const EnqueueResult&)>;
  using GetAnswer = std::function<Response(JobId, const Job*)>;

  /// `answer` turns an enqueue's result into its response, `get_answer` a job (or none) into
  /// the response to GET /v1/jobs/{id}.
  DbPool(ClientOptions options, int size, EnqueueAnswer answer, GetAnswer get_answer);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  /// Opens one connection now, or throws Error(unavailable) (start-up fails fast).
  void check_connect();
  /// Runs `task` on a pool thread; `done` gets its response there (errors become responses).
  void submit(Task task, Done done);
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

 private:
  struct Item {
    Task task;
    Done done;
  };
  struct EnqueueItem {
    EnqueueParams job;
    Done done;
  };
  struct GetItem {
    JobId id;
    Done done;
  };
  void run(int index);
  void run_group(Client& client, std::vector<EnqueueItem>& group, bool& lost);

  ClientOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::deque<EnqueueItem> enqueues_;
  std::deque<GetItem> gets_;
  EnqueueAnswer answer_;
  GetAnswer get_answer_;
  int groups_running_ = 0;
  int reads_running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace taskq::api
