#pragma once
// Writes outcomes and progress in batches: whatever has accumulated is written in one statement
// per flush (plus one for progress), so the batch grows with the load and an idle worker writes
// at once. While PostgreSQL is unreachable the outcomes are held (their number is bounded by the
// worker's concurrency: no new jobs are claimed meanwhile) and written after the reconnect.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

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
  [[nodiscard]] std::size_t pending() const;

 private:
  void run(const std::stop_token& stop);
  bool flush();

  DbLink link_;
  std::int64_t worker_id_;
  bool delete_completed_;
  std::function<void(const std::vector<Outcome>&, std::size_t)> written_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::vector<Outcome> outcomes_;
  std::unordered_map<JobId, ProgressUpdate> progress_;
  std::jthread thread_;
};

}  // namespace taskq::worker
