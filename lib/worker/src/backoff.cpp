#include "backoff.hpp"

#include <algorithm>
#include <cmath>

namespace taskq::worker {

Duration retry_delay(const BackoffConfig& backoff, int attempt, std::mt19937_64& rng) {
  if (!backoff.exponential) return backoff.fixed;
  const double a = std::max(1, attempt);
  const double base_s = std::min(a * a * a * a, 86400.0);
  std::uniform_real_distribution<double> jitter(-0.1, 0.1);
  const double s = std::min(base_s * (1.0 + jitter(rng)), 86400.0);
  return std::min<Duration>(max_retry_delay, Duration{static_cast<std::int64_t>(s * 1e6)});
}

}  // namespace taskq::worker
