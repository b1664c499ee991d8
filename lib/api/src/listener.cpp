#include "listener.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <string_view>

#include <sys/socket.h>

namespace taskq::api {

namespace net = boost::asio;
using tcp = net::ip::tcp;

AcceptBackoff::Step AcceptBackoff::failed() {
  ++errors_;
  const bool first = errors_ == 1;
  delay_ = first ? first_delay : std::min(delay_ * 2, max_delay);
  return {delay_, first};
}

std::int64_t AcceptBackoff::succeeded() {
  delay_ = std::chrono::milliseconds{0};
  return std::exchange(errors_, 0);
}

void ConnectionLimit::Slot::release() {
  if (!owner_) return;
  auto* o = std::exchange(owner_, nullptr);
  const int now = o->open_.fetch_sub(1) - 1;
  // An episode of refusals ends once a tenth of the places are free again (not at the first
  // one, so a limit held under pressure does not log on every close).
  if (o->refusing_.load() && now <= o->max_ - std::max(1, o->max_ / 10) && o->refusing_.exchange(false))
    spdlog::info("accepting connections again ({} open); refused {} at api.max_connections", now,
                 o->refused_in_episode_.exchange(0));
}

std::optional<ConnectionLimit::Slot> ConnectionLimit::take() {
  if (open_.fetch_add(1) >= max_) {
    open_.fetch_sub(1);
    refused_.fetch_add(1);
    refused_in_episode_.fetch_add(1);
    if (!refusing_.exchange(true))
      spdlog::warn("api.max_connections ({}) reached: new connections are closed at once until some end", max_);
    return std::nullopt;
  }
  return Slot(this);
}

Listener::Listener(net::io_context& ioc, std::unique_ptr<tcp::acceptor> acceptor, ConnectionLimit& limit, bool plain,
                   Serve serve)
    : ioc_(ioc),
      strand_(net::make_strand(ioc)),
      acceptor_(std::move(acceptor)),
      pause_(strand_),
      limit_(limit),
      plain_(plain),
      serve_(std::move(serve)) {
  boost::system::error_code ec;
  const auto local = acceptor_->local_endpoint(ec);
  if (ec) return;
  // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict) about "[" + std::string&&.
  const std::string host = local.address().to_string();
  if (local.address().is_v6())
    address_.append("[").append(host).append("]");
  else
    address_.append(host);
  address_.append(":").append(std::to_string(local.port()));
}

void Listener::start() {
  net::dispatch(strand_, [this] { accept(); });
}

void Listener::close() {
  net::post(strand_, [this] {
    closed_ = true;
    boost::system::error_code ec;
    acceptor_->close(ec);
    pause_.cancel();
  });
}

void Listener::accept() {
  if (closed_) return;
  acceptor_->async_accept(net::make_strand(ioc_),
                          net::bind_executor(strand_, [this](boost::system::error_code ec, tcp::socket socket) {
                            on_accept(ec, std::move(socket));
                          }));
}

void Listener::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (closed_ || ec == net::error::operation_aborted) return;
  if (ec == net::error::connection_aborted) return accept();  // the client left before we took it
  if (ec) {
    const auto step = backoff_.failed();
    if (step.first)
      spdlog::warn("accept on {}: {}; retrying with a pause of {} ms doubling up to {} ms", address_, ec.message(),
                   step.delay.count(), AcceptBackoff::max_delay.count());
    pause_.expires_after(step.delay);
    pause_.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec) accept();
    });
    return;
  }
  if (const auto errors = backoff_.succeeded(); errors > 0)
    spdlog::info("accept on {} works again after {} failed attempt(s)", address_, errors);
  auto slot = limit_.take();
  if (!slot) {
    if (plain_) {
      // One try, without waiting: a fresh socket's send buffer takes these few bytes.
      static const std::string busy = [] {
        const std::string body =
            "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"taskq-apid is at "
            "api.max_connections; try again\",\"field\":null}}\n";
        return "HTTP/1.1 503 Service Unavailable\r\nServer: taskq-apid\r\nContent-Type: application/json\r\n"
               "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      ::send(socket.native_handle(), busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    boost::system::error_code ignored;
    socket.close(ignored);
    return accept();
  }
  serve_(std::move(socket), std::move(*slot));
  accept();
}

}  // namespace taskq::api
