#pragma once
// The name this process reports for itself in worker rows, leases and logs.
#include <string>

namespace taskq {

/// This host's name (gethostname), or "unknown" when the kernel does not say.
std::string host_name();

}  // namespace taskq
