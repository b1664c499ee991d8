// The dashboard's routes as pure decisions: /ui and its files are open, carry the strict
// Content-Security-Policy, answer 304 for their ETag and 404 when api.ui = false; the routes
// added for it (bulk cancel and retry, throughput, periodic schedules) check scope, content type,
// body and query before any database work.
#include <catch2/catch.hpp>

#include "admin_routes.hpp"
#include "route_table.hpp"
#include "routes.hpp"
#include "ui_assets.hpp"
#include "ui_routes.hpp"

using taskq::config::ApiToken;

using namespace taskq;
using namespace taskq::api;

namespace {

std::vector<ApiToken> tokens() {
  return {{"ro", sha256_hex("r"), {"read"}, 0}, {"ad", sha256_hex("a"), {"admin"}, 0}};
}

struct Fixture {
  Authenticator auth{tokens(), false};
  EnqueueLimits limits;
  Metrics metrics;
  std::atomic<int> in_flight{0};
  RouteContext ctx{auth, limits, metrics, in_flight, "1.2.3"};

  Routed call(const std::string& method, const std::string& path, const std::string& token = "a",
              const std::string& body = "", const std::string& query = "") {
    Request req;
    req.method = method;
    req.path = path;
    req.query = query;
    req.body = body;
    req.content_type = "application/json";
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

}  // namespace

TEST_CASE("ui: every dashboard file is embedded with its type, and the page loads only its own files",
          "[unit][api][ui]") {
  for (const char* name : {"index.html", "app.js", "api.js", "dom.js", "style.css", "icon.svg"})
    CHECK(find_ui_asset(name) != nullptr);
  CHECK(find_ui_asset("index.html")->content_type == "text/html; charset=utf-8");
  CHECK(find_ui_asset("app.js")->content_type == "text/javascript; charset=utf-8");
  CHECK(find_ui_asset("style.css")->content_type == "text/css; charset=utf-8");
  CHECK(find_ui_asset("nope.js") == nullptr);
  for (const auto& a : ui_assets()) {
    INFO(a.name);
    CHECK(a.etag.size() == 42);  // a quoted SHA-1
    std::string body(a.body);
    // The SVG namespace is a name, not a place fetched from.
    for (auto at = body.find("http://www.w3.org/2000/svg"); at != std::string::npos;
         at = body.find("http://www.w3.org/2000/svg"))
      body.erase(at, 26);
    // Nothing the CSP would block, nothing from elsewhere: no inline script, style or handler,
    // no innerHTML, no other origin.
    CHECK_FALSE(contains(body, "innerHTML"));
    CHECK_FALSE(contains(body, "outerHTML"));
    CHECK_FALSE(contains(body, "insertAdjacentHTML"));
    CHECK_FALSE(contains(body, "document.write"));
    CHECK_FALSE(contains(body, "eval("));
    CHECK_FALSE(contains(body, "style=\""));
    CHECK_FALSE(contains(body, " onclick="));
    CHECK_FALSE(contains(body, "https://"));
    CHECK_FALSE(contains(body, "http://"));
    CHECK_FALSE(contains(body, "document.cookie"));
    CHECK_FALSE(contains(body, "localStorage"));
  }
  const std::string page(find_ui_asset("index.html")->body);
  CHECK(contains(page, "<script type=\"module\" src=\"/ui/app.js\"></script>"));
  CHECK_FALSE(contains(page, "<script>"));
  CHECK_FALSE(contains(page, "<style"));
}

TEST_CASE("ui: /ui and its files are open, with a strict CSP, nosniff and an ETag", "[unit][api][ui]") {
  Fixture f;
  for (const auto& [path, type] :
       std::vector<std::pair<std::string, std::string>>{{"/ui", "text/html; charset=utf-8"},
                                                        {"/ui/", "text/html; charset=utf-8"},
                                                        {"/ui/app.js", "text/javascript; charset=utf-8"},
                                                        {"/ui/style.css", "text/css; charset=utf-8"}}) {
    INFO(path);
    const auto r = f.call("GET", path, "");  // no token
    REQUIRE(r.response);
    CHECK(r.response->status == 200);
    CHECK(r.response->content_type == type);
    CHECK(header(*r.response, "Content-Security-Policy") ==
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    CHECK(header(*r.response, "X-Content-Type-Options") == "nosniff");
    CHECK(header(*r.response, "ETag").size() == 42);
    CHECK_FALSE(r.response->body.empty());
  }
  CHECK(f.call("GET", "/ui", "").response->body == std::string(find_ui_asset("index.html")->body));
  CHECK(f.call("HEAD", "/ui/app.js", "").response->status == 200);
  CHECK(f.call("POST", "/ui", "").response->status == 405);

  const auto missing = f.call("GET", "/ui/secrets.txt", "");
  CHECK(missing.response->status == 404);
  CHECK(contains(missing.response->body, "no file 'secrets.txt'"));
  CHECK(f.call("GET", "/ui/a/b", "").response->status == 404);
}

TEST_CASE("ui: a matching If-None-Match is 304 without a body", "[unit][api][ui]") {
  Fixture f;
  const std::string etag(find_ui_asset("app.js")->etag);
  Request req;
  req.method = "GET";
  req.path = "/ui/app.js";
  req.if_none_match = etag;
  auto r = route(req, f.ctx);
  CHECK(r.response->status == 304);
  CHECK(r.response->body.empty());
  CHECK(header(*r.response, "ETag") == etag);
  req.if_none_match = "\"0000\"";
  r = route(req, f.ctx);
  CHECK(r.response->status == 200);
}

TEST_CASE("ui: api.ui = false turns the dashboard off (404)", "[unit][api][ui]") {
  Fixture f;
  f.ctx.ui = false;
  for (const char* path : {"/ui", "/ui/app.js"}) {
    const auto r = f.call("GET", path, "a");
    CHECK(r.response->status == 404);
    CHECK(contains(r.response->body, "api.ui = false"));
    CHECK(header(*r.response, "Content-Security-Policy") == "(none)");
  }
}

TEST_CASE("ui: bulk cancel and retry need admin, JSON and a filter", "[unit][api][ui]") {
  Fixture f;
  for (const char* verb : {"cancel", "retry"}) {
    const std::string path = std::string("/v1/jobs/") + verb;
    INFO(path);
    CHECK(match_path(path).entries.front()->name == "POST " + path);  // a route, not job "cancel"
    CHECK(f.call("POST", path, "").response->status == 401);
    CHECK(f.call("POST", path, "r", R"({"state": "failed"})").response->status == 403);
    CHECK(f.call("GET", path, "a").response->status == 405);
    Request text;
    text.method = "POST";
    text.path = path;
    text.authorization = "Bearer a";
    text.content_type = "text/plain";
    CHECK(route(text, f.ctx).response->status == 415);

    auto r = f.call("POST", path, "a", R"({"dry_run": true})");
    CHECK(r.response->status == 422);
    CHECK(contains(r.response->body, "give at least one of queue, state, kind, tag"));
    r = f.call("POST", path, "a", R"({"state": "failed", "colour": "red"})");
    CHECK(r.response->status == 422);
    CHECK(contains(r.response->body, "colour: unknown field"));
    r = f.call("POST", path, "a", R"({"state": "broken"})");
    CHECK(r.response->status == 422);
    CHECK(contains(r.response->body, "broken"));
    r = f.call("POST", path, "a", R"({"queue": 7})");
    CHECK(r.response->status == 422);
    CHECK(contains(r.response->body, "queue: must be a string or an array of strings"));
    r = f.call("POST", path, "a", R"({"queue": ""})");
    CHECK(r.response->status == 422);
    r = f.call("POST", path, "a", R"({"state": "failed", "dry_run": "yes"})");
    CHECK(r.response->status == 422);
    CHECK(contains(r.response->body, "dry_run: must be true or false"));
    CHECK(f.call("POST", path, "a", "[1]").response->status == 422);
    CHECK(f.call("POST", path, "a", "{").response->status == 400);

    r = f.call("POST", path, "a",
               R"({"queue": ["a", "b"], "state": ["failed", "cancelled"], "kind": "k", "tag": "t"})");
    CHECK_FALSE(r.response);
    CHECK(r.task);
    CHECK(r.may_lock);
  }
}

TEST_CASE("ui: throughput takes minutes from 1 to 1440", "[unit][api][ui]") {
  Fixture f;
  CHECK(f.call("GET", "/v1/throughput", "").response->status == 401);
  auto ok = f.call("GET", "/v1/throughput", "r");
  CHECK_FALSE(ok.response);
  CHECK(ok.task);
  CHECK(f.call("GET", "/v1/throughput", "r", "", "minutes=1440").task);
  for (const char* bad : {"minutes=0", "minutes=1441", "minutes=x", "minutes=5m", "minutes="}) {
    INFO(bad);
    const auto r = f.call("GET", "/v1/throughput", "r", "", bad);
    REQUIRE(r.response);
    CHECK(r.response->status == 422);
    CHECK(contains(r.response->body, "minutes: must be an integer from 1 to 1440"));
  }
  const auto r = f.call("GET", "/v1/throughput", "r", "", "queue=a");
  CHECK(r.response->status == 422);
  CHECK(contains(r.response->body, "queue: unknown query parameter"));
  CHECK(f.call("GET", "/v1/throughput", "r", "", "minutes=%zz").response->status == 400);
}

TEST_CASE("ui: periodic pause, resume and trigger need admin and a valid name", "[unit][api][ui]") {
  Fixture f;
  for (const char* verb : {"pause", "resume", "trigger"}) {
    const std::string path = std::string("/v1/periodic/nightly/") + verb;
    INFO(path);
    CHECK(f.call("POST", path, "r").response->status == 403);
    CHECK(f.call("GET", path, "a").response->status == 405);
    const auto ok = f.call("POST", path, "a");
    CHECK_FALSE(ok.response);
    CHECK(ok.task);
    CHECK(ok.ok_status == (std::string(verb) == "trigger" ? 201u : 200u));
    const auto bad = f.call("POST", std::string("/v1/periodic/a%01b/") + verb, "a");
    CHECK(bad.response->status == 422);
    CHECK(contains(bad.response->body, "\"field\":\"name\""));
  }
}
