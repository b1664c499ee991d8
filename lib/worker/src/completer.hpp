#pragma once
// Writes outcomes and progress in batches: whatever has accumulated is written in one statement
// per flush (plus one for progress), so the batch grows with the load and an idle worker writes
// at once. While PostgreSQL is unreachable the outcomes are held (their number is bounded by the
// worker's concurrency: no new jobs are claimed meanwhile) and written after the reconnect.
//
// A batch PostgreSQL refuses for its data (DbLink::with_refusals: a value it cannot store) is
// never retried as it is: it is split in halves until each refused row is alone, and the rest
// is written. A refused outcome is replaced by a failed attempt whose error entry says why
// ("result: refused by PostgreSQL: ...", built from clean text only; retried after the job's
// backoff, or failed when its attempts are used up); a refused progress value is dropped. Both
// are logged with the job's id, queue and kind.
//
// A batch that meets a lock or statement timeout (a job row locked by another session past
// lock_timeout: is_transient(), not the connection) is split the same way; an outcome that still
// waits alone is held on its own and retried with backoff (1 s doubling to 15 s), so one locked
// job never holds up the others and is never lost. Connection errors and other errors (a missing
// schema) hold the batch and try again later.
#include <atomic>
#include <chrono>
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

/// What the completer needs to know of an outcome's job should PostgreSQL refuse the outcome.
struct OutcomeNote {
  std::string queue, kind;  // for log lines
  Timestamp retry_at{};     // when to run the job again if the attempt is recorded as failed instead
  int refusals = 0;         // how many times this job's outcome was refused (replacements count)
  std::string trace_id{};   // for log lines
};

class Completer {
 public:
  /// `written` is called on the completer thread after each write that committed, with the
  /// outcomes it wrote (so the owner can forget those jobs) and how many of them applied (the
  /// others were refused: their jobs are no longer running here on that attempt).
  Completer(std::string role, store::StoreOptions options, std::int64_t worker_id, bool delete_completed,
            std::function<void(const std::vector<store::Outcome>&, std::size_t applied)> written);
  ~Completer();

  void connect_or_throw() { link_.connect_or_throw(); }
  void start();
  void push(store::Outcome outcome, OutcomeNote note);
  /// The latest progress of a job replaces an unwritten earlier one.
  void push_progress(store::ProgressUpdate update, const std::string& queue, const std::string& kind,
                     const std::string& trace_id = {});
  /// Writes what is pending, trying for up to `deadline`, then stops the thread. Returns how
  /// many outcomes could not be written.
  std::size_t stop(Duration deadline);
  [[nodiscard]] std::size_t pending() const;
  /// Called on the completer thread after each outcome statement that committed: its rows and
  /// how long it took (metrics). Set before start().
  void observe_writes(std::function<void(std::size_t rows, double seconds)> observe) { observe_ = std::move(observe); }
  /// Reconnections of the completer's connection (thread-safe).
  [[nodiscard]] std::int64_t reconnects() const noexcept { return link_.reconnects(); }
  [[nodiscard]] bool db_up() const noexcept { return link_.up(); }

  /// The outcome recorded instead of one PostgreSQL refused (`why`: its error message), or
  /// nothing when even the simplest replacement was refused before. Public for tests.
  static std::optional<store::Outcome> replacement(const store::Outcome& refused, OutcomeNote& note,
                                                   const std::string& why);

 private:
  struct Batch {
    std::vector<store::Outcome> outcomes;
    std::vector<OutcomeNote> notes;  // parallel to outcomes
  };
  struct ProgressBatch {
    std::vector<store::ProgressUpdate> updates;
    std::vector<std::string> labels;  // parallel: "job ID (queue Q, kind K)"
  };

  std::function<void(std::size_t rows, double seconds)> observe_;

  void run(const std::stop_token& stop);
  bool flush();
  void write_outcomes(Batch batch, Batch& held);
  // An outcome whose job row was locked by another session: retried alone when due.
  struct Held {
    store::Outcome outcome;
    OutcomeNote note;
    Duration backoff{};
    std::chrono::steady_clock::time_point due{};
    int tries = 0;
  };
  void hold(store::Outcome o, OutcomeNote note, const std::string& why);
  // Writes the held outcomes that are due (all: every one); false when the connection was lost.
  bool retry_held(bool all);
  [[nodiscard]] std::chrono::steady_clock::time_point next_held_due() const;
  void write_progress(ProgressBatch batch, ProgressBatch& held);

  store::DbLink link_;
  std::int64_t worker_id_;
  bool delete_completed_;
  std::function<void(const std::vector<store::Outcome>&, std::size_t)> written_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  Batch outcomes_;
  struct PendingProgress {
    store::ProgressUpdate update;
    std::string label;
  };
  std::unordered_map<JobId, PendingProgress> progress_;
  std::vector<Held> held_;  // completer thread only; its size is mirrored in held_count_
  std::atomic<std::size_t> held_count_{0};
  std::jthread thread_;
};

}  // namespace taskq::worker
