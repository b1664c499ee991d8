#include "backoff.hpp"

using taskq::config::BackoffConfig;

namespace taskq::worker {

Duration retry_delay(const BackoffConfig& config, int attempt, std::mt19937_64& rng) {
  if (!config.exponential) return config.fixed;
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  return backoff::delay(attempt, u(rng));
}

}  // namespace taskq::worker
