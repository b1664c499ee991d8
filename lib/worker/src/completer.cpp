#include "completer.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "job_trace.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/time.hpp"
#include "taskq/core/utf8.hpp"

#include <algorithm>

using taskq::store::Outcome;
using taskq::store::outcome_name;
using taskq::store::ProgressUpdate;
using taskq::store::Store;
using taskq::store::StoreOptions;

namespace taskq::worker {

namespace {

// PostgreSQL's reason without the store's context ("complete jobs: ..."), as clean text.
std::string reason_of(const std::string& what) {
  std::string_view r = what;
  for (std::string_view ctx : {"record the outcome of job ", "record the outcomes of jobs ", "record progress"})
    if (r.substr(0, ctx.size()) == ctx) {
      const auto colon = r.find(": ");
      if (colon != std::string_view::npos) r.remove_prefix(colon + 2);
      break;
    }
  return clean_text_head(r, 1024);
}

// The "message" of an error entry (JSON object text), or empty.
std::string message_of(const std::optional<std::string>& entry) {
  if (!entry) return {};
  boost::system::error_code ec;
  const auto v = boost::json::parse(*entry, ec);
  if (ec || !v.is_object()) return {};
  const auto* m = v.as_object().if_contains("message");
  return m && m->is_string() ? std::string(m->get_string()) : std::string();
}

constexpr Duration first_hold = std::chrono::seconds{1};
constexpr Duration max_hold = std::chrono::seconds{15};

template <class T>
void append(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

template <class T>
std::vector<T> slice(std::vector<T>& v, std::size_t from, std::size_t to) {
  return {std::make_move_iterator(v.begin() + static_cast<std::ptrdiff_t>(from)),
          std::make_move_iterator(v.begin() + static_cast<std::ptrdiff_t>(to))};
}

}  // namespace

Completer::Completer(std::string role, StoreOptions options, std::int64_t worker_id, bool delete_completed,
                     std::function<void(const std::vector<Outcome>&, std::size_t applied)> written)
    : link_(std::move(role), std::move(options)),
      worker_id_(worker_id),
      delete_completed_(delete_completed),
      written_(std::move(written)) {}

Completer::~Completer() {
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
  }
}

void Completer::start() {
  thread_ = std::jthread([this](const std::stop_token& st) { run(st); });
}

void Completer::push(Outcome outcome, OutcomeNote note) {
  {
    std::lock_guard lock(mu_);
    outcomes_.outcomes.push_back(std::move(outcome));
    outcomes_.notes.push_back(std::move(note));
  }
  cv_.notify_one();
}

void Completer::push_progress(ProgressUpdate update, const std::string& queue, const std::string& kind,
                              const std::string& trace_id) {
  {
    std::lock_guard lock(mu_);
    const JobId id = update.id;
    progress_[id] = PendingProgress{std::move(update), job_label(id, queue, kind, trace_id)};
  }
  cv_.notify_one();
}

std::size_t Completer::pending() const {
  std::lock_guard lock(mu_);
  return outcomes_.outcomes.size() + held_count_.load();
}

void Completer::hold(Outcome o, OutcomeNote note, const std::string& why) {
  Held h;
  h.outcome = std::move(o);
  h.note = std::move(note);
  h.backoff = first_hold;
  h.due = std::chrono::steady_clock::now() + h.backoff;
  h.tries = 1;
  spdlog::warn("{}: holding the {} outcome of {} (attempt {}): {}; retrying every {} at most", link_.role(),
               outcome_name(h.outcome.kind), job_label(h.outcome.id, h.note.queue, h.note.kind, h.note.trace_id),
               h.outcome.attempt, why, format_duration(max_hold));
  held_.push_back(std::move(h));
  held_count_.store(held_.size());
}

std::chrono::steady_clock::time_point Completer::next_held_due() const {
  auto due = std::chrono::steady_clock::time_point::max();
  for (const auto& h : held_) due = std::min(due, h.due);
  return due;
}

bool Completer::retry_held(bool all) {
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < held_.size();) {
    Held& h = held_[i];
    if (!all && h.due > now) {
      ++i;
      continue;
    }
    const std::vector<Outcome> one{h.outcome};
    std::size_t applied = 0;
    std::optional<Error> error;
    bool ok = false;
    try {
      ok = link_.with_refusals([&](Store& s) { applied = s.complete(worker_id_, one, delete_completed_); });
    } catch (const Error& e) {
      error = e;
    }
    if (!ok && !error) return false;  // the connection: try again after the reconnect
    if (error && is_transient(*error)) {
      ++h.tries;
      h.backoff = std::min(max_hold, h.backoff * 2);
      h.due = std::chrono::steady_clock::now() + h.backoff;
      ++i;
      continue;
    }
    if (ok) {
      spdlog::info("{}: the held {} outcome of {} is written (after {} tries)", link_.role(),
                   outcome_name(h.outcome.kind), job_label(h.outcome.id, h.note.queue, h.note.kind, h.note.trace_id),
                   h.tries + 1);
      if (written_) written_(one, applied);
    } else {
      // Refused for its data: back with the others, where refusals are handled.
      std::lock_guard lock(mu_);
      outcomes_.outcomes.push_back(h.outcome);
      outcomes_.notes.push_back(h.note);
    }
    held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
    held_count_.store(held_.size());
  }
  return true;
}

