#pragma once
// What every taskq daemon does around its services: talk to systemd (READY, STOPPING, STATUS,
// WATCHDOG) and turn signals into documented shutdown and reload requests.
//
// Signals are blocked in every thread (call block_signals() before starting any thread) and
// taken synchronously by the main thread in wait_signal(), so no handler ever runs concurrently
// with the program.
#include <optional>
#include <string_view>

#include "taskq/core/time.hpp"

namespace taskq::daemon {

/// sd_notify wrappers; no-ops when NOTIFY_SOCKET is unset (not under systemd).
void notify_ready();
void notify_stopping();
void notify_status(std::string_view status);
void notify_watchdog();
/// Half the watchdog timeout systemd expects (WatchdogSec=), if one is set for this process.
std::optional<Duration> watchdog_interval();

enum class Signal { terminate, interrupt, reload };

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (threads started later inherit it) and
/// ignores SIGPIPE.
void block_signals();
/// Waits up to `timeout` for SIGTERM (terminate), SIGINT (interrupt) or SIGHUP (reload).
std::optional<Signal> wait_signal(Duration timeout);

}  // namespace taskq::daemon
