#pragma once
// What taskq-apid's server and its connections share (internal to server.cpp and session.hpp).
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "auth.hpp"
#include "db_pool.hpp"
#include "events.hpp"
#include "listener.hpp"
#include "metrics.hpp"
#include "routes.hpp"
#include "stream_limits.hpp"
#include "taskq/api/server.hpp"
#include "taskq/core/time.hpp"

namespace taskq::api {

struct Core {
  ApiOptions o;
  // Before ioc: the sessions that ioc's destructor destroys release their places in these.
  ConnectionLimit connections;
  StreamLimits stream_limits;
  boost::asio::io_context ioc;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unique_ptr<DbPool> pool;
  std::unique_ptr<Authenticator> auth;
  std::optional<boost::asio::ssl::context> tls;  // set when api.tls is configured
  Metrics metrics;
  std::unique_ptr<RouteContext> routes;
  std::unique_ptr<EventHub> hub;  // after ioc: stopped and destroyed before it
  std::vector<std::jthread> threads;
  std::unique_ptr<boost::asio::steady_timer> heartbeat;
  std::atomic<int> in_flight{0};
  std::atomic<int> open_streams{0};  // event streams whose headers went out and that are not closed
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> loop_round{0};
  bool started = false, stopped = false;

  explicit Core(ApiOptions options)
      : o(std::move(options)),
        connections(o.config.max_connections),
        stream_limits(o.config.max_event_streams, o.config.max_event_streams_per_token),
        ioc(o.config.threads) {}

  void beat() {
    loop_round.store(steady_ns());
    heartbeat->expires_after(std::chrono::seconds{1});
    heartbeat->async_wait([this](boost::system::error_code ec) {
      if (!ec) beat();
    });
  }
};

}  // namespace taskq::api
