#pragma once
// Reading rows and writing parameters: the pieces every area of the store uses.
#include <pqxx/pqxx>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskq/core/job.hpp"
#include "taskq/core/time.hpp"

namespace taskq::store::rows {

// The columns of a full job row, in the order read_job() expects. `p` prefixes each column.
std::string job_columns(std::string_view p);

// Reads a full row laid out by job_columns(), starting at column `c`.
Job read_job(const pqxx::row& r, int c = 0);

template <typename T>
std::optional<T> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<T>();
}

inline std::optional<Timestamp> opt_time(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return parse_pg_timestamp(f.c_str());
}

std::vector<std::string> json_string_array(const char* text);

// The traceparent a new job is stored with: the one asked for (normalized to version 00), or a
// new trace.
std::string traceparent_of(const EnqueueParams& p);

// Array parameters that match everything when empty (NULL).
std::optional<std::string> opt_text_array(const std::vector<std::string>& v);
std::optional<std::string> opt_state_array(const std::vector<JobState>& v);

std::optional<std::int64_t> timeout_ms(const std::optional<Duration>& d);

// "1, 2, 3", at most `max` ids then ", ... (N in all)", for messages.
std::string id_list(const std::vector<JobId>& ids, std::size_t max = 10);

}  // namespace taskq::store::rows
