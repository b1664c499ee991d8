#pragma once
// Runs claimed jobs: one event-loop thread (Boost.Asio) drives every job's handler without ever
// blocking on one. exec handlers are child processes watched through non-blocking pipes and a
// pidfd; http handlers are async requests; `sleep` is a timer; `noop` and `fail` finish at once;
// in-process handlers run on a pool of threads and report back to the loop. Timeouts,
// cancellation and shutdown stop a job the same way: SIGTERM to its process group, SIGKILL after
// the kind's kill_grace (or the http request / timer is cancelled, or the in-process handler's
// stop token is set). What handlers report is cleaned and bounded on the way (run_output.hpp).
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "taskq/config/config.hpp"
#include "taskq/store/store.hpp"
#include "taskq/worker/handler.hpp"

namespace taskq::worker {

struct ExecutorOptions {
  std::map<std::string, taskq::config::KindConfig> kinds;
  std::map<std::string, InProcessHandler> in_process;
  std::string config_source;
  std::vector<std::string> pass_env;  // worker.pass_env (handler_env.hpp)
};

struct ExecutorCallbacks {
  /// On the loop thread, once per job, when its outcome is known. `retry_at` is when to run the
  /// job again should PostgreSQL refuse the outcome's data (the attempt then counts as failed).
  std::function<void(const Job& job, store::Outcome outcome, Timestamp retry_at)> finished;
  /// On the loop thread: the progress of a running job, at most once per progress_interval per
  /// job (the latest value wins), and the last one before the job's outcome.
  std::function<void(const Job& job, store::ProgressUpdate update)> progress;
  /// Optional, on the loop thread just before `finished`: how long the handler ran (metrics).
  std::function<void(const Job& job, Duration ran)> ran = {};
  /// Optional, on the loop thread: the job's handler could not be started (the program could
  /// not be spawned, or the kind has no handler); `finished` follows with the outcome.
  std::function<void(const Job& job)> start_failed = {};
};

class Executor {
 public:
  Executor(ExecutorOptions options, ExecutorCallbacks callbacks);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void start();
  /// Thread-safe. Starts the jobs.
  void submit(std::vector<Job> jobs);
  /// Thread-safe. Stops the job (every run of it) if it runs here; it ends cancelled.
  void cancel(JobId id);
  /// Thread-safe. Stops the run of this job and attempt if it runs here: the job is no longer
  /// this worker's (rescued away while it ran). Logged with the job's id, queue and kind.
  void stop_lost(JobId id, int attempt);
  /// Thread-safe. The runs that live here now: (job id, attempt).
  [[nodiscard]] std::vector<std::pair<JobId, int>> live_runs() const;
  /// Thread-safe. Stops every running job; they end `returned` (no attempt used).
  void stop_all();
  /// Thread-safe. New [kinds.*] for jobs started from now on.
  void reload_kinds(std::map<std::string, taskq::config::KindConfig> kinds);
  /// Jobs submitted and not yet finished.
  [[nodiscard]] std::size_t running() const noexcept { return running_.load(std::memory_order_acquire); }
  /// Ends the loop thread. Call after every job finished (or was stopped).
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::size_t> running_{0};
};

}  // namespace taskq::worker
