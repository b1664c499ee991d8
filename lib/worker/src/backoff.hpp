#pragma once
// Retry delays after a failed attempt.
#include <random>

#include "taskq/config/config.hpp"
#include "taskq/core/backoff.hpp"

namespace taskq::worker {

inline constexpr Duration max_retry_delay = backoff::cap;

/// exponential: the default curve of taskq/core/backoff.hpp (attempt^4 seconds: 1 s, 16 s, 81 s,
/// 256 s, ... with up to ±10% random jitter, capped at 24 hours); fixed: the configured delay.
/// `attempt` is the attempt that failed (1-based).
Duration retry_delay(const taskq::config::BackoffConfig& backoff, int attempt, std::mt19937_64& rng);

}  // namespace taskq::worker
