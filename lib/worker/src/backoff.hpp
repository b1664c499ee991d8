#pragma once
// Retry delays after a failed attempt.
#include <random>

#include "taskq/config/config.hpp"

namespace taskq::worker {

inline constexpr Duration max_retry_delay = std::chrono::hours{24};

/// exponential: attempt^4 seconds (1 s, 16 s, 81 s, 256 s, ...) with up to ±10% random jitter,
/// capped at 24 hours; fixed: the configured delay. `attempt` is the attempt that failed (1-based).
Duration retry_delay(const BackoffConfig& backoff, int attempt, std::mt19937_64& rng);

}  // namespace taskq::worker
