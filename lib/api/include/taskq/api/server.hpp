#pragma once
// The HTTP/JSON API that taskq-apid serves: the service-facing front door. It validates,
// enqueues and answers at once with an id; reads jobs, queues, stats and workers; cancels and
// retries. It never runs job code.
//
// Threads: `threads` I/O threads run one Boost.Asio io_context (every connection on its own
// strand); database work runs on a pool of `db_pool` threads, each with its own connection, and
// never on the I/O threads. Invariants: every response carries X-Request-Id; every error is
// {"error": {"code", "message", "field"}}; nothing a client sends can leave a half-done change
// (each operation is one store call, itself all-or-nothing).
#include <memory>
#include <string>
#include <vector>

#include "taskq/config/config.hpp"
#include "taskq/core/job.hpp"
#include "taskq/core/time.hpp"
#include "taskq/queue/client.hpp"

namespace taskq::api {

struct ApiOptions {
  store::StoreOptions store;  // application_name names the pool's connections
  taskq::config::ApiConfig config;
  EnqueueLimits limits;
  std::string version;
  // GET /v1/workers calls a worker "dead" once its heartbeat is older than this
  // (scheduler.worker_grace, as taskq-schedulerd's rescue does).
  Duration worker_grace = taskq::config::SchedulerConfig{}.worker_grace;
};

class Server {
 public:
  explicit Server(ApiOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listen address and starts the threads. Throws Error(invalid_input) for an
  /// address that cannot be bound or resolved (naming it) and Error(unavailable) when the
  /// database cannot be reached.
  void start();
  /// Stops accepting, lets in-flight requests finish within `grace`, then closes every
  /// connection and stops the threads. Idempotent.
  void stop(Duration grace);

  /// The bound addresses as "host:port" (port 0 in the config becomes the real port).
  [[nodiscard]] std::vector<std::string> endpoints() const;
  /// The I/O loop went round within `max_stall` (for the systemd watchdog).
  [[nodiscard]] bool healthy(Duration max_stall) const;
  /// Database work moves: some connection is free, or one finished a task within `max_stall`
  /// (an idle pool moves). The systemd watchdog is fed only while it does.
  [[nodiscard]] bool db_moving(Duration max_stall) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskq::api
