// taskq-apid's routing as pure decisions: which route a path is (parameters, percent-decoding,
// literals before parameters), 404 against 405 (with Allow), HEAD, the token checked after the
// method and before the route's own checks, and what the headers decide before a body is read.
#include <catch2/catch.hpp>
#include <set>

#include "route_table.hpp"
#include "routes.hpp"

using taskq::config::ApiToken;

using namespace taskq;
using namespace taskq::api;

namespace {

// Tokens "r" (read), "e" (enqueue) and "a" (admin), known by their hashes as in the config.
std::vector<ApiToken> tokens() {
  return {{"ro", sha256_hex("r"), {"read"}, 0},
          {"en", sha256_hex("e"), {"enqueue"}, 0},
          {"ad", sha256_hex("a"), {"admin"}, 0}};
}

struct Fixture {
  Authenticator auth{tokens(), false};
  EnqueueLimits limits;
  Metrics metrics;
  std::atomic<int> in_flight{0};
  RouteContext ctx{auth, limits, metrics, in_flight, "1.2.3"};

  Routed call(const std::string& method, const std::string& path, const std::string& token = "a",
              const std::string& query = "") {
    Request req;
    req.method = method;
    req.path = path;
    req.query = query;
    if (!token.empty()) req.authorization = "Bearer " + token;
    return route(req, ctx);
  }
};

std::string header(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "(none)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The names of the entries a path leads to.
std::vector<std::string> names(const PathMatch& m) {
  std::vector<std::string> out;
  for (const auto* e : m.entries) out.push_back(e->name);
  return out;
}

}  // namespace

TEST_CASE("routes: a path matches its pattern segment by segment and names its parameters", "[unit][api]") {
  auto m = match_path("/v1/jobs/42/cancel");
  CHECK(names(m) == std::vector<std::string>{"POST /v1/jobs/{id}/cancel"});
  CHECK(m.params == RouteParams{{"id", "42"}});

  m = match_path("/v1/queues/emails/pause");
  CHECK(names(m) == std::vector<std::string>{"POST /v1/queues/{q}/pause"});
  CHECK(m.params == RouteParams{{"q", "emails"}});

  // One pattern, two methods: both entries, in table order.
  CHECK(names(match_path("/v1/jobs")) == std::vector<std::string>{"GET /v1/jobs", "POST /v1/jobs"});
  // Empty segments are ignored.
  CHECK(names(match_path("//v1//jobs/")) == std::vector<std::string>{"GET /v1/jobs", "POST /v1/jobs"});
  CHECK(match_path("/v1/jobs/").params.empty());

  // Each segment is percent-decoded before it is compared; a '/' decoded stays in its segment.
  m = match_path("/v1/queues/a%20b/pause");
  CHECK(m.params.at("q") == "a b");
  CHECK(match_path("/v1/%6aobs/7").params.at("id") == "7");
  CHECK(match_path("/v1/jobs%2F42").entries.empty());
  CHECK(match_path("/v1/jobs/%zz").malformed);
  CHECK(match_path("/v1/jobs/%4").malformed);

  // Too few or too many segments, or another literal: nothing.
  for (const char* path : {"", "/", "/v1", "/v2/jobs", "/V1/jobs", "/v1/jobs/42/cancel/x", "/v1/queues/q",
                           "/v1/queues/q/stop", "/healthz/x", "/v1/healthz", "/jobs"}) {
    INFO(path);
    CHECK(match_path(path).entries.empty());
    CHECK(!match_path(path).malformed);
  }
}

TEST_CASE("routes: a literal segment wins over a parameter, without going back", "[unit][api]") {
  CHECK(names(match_path("/v1/jobs/batch")) == std::vector<std::string>{"POST /v1/jobs/batch"});
  CHECK(names(match_path("/v1/jobs/%62atch")) == std::vector<std::string>{"POST /v1/jobs/batch"});
  // Not job "batch": once "batch" took the literal, no parameter route is tried.
  CHECK(match_path("/v1/jobs/batch/cancel").entries.empty());
  CHECK(match_path("/v1/jobs/batch/events").entries.empty());
  // Where no route has a literal, any value is a parameter.
  CHECK(match_path("/v1/queues/batch/pause").params.at("q") == "batch");
  CHECK(match_path("/v1/jobs/events").params.at("id") == "events");

  Fixture f;
  const auto r = f.call("GET", "/v1/jobs/batch");
  REQUIRE(r.response);
  CHECK(r.response->status == 405);
  CHECK(header(*r.response, "Allow") == "POST");
  CHECK(r.route == "POST /v1/jobs/batch");
  const auto gone = f.call("POST", "/v1/jobs/batch/cancel");
  REQUIRE(gone.response);
  CHECK(gone.response->status == 404);
  CHECK(gone.route == "unmatched");
}

TEST_CASE("routes: no pattern is 404, a pattern without the method is 405 with Allow", "[unit][api]") {
  Fixture f;
  auto r = f.call("GET", "/v2/jobs");
  REQUIRE(r.response);
  CHECK(r.response->status == 404);
  CHECK(r.route == "unmatched");
  CHECK(r.response->body == R"({"error":{"code":"not_found","message":"no such path: /v2/jobs","field":null}})"
                            "\n");

  r = f.call("GET", "/v1/jobs/%zz");
  REQUIRE(r.response);
  CHECK(r.response->status == 400);
  CHECK(contains(r.response->body, "\"malformed_path\""));
  CHECK(r.route == "unmatched");

  r = f.call("PUT", "/v1/jobs");
  REQUIRE(r.response);
  CHECK(r.response->status == 405);
  CHECK(header(*r.response, "Allow") == "GET, POST");
  CHECK(r.response->body ==
        R"({"error":{"code":"method_not_allowed","message":"use GET, POST on this path","field":null}})"
        "\n");
  CHECK(r.route == "GET /v1/jobs");  // a 405 counts under the pattern's first route

  r = f.call("DELETE", "/v1/jobs/42");
  REQUIRE(r.response);
  CHECK(r.response->status == 405);
  CHECK(header(*r.response, "Allow") == "GET");
  CHECK(r.route == "GET /v1/jobs/{id}");

  r = f.call("GET", "/v1/queues/q/resume");
  REQUIRE(r.response);
  CHECK(r.response->status == 405);
  CHECK(header(*r.response, "Allow") == "POST");
  CHECK(r.route == "POST /v1/queues/{q}/resume");

  // The method is judged before the token: a 405 needs none.
  r = f.call("POST", "/v1/stats", "");
  REQUIRE(r.response);
  CHECK(r.response->status == 405);
}

TEST_CASE("routes: HEAD is a GET without the body, except on event streams", "[unit][api]") {
  Fixture f;
  auto r = f.call("HEAD", "/v1/jobs");
  CHECK(!r.response);
  CHECK(r.task);
  CHECK(r.route == "GET /v1/jobs");
  r = f.call("HEAD", "/healthz", "");
  REQUIRE(r.response);
  CHECK(r.response->status == 200);
  for (const char* path : {"/v1/events", "/v1/jobs/1/events"}) {
    INFO(path);
    r = f.call("HEAD", path);
    REQUIRE(r.response);
    CHECK(r.response->status == 405);
    CHECK(header(*r.response, "Allow") == "GET");
  }
  r = f.call("HEAD", "/v1/jobs/batch");
  REQUIRE(r.response);
  CHECK(r.response->status == 405);
}

TEST_CASE("routes: the token is checked after the method and before the route's own checks", "[unit][api]") {
  Fixture f;
  // A bad job id is only told to a caller that may read.
  auto r = f.call("GET", "/v1/jobs/abc", "");
  REQUIRE(r.response);
  CHECK(r.response->status == 401);
  CHECK(header(*r.response, "WWW-Authenticate") == "Bearer");
  CHECK(r.route == "GET /v1/jobs/{id}");
  r = f.call("GET", "/v1/jobs/abc", "r");
  REQUIRE(r.response);
  CHECK(r.response->status == 404);
  CHECK(contains(r.response->body, "no such job: 'abc' is not a job id"));

  // Each route's scope.
  struct Case {
    const char* method;
    const char* path;
    const char* token;
    unsigned status;  // 0: accepted, the work handed on
  } cases[] = {
      {"GET", "/v1/jobs", "r", 0},
      {"GET", "/v1/jobs", "e", 403},
      {"POST", "/v1/jobs", "r", 403},
      {"POST", "/v1/jobs/batch", "r", 403},
      {"GET", "/v1/jobs/1", "e", 403},
      {"GET", "/v1/jobs/1/events", "e", 403},
      {"POST", "/v1/jobs/1/cancel", "r", 403},
      {"POST", "/v1/jobs/1/retry", "e", 403},
      {"POST", "/v1/jobs/1/retry", "a", 0},
      {"GET", "/v1/queues", "e", 403},
      {"POST", "/v1/queues/q/pause", "r", 403},
      {"POST", "/v1/queues/q/resume", "a", 0},
      {"GET", "/v1/events", "e", 403},
      {"GET", "/v1/stats", "e", 403},
      {"GET", "/v1/workers", "e", 403},
      {"GET", "/v1/workers", "x", 401},
      {"GET", "/v1/stats", "a", 0},
      {"GET", "/healthz", "", 200},
      {"GET", "/readyz", "", 0},
      {"GET", "/metrics", "", 0},
  };
  for (const auto& c : cases) {
    INFO(c.method << " " << c.path << " with token '" << c.token << "'");
    r = f.call(c.method, c.path, c.token);
    CHECK((r.response ? r.response->status : 0) == c.status);
  }

  // The refusals name what was wrong.
  r = f.call("POST", "/v1/jobs/1/cancel", "r");
  REQUIRE(r.response);
  CHECK(contains(r.response->body, "token 'ro' lacks the admin scope"));
  CHECK(contains(r.response->body, "\"forbidden\""));
  CHECK(header(*r.response, "WWW-Authenticate") == "(none)");
}

TEST_CASE("routes: /metrics needs the read scope only with api.metrics_auth", "[unit][api]") {
  Fixture f;
  CHECK(f.call("GET", "/metrics", "").task);
  f.ctx.metrics_auth = true;
  auto r = f.call("GET", "/metrics", "");
  REQUIRE(r.response);
  CHECK(r.response->status == 401);
  r = f.call("GET", "/metrics", "e");
  REQUIRE(r.response);
  CHECK(r.response->status == 403);
  CHECK(f.call("GET", "/metrics", "r").task);
  CHECK(f.call("GET", "/healthz", "").response->status == 200);  // the probes stay open
}

TEST_CASE("routes: the headers decide 401, 403, 405 and 415 before the body is read", "[unit][api]") {
  Fixture f;
  Request req;
  req.method = "POST";
  req.path = "/v1/jobs";
  req.content_type = "application/json";
  req.authorization = "Bearer e";
  req.body_pending = true;
  auto r = route(req, f.ctx);
  CHECK(!r.response);  // read the body next
  CHECK(!r.enqueue);
  CHECK(!r.task);
  CHECK(r.route == "POST /v1/jobs");

  req.content_type = "text/plain";
  r = route(req, f.ctx);
  REQUIRE(r.response);
  CHECK(r.response->status == 415);
  CHECK(contains(r.response->body, "got 'text/plain'"));

  req.authorization = "";
  r = route(req, f.ctx);
  REQUIRE(r.response);
  CHECK(r.response->status == 401);

  req.path = "/v1/jobs/batch";
  req.authorization = "Bearer e";
  req.content_type = "application/x-ndjson";
  r = route(req, f.ctx);
  CHECK(!r.response);
  CHECK(!r.task);

  // The body read, the same request is decided in full.
  req.path = "/v1/jobs";
  req.content_type = "Application/JSON; charset=utf-8";
  req.body_pending = false;
  req.body = R"({"queue":"default","kind":"send","args":{}})";
  req.idempotency_key = "k1";
  r = route(req, f.ctx);
  CHECK(!r.response);
  REQUIRE(r.enqueue);
  CHECK(r.enqueue->kind == "send");
  CHECK(r.enqueue->unique_key == "k1");
  CHECK(r.ok_status == 201);

  req.body = R"({"queue":"default","kind":"send","args":{},"unique_key":"other"})";
  r = route(req, f.ctx);
  REQUIRE(r.response);
  CHECK(r.response->status == 422);
  CHECK(contains(r.response->body, "differs from the Idempotency-Key header"));
}

TEST_CASE("routes: parameters and queries are checked by their route", "[unit][api]") {
  Fixture f;
  auto r = f.call("GET", "/v1/jobs/42");
  CHECK(!r.response);
  CHECK(r.get == JobId{42});
  for (const char* bad : {"0", "-1", "4x", "99999999999999999999"}) {
    INFO(bad);
    r = f.call("GET", std::string("/v1/jobs/") + bad);
    REQUIRE(r.response);
    CHECK(r.response->status == 404);
  }

  r = f.call("POST", "/v1/jobs/7/cancel");
  CHECK(!r.response);
  CHECK(r.task);
  CHECK(r.may_lock);  // cancel waits on the job's row lock at most on its share of the pool

  r = f.call("POST", "/v1/queues/bad%0Aname/pause");
  REQUIRE(r.response);
  CHECK(r.response->status == 422);
  CHECK(contains(r.response->body, "\"field\":\"queue\""));
  CHECK(f.call("POST", "/v1/queues/emails/pause").may_lock);

  r = f.call("GET", "/v1/jobs", "r", "limit=0");
  REQUIRE(r.response);
  CHECK(r.response->status == 422);
  CHECK(contains(r.response->body, "limit: must be an integer from 1 to 1000"));
  r = f.call("GET", "/v1/jobs", "r", "nope=1");
  REQUIRE(r.response);
  CHECK(contains(r.response->body, "nope: unknown query parameter"));
  r = f.call("GET", "/v1/jobs", "r", "queue=%zz");
  REQUIRE(r.response);
  CHECK(r.response->status == 400);
  CHECK(contains(r.response->body, "\"malformed_query\""));
  CHECK(f.call("GET", "/v1/jobs", "r", "queue=a,b&state=available&limit=5&after=3").task);

  // Event streams carry the token's name (for the per-token stream limit).
  r = f.call("GET", "/v1/events", "r", "queue=a,b");
  REQUIRE(r.stream);
  CHECK(!r.stream->job);
  CHECK(r.stream->queues == std::vector<std::string>{"a", "b"});
  CHECK(r.token == "ro");
  r = f.call("GET", "/v1/jobs/5/events", "a");
  REQUIRE(r.stream);
  CHECK(r.stream->job == JobId{5});
  CHECK(r.token == "ad");
  r = f.call("GET", "/v1/events", "r", "queue=bad%01name");
  REQUIRE(r.response);
  CHECK(r.response->status == 422);
}

TEST_CASE("routes: percent-decoding of paths and queries", "[unit][api]") {
  CHECK(percent_decode("a%20b") == "a b");
  CHECK(percent_decode("a+b") == "a b");
  CHECK(percent_decode("%2f%2F") == "//");
  CHECK(percent_decode("") == "");
  CHECK(!percent_decode("%"));
  CHECK(!percent_decode("%2"));
  CHECK(!percent_decode("%g0"));
  CHECK(!percent_decode("%0g"));
}

TEST_CASE("routes: every entry of the table is well formed and distinct", "[unit][api]") {
  const auto& table = route_table();
  REQUIRE(table.size() >= 16);
  std::set<std::string> seen;
  for (const auto& e : table) {
    INFO(e.name);
    CHECK((e.method == "GET" || e.method == "POST"));
    CHECK(e.name == e.method + " " + e.pattern);
    CHECK(seen.insert(e.name).second);
    CHECK(e.handler);
    // Each pattern leads back to itself.
    std::string concrete;
    for (const auto& s : e.segments) concrete += "/" + (s.front() == '{' ? std::string("1") : s);
    const auto m = match_path(concrete);
    REQUIRE(!m.entries.empty());
    CHECK(m.entries.front()->pattern == e.pattern);
  }
}
