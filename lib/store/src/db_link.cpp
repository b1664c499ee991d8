#include "taskq/store/db_link.hpp"

#include <spdlog/spdlog.h>

#include "taskq/core/error.hpp"

namespace taskq::store {

namespace {
constexpr Duration min_backoff = std::chrono::milliseconds{100};
constexpr Duration max_backoff = std::chrono::seconds{5};
}  // namespace

DbLink::DbLink(std::string role, StoreOptions options, std::function<void(Store&)> on_connect)
    : role_(std::move(role)), options_(std::move(options)), on_connect_(std::move(on_connect)) {
  options_.application_name = (options_.application_name + " " + role_).substr(0, 63);  // PostgreSQL keeps 63 bytes
}

void DbLink::connect_or_throw() {
  auto store = Store::open(options_);
  if (on_connect_) on_connect_(*store);
  store_ = std::move(store);
  connected_once_ = true;
  up_.store(true, std::memory_order_relaxed);
}

Duration DbLink::retry_in() const {
  if (store_) return Duration{};
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_attempt_) return Duration{};
  return std::chrono::duration_cast<Duration>(next_attempt_ - now);
}

bool DbLink::open() {
  if (std::chrono::steady_clock::now() < next_attempt_) return false;
  try {
    auto store = Store::open(options_);
    if (on_connect_) on_connect_(*store);
    store_ = std::move(store);
    backoff_ = Duration{};
    if (connected_once_) reconnects_.fetch_add(1, std::memory_order_relaxed);
    connected_once_ = true;
    up_.store(true, std::memory_order_relaxed);
    if (down_) spdlog::info("{}: connected to PostgreSQL again", role_);
    down_ = false;
    return true;
  } catch (const std::exception& e) {
    lost(e.what());
    return false;
  }
}

void DbLink::lost(const std::string& why) {
  store_.reset();
  up_.store(false, std::memory_order_relaxed);
  backoff_ = backoff_ == Duration{} ? min_backoff : std::min(max_backoff, backoff_ * 2);
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
  if (!down_) spdlog::warn("{}: PostgreSQL unreachable ({}); retrying", role_, why);
  down_ = true;
}

bool DbLink::with(const std::function<void(Store&)>& f) {
  return run(f, false);
}

bool DbLink::with_refusals(const std::function<void(Store&)>& f) {
  return run(f, true);
}

bool DbLink::run(const std::function<void(Store&)>& f, bool throw_refusals) {
  if (!store_ && !open()) return false;
  try {
    f(*store_);
    last_error_.clear();
    return true;
  } catch (const Error& e) {
    if (throw_refusals && (e.code() == Errc::invalid_input || e.code() == Errc::conflict ||
                           (is_transient(e) && e.code() != Errc::unavailable)))
      throw;
    if (e.code() == Errc::unavailable) {
      lost(e.what());
    } else if (e.what() != last_error_) {
      // Not a connection problem (a bug, a dropped schema, ...): say so once per distinct message.
      last_error_ = e.what();
      if (is_transient(e))
        spdlog::warn("{}: {}", role_, e.what());  // a lock or statement timeout: retried next round
      else
        spdlog::error("{}: {}", role_, e.what());
    }
    return false;
  } catch (const std::exception& e) {
    lost(e.what());
    return false;
  }
}

}  // namespace taskq::store
