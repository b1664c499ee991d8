// The http handler against a real local HTTP server (Boost.Beast, one connection per scenario).
#include <utility>  // before Asio (g++ 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <thread>

#include "http_call.hpp"
#include "one_shot_server.hpp"
#include "run_output.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/utf8.hpp"

using taskq::worker::HandlerResult;

using taskq::config::HttpHandlerConfig;

using namespace taskq;
using namespace taskq::worker;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using taskq::test::OneShotServer;

namespace {

http::response<http::string_body> response(http::status status, std::string body = "") {
  http::response<http::string_body> r{status, 11};
  r.body() = std::move(body);
  return r;
}

// Runs one call to completion on a fresh io_context; fails the test after 10 s.
HandlerResult call(const std::string& url, Duration timeout = 5s,
                   std::vector<std::pair<std::string, std::string>> headers = {}, bool cancel_soon = false) {
  asio::io_context io;
  HttpHandlerConfig cfg;
  cfg.url = url;
  cfg.timeout = timeout;
  cfg.headers = std::move(headers);
  std::optional<HandlerResult> result;
  int calls = 0;
  auto c = start_http_call(io, cfg, R"({"id":1,"args":{}})", [&](HandlerResult r) {
    ++calls;
    result = std::move(r);
  });
  asio::steady_timer cancel_timer(io);
  if (cancel_soon) {
    cancel_timer.expires_after(100ms);
    cancel_timer.async_wait([&](boost::system::error_code) { c->cancel(); });
  }
  io.run_for(10s);
  REQUIRE(calls == 1);
  return *result;
}

}  // namespace

TEST_CASE("http URLs are parsed, https is refused", "[http]") {
  auto u = parse_http_url("http://example.com:8080/a/b?c=1");
  CHECK(u.host == "example.com");
  CHECK(u.port == "8080");
  CHECK(u.target == "/a/b?c=1");
  u = parse_http_url("http://[::1]/x");
  CHECK(u.host == "::1");
  CHECK(u.port == "80");
  CHECK(parse_http_url("http://h").target == "/");
  CHECK_THROWS_WITH(parse_http_url("https://h/"), Catch::Contains("only http:// URLs"));
  CHECK_THROWS_WITH(parse_http_url("http://h:99999/"), Catch::Contains("bad port"));
  CHECK_THROWS_WITH(parse_http_url("http:///x"), Catch::Contains("no host"));
}

TEST_CASE("2xx completes, with a JSON body as the result, the job and headers are sent", "[http]") {
  OneShotServer server([](const auto&) { return response(http::status::ok, R"({"sent": true})"); });
  const auto r = call(server.url(), 5s, {{"X-Token", "secret"}});
  CHECK(r.kind == HandlerResult::Kind::completed);
  CHECK(r.result == std::optional<std::string>(R"({"sent": true})"));
  CHECK(server.request().method() == http::verb::post);
  CHECK(server.request().target() == "/hook");
  CHECK(server.request().body() == R"({"id":1,"args":{}})");
  CHECK(server.request()[http::field::content_type] == "application/json");
  CHECK(server.request()["X-Token"] == "secret");
}

TEST_CASE("a non-JSON 2xx body is no result", "[http]") {
  OneShotServer server([](const auto&) { return response(http::status::accepted, "queued"); });
  const auto r = call(server.url());
  CHECK(r.kind == HandlerResult::Kind::completed);
  CHECK_FALSE(r.result.has_value());
}

TEST_CASE("429 and 503 with Retry-After snooze, without it they retry", "[http]") {
  OneShotServer server([](const auto&) {
    auto r = response(http::status::service_unavailable);
    r.set(http::field::retry_after, "7");
    return r;
  });
  auto r = call(server.url());
  CHECK(r.kind == HandlerResult::Kind::snoozed);
  CHECK(r.snooze == std::optional<Duration>(7s));
  OneShotServer busy([](const auto&) { return response(http::status::too_many_requests, "slow down"); });
  r = call(busy.url());
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message == "HTTP 429 Too Many Requests: slow down");
}

TEST_CASE("other 4xx fail permanently, 5xx retry, redirects fail", "[http]") {
  OneShotServer missing([](const auto&) { return response(http::status::not_found, "no such hook"); });
  auto r = call(missing.url());
  CHECK(r.kind == HandlerResult::Kind::failed);
  CHECK(r.message == "HTTP 404 Not Found: no such hook");
  OneShotServer broken([](const auto&) { return response(http::status::internal_server_error); });
  r = call(broken.url());
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message == "HTTP 500 Internal Server Error");
  OneShotServer moved([](const auto&) { return response(http::status::moved_permanently); });
  CHECK(call(moved.url()).kind == HandlerResult::Kind::failed);
}

TEST_CASE("timeouts, refused connections and cancel are retries", "[http]") {
  OneShotServer silent([](const auto&) { return std::nullopt; });
  auto r = call(silent.url(), 200ms);
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message.rfind("timed out after 200ms", 0) == 0);

  std::string refused_url;
  {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    refused_url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/";
  }  // closed: nothing listens there now
  r = call(refused_url);
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message.find("cannot connect to 127.0.0.1") != std::string::npos);

  OneShotServer slow([](const auto&) { return std::nullopt; });
  r = call(slow.url(), 5s, {}, true);
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message == "cancelled");
}

TEST_CASE("a webhook's answer becomes clean text: cut on a character, bad bytes and NUL cleaned", "[http]") {
  // The 200-byte excerpt of the body would cut the euro sign after 199 bytes.
  OneShotServer failing([](const auto&) {
    auto r = response(http::status::internal_server_error, std::string(199, 'x') + "\xe2\x82\xac" + "rest");
    r.reason("Broken \xff");
    return r;
  });
  auto r = call(failing.url());
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message == "HTTP 500 Broken \xff: " + std::string(199, 'x'));  // cut before the euro sign
  tidy_result(r);
  CHECK(r.message == "HTTP 500 Broken \xef\xbf\xbd: " + std::string(199, 'x'));
  CHECK(valid_utf8(r.message));

  OneShotServer nul([](const auto&) { return response(http::status::ok, R"({"a": "\u0000", "b": "\ud800"})"); });
  r = call(nul.url());
  CHECK(r.kind == HandlerResult::Kind::completed);
  CHECK(r.result == std::optional<std::string>(R"({"a": "", "b": "\ufffd"})"));
}
