#include "taskq/core/json.hpp"

#include <cmath>

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>

#include "taskq/core/error.hpp"

namespace taskq {
namespace json = boost::json;

namespace {

json::value opt_time(const std::optional<Timestamp>& t) {
  return t ? json::value(format_rfc3339(*t)) : json::value(nullptr);
}

json::value embedded(std::string_view field, const std::optional<std::string>& text) {
  if (!text) return nullptr;
  return parse_json(field, *text);
}

[[noreturn]] void wrong_type(std::string_view field, std::string_view expected) {
  throw Error(Errc::invalid_input, std::string(field) + ": must be " + std::string(expected));
}

const json::string& need_string(std::string_view field, const json::value& v) {
  if (!v.is_string()) wrong_type(field, "a string");
  return v.get_string();
}

std::int64_t need_int(std::string_view field, const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(v.get_uint64());
    throw Error(Errc::invalid_input, std::string(field) + ": out of range");
  }
  // A double converts only when it is a whole number within int64's range (casting one outside
  // it is undefined behaviour): 1e20 is out of range, not some wrapped value.
  if (v.is_double()) {
    const double d = v.get_double();
    if (d >= -9.2e18 && d <= 9.2e18 && d == std::trunc(d)) return static_cast<std::int64_t>(d);
    if (std::isfinite(d) && d == std::trunc(d)) throw Error(Errc::invalid_input, std::string(field) + ": out of range");
  }
  wrong_type(field, "an integer");
}

int need_small_int(std::string_view field, const json::value& v) {
  const std::int64_t n = need_int(field, v);
  if (n < INT32_MIN || n > INT32_MAX) throw Error(Errc::invalid_input, std::string(field) + ": out of range");
  return static_cast<int>(n);
}

Duration need_duration(std::string_view field, const json::value& v) {
  if (v.is_string()) {
    try {
      return parse_duration(v.get_string());
    } catch (const Error& e) {
      throw Error(Errc::invalid_input, std::string(field) + ": " + e.what());
    }
  }
  if (v.is_number()) {
    try {
      return duration_from_seconds(v.to_number<double>());
    } catch (const Error& e) {
      throw Error(Errc::invalid_input, std::string(field) + ": " + e.what());
    }
  }
  wrong_type(field, "a duration string like \"30s\" or a number of seconds");
}

}  // namespace

json::value parse_json(std::string_view what, std::string_view text) {
  // The stream parser tells how far it got, so the message can point at the bad byte.
  json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (!ec) parser.finish(ec);
  if (ec) {
    const std::size_t at = std::min(used, text.size());
    std::string near(text.substr(at, 20));
    for (char& c : near)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    throw Error(Errc::invalid_input, std::string(what) + ": invalid JSON at byte " + std::to_string(at + 1) + ": " +
                                         ec.message() + (near.empty() ? " (unexpected end)" : " near '" + near + "'"));
  }
  return parser.release();
}

json::object job_to_json(const Job& job) {
  json::object o;
  o["id"] = job.id;
  o["queue"] = job.queue;
  o["kind"] = job.kind;
  o["state"] = to_string(job.state);
  o["args"] = parse_json("args", job.args);
  o["priority"] = job.priority;
  o["attempt"] = job.attempt;
  o["max_attempts"] = job.max_attempts;
  o["run_at"] = format_rfc3339(job.run_at);
  o["created_at"] = format_rfc3339(job.created_at);
  o["attempted_at"] = opt_time(job.attempted_at);
  o["finished_at"] = opt_time(job.finished_at);
  o["worker_id"] = job.worker_id ? json::value(*job.worker_id) : json::value(nullptr);
  o["timeout"] = job.timeout ? json::value(format_duration(*job.timeout)) : json::value(nullptr);
  o["unique_key"] = job.unique_key ? json::value(*job.unique_key) : json::value(nullptr);
  json::array tags;
  for (const auto& t : job.tags) tags.emplace_back(t);
  o["tags"] = std::move(tags);
  o["metadata"] = parse_json("metadata", job.metadata);
  o["errors"] = parse_json("errors", job.errors);
  o["result"] = embedded("result", job.result);
  o["progress"] = embedded("progress", job.progress);
  o["cancel_requested_at"] = opt_time(job.cancel_requested_at);
  o["traceparent"] = job.traceparent ? json::value(*job.traceparent) : json::value(nullptr);
  o["tracestate"] = job.tracestate ? json::value(*job.tracestate) : json::value(nullptr);
  return o;
}

EnqueueParams enqueue_params_from_json(const json::value& v) {
  if (!v.is_object()) throw Error(Errc::invalid_input, "job: must be a JSON object with at least \"kind\"");
  const json::object& o = v.get_object();
  EnqueueParams p;
  bool have_kind = false;
  for (const auto& [key, val] : o) {
    if (key == "kind") {
      p.kind = need_string("kind", val);
      have_kind = true;
    } else if (key == "args") {
      p.args = json::serialize(val);
    } else if (key == "queue") {
      p.queue = need_string("queue", val);
    } else if (key == "priority") {
      p.priority = need_small_int("priority", val);
    } else if (key == "run_at") {
      if (!val.is_null()) p.run_at = parse_rfc3339(need_string("run_at", val));
    } else if (key == "in") {
      if (!val.is_null()) p.delay = need_duration(key, val);
    } else if (key == "max_attempts") {
      p.max_attempts = need_small_int("max_attempts", val);
    } else if (key == "timeout") {
      if (!val.is_null()) p.timeout = need_duration("timeout", val);
    } else if (key == "unique_key") {
      if (!val.is_null()) p.unique_key = std::string(need_string("unique_key", val));
    } else if (key == "tags") {
      if (!val.is_array()) wrong_type("tags", "an array of strings");
      for (const auto& t : val.get_array()) p.tags.emplace_back(need_string("tags[]", t));
    } else if (key == "metadata") {
      if (!val.is_object()) wrong_type("metadata", "a JSON object");
      p.metadata = json::serialize(val);
    } else if (key == "traceparent") {
      if (!val.is_null()) p.traceparent = std::string(need_string("traceparent", val));
    } else if (key == "tracestate") {
      if (!val.is_null()) p.tracestate = std::string(need_string("tracestate", val));
    } else {
      throw Error(Errc::invalid_input,
                  "unknown field \"" + std::string(key) +
                      "\" (known: kind, args, queue, priority, run_at, in, max_attempts, timeout, unique_key, tags, "
                      "metadata, traceparent, tracestate)");
    }
  }
  if (!have_kind) throw Error(Errc::invalid_input, "kind: missing");
  if (p.run_at && p.delay) throw Error(Errc::invalid_input, "run_at and in: give one, not both");
  return p;
}

EnqueueParams enqueue_params_from_json_text(std::string_view text) {
  return enqueue_params_from_json(parse_json("job", text));
}

}  // namespace taskq
