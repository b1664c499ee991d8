#pragma once
// Workers as the store records them: registration, what `taskctl workers` shows, and what a
// rescue of dead workers' jobs did.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "taskq/core/time.hpp"
#include "taskq/store/jobs.hpp"

namespace taskq::store {

struct WorkerInfo {
  std::int64_t id = 0;
  std::string host;
  int pid = 0;
  std::vector<std::string> queues;
  int concurrency = 0;
  std::string version;
  Timestamp started_at{};
  Timestamp heartbeat_at{};
  Duration heartbeat_age{};  // by the database's clock
  std::int64_t running = 0;
  std::vector<std::pair<std::string, std::int64_t>> running_by_kind;  // most first
};

struct RescueResult {
  std::vector<std::int64_t> dead_workers;  // dead workers whose jobs were looked at
  // Workers whose row had vanished while running jobs name them: each got a placeholder row, and
  // its jobs are rescued only if it does not heartbeat within the grace.
  std::vector<std::int64_t> vanished_workers;
  std::vector<JobChange> jobs;         // running -> scheduled (retry), failed or cancelled
  std::int64_t forgotten_workers = 0;  // rows of workers dead for over a day, deleted
};

struct WorkerRegistration {
  std::string host{};
  int pid = 0;
  std::vector<std::string> queues{};
  int concurrency = 0;
  std::string version{};
};

}  // namespace taskq::store
