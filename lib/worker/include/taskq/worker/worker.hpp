#pragma once
// The worker service: claims jobs of its queues, runs each with its kind's handler, records the
// outcomes. It is what taskq-workerd runs, and what a C++ program embeds to run in-process
// handlers.
//
// Threads and connections (at most 3 connections whatever the concurrency):
//   fetcher   - LISTENs for inserts and claims batches sized to free slots, promotes due
//               scheduled jobs, returns orphaned claims after a reconnect;      1 connection
//   listener  - LISTEN for cancel requests, heartbeat, a safety poll of cancel
//               requests;                                                       1 connection
//   completer - writes outcomes and progress in batches, one statement per flush; holds them
//               while the database is unreachable;                              1 connection
//   executor  - one thread running an event loop (Boost.Asio): exec handlers as child processes
//               with non-blocking pipes and pidfds, http handlers, built-ins, timeouts and
//               cancellation; in-process handlers run on a pool of threads.
// Invariants: a job is run at most once per claim; an outcome is applied at most once (the
// store applies it only to a job still running for this worker on that attempt); a job whose
// outcome cannot be written stays running under this worker and is rescued after the heartbeat
// grace if the process dies.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/metrics/registry.hpp"
#include "taskq/store/store.hpp"
#include "taskq/worker/handler.hpp"

namespace taskq::worker {

struct WorkerOptions {
  store::StoreOptions store;
  taskq::config::WorkerConfig worker;
  std::map<std::string, taskq::config::KindConfig> kinds;
  std::string version;
  std::string config_source = "the configuration";  // named in "no handler" errors
  /// Where the worker's series go (taskq_worker_*, see docs/metrics.md); none: nothing is
  /// recorded. Must outlive the worker's use of it: render it only while the worker exists.
  std::shared_ptr<taskq::metrics::Registry> metrics;
};

/// Counters since start, for logs and tests.
struct WorkerStats {
  std::int64_t claimed = 0;
  std::int64_t completed = 0;
  std::int64_t retried = 0;
  std::int64_t failed = 0;
  std::int64_t snoozed = 0;
  std::int64_t cancelled = 0;
  std::int64_t returned = 0;
  std::int64_t running = 0;
  std::int64_t held_outcomes = 0;  // waiting to be written
};

class Worker {
 public:
  explicit Worker(WorkerOptions options);
  ~Worker();  // stops without waiting if still running
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Registers an in-process handler (before start()). It takes precedence over [kinds.*].
  void register_handler(const std::string& kind, InProcessHandler handler);

  /// Connects (three connections), registers in `workers`, starts listening and claiming.
  /// Throws Error(unavailable) when PostgreSQL cannot be reached, Error(not_migrated) when the
  /// schema is missing.
  void start();

  /// Graceful stop: stop claiming, let running jobs finish for up to `wait`, then stop the rest
  /// (SIGTERM, SIGKILL after their kill_grace) and return them to available without using up an
  /// attempt; write every outcome; unregister. Idempotent.
  void stop(Duration wait);

  /// Replaces the [kinds.*] handlers for jobs started from now on.
  void reload_kinds(std::map<std::string, taskq::config::KindConfig> kinds);

  [[nodiscard]] std::int64_t worker_id() const;
  /// False when the claiming or the listening loop has not gone round for `stall` (a database
  /// call hung, a deadlock): the systemd watchdog is then no longer fed and systemd restarts us.
  [[nodiscard]] bool healthy(Duration stall) const;
  [[nodiscard]] WorkerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskq::worker
