#pragma once
// The job: its states, its stored form, and what a client may ask for when enqueueing one.
//
// Invariants: `available` jobs are ready to run now; `scheduled` jobs wait for run_at (first run
// or retry backoff) and are promoted in bulk; `completed`, `failed` and `cancelled` are final and
// carry finished_at. A job is claimed (available -> running) by exactly one worker.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskq/core/time.hpp"

namespace taskq {

using JobId = std::int64_t;

enum class JobState { scheduled, available, running, completed, failed, cancelled };

inline constexpr JobState all_job_states[] = {JobState::scheduled, JobState::available, JobState::running,
                                              JobState::completed, JobState::failed,    JobState::cancelled};

const char* to_string(JobState s) noexcept;
/// Throws Error(invalid_input) listing the valid states.
JobState parse_job_state(std::string_view text);
/// "failed,cancelled" -> states; empty items and duplicates rejected.
std::vector<JobState> parse_job_states(std::string_view comma_list);
bool is_final(JobState s) noexcept;

struct Job {
  JobId id = 0;
  std::string queue;
  std::string kind;
  std::string args = "{}";  // JSON text as stored (jsonb normal form)
  JobState state = JobState::available;
  int priority = 5;
  int attempt = 0;
  int max_attempts = 25;
  Timestamp run_at{};
  Timestamp created_at{};
  std::optional<Timestamp> attempted_at;
  std::optional<Timestamp> finished_at;
  std::optional<std::int64_t> worker_id;
  std::optional<Duration> timeout;
  std::optional<std::string> unique_key;
  std::vector<std::string> tags;
  std::string metadata = "{}";          // JSON object text
  std::string errors = "[]";            // JSON array text: one entry per failed attempt
  std::optional<std::string> result;    // JSON text
  std::optional<std::string> progress;  // JSON text
  std::optional<Timestamp> cancel_requested_at;
  // W3C trace context (trace.hpp): the enqueuer's traceparent (version 00), and its tracestate.
  // Null only for jobs enqueued before schema version 5.
  std::optional<std::string> traceparent;
  std::optional<std::string> tracestate;
};

inline constexpr int min_priority = 0;
inline constexpr int max_priority = 9;
inline constexpr int default_priority = 5;
inline constexpr int default_max_attempts = 25;
inline constexpr std::string_view default_queue = "default";
inline constexpr std::size_t max_name_bytes = 128;
inline constexpr std::size_t max_tags = 64;
inline constexpr std::size_t default_max_args_bytes = 1024 * 1024;

/// What a client asks for. Validate with validate_enqueue() before handing it to the store.
struct EnqueueParams {
  std::string kind;
  std::string args = "{}";
  std::string queue = std::string(default_queue);
  int priority = default_priority;
  std::optional<Timestamp> run_at;  // absolute; wins over delay
  std::optional<Duration> delay;    // relative to the database's now()
  int max_attempts = default_max_attempts;
  std::optional<Duration> timeout;
  std::optional<std::string> unique_key;
  std::vector<std::string> tags;
  std::string metadata = "{}";
  // W3C trace context. An explicit value must be valid (validate_enqueue); the store gives a job
  // without one a new trace. tracestate needs a traceparent.
  std::optional<std::string> traceparent;
  std::optional<std::string> tracestate;
};

struct EnqueueLimits {
  std::size_t max_args_bytes = default_max_args_bytes;
};

enum class JsonCheck {
  parse,           // args and metadata are text from a user: parse them
  already_parsed,  // they were produced by serializing parsed JSON (metadata an object)
};

/// Checks every field; throws Error(invalid_input) with "<field>: <what is wrong>". Also checks
/// that args and metadata are JSON (metadata an object) that PostgreSQL's jsonb can store.
void validate_enqueue(const EnqueueParams& p, const EnqueueLimits& limits, JsonCheck json = JsonCheck::parse);
/// A queue, kind or tag name: 1..128 bytes of UTF-8 without control characters. Stored verbatim.
void validate_name(std::string_view what, std::string_view name);

struct EnqueueResult {
  Job job;
  bool duplicate = false;  // an existing job with the same unique key was returned
};

}  // namespace taskq
