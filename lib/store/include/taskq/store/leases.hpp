#pragma once
// Leader leases and the fences that tie an action to the lease it was decided under.
#include <cstdint>
#include <string>

#include "taskq/core/time.hpp"

namespace taskq::store {

/// The lease taskq-schedulerd's instances compete for (one leads at a time); taskctl and the API
/// read it by this name.
inline constexpr const char* scheduler_lease_name = "scheduler";

/// A named leader lease (the scheduler's). `term` grows by one at every change of holder and is
/// never reused, so an action fenced by (holder, term) cannot succeed after the lease was lost.
struct Lease {
  std::string name;
  std::string holder;  // "" once resigned
  std::string host;    // where the holder runs (for operators)
  int pid = 0;
  std::int64_t term = 0;
  Timestamp acquired_at{};
  Timestamp renewed_at{};
  Timestamp expires_at{};
  bool valid = false;     // held and not expired, by the database's clock
  Duration expires_in{};  // until expires_at, by the database's clock (0 once expired)
};

/// Who may act: an action fenced by it happens only while this holder holds the lease with
/// this term (checked in the action's own transaction).
struct LeaseFence {
  std::string lease;
  std::string holder;
  std::int64_t term = 0;
};

}  // namespace taskq::store
