#pragma once
// The series every taskq daemon exports about itself: build info and the standard process
// metrics (the names Prometheus' client libraries use, so existing dashboards work).
#include <optional>
#include <string>

#include "taskq/metrics/registry.hpp"

namespace taskq::metrics {

/// This process as /proc shows it (Linux). Fields that cannot be read stay empty.
struct ProcessSample {
  std::optional<double> cpu_seconds;     // user + system
  std::optional<double> resident_bytes;  // RSS
  std::optional<double> virtual_bytes;   // VSZ
  std::optional<double> start_time;      // seconds since the epoch
  std::optional<double> open_fds;        // entries of /proc/self/fd
  std::optional<double> max_fds;         // RLIMIT_NOFILE (soft)
};
ProcessSample sample_process();

/// Registers taskq_build_info{program, version} (always 1) and process_cpu_seconds_total,
/// process_resident_memory_bytes, process_virtual_memory_bytes, process_start_time_seconds,
/// process_open_fds and process_max_fds, read from /proc at each render.
void add_process_metrics(Registry& registry, const std::string& program, const std::string& version);

}  // namespace taskq::metrics
