// W3C trace context (taskq/core/trace.hpp): a table of traceparent values, valid and invalid,
// with the normalized form or the reason; tracestate lists; new ids; child spans; how an
// explicit field and a header differ; the trace context of an attempt and of a log line.
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "job_trace.hpp"
#include "request_trace.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/job.hpp"
#include "taskq/core/trace.hpp"

using taskq::api::apply_request_trace;
using taskq::api::request_trace;
using taskq::api::RequestTrace;
using taskq::worker::begin_attempt;
using taskq::worker::job_label;
using taskq::worker::trace_id_of;

using namespace taskq;

namespace {

const std::string tid = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string pid = "00f067aa0ba902b7";
const std::string v00 = "00-" + tid + "-" + pid + "-01";

struct Case {
  std::string text;
  std::string normalized;  // "" = invalid
  std::string why;         // part of the reason when invalid
};

const Case cases[] = {
    // valid, version 00
    {v00, v00, ""},
    {"00-" + tid + "-" + pid + "-00", "00-" + tid + "-" + pid + "-00", ""},
    {"00-" + tid + "-" + pid + "-03", "00-" + tid + "-" + pid + "-01", ""},  // only `sampled` is kept
    {"00-" + tid + "-" + pid + "-ff", "00-" + tid + "-" + pid + "-01", ""},
    {"00-" + tid + "-" + pid + "-fe", "00-" + tid + "-" + pid + "-00", ""},
    {"00-00000000000000000000000000000001-0000000000000001-01",
     "00-00000000000000000000000000000001-0000000000000001-01", ""},
    // later versions: the first 55 characters, then the end or '-'
    {"01-" + tid + "-" + pid + "-01", v00, ""},
    {"cc-" + tid + "-" + pid + "-01-what-the-future-brings", v00, ""},
    {"fe-" + tid + "-" + pid + "-01-", v00, ""},
    {"cc-" + tid + "-" + pid + "-01x", "", "'-' after its first 55"},
    // invalid
    {"", "", "version"},
    {"0", "", "version"},
    {"ff-" + tid + "-" + pid + "-01", "", "version ff"},
    {"FF-" + tid + "-" + pid + "-01", "", "version"},
    {"0g-" + tid + "-" + pid + "-01", "", "version"},
    {"00-" + tid + "-" + pid + "-01-", "", "exactly 55"},
    {"00-" + tid + "-" + pid + "-1", "", "too short"},
    {"00-" + tid + "-" + pid, "", "too short"},
    {"00-" + tid + "-" + pid + "-01 ", "", "exactly 55"},
    {" 00-" + tid + "-" + pid + "-01", "", "version"},
    {"00_" + tid + "-" + pid + "-01", "", "expected 00-"},
    {"00-" + tid + "_" + pid + "-01", "", "expected 00-"},
    {"00-" + tid + "-" + pid + "_01", "", "expected 00-"},
    {"00-00000000000000000000000000000000-" + pid + "-01", "", "trace id must not be all zeros"},
    {"00-" + tid + "-0000000000000000-01", "", "parent id must not be all zeros"},
    {"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + pid + "-01", "", "trace id must be lowercase hex"},
    {"00-" + tid + "-00F067AA0BA902B7-01", "", "parent id must be lowercase hex"},
    {"00-4bf92f3577b34da6a3ce929d0e0e473g-" + pid + "-01", "", "trace id must be lowercase hex"},
    {"00-" + tid + "-" + pid + "-0g", "", "flags"},
    {"00-" + tid + "-" + pid + "-0F", "", "flags"},
    {"00-" + tid.substr(1) + "0-" + pid + "-01x", "", "exactly 55"},
    {"00-" + tid + "-" + pid.substr(1) + "-01x", "", "expected 00-"},
};

}  // namespace

TEST_CASE("traceparent: a table of valid and invalid values", "[trace]") {
  for (const auto& c : cases) {
    INFO("traceparent '" << c.text << "'");
    std::string why;
    const auto t = parse_traceparent(c.text, &why);
    if (c.normalized.empty()) {
      REQUIRE_FALSE(t);
      CHECK_THAT(why, Catch::Contains(c.why));
      CHECK_THROWS_WITH(checked_traceparent("traceparent", c.text), Catch::StartsWith("traceparent: "));
    } else {
      REQUIRE(t);
      CHECK(format_traceparent(*t) == c.normalized);
      CHECK(checked_traceparent("traceparent", c.text) == c.normalized);
    }
  }
}

TEST_CASE("tracestate: list members, keys, values and limits", "[trace]") {
  const std::string valid[] = {"",
                               "rojo=00f067aa0ba902b7",
                               "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
                               "rojo=1 , congo=2\t,,",
                               "tenant1@sys=value with spaces inside",
                               "a_-*/9=x",
                               "k=" + std::string(256, 'v'),
                               std::string(256, 'k') + "=v"};
  for (const auto& s : valid) {
    INFO("tracestate '" << s << "'");
    CHECK(tracestate_error(s).empty());
  }
  struct Bad {
    std::string text, why;
  };
  std::string members33;
  for (int i = 0; i < 33; ++i) members33 += (i ? ",k" : "k") + std::to_string(i) + "=v";
  std::string members32 = members33.substr(0, members33.rfind(','));
  CHECK(tracestate_error(members32).empty());
  const Bad bad[] = {
      {members33, "more than 32 list members"},
      {"novalue", "member 1 is not key=value"},
      {"a=1,Upper=2", "member 2: the key"},
      {"1abc=x", "member 1: the key"},
      {"=x", "member 1: the key"},
      {"@sys=x", "member 1: the key"},
      {"tenant@=x", "member 1: the key"},
      {"tenant@fifteen-chars-x=x", "member 1: the key"},
      {"k=", "member 1: the value"},
      {"k=a=b", "member 1: the value"},
      {"k=caf\xc3\xa9", "member 1: the value"},
      {"k=tab\there", "member 1: the value"},
      {"k=" + std::string(257, 'v'), "member 1: the value"},
      {std::string(257, 'k') + "=v", "member 1: the key"},
      {std::string(max_tracestate_bytes + 1, 'k'), "longer than"},
  };
  for (const auto& b : bad) {
    INFO("tracestate '" << b.text.substr(0, 80) << "'");
    CHECK_THAT(tracestate_error(b.text), Catch::Contains(b.why));
    CHECK_THROWS_WITH(check_tracestate("tracestate", b.text), Catch::StartsWith("tracestate: "));
  }
}

TEST_CASE("new traces and span ids are random, well formed and never all zeros", "[trace]") {
  std::set<std::string> traces, spans;
  for (int i = 0; i < 200; ++i) {
    const auto t = new_trace();
    const auto text = format_traceparent(t);
    REQUIRE(parse_traceparent(text));
    CHECK(text.substr(53) == "01");
    traces.insert(t.trace_id);
    const auto s = new_span_id();
    REQUIRE(s.size() == 16);
    REQUIRE(parse_traceparent("00-" + tid + "-" + s + "-01"));
    spans.insert(s);
  }
  CHECK(traces.size() == 200);
  CHECK(spans.size() == 200);
}

TEST_CASE("a child span keeps the trace id and the flags", "[trace]") {
  const auto parent = *parse_traceparent("00-" + tid + "-" + pid + "-00");
  CHECK(child_traceparent(parent, "b7ad6b7169203331") == "00-" + tid + "-b7ad6b7169203331-00");
}

TEST_CASE("validate_enqueue: explicit trace fields are bad input when malformed", "[trace]") {
  EnqueueParams p;
  p.kind = "k";
  p.traceparent = v00;
  p.tracestate = "rojo=1";
  CHECK_NOTHROW(validate_enqueue(p, EnqueueLimits{}));
  p.traceparent = "00-" + tid + "-0000000000000000-01";
  CHECK_THROWS_WITH(validate_enqueue(p, EnqueueLimits{}), "traceparent: parent id must not be all zeros");
  p.traceparent = v00;
  p.tracestate = "Rojo=1";
  CHECK_THROWS_WITH(validate_enqueue(p, EnqueueLimits{}), Catch::StartsWith("tracestate: list member 1: the key"));
  p.traceparent.reset();
  p.tracestate = "rojo=1";
  CHECK_THROWS_WITH(validate_enqueue(p, EnqueueLimits{}), "tracestate: given without a traceparent");
}

TEST_CASE("request headers: a job's own field wins, an invalid header is ignored", "[trace][api]") {
  const std::string other = "00-" + tid + "-b7ad6b7169203331-01";
  EnqueueParams p;
  p.kind = "k";
  apply_request_trace(p, RequestTrace{"01-" + tid + "-" + pid + "-01-x", "rojo=1", "req-1"});
  CHECK(p.traceparent == v00);  // normalized to version 00
  CHECK(p.tracestate == "rojo=1");
  CHECK(p.metadata == R"({"taskq_request_id":"req-1"})");

  EnqueueParams own;
  own.kind = "k";
  own.traceparent = other;
  own.metadata = R"({"taskq_request_id":"mine","a":1})";
  apply_request_trace(own, RequestTrace{v00, "rojo=1", "req-2"});
  CHECK(own.traceparent == other);
  CHECK_FALSE(own.tracestate);  // the header's tracestate belongs to the header's traceparent
  CHECK(own.metadata == R"({"taskq_request_id":"mine","a":1})");  // the client's key is kept

  EnqueueParams invalid;
  invalid.kind = "k";
  apply_request_trace(invalid, RequestTrace{"00-" + tid + "-0000000000000000-01", "rojo=1", ""});
  CHECK_FALSE(invalid.traceparent);  // the store starts a new trace
  CHECK_FALSE(invalid.tracestate);
  CHECK(invalid.metadata == "{}");  // no request id, nothing stored

  EnqueueParams bad_state;
  bad_state.kind = "k";
  apply_request_trace(bad_state, RequestTrace{v00, "Bad Key=1", "r"});
  CHECK(bad_state.traceparent == v00);
  CHECK_FALSE(bad_state.tracestate);
}

TEST_CASE("request headers: traceparent twice is none, tracestate headers are joined", "[trace][api]") {
  boost::beast::http::fields h;
  h.insert("traceparent", v00);
  h.insert("TraceState", "rojo=1");
  h.insert("tracestate", "congo=2");
  auto t = request_trace(h, "id-1");
  CHECK(t.traceparent == v00);
  CHECK(t.tracestate == "rojo=1,congo=2");
  CHECK(t.request_id == "id-1");
  h.insert("Traceparent", v00);
  t = request_trace(h, "id-2");
  CHECK(t.traceparent.empty());
}

TEST_CASE("an attempt is a child span with a span id of its own", "[trace][worker]") {
  Job job;
  job.id = 7;
  job.queue = "q";
  job.kind = "k";
  job.traceparent = v00;
  job.tracestate = "rojo=1";
  const auto a = begin_attempt(job);
  const auto b = begin_attempt(job);
  CHECK(a.trace_id == tid);
  CHECK(a.span_id != b.span_id);
  CHECK(a.span_id != pid);
  CHECK(a.traceparent == "00-" + tid + "-" + a.span_id + "-01");
  CHECK(a.tracestate == "rojo=1");
  CHECK(job_label(job) == "job 7 (queue q, kind k, trace_id=" + tid + ")");

  Job legacy;  // enqueued before schema version 5: a new trace
  legacy.traceparent.reset();
  legacy.tracestate = "stale=1";
  const auto c = begin_attempt(legacy);
  REQUIRE(legacy.traceparent);
  CHECK(trace_id_of(legacy) == c.trace_id);
  CHECK(parse_traceparent(c.traceparent));
  CHECK_FALSE(c.tracestate);
  Job none;
  CHECK(job_label(none) == "job 0 (queue , kind )");
}
