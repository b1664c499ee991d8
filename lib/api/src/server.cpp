#include "taskq/api/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>

#include <unistd.h>

#include "server_core.hpp"
#include "session.hpp"
#include "taskq/core/host.hpp"

using taskq::queue::ClientOptions;

namespace taskq::api {

namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using session_detail::plain_stream;
using session_detail::request_id;
using session_detail::Session;
using session_detail::tls_stream;

// "host:port" or "[v6]:port" -> (host, port).
std::pair<std::string, std::string> split_address(const std::string& a) {
  const auto colon = a.rfind(':');
  std::string host = a.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, a.substr(colon + 1)};
}

}  // namespace

struct Server::Impl : Core {
  using Core::Core;
};

Server::Server(ApiOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() {
  stop(Duration{});
}

void Server::start() {
  auto& d = *impl_;
  if (d.started) return;
  d.auth = std::make_unique<Authenticator>(d.o.config.tokens, d.o.config.insecure_no_auth);
  if (d.o.config.tls) {
    d.tls.emplace(net::ssl::context::tls_server);
    d.tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                       net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    d.tls->use_certificate_chain_file(d.o.config.tls->cert, ec);
    if (ec)
      throw Error(Errc::invalid_input, "api.tls.cert '" + d.o.config.tls->cert + "': cannot load: " + ec.message());
    d.tls->use_private_key_file(d.o.config.tls->key, net::ssl::context::pem, ec);
    if (ec) throw Error(Errc::invalid_input, "api.tls.key '" + d.o.config.tls->key + "': cannot load: " + ec.message());
  }
  {
    EventHubOptions h;
    h.store = d.o.store;
    h.host = host_name();
    h.pid = static_cast<int>(::getpid());
    h.listener_name = h.host + " " + std::to_string(h.pid) + " " + request_id("");
    d.hub = std::make_unique<EventHub>(std::move(h));
  }
  d.pool = std::make_unique<DbPool>(ClientOptions{d.o.store, d.o.limits}, d.o.config.db_pool,
                                    d.o.config.db_acquire_timeout, enqueue_answer, get_answer);
  d.routes = std::make_unique<RouteContext>(
      RouteContext{*d.auth, d.o.limits, d.metrics, d.in_flight, d.o.version, d.o.config.metrics_auth, d.hub.get()});
  d.routes->pool = d.pool.get();
  d.routes->worker_grace = d.o.worker_grace;
  d.routes->ui = d.o.config.ui;
  d.pool->check_connect();
  tcp::resolver resolver(d.ioc);
  for (const auto& address : d.o.config.listen) {
    const auto [host, port] = split_address(address);
    beast::error_code ec;
    const auto results = resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
    if (ec || results.empty())
      throw Error(Errc::invalid_input, "api.listen '" + address + "': cannot resolve '" + host + "': " + ec.message());
    for (const auto& r : results) {
      auto a = std::make_unique<tcp::acceptor>(d.ioc);
      const auto ep = r.endpoint();
      a->open(ep.protocol(), ec);
      if (!ec) a->set_option(net::socket_base::reuse_address(true), ec);
      if (!ec && ep.address().is_v6()) a->set_option(net::ip::v6_only(true), ec);
      if (!ec) a->bind(ep, ec);
      if (!ec) a->listen(net::socket_base::max_listen_connections, ec);
      if (ec)
        throw Error(Errc::unavailable, "api.listen '" + address + "': cannot listen on " + ep.address().to_string() +
                                           ":" + std::to_string(ep.port()) + ": " + ec.message());
      auto& core = d;
      d.listeners.push_back(std::make_unique<Listener>(
          d.ioc, std::move(a), d.connections, !d.o.config.tls, [&core](tcp::socket socket, ConnectionLimit::Slot slot) {
            if (core.tls)
              std::make_shared<Session<tls_stream>>(core, std::move(slot), std::move(socket), *core.tls)->start();
            else
              std::make_shared<Session<plain_stream>>(core, std::move(slot), std::move(socket))->start();
          }));
    }
  }
  for (auto& l : d.listeners) l->start();
  d.heartbeat = std::make_unique<net::steady_timer>(d.ioc);
  d.beat();
  d.hub->start();
  d.guard.emplace(d.ioc.get_executor());
  for (int i = 0; i < d.o.config.threads; ++i) d.threads.emplace_back([&d] { d.ioc.run(); });
  d.started = true;
}

void Server::stop(Duration grace) {
  auto& d = *impl_;
  if (!d.started || d.stopped) return;
  d.stopped = true;
  d.stopping.store(true);
  for (auto& l : d.listeners) l->close();
  // Event streams end with a final event; in-flight requests finish (their responses say
  // Connection: close); both within the grace.
  const auto deadline = std::chrono::steady_clock::now() + grace;
  const int streams = d.open_streams.load();
  d.hub->stop();
  while ((d.in_flight.load() > 0 || d.open_streams.load() > 0) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  if (streams > 0) spdlog::info("ended {} event stream(s)", streams - d.open_streams.load());
  if (d.in_flight.load() > 0 || d.open_streams.load() > 0)
    spdlog::warn("{} request(s) and {} event stream(s) still open after {}; closing them", d.in_flight.load(),
                 d.open_streams.load(), format_duration(grace));
  d.guard.reset();
  d.ioc.stop();
  for (auto& t : d.threads) t.join();
  d.pool->stop();
}

std::vector<std::string> Server::endpoints() const {
  std::vector<std::string> out;
  for (const auto& l : impl_->listeners) out.push_back(l->address());
  return out;
}

bool Server::healthy(Duration max_stall) const {
  return steady_ns() - impl_->loop_round.load() <
         std::chrono::duration_cast<std::chrono::nanoseconds>(max_stall).count();
}

bool Server::db_moving(Duration max_stall) const {
  return !impl_->pool || impl_->pool->stalled_for() < max_stall;
}

}  // namespace taskq::api
