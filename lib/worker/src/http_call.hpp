#pragma once
// The http handler: POST a job as JSON to a URL and classify the answer. Asynchronous on the
// worker's io_context (Boost.Beast), so thousands of calls in flight cost no threads.
//   2xx -> completed (a JSON body becomes the result)
//   429 or 503 with Retry-After (seconds or HTTP date) -> snoozed for that long
//   other 4xx -> failed (permanent)
//   5xx, 429/503 without Retry-After, timeout, connection or protocol error -> retry
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/worker/handler.hpp"

namespace taskq::worker {

/// A parsed http:// URL. https is refused at config check (no TLS in the worker yet).
struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";  // path and query
};
/// Throws Error(invalid_input) naming what is wrong ("only http:// URLs are supported", ...).
HttpUrl parse_http_url(const std::string& url);

class HttpCall {
 public:
  virtual ~HttpCall() = default;
  /// Aborts the request; `done` is still called once (with a retry result "cancelled").
  virtual void cancel() = 0;
};

/// Starts a POST of `body` (JSON) to `config.url` with `config.headers`, then the attempt's
/// `traceparent` and `tracestate` headers (which replace configured ones of the same name),
/// bounded by `config.timeout`. `done` runs exactly once on the io_context's thread. Response
/// bodies over 1 MiB are an error (retry).
std::shared_ptr<HttpCall> start_http_call(boost::asio::io_context& io, const taskq::config::HttpHandlerConfig& config,
                                          std::string body, std::function<void(HandlerResult)> done,
                                          const AttemptTrace& trace = {});

}  // namespace taskq::worker
