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

  DbPool(ClientOptions options, int size);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  /// Opens one connection now, or throws Error(unavailable) (start-up fails fast).
  void check_connect();
  /// Runs `task` on a pool thread; `done` gets its response there (errors become responses).
  void submit(Task task, Done done);
  /// Lets queued tasks finish, then stops the threads. Idempotent.
  void stop();

 private:
  struct Item {
    Task task;
    Done done;
  };
  void run(int index);

  ClientOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace taskq::api
