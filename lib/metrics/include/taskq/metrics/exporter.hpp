#pragma once
// The /metrics endpoint of taskq-workerd and taskq-schedulerd (taskq-apid serves its metrics
// on its API port): a small HTTP/1.1 server on its own thread, answering GET and HEAD /metrics
// with the registry's text, 404 elsewhere and 405 for other methods.
//
// Bounded against hostile clients: at most max_connections at once (more are closed at
// accept), a request's head at most 8 KiB and its body 1 KiB (ignored), and every connection has a deadline per
// request (a slow or silent client is cut off after request_timeout), so a scraper that stalls
// harms only itself and the daemon's jobs never wait on it.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace taskq::metrics {

struct ExporterOptions {
  std::string listen;                         // HOST:PORT or [IPV6]:PORT; port 0 picks a free port (tests)
  std::string config_key = "metrics_listen";  // named in errors ("worker.metrics_listen '...'")
  int max_connections = 64;
  std::chrono::milliseconds request_timeout{10000};
};

class Exporter {
 public:
  Exporter(ExporterOptions options, std::function<std::string()> render);
  ~Exporter();  // stops
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  /// Binds and starts serving. Throws Error(invalid_input) when the address does not resolve
  /// and Error(unavailable) when it cannot be bound (in use, not ours), naming the key.
  void start();
  /// Closes the listener and every connection, joins the thread. Idempotent.
  void stop();
  /// "127.0.0.1:9465": the bound address (with the port chosen for port 0).
  [[nodiscard]] std::string endpoint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskq::metrics
