#pragma once
// A Client for a long-running thread of a daemon: one connection that survives PostgreSQL
// restarts. It reconnects with backoff and logs each change between reachable and unreachable
// once (the store's DbLink underneath); each call gets a Client over the live connection.
#include <functional>
#include <string>

#include "taskq/queue/client.hpp"
#include "taskq/store/db_link.hpp"

namespace taskq::queue {

class ClientLink {
 public:
  /// The connection is named "<application_name> <role>" in pg_stat_activity; logs say `role`.
  /// `on_connect` runs on every new connection before it is used (LISTEN, registrations, ...).
  ClientLink(std::string role, const ClientOptions& options, std::function<void(Client&)> on_connect = {});
  /// Runs `f` with a connected client. False when the database is unreachable or `f` failed
  /// (logged once per distinct message); errors never escape. See DbLink::with.
  bool with(const std::function<void(Client&)>& f);
  [[nodiscard]] bool connected() const noexcept { return link_.connected(); }
  /// How long until the next reconnect attempt is allowed (zero when connected).
  [[nodiscard]] Duration retry_in() const { return link_.retry_in(); }

 private:
  EnqueueLimits limits_;
  store::DbLink link_;
};

}  // namespace taskq::queue
