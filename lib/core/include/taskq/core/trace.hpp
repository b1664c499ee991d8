#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
// values a job carries from whoever enqueued it to every attempt that runs it.
//
// traceparent is "<version>-<trace id>-<parent id>-<flags>": version 00 is exactly 55
// characters, a 32 lowercase hex trace id that is not all zeros, a 16 lowercase hex parent
// (span) id that is not all zeros and 2 hex flags. A later version (01..fe) is read the same way
// from its first 55 characters, which must be followed by the end or a '-' (the spec's rule for
// versions it does not know yet); version ff is invalid. taskq writes version 00 back, keeping
// only the `sampled` flag (the one flag version 00 defines).
//
// tracestate is kept verbatim once it is valid: at most 32 comma-separated list members, each
// `key=value` with the spec's key (at most 256 characters: lowercase letters, digits, _ - * /,
// optionally tenant@system) and value (at most 256 printable ASCII characters, no ',' or '=',
// not ending in a space) grammars; empty members between commas are allowed and do not count.
// Pure apart from new ids, which come from getrandom().
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "taskq/core/job.hpp"

namespace taskq {

inline constexpr std::size_t trace_id_hex = 32;
inline constexpr std::size_t span_id_hex = 16;
inline constexpr std::size_t max_tracestate_members = 32;
// 32 members of 256 + 1 + 256 characters, with a comma and a space between them.
inline constexpr std::size_t max_tracestate_bytes = 32 * (256 + 1 + 256) + 31 * 2;

struct TraceContext {
  std::string trace_id;    // 32 lowercase hex, not all zeros
  std::string parent_id;   // 16 lowercase hex, not all zeros: the caller's span
  std::uint8_t flags = 1;  // bit 0: sampled
};

/// Reads a traceparent value. Returns the reason it is invalid in `why` (and nullopt) otherwise.
std::optional<TraceContext> parse_traceparent(std::string_view text, std::string* why = nullptr);
/// "00-<trace id>-<parent id>-<flags>", version 00 whatever version was read.
std::string format_traceparent(const TraceContext& t);
/// Empty when `text` is a valid tracestate; otherwise what is wrong with it.
std::string tracestate_error(std::string_view text);

/// For an explicit field (a JSON `traceparent`, `--traceparent`): the normalized (version 00)
/// value, or Error(invalid_input) "<field>: <what is wrong>".
std::string checked_traceparent(std::string_view field, std::string_view text);
/// Error(invalid_input) "<field>: <what is wrong>" unless `text` is a valid tracestate.
void check_tracestate(std::string_view field, std::string_view text);

/// A new trace: random trace id and span id (getrandom), sampled.
TraceContext new_trace();
/// A random span id: 16 lowercase hex, not all zeros (getrandom).
std::string new_span_id();
/// The traceparent of a child span of `parent`'s trace: same trace id and flags, `span_id` as
/// the parent id.
std::string child_traceparent(const TraceContext& parent, std::string_view span_id);

/// How log lines name a job: "job ID (queue Q, kind K, trace_id=HEX)", without ", trace_id=..."
/// when `trace_id` is empty. The JSON log format lifts `trace_id=` into a field of its own.
std::string job_log_label(JobId id, const std::string& queue, const std::string& kind, const std::string& trace_id);

}  // namespace taskq
