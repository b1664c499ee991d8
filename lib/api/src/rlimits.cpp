#include "taskq/api/rlimits.hpp"

#include <sys/resource.h>

namespace taskq::api {

std::uint64_t raise_open_files() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < r.rlim_max) {
    rlimit want = r;
    want.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) return want.rlim_cur;
  }
  return r.rlim_cur;
}

std::optional<std::string> open_files_warning(std::uint64_t limit) {
  if (limit == 0 || limit >= 4096) return std::nullopt;
  return "open files limit is " + std::to_string(limit) + ": at most about " + std::to_string(limit - 64) +
         " connections and event streams (raise LimitNOFILE)";
}

}  // namespace taskq::api
