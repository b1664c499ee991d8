#include "rows.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>

#include "sql_text.hpp"
#include "taskq/core/trace.hpp"

namespace taskq::store::rows {

std::string job_columns(std::string_view p) {
  // '%' stands for the prefix. Empty tags, metadata and errors are stored as NULL.
  static constexpr const char* cols[] = {"%id",
                                         "%queue",
                                         "%kind",
                                         "%args::text",
                                         "%state",
                                         "%priority",
                                         "%attempt",
                                         "%max_attempts",
                                         "%run_at",
                                         "%created_at",
                                         "%attempted_at",
                                         "%finished_at",
                                         "%worker_id",
                                         "%timeout_ms",
                                         "%unique_key",
                                         "COALESCE(array_to_json(%tags)::text, '[]')",
                                         "COALESCE(%metadata::text, '{}')",
                                         "COALESCE(%errors::text, '[]')",
                                         "%result::text",
                                         "%progress::text",
                                         "%cancel_requested_at",
                                         "%traceparent",
                                         "%tracestate"};
  std::string out;
  for (const char* c : cols) {
    if (!out.empty()) out += ", ";
    for (const char* q = c; *q; ++q) {
      if (*q == '%')
        out += p;
      else
        out += *q;
    }
  }
  return out;
}

std::vector<std::string> json_string_array(const char* text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& item : v.get_array())
    if (item.is_string()) out.emplace_back(item.get_string());
  return out;
}

Job read_job(const pqxx::row& r, int c) {
  Job j;
  j.id = r[c + 0].as<JobId>();
  j.queue = r[c + 1].c_str();
  j.kind = r[c + 2].c_str();
  j.args = r[c + 3].c_str();
  j.state = parse_job_state(r[c + 4].c_str());
  j.priority = r[c + 5].as<int>();
  j.attempt = r[c + 6].as<int>();
  j.max_attempts = r[c + 7].as<int>();
  j.run_at = parse_pg_timestamp(r[c + 8].c_str());
  j.created_at = parse_pg_timestamp(r[c + 9].c_str());
  j.attempted_at = opt_time(r[c + 10]);
  j.finished_at = opt_time(r[c + 11]);
  j.worker_id = opt<std::int64_t>(r[c + 12]);
  if (auto ms = opt<std::int64_t>(r[c + 13])) j.timeout = std::chrono::milliseconds{*ms};
  j.unique_key = opt<std::string>(r[c + 14]);
  j.tags = json_string_array(r[c + 15].c_str());
  j.metadata = r[c + 16].c_str();
  j.errors = r[c + 17].c_str();
  j.result = opt<std::string>(r[c + 18]);
  j.progress = opt<std::string>(r[c + 19]);
  j.cancel_requested_at = opt_time(r[c + 20]);
  j.traceparent = opt<std::string>(r[c + 21]);
  j.tracestate = opt<std::string>(r[c + 22]);
  return j;
}

std::string traceparent_of(const EnqueueParams& p) {
  if (p.traceparent) return checked_traceparent("traceparent", *p.traceparent);
  return format_traceparent(new_trace());
}

std::optional<std::string> opt_text_array(const std::vector<std::string>& v) {
  if (v.empty()) return std::nullopt;
  return sql::text_array(v);
}

std::optional<std::string> opt_state_array(const std::vector<JobState>& v) {
  if (v.empty()) return std::nullopt;
  std::vector<std::string> names;
  for (JobState s : v) names.emplace_back(to_string(s));
  return sql::text_array(names);
}

std::optional<std::int64_t> timeout_ms(const std::optional<Duration>& d) {
  if (!d) return std::nullopt;
  return std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
}

std::string id_list(const std::vector<JobId>& ids, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < ids.size() && i < max; ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  if (ids.size() > max) out += ", ... (" + std::to_string(ids.size()) + " in all)";
  return out;
}

}  // namespace taskq::store::rows
