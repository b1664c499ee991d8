#include "taskq/api/tls_files.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "taskq/core/error.hpp"

using taskq::config::Config;
using taskq::config::validate_api_config;

namespace taskq::api {

void check_tls_files(const Config& c) {
  if (!c.api.tls) return;
  for (const auto& [key, path] : {std::pair{"cert", c.api.tls->cert}, std::pair{"key", c.api.tls->key}})
    if (::access(path.c_str(), R_OK) != 0)
      throw Error(Errc::invalid_input,
                  c.source + ": api.tls." + key + ": cannot read '" + path + "': " + std::strerror(errno));
}

void check_config(const Config& c) {
  validate_api_config(c);
  check_tls_files(c);
}

}  // namespace taskq::api