std::optional<Outcome> Completer::replacement(const Outcome& refused, OutcomeNote& note, const std::string& why) {
  ++note.refusals;
  if (note.refusals > 2) return std::nullopt;
  Outcome r;
  r.id = refused.id;
  r.attempt = refused.attempt;
  r.max_attempts = refused.max_attempts;
  switch (refused.kind) {
    case Outcome::Kind::completed:
    case Outcome::Kind::retry:
      // The attempt failed: retried after the job's backoff, or failed when out of attempts.
      r.kind = Outcome::Kind::retry;
      r.run_at = refused.kind == Outcome::Kind::retry && refused.run_at ? refused.run_at : note.retry_at;
      break;
    case Outcome::Kind::failed:
      r.kind = Outcome::Kind::failed;
      break;
    default:  // snoozed, cancelled, returned: no data of the handler's to refuse; sent bare
      r.kind = refused.kind;
      r.run_at = refused.run_at;
      return r;
  }
  if (note.refusals > 1) return r;  // the error entry below was refused too: none at all
  std::string message;
  if (refused.kind == Outcome::Kind::completed && refused.result) {
    message = "result: refused by PostgreSQL: " + reason_of(why);
  } else {
    message = "outcome refused by PostgreSQL: " + reason_of(why);
    const std::string was = message_of(refused.error);
    if (!was.empty()) message += "; the attempt's error was: " + clean_text_head(was, 1024);
  }
  boost::json::object e;
  e["at"] = format_rfc3339(SystemClock{}.now());
  e["attempt"] = refused.attempt;
  e["message"] = message;
  r.error = boost::json::serialize(e);
  return r;
}

void Completer::write_outcomes(Batch batch, Batch& held) {
  std::vector<Batch> todo;
  todo.push_back(std::move(batch));
  while (!todo.empty()) {
    Batch part = std::move(todo.back());
    todo.pop_back();
    std::string refused;
    bool ok = false, waited = false;
    std::size_t applied = 0;
    const auto began = steady_ns();
    try {
      ok = link_.with_refusals([&](Store& s) { applied = s.complete(worker_id_, part.outcomes, delete_completed_); });
    } catch (const Error& e) {
      refused = e.what();
      waited = is_transient(e);
    }
    if (ok) {
      if (observe_) observe_(part.outcomes.size(), static_cast<double>(steady_ns() - began) / 1e9);
      if (written_) written_(part.outcomes, applied);
      continue;
    }
    if (refused.empty()) {  // unreachable, or another error: hold this part and what is left
      todo.push_back(std::move(part));
      for (auto& t : todo) {
        append(held.outcomes, t.outcomes);
        append(held.notes, t.notes);
      }
      return;
    }
    const std::size_t n = part.outcomes.size();
    if (n > 1) {  // find the refused rows: halves, the first one first
      todo.push_back({slice(part.outcomes, n / 2, n), slice(part.notes, n / 2, n)});
      todo.push_back({slice(part.outcomes, 0, n / 2), slice(part.notes, 0, n / 2)});
      continue;
    }
    if (waited) {  // a locked row (or a statement timeout), not its data: held alone, retried
      hold(std::move(part.outcomes[0]), std::move(part.notes[0]), reason_of(refused));
      continue;
    }
    const Outcome& o = part.outcomes[0];
    OutcomeNote& note = part.notes[0];
    const std::string label = job_label(o.id, note.queue, note.kind, note.trace_id);
    auto r = replacement(o, note, refused);
    if (!r) {
      spdlog::error(
          "{}: PostgreSQL refused even a bare outcome of attempt {} ({}); it is dropped and the job stays "
          "running until this worker reconnects or is rescued",
          label, o.attempt, reason_of(refused));
      if (written_) written_(part.outcomes, 0);  // forgotten here, so a reconnect returns it to the queue
      continue;
    }
    spdlog::warn("{}: PostgreSQL refused the outcome of attempt {} ({}); {}", label, o.attempt, reason_of(refused),
                 note.refusals == 1 ? "recording a failed attempt with the reason instead"
                                    : "recording the attempt without an error entry");
    todo.push_back({{std::move(*r)}, {std::move(note)}});
  }
}

