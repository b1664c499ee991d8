#pragma once
// One database connection of a daemon thread that survives PostgreSQL restarts: the store is
// reopened with backoff (100 ms doubling to 5 s), and each change between reachable and
// unreachable is logged once, not every retry.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "taskq/store/store.hpp"

namespace taskq::store {

class DbLink {
 public:
  /// The connection is named "<options.application_name> <role>" in pg_stat_activity, and logs
  /// say `role`. `on_connect` runs on every new connection before it is used (LISTEN, orphan checks, ...).
  DbLink(std::string role, StoreOptions options, std::function<void(Store&)> on_connect = {});

  /// Runs `f` with a connected store. Returns false when the database is unreachable (the
  /// connection is dropped and reopened on a later call, once the backoff allows) or when `f`
  /// failed otherwise (logged once per distinct message: a lock or statement timeout as a
  /// warning, since the caller's next round retries it; anything else as an error). Errors
  /// never escape.
  bool with(const std::function<void(Store&)>& f);

  /// Like with(), except when PostgreSQL refuses the statement for its data (a value it cannot
  /// store: Error with Errc::invalid_input or Errc::conflict, SQLSTATE classes 22, 23 and 54):
  /// that Error is thrown to the caller, not logged, and the connection is kept. Retrying the
  /// same statement would fail the same way; the caller decides what to write instead. A lock or
  /// statement timeout (is_transient(), not the connection) is thrown too, so the caller can
  /// find the row that waits and hold it alone.
  bool with_refusals(const std::function<void(Store&)>& f);

  /// Connects now or throws (used at start, where failing fast is right).
  void connect_or_throw();

  [[nodiscard]] bool connected() const noexcept { return store_ != nullptr; }
  /// The role named in logs ("taskq/w3 completer").
  [[nodiscard]] const std::string& role() const noexcept { return role_; }
  /// How long until the next reconnect attempt is allowed (zero when connected).
  [[nodiscard]] Duration retry_in() const;
  /// Connections opened again after the first one was lost (thread-safe: metrics read it).
  [[nodiscard]] std::int64_t reconnects() const noexcept { return reconnects_.load(std::memory_order_relaxed); }
  /// Whether the last attempt to use the database reached it: connected() for other threads.
  [[nodiscard]] bool up() const noexcept { return up_.load(std::memory_order_relaxed); }

 private:
  bool open();
  void lost(const std::string& why);
  bool run(const std::function<void(Store&)>& f, bool throw_refusals);

  std::string role_;
  StoreOptions options_;
  std::function<void(Store&)> on_connect_;
  std::unique_ptr<Store> store_;
  bool down_ = false;  // logged as unreachable, not yet logged as back
  std::string last_error_;
  Duration backoff_{};
  std::chrono::steady_clock::time_point next_attempt_{};
  bool connected_once_ = false;
  std::atomic<std::int64_t> reconnects_{0};
  std::atomic<bool> up_{false};
};

}  // namespace taskq::store
