#pragma once
// The default retry curve, one definition for every place that sets a retry time: the worker
// after a failed attempt, and the store's rescue and stuck-job statements (which take these
// constants as parameters, so the SQL computes the same curve).
//
// delay(attempt) = min(min(attempt^exponent s, cap) * (1 + u * jitter), cap), u uniform in
// [-1, 1], attempt counted from 1 (0 counts as 1): 1 s, 16 s, 81 s, 256 s, ... up to 24 hours.
#include <chrono>

#include "taskq/core/time.hpp"

namespace taskq::backoff {

inline constexpr double exponent = 4.0;
inline constexpr double jitter = 0.1;  // up to ±10 %
inline constexpr Duration cap = std::chrono::hours{24};

/// The curve's delay after the failed `attempt`; `u` in [-1, 1] picks the jitter (0: none).
Duration delay(int attempt, double u);

}  // namespace taskq::backoff
