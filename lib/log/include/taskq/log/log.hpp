#pragma once
// Logging setup for every taskq program: spdlog's default logger writes to stderr, as text for
// terminals (timestamps dropped under systemd's journal, which adds its own) or as JSON lines.
#include <string_view>

#include "taskq/config/config.hpp"

namespace taskq::log {

/// Installs the default logger. Throws Error(invalid_input) for an unknown level or format.
void setup_logging(const taskq::config::LogConfig& config, std::string_view program);

}  // namespace taskq::log
