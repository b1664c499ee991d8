#include "taskq/core/host.hpp"

#include <limits.h>
#include <unistd.h>

namespace taskq {

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

}  // namespace taskq
