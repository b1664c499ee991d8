#include "completer.hpp"

#include <spdlog/spdlog.h>

namespace taskq::worker {

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
  return outcomes_.size();
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
  std::size_t applied = 0;
  const bool ok = link_.with([&](Store& store) {
    // Progress first: an outcome in the same flush ends the job, and progress of an ended job
    // would not apply anyway.
    store.set_progress(worker_id_, progress);
    applied = store.complete(worker_id_, batch, delete_completed_);
  });
  if (ok) {
    if (written_ && !batch.empty()) written_(batch, applied);
    return true;
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
      cv_.wait(lock, stop, [&] { return !outcomes_.empty() || !progress_.empty(); });
      if (stop.stop_requested()) break;
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
  while (!flush()) {
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::max(link_.retry_in(), Duration{std::chrono::milliseconds{50}}));
  }
  return pending();
}

}  // namespace taskq::worker
