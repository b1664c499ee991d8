#include "taskq/core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace taskq::backoff {

Duration delay(int attempt, double u) {
  const double cap_s = std::chrono::duration<double>(cap).count();
  const double base_s = std::min(std::pow(static_cast<double>(std::max(1, attempt)), exponent), cap_s);
  const double s = std::min(base_s * (1.0 + std::clamp(u, -1.0, 1.0) * jitter), cap_s);
  return std::min<Duration>(cap, Duration{static_cast<std::int64_t>(s * 1e6)});
}

}  // namespace taskq::backoff
