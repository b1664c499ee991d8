#pragma once
// Writes outcomes and progress in batches: whatever has accumulated is written in one statement
// per flush (plus one for progress), so the batch grows with the load and an idle worker writes
// at once. While PostgreSQL is unreachable the outcomes are held (their number is bounded by the
// worker's concurrency: no new jobs are claimed meanwhile) and written after the reconnect.
// A batch that fails for a transient reason other than the connection (a job row locked by
// another session past lock_timeout, a statement timeout: is_transient()) is written outcome by
// outcome; an outcome that still meets the lock is held on its own and retried with backoff
// (1s doubling to 15s), so one locked job never holds up the others and is never lost.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "taskq/core/error.hpp"
#include "taskq/store/db_link.hpp"
#include "taskq/store/store.hpp"

namespace taskq::worker {

class Completer {
 public:
  /// `written` is called on the completer thread after each flush that committed, with the
  /// outcomes it wrote (so the owner can forget those jobs) and how many of them applied (the
  /// others were refused: their jobs are no longer running here on that attempt).
  Completer(std::string role, StoreOptions options, std::int64_t worker_id, bool delete_completed,
            std::function<void(const std::vector<Outcome>&, std::size_t applied)> written);
  ~Completer();

  void connect_or_throw() { link_.connect_or_throw(); }
  void start();
  void push(Outcome outcome);
  /// The latest progress of a job replaces an unwritten earlier one.
  void push_progress(ProgressUpdate update);
  /// Writes what is pending, trying for up to `deadline`, then stops the thread. Returns how
  /// many outcomes could not be written.
  std::size_t stop(Duration deadline);
  /// Outcomes not yet written (waiting, or held after meeting a lock).
  [[nodiscard]] std::size_t pending() const;

 private:
  // An outcome whose job row was locked by another session: retried alone when due.
  struct Held {
    Outcome outcome;
    Duration backoff{};
    std::chrono::steady_clock::time_point due{};
    int tries = 0;
  };

  void run(const std::stop_token& stop);
  bool flush();
  // After a transient failure of a whole batch: writes each outcome (and progress update) alone;
  // holds the outcomes that fail transiently again; false when the connection was lost (the
  // unwritten outcomes are put back).
  bool write_one_by_one(std::vector<Outcome>& batch, std::vector<ProgressUpdate>& progress);
  // Writes the held outcomes that are due; false when the connection was lost.
  bool retry_held(bool all);
  void hold(Outcome o, const Error& why);
  [[nodiscard]] std::chrono::steady_clock::time_point next_held_due() const;

  DbLink link_;
  std::int64_t worker_id_;
  bool delete_completed_;
  std::function<void(const std::vector<Outcome>&, std::size_t)> written_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::vector<Outcome> outcomes_;
  std::unordered_map<JobId, ProgressUpdate> progress_;
  std::vector<Held> held_;  // completer thread only; its size is mirrored in held_count_
  std::atomic<std::size_t> held_count_{0};
  std::string last_error_;  // completer thread only
  std::jthread thread_;
};

}  // namespace taskq::worker
