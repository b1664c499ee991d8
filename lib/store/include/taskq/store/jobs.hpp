#pragma once
// Jobs as the store reads and changes them: filters and pages of list(), the changes cancel and
// retry make, and what a streamed insert did (see Store in store.hpp).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "taskq/core/job.hpp"

namespace taskq::store {

/// Which jobs an operation looks at. Empty lists and unset fields match everything.
struct JobFilter {
  std::vector<std::string> queues{};
  std::vector<JobState> states{};
  std::optional<std::string> kind{};
  std::optional<std::string> tag{};
  std::optional<JobId> after_id{};  // keyset pagination: only ids greater than this
  int limit = 100;
  // When set, list() stops before the job that would take the page's stored size (args, result,
  // progress, errors, metadata, as PostgreSQL stores them) past this; the first job always comes.
  std::optional<std::int64_t> max_bytes{};
};

/// A page of list(): the jobs, and whether JobFilter::max_bytes ended it before its limit.
struct JobPage {
  std::vector<Job> jobs;
  bool cut = false;
};

/// One job touched by cancel or retry.
struct JobChange {
  JobId id;
  std::string queue;
  std::string kind;
  JobState from;
  JobState to;  // for a running job being cancelled: running (cancel requested)
  bool cancel_requested = false;
  std::string trace_id{};  // the job's trace id, for log lines (rescue and stuck jobs; "" when unknown)
};

struct BulkInsertResult {
  std::int64_t inserted = 0;
  std::int64_t duplicates = 0;  // lines whose unique key matched a live job
};

}  // namespace taskq::store
