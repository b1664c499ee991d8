#include "http_call.hpp"

#include <utility>  // before Asio (g++ 12)

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <ctime>

#include "taskq/core/error.hpp"
#include "taskq/core/utf8.hpp"

using taskq::config::HttpHandlerConfig;

namespace taskq::worker {
namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

HttpUrl parse_http_url(const std::string& url) {
  if (url.rfind("https://", 0) == 0)
    throw Error(Errc::invalid_input, url + ": only http:// URLs are supported (no TLS in the worker yet)");
  if (url.rfind("http://", 0) != 0) throw Error(Errc::invalid_input, url + ": must start with http://");
  std::string rest = url.substr(7);
  HttpUrl out;
  const auto slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) out.target = rest.substr(slash);
  if (!out.target.empty() && out.target.front() == '?') out.target = "/" + out.target;
  if (authority.find('@') != std::string::npos)
    throw Error(Errc::invalid_input, url + ": user information in the URL is not supported (use headers)");
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string::npos) throw Error(Errc::invalid_input, url + ": unterminated [IPv6] address");
    out.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw Error(Errc::invalid_input, url + ": expected :port after the IPv6 address");
      out.port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) out.port = authority.substr(colon + 1);
  }
  if (out.host.empty()) throw Error(Errc::invalid_input, url + ": no host");
  if (out.port.empty() || out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(out.port) < 1 || std::stoi(out.port) > 65535)
    throw Error(Errc::invalid_input, url + ": bad port '" + out.port + "'");
  return out;
}