void Completer::write_progress(ProgressBatch batch, ProgressBatch& held) {
  std::vector<ProgressBatch> todo;
  todo.push_back(std::move(batch));
  while (!todo.empty()) {
    ProgressBatch part = std::move(todo.back());
    todo.pop_back();
    std::string refused;
    bool ok = false;
    try {
      ok = link_.with_refusals([&](Store& s) { s.set_progress(worker_id_, part.updates); });
    } catch (const Error& e) {
      refused = e.what();
    }
    if (ok) continue;
    if (refused.empty()) {
      todo.push_back(std::move(part));
      for (auto& t : todo) {
        append(held.updates, t.updates);
        append(held.labels, t.labels);
      }
      return;
    }
    const std::size_t n = part.updates.size();
    if (n > 1) {
      todo.push_back({slice(part.updates, n / 2, n), slice(part.labels, n / 2, n)});
      todo.push_back({slice(part.updates, 0, n / 2), slice(part.labels, 0, n / 2)});
      continue;
    }
    // A refused value, or one that met a lock (progress is advisory: the next update replaces it).
    spdlog::warn("{}: PostgreSQL refused its progress ({}); dropped", part.labels[0], reason_of(refused));
  }
}

// Takes everything pending and writes it; what could not be written goes back in front.
bool Completer::flush() {
  Batch batch;
  ProgressBatch progress;
  {
    std::lock_guard lock(mu_);
    batch.outcomes.swap(outcomes_.outcomes);
    batch.notes.swap(outcomes_.notes);
    progress.updates.reserve(progress_.size());
    for (auto& [id, p] : progress_) {
      progress.updates.push_back(std::move(p.update));
      progress.labels.push_back(std::move(p.label));
    }
    progress_.clear();
  }
  if (batch.outcomes.empty() && progress.updates.empty()) return true;
  // Progress first: an outcome in the same flush ends the job, and progress of an ended job
  // would not apply anyway.
  ProgressBatch held_progress;
  Batch held;
  if (!progress.updates.empty()) write_progress(std::move(progress), held_progress);
  if (held_progress.updates.empty())
    write_outcomes(std::move(batch), held);
  else
    held = std::move(batch);  // the connection is gone: no use trying now
  if (held.outcomes.empty() && held_progress.updates.empty()) return true;
  std::lock_guard lock(mu_);
  append(held.outcomes, outcomes_.outcomes);
  append(held.notes, outcomes_.notes);
  outcomes_ = std::move(held);
  for (std::size_t i = 0; i < held_progress.updates.size(); ++i) {
    const JobId id = held_progress.updates[i].id;
    progress_.try_emplace(id, PendingProgress{std::move(held_progress.updates[i]), std::move(held_progress.labels[i])});
  }
  return false;
}

void Completer::run(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mu_);
      const auto ready = [&] { return !outcomes_.outcomes.empty() || !progress_.empty(); };
      if (held_.empty())
        cv_.wait(lock, stop, ready);
      else
        cv_.wait_until(lock, stop, next_held_due(), ready);
      if (stop.stop_requested()) break;
    }
    if (!held_.empty() && next_held_due() <= std::chrono::steady_clock::now() && !retry_held(false)) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, std::max(link_.retry_in(), Duration{std::chrono::milliseconds{50}}),
                   [] { return false; });
      continue;
    }
    if (!flush()) {
      // Unreachable: wait for the backoff before trying again (a stop request ends the wait).
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, std::max(link_.retry_in(), Duration{std::chrono::milliseconds{50}}),
                   [] { return false; });
    }
  }
}

std::size_t Completer::stop(Duration deadline) {
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!flush() || !retry_held(true) || !held_.empty()) {
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::max(link_.retry_in(), Duration{std::chrono::milliseconds{50}}));
  }
  return pending();
}

}  // namespace taskq::worker
