#include "completer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "taskq/core/error.hpp"

namespace taskq::worker {

namespace {

constexpr Duration first_hold = std::chrono::seconds{1};
constexpr Duration max_hold = std::chrono::seconds{15};

enum class Attempt { ok, lost, failed };

// Runs `f` on the link: ok, lost (the connection; the link reconnects later), or failed with
// `error` (anything else, the connection still good).
Attempt attempt(DbLink& link, const std::function<void(Store&)>& f, std::optional<Error>& error) {
  error.reset();
  const bool ok = link.with([&](Store& store) {
    try {
      f(store);
    } catch (const Error& e) {
      if (e.code() == Errc::unavailable) throw;
      error = e;
    }
  });
  if (!ok) return Attempt::lost;
  return error ? Attempt::failed : Attempt::ok;
}

const char* kind_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::completed:
      return "completed";
    case Outcome::Kind::retry:
      return "retry";
    case Outcome::Kind::failed:
      return "failed";
    case Outcome::Kind::snoozed:
      return "snoozed";
    case Outcome::Kind::cancelled:
      return "cancelled";
    case Outcome::Kind::returned:
      return "returned";
  }
  return "?";
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

void Completer::push(Outcome outcome) {
  {
    std::lock_guard lock(mu_);
    outcomes_.push_back(std::move(outcome));
  }
  cv_.notify_one();
}

void Completer::push_progress(ProgressUpdate update) {
  {
    std::lock_guard lock(mu_);
    progress_[update.id] = std::move(update);
  }
  cv_.notify_one();
}

std::size_t Completer::pending() const {
  std::lock_guard lock(mu_);
  return outcomes_.size() + held_count_.load();
}

void Completer::hold(Outcome o, const Error& why) {
  Held h;
  h.outcome = std::move(o);
  h.backoff = first_hold;
  h.due = std::chrono::steady_clock::now() + h.backoff;
  h.tries = 1;
  spdlog::warn("{}: holding the {} outcome of job {} (attempt {}): {}; retrying every {} at most", link_.role(),
               kind_name(h.outcome.kind), h.outcome.id, h.outcome.attempt, why.what(), format_duration(max_hold));
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
    std::optional<Error> error;
    const std::vector<Outcome> one{h.outcome};
    std::size_t applied = 0;
    const auto r = attempt(
        link_, [&](Store& s) { applied = s.complete(worker_id_, one, delete_completed_); }, error);
    if (r == Attempt::lost) return false;
    if (r == Attempt::failed && is_transient(*error)) {
      ++h.tries;
      h.backoff = std::min(max_hold, h.backoff * 2);
      h.due = std::chrono::steady_clock::now() + h.backoff;
      ++i;
      continue;
    }
    if (r == Attempt::ok) {
      spdlog::info("{}: the held {} outcome of job {} is written (after {} tries)", link_.role(),
                   kind_name(h.outcome.kind), h.outcome.id, h.tries + 1);
      if (written_) written_(one, applied);
    } else {
      // Not transient: back with the others, where such errors are handled.
      std::lock_guard lock(mu_);
      outcomes_.push_back(h.outcome);
    }
    held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
    held_count_.store(held_.size());
  }
  return true;
}

bool Completer::write_one_by_one(std::vector<Outcome>& batch, std::vector<ProgressUpdate>& progress) {
  std::optional<Error> error;
  for (const auto& p : progress) {
    const std::vector<ProgressUpdate> one{p};
    const auto r = attempt(
        link_, [&](Store& s) { s.set_progress(worker_id_, one); }, error);
    if (r == Attempt::lost) return false;
    // Progress is advisory and the next update replaces it: one that meets a lock is dropped.
    if (r == Attempt::failed) spdlog::debug("{}: progress of job {} dropped: {}", link_.role(), p.id, error->what());
  }
  progress.clear();
  std::vector<Outcome> written, later;
  std::size_t applied = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::vector<Outcome> one{batch[i]};
    const auto r = attempt(
        link_, [&](Store& s) { applied += s.complete(worker_id_, one, delete_completed_); }, error);
    if (r == Attempt::lost) {
      later.insert(later.end(), batch.begin() + static_cast<std::ptrdiff_t>(i), batch.end());
      break;
    }
    if (r == Attempt::ok)
      written.push_back(batch[i]);
    else if (is_transient(*error))
      hold(batch[i], *error);
    else
      later.push_back(batch[i]);
  }
  if (written_ && !written.empty()) written_(written, applied);
  batch.swap(later);
  return batch.empty();
}

// Takes everything pending and writes it; on failure puts it back in front (order kept).
bool Completer::flush() {
  std::vector<Outcome> batch;
  std::vector<ProgressUpdate> progress;
  {
    std::lock_guard lock(mu_);
    batch.swap(outcomes_);
    progress.reserve(progress_.size());
    for (auto& [id, p] : progress_) progress.push_back(std::move(p));
    progress_.clear();
  }
  if (batch.empty() && progress.empty()) return true;
  std::optional<Error> error;
  std::size_t applied = 0;
  const auto r = attempt(
      link_,
      [&](Store& store) {
        // Progress first: an outcome in the same flush ends the job, and progress of an ended job
        // would not apply anyway.
        store.set_progress(worker_id_, progress);
        applied = store.complete(worker_id_, batch, delete_completed_);
      },
      error);
  if (r == Attempt::ok) {
    if (written_ && !batch.empty()) written_(batch, applied);
    return true;
  }
  if (r == Attempt::failed && is_transient(*error) && batch.size() == 1 && progress.empty()) {
    hold(std::move(batch.front()), *error);
    return true;
  }
  if (r == Attempt::failed && is_transient(*error)) {
    // A locked job row (or a statement timeout): find which outcomes can be written now.
    spdlog::warn("{}: {}; writing the {} outcome(s) one by one", link_.role(), error->what(), batch.size());
    if (write_one_by_one(batch, progress)) return true;
  } else if (r == Attempt::failed && error->what() != last_error_) {
    last_error_ = error->what();  // logged once per distinct message: the batch is retried often
    spdlog::error("{}: {}", link_.role(), error->what());
  }
  std::lock_guard lock(mu_);
  batch.insert(batch.end(), std::make_move_iterator(outcomes_.begin()), std::make_move_iterator(outcomes_.end()));
  outcomes_.swap(batch);
  for (auto& p : progress) progress_.try_emplace(p.id, std::move(p));
  return false;
}

void Completer::run(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mu_);
      const auto ready = [&] { return !outcomes_.empty() || !progress_.empty(); };
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
