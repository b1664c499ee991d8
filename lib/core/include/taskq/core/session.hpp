#pragma once
// What every database session of taskq is told at connect time, so no session can hang the
// program that owns it: how long one statement may run, how long it may wait for a lock, how
// long it may sit idle inside a transaction, and how soon a silent peer is noticed (TCP
// keepalives, tcp_user_timeout). Zero means off (sent as 0, so a server or role default does
// not apply either). Which program gets which values is decided in the config
// ([database], DatabaseConfig::session) and explained in taskq.toml(5).
#include "taskq/core/time.hpp"

namespace taskq {

struct SessionSettings {
  Duration statement_timeout{};            // statement_timeout
  Duration lock_timeout{};                 // lock_timeout
  Duration idle_in_transaction_timeout{};  // idle_in_transaction_session_timeout
  bool keepalives = true;
  Duration keepalives_idle = std::chrono::seconds{30};      // whole seconds
  Duration keepalives_interval = std::chrono::seconds{10};  // whole seconds
  int keepalives_count = 3;
  Duration tcp_user_timeout = std::chrono::seconds{30};  // milliseconds; 0: the kernel's default
};

}  // namespace taskq
