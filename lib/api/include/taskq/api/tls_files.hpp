#pragma once
// taskq-apid's check of the TLS files named in its config: validate_api_config() checks the keys;
// this checks that the files can be read, so that --check-config and a start both name the
// problem before the server tries to load them.
#include "taskq/config/config.hpp"

namespace taskq::api {

/// With [api.tls]: its cert and key are readable by this process. Throws Error(invalid_input)
/// naming the config file, the key, the path and the reason.
void check_tls_files(const taskq::config::Config& c);

/// Everything taskq-apid checks in its config: validate_api_config(), then check_tls_files().
void check_config(const taskq::config::Config& c);

}  // namespace taskq::api