namespace {

constexpr std::size_t max_response_body = 1024 * 1024;
constexpr Duration max_retry_after = std::chrono::hours{24};

// Retry-After: delta seconds or an HTTP date (RFC 9110: IMF-fixdate).
std::optional<Duration> parse_retry_after(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (v.find_first_not_of("0123456789") == std::string_view::npos) {
    if (v.size() > 9) return max_retry_after;
    return std::min<Duration>(max_retry_after, std::chrono::seconds{std::stoll(std::string(v))});
  }
  std::tm tm{};
  const std::string text(v);
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
  const auto delta = at - std::chrono::system_clock::now();
  if (delta <= std::chrono::system_clock::duration::zero()) return Duration{};
  return std::min<Duration>(max_retry_after, std::chrono::duration_cast<Duration>(delta));
}

// The first 200 bytes of an answer for an error message, cut on a character boundary (the
// message as a whole is cleaned when the outcome is made).
std::string body_excerpt(const std::string& body) {
  std::string s(utf8_head(body, 200));
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

class Call final : public HttpCall, public std::enable_shared_from_this<Call> {
 public:
  Call(asio::io_context& io, const HttpHandlerConfig& config, HttpUrl url, std::string body,
       std::function<void(HandlerResult)> done, const AttemptTrace& trace)
      : resolver_(io), stream_(io), config_(config), url_(std::move(url)), done_(std::move(done)) {
    request_.method(http::verb::post);
    request_.target(url_.target);
    request_.version(11);
    request_.set(http::field::host, url_.host.find(':') != std::string::npos ? "[" + url_.host + "]:" + url_.port
                                                                             : url_.host + ":" + url_.port);
    request_.set(http::field::user_agent, "taskq-workerd");
    request_.set(http::field::content_type, "application/json");
    request_.set(http::field::connection, "close");
    for (const auto& [name, value] : config_.headers) request_.set(name, value);
    if (!trace.traceparent.empty()) {
      request_.set("traceparent", trace.traceparent);
      request_.erase("tracestate");
      if (trace.tracestate) request_.set("tracestate", *trace.tracestate);
    }
    request_.body() = std::move(body);
    request_.prepare_payload();
    parser_.body_limit(max_response_body);
  }

  void start() {
    stream_.expires_after(config_.timeout);
    deadline_ = std::chrono::steady_clock::now() + config_.timeout;
    auto self = shared_from_this();
    resolver_.async_resolve(url_.host, url_.port, [self](beast::error_code ec, tcp::resolver::results_type results) {
      if (ec) return self->fail_network("cannot resolve " + self->where(), ec);
      self->stream_.expires_at(self->deadline_);
      self->stream_.async_connect(results, [self](beast::error_code ec2, const tcp::endpoint&) {
        if (ec2) return self->fail_network("cannot connect to " + self->where(), ec2);
        self->stream_.expires_at(self->deadline_);
        http::async_write(self->stream_, self->request_, [self](beast::error_code ec3, std::size_t) {
          if (ec3) return self->fail_network("sending to " + self->where(), ec3);
          self->stream_.expires_at(self->deadline_);
          http::async_read(self->stream_, self->buffer_, self->parser_, [self](beast::error_code ec4, std::size_t) {
            if (ec4) return self->fail_network("reading the answer of " + self->where(), ec4);
            self->classify();
          });
        });
      });
    });
  }

  void cancel() override {
    if (finished_) return;
    cancelled_ = true;
    resolver_.cancel();
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
    stream_.close();
  }

 private:
  std::string where() const { return url_.host + ":" + url_.port; }

  void finish(HandlerResult r) {
    if (finished_) return;
    finished_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    // Released before the call: `done` may hold the owner of this call (a cycle otherwise).
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(r));
  }

  void fail_network(const std::string& what, const beast::error_code& ec) {
    HandlerResult r;
    r.kind = HandlerResult::Kind::retry;
    if (cancelled_)
      r.message = "cancelled";
    else if (ec == beast::error::timeout)
      r.message = "timed out after " + format_duration(config_.timeout) + " (" + what + ")";
    else if (ec == http::error::body_limit)
      r.message = what + ": response body larger than 1 MiB";
    else
      r.message = what + ": " + ec.message();
    finish(std::move(r));
  }

  void classify() {
    const auto& res = parser_.get();
    const unsigned status = res.result_int();
    const std::string& body = res.body();
    HandlerResult r;
    const std::string status_text =
        "HTTP " + std::to_string(status) + (res.reason().empty() ? std::string() : " " + std::string(res.reason()));
    if (status >= 200 && status < 300) {
      r.kind = HandlerResult::Kind::completed;
      std::string not_json;
      r.result = clean_json(body, not_json);  // a body that is not JSON is no result
    } else if (status == 429 || status == 503) {
      const auto retry_after = res.find(http::field::retry_after);
      std::optional<Duration> delay;
      if (retry_after != res.end()) delay = parse_retry_after(retry_after->value());
      if (delay) {
        r.kind = HandlerResult::Kind::snoozed;
        r.snooze = *delay;
      } else {
        r.kind = HandlerResult::Kind::retry;
        r.message = status_text + (body.empty() ? "" : ": " + body_excerpt(body));
      }
    } else if (status >= 300 && status < 400) {
      r.kind = HandlerResult::Kind::failed;
      r.message = status_text + ": redirects are not followed";
    } else if (status >= 400 && status < 500) {
      r.kind = HandlerResult::Kind::failed;
      r.message = status_text + (body.empty() ? "" : ": " + body_excerpt(body));
    } else {
      r.kind = HandlerResult::Kind::retry;
      r.message = status_text + (body.empty() ? "" : ": " + body_excerpt(body));
    }
    finish(std::move(r));
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  HttpHandlerConfig config_;
  HttpUrl url_;
  std::function<void(HandlerResult)> done_;
  http::request<http::string_body> request_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
  std::chrono::steady_clock::time_point deadline_{};
  bool finished_ = false;
  bool cancelled_ = false;
};

}  // namespace

std::shared_ptr<HttpCall> start_http_call(boost::asio::io_context& io, const HttpHandlerConfig& config,
                                          std::string body, std::function<void(HandlerResult)> done,
                                          const AttemptTrace& trace) {
  HttpUrl url;
  try {
    url = parse_http_url(config.url);
  } catch (const Error& e) {
    HandlerResult r;
    r.kind = HandlerResult::Kind::failed;
    r.message = e.what();
    asio::post(io, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    return nullptr;
  }
  auto call = std::make_shared<Call>(io, config, std::move(url), std::move(body), std::move(done), trace);
  call->start();
  return call;
}

}  // namespace taskq::worker
