#pragma once
// How a daemon connects: the same [database] settings for each, its own session settings
// (timeouts per program) and its name on its connections.
#include "taskq/config/config.hpp"
#include "taskq/store/store.hpp"

namespace taskq::daemon {

/// [database] url, schema and connect_timeout; the session settings of `program`; the program's
/// name ("taskq-workerd", ...) as application_name.
store::StoreOptions store_options(const taskq::config::Config& config, taskq::config::Program program);

}  // namespace taskq::daemon
