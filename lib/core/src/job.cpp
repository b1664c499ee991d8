#include "taskq/core/job.hpp"

#include "taskq/core/json.hpp"

#include "taskq/core/error.hpp"
#include "taskq/core/jsonb_size.hpp"
#include "taskq/core/text.hpp"
#include "taskq/core/trace.hpp"

namespace taskq {
namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (c < 0x80)
      n = 0;
    else if ((c & 0xE0) == 0xC0 && c >= 0xC2)
      n = 1;
    else if ((c & 0xF0) == 0xE0)
      n = 2;
    else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
      n = 3;
    else
      return false;
    if (i + n >= s.size() && n > 0) return false;
    for (std::size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

void check_json(std::string_view field, std::string_view text, bool must_be_object) {
  const auto v = parse_json(field, text);
  if (must_be_object && !v.is_object())
    throw Error(Errc::invalid_input, std::string(field) + ": must be a JSON object");
}

}  // namespace

const char* to_string(JobState s) noexcept {
  switch (s) {
    case JobState::scheduled:
      return "scheduled";
    case JobState::available:
      return "available";
    case JobState::running:
      return "running";
    case JobState::completed:
      return "completed";
    case JobState::failed:
      return "failed";
    case JobState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

JobState parse_job_state(std::string_view text) {
  for (JobState s : all_job_states)
    if (text == to_string(s)) return s;
  throw Error(Errc::invalid_input, "unknown state '" + std::string(text) +
                                       "' (valid: scheduled, available, running, completed, failed, cancelled)");
}

std::vector<JobState> parse_job_states(std::string_view comma_list) {
  std::vector<JobState> out;
  for (const auto item : split(comma_list, ',')) {
    if (item.empty()) throw Error(Errc::invalid_input, "empty state in list '" + std::string(comma_list) + "'");
    const JobState s = parse_job_state(item);
    bool seen = false;
    for (JobState o : out) seen = seen || o == s;
    if (!seen) out.push_back(s);
  }
  return out;
}

bool is_final(JobState s) noexcept {
  return s == JobState::completed || s == JobState::failed || s == JobState::cancelled;
}

void validate_name(std::string_view what, std::string_view name) {
  const std::string w(what);
  if (name.empty()) throw Error(Errc::invalid_input, w + ": must not be empty");
  if (name.size() > max_name_bytes)
    throw Error(Errc::invalid_input, w + ": longer than " + std::to_string(max_name_bytes) + " bytes");
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      throw Error(Errc::invalid_input, w + ": contains a control character");
  if (!valid_utf8(name)) throw Error(Errc::invalid_input, w + ": is not valid UTF-8");
}

void validate_enqueue(const EnqueueParams& p, const EnqueueLimits& limits, JsonCheck json) {
  validate_name("kind", p.kind);
  validate_name("queue", p.queue);
  if (p.priority < min_priority || p.priority > max_priority)
    throw Error(Errc::invalid_input,
                "priority: " + std::to_string(p.priority) + " is out of range 0..9 (0 runs first)");
  if (p.max_attempts < 1 || p.max_attempts > 1000)
    throw Error(Errc::invalid_input, "max_attempts: " + std::to_string(p.max_attempts) + " is out of range 1..1000");
  if (p.timeout && p.timeout->count() <= 0) throw Error(Errc::invalid_input, "timeout: must be positive");
  if (p.delay && p.delay->count() < 0) throw Error(Errc::invalid_input, "in: must not be negative");
  const std::string longest = " (" + format_duration(max_duration) + ", 100 years)";
  if (p.timeout && *p.timeout > max_duration)
    throw Error(Errc::invalid_input, "timeout: more than the maximum" + longest);
  if (p.delay && *p.delay > max_duration) throw Error(Errc::invalid_input, "in: more than the maximum" + longest);
  using std::chrono::sys_days;
  if (p.run_at && (*p.run_at < Timestamp{sys_days{std::chrono::year{1} / 1 / 1}} ||
                   *p.run_at >= Timestamp{sys_days{std::chrono::year{10000} / 1 / 1}}))
    throw Error(Errc::invalid_input, "run_at: must be between the years 0001 and 9999");
  if (p.unique_key) validate_name("unique_key", *p.unique_key);
  if (p.tags.size() > max_tags)
    throw Error(Errc::invalid_input, "tags: more than " + std::to_string(max_tags) + " tags");
  for (const auto& t : p.tags) validate_name("tag", t);
  if (json == JsonCheck::parse) check_json("args", p.args, false);
  // The limit applies to the args as PostgreSQL stores them (numbers written out in full).
  if (const std::size_t stored = jsonb_text_size("args", p.args); stored > limits.max_args_bytes)
    throw Error(Errc::invalid_input, "args: " + std::to_string(stored) + " bytes as stored is over the limit of " +
                                         std::to_string(limits.max_args_bytes) +
                                         " bytes (jobs.max_args_bytes; numbers count written out in full, as "
                                         "PostgreSQL keeps them: 1e300 is 301 bytes)");
  if (p.args.find("\\u0000") != std::string::npos)
    throw Error(Errc::invalid_input, "args: contains \\u0000, which PostgreSQL jsonb cannot store");
  if (json == JsonCheck::parse) check_json("metadata", p.metadata, true);
  if (p.metadata.find("\\u0000") != std::string::npos)
    throw Error(Errc::invalid_input, "metadata: contains \\u0000, which PostgreSQL jsonb cannot store");
  if (p.traceparent) checked_traceparent("traceparent", *p.traceparent);
  if (p.tracestate) {
    if (!p.traceparent) throw Error(Errc::invalid_input, "tracestate: given without a traceparent");
    check_tracestate("tracestate", *p.tracestate);
  }
}

}  // namespace taskq
