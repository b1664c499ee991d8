#include "taskq/api/server.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <optional>
#include <random>
#include <thread>
#include <type_traits>

#include <unistd.h>

#include "auth.hpp"
#include "db_pool.hpp"
#include "events.hpp"
#include "routes.hpp"

namespace taskq::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t header_limit = 16 * 1024;
// An event stream whose client has this much unsent is cut: it reads too slowly (or not at all).
constexpr std::size_t stream_backlog_limit = 4 * 1024 * 1024;

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A client's X-Request-Id is kept when it is 1-128 characters of [A-Za-z0-9._:-]; else one is made.
std::string request_id(std::string_view given) {
  if (!given.empty() && given.size() <= 128 &&
      given.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
          std::string_view::npos)
    return std::string(given);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// "host:port" or "[v6]:port" -> (host, port).
std::pair<std::string, std::string> split_address(const std::string& a) {
  const auto colon = a.rfind(':');
  std::string host = a.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, a.substr(colon + 1)};
}

// Everything the server and its sessions share.
struct Core {
  ApiOptions o;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::string> bound;
  std::unique_ptr<DbPool> pool;
  std::unique_ptr<Authenticator> auth;
  std::optional<net::ssl::context> tls;  // set when api.tls is configured
  Metrics metrics;
  std::unique_ptr<RouteContext> routes;
  std::unique_ptr<EventHub> hub;  // after ioc: stopped and destroyed before it
  std::vector<std::thread> threads;
  std::unique_ptr<net::steady_timer> heartbeat;
  std::atomic<int> in_flight{0};
  std::atomic<int> open_streams{0};  // event streams whose headers went out and that are not closed
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> loop_round{0};
  bool started = false, stopped = false;

  explicit Core(ApiOptions options) : o(std::move(options)), ioc(o.config.threads) {}

  void accept(tcp::acceptor& a);
  void beat() {
    loop_round.store(steady_ns());
    heartbeat->expires_after(std::chrono::seconds{1});
    heartbeat->async_wait([this](beast::error_code ec) {
      if (!ec) beat();
    });
  }
};

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// One connection: reads requests one after another (keep-alive), answers each, on its strand.
// Stream is a TCP stream, or a TLS stream over one (the handshake comes first).
template <class Stream>
class Session : public StreamSink, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  explicit Session(Core& server, Args&&... args) : stream_(std::forward<Args>(args)...), server_(server) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, tls_stream>) {
        self->lowest().expires_after(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(self->server_.o.config.request_timeout));
        self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            spdlog::debug("TLS handshake with {} failed: {}", self->peer(), ec.message());
            return self->close();
          }
          self->read();
        });
      } else {
        self->read();
      }
    });
  }

  // StreamSink: called by the event hub's thread; the work runs on this connection's strand.
  void open(std::vector<Frame> first, bool end) override {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), first = std::move(first), end]() mutable {
      self->start_stream(std::move(first), end);
    });
  }
  void refuse(Response response) override {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), response = std::move(response)]() mutable {
      if (self->gone_.load()) return;
      self->gone_.store(true);  // no stream: the hub forgets this sink; the connection goes on
      self->write(std::move(response), self->stream_route_);
    });
  }
  void send(std::vector<Frame> frames, bool end) override {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), frames = std::move(frames), end]() mutable {
      self->queue_frames(std::move(frames), end);
    });
  }
  [[nodiscard]] bool gone() const override { return gone_.load(); }

 private:
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Core& server_;
  std::string request_id_ = "-";
  std::string method_ = "-", target_ = "-";
  bool keep_alive_ = true;
  bool counted_ = false;  // counted in server_.in_flight
  std::chrono::steady_clock::time_point started_{};

  // Event stream state (on the strand, but gone_ which the hub reads).
  std::atomic<bool> gone_{false};
  std::string stream_route_;
  bool streaming_ = false, header_sent_ = false, write_busy_ = false, end_after_ = false, finished_ = false;
  bool stream_counted_ = false;
  std::deque<Frame> out_;
  std::vector<Frame> writing_;
  std::size_t backlog_ = 0;
  std::array<char, 256> discard_{};

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  const beast::tcp_stream& lowest() const { return beast::get_lowest_layer(stream_); }

  void read() {
    if (server_.stopping.load()) return close();
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(server_.o.config.max_body);
    // The whole request must arrive within request_timeout; slow or stalled clients are cut.
    lowest().expires_after(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(server_.o.config.request_timeout));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted)
      return close();
    if (ec == beast::error::timeout) {
      spdlog::debug("connection from {} cut: no complete request within {}", peer(),
                    format_duration(server_.o.config.request_timeout));
      return close();
    }
    started_ = std::chrono::steady_clock::now();
    begin();
    if (parser_->is_header_done()) {
      const auto& h = parser_->get();
      request_id_ = request_id(h["X-Request-Id"]);
      method_ = std::string(h.method_string());
      target_ = std::string(h.target());
    } else {
      request_id_ = request_id("");
    }
    keep_alive_ = false;
    if (ec == http::error::body_limit)
      return write(error_response(413, "payload_too_large",
                                  "the body is larger than api.max_body (" + std::to_string(server_.o.config.max_body) +
                                      " bytes)"),
                   "unread");
    if (ec == http::error::header_limit)
      return write(error_response(431, "headers_too_large",
                                  "the request headers are larger than " + std::to_string(header_limit) + " bytes"),
                   "unread");
    if (ec) return write(error_response(400, "malformed_request", "malformed HTTP request: " + ec.message()), "unread");

    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    Request r;
    r.method = method_;
    const std::string_view target = req.target();
    const auto q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    r.body = std::move(req.body());
    r.content_type = std::string(req[http::field::content_type]);
    r.authorization = std::string(req[http::field::authorization]);
    r.idempotency_key = std::string(req["Idempotency-Key"]);
    Routed routed = route(r, *server_.routes);
    if (routed.response) return write(std::move(*routed.response), routed.route);
    if (routed.stream) {
      stream_route_ = routed.route;
      gone_.store(false);
      return server_.hub->subscribe(this->shared_from_this(), std::move(*routed.stream));
    }
    auto done = [self = this->shared_from_this(), name = routed.route](Response resp) mutable {
      net::post(self->stream_.get_executor(), [self, resp = std::move(resp), name = std::move(name)]() mutable {
        self->write(std::move(resp), name);
      });
    };
    if (routed.enqueue)
      server_.pool->submit_enqueue(std::move(*routed.enqueue), std::move(done));
    else if (routed.get)
      server_.pool->submit_get(*routed.get, std::move(done));
    else
      server_.pool->submit(std::move(routed.task), std::move(done), routed.may_lock);
  }

  void begin() {
    counted_ = true;
    server_.in_flight.fetch_add(1);
  }
  void end() {
    if (counted_) server_.in_flight.fetch_sub(1);
    counted_ = false;
  }

  std::string peer() const {
    beast::error_code ec;
    const auto ep = lowest().socket().remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void write(Response resp, const std::string& route_name) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(resp.status), 11);
    res->set(http::field::server, "taskq-apid");
    res->set(http::field::content_type, resp.content_type);
    res->set("X-Request-Id", request_id_);
    for (auto& [k, v] : resp.headers) res->set(k, v);
    res->body() = std::move(resp.body);
    res->keep_alive(keep_alive_ && !resp.close && !server_.stopping.load());
    res->prepare_payload();
    if (method_ == "HEAD") {  // the headers of the GET, without its body
      const auto length = res->body().size();
      res->body().clear();
      res->content_length(length);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const double ms = seconds * 1000;
    server_.metrics.record(route_name, resp.status, seconds);
    server_.metrics.add_enqueued(resp.enqueued);
    if (resp.status >= 500)
      spdlog::warn("request {}: {} {} ({}) -> {} in {:.1f} ms", request_id_, method_, target_, route_name, resp.status,
                   ms);
    else
      spdlog::debug("request {}: {} {} ({}) -> {} in {:.1f} ms", request_id_, method_, target_, route_name, resp.status,
                    ms);
    lowest().expires_after(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(server_.o.config.request_timeout));
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->end();
      if (ec || !res->keep_alive()) return self->close();
      self->method_ = self->target_ = "-";
      self->read();
    });
  }

  // The response headers of an event stream, then its frames as HTTP chunks, until the end (a
  // last chunk, then the connection closes) or until the client goes away.
  void start_stream(std::vector<Frame> first, bool end_now) {
    if (gone_.load()) return close();
    streaming_ = true;
    lowest().expires_never();  // a stream is idle for as long as its job or queue is
    auto res = std::make_shared<http::response<http::empty_body>>(http::status::ok, 11);
    res->set(http::field::server, "taskq-apid");
    res->set(http::field::content_type, "text/event-stream; charset=utf-8");
    res->set(http::field::cache_control, "no-cache");
    res->set("X-Accel-Buffering", "no");  // nginx: pass events on at once
    res->set("X-Request-Id", request_id_);
    res->keep_alive(false);
    res->chunked(true);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    server_.metrics.record(stream_route_, 200, seconds);
    spdlog::debug("request {}: {} {} ({}) -> event stream opened in {:.1f} ms", request_id_, method_, target_,
                  stream_route_, seconds * 1000);
    end();
    stream_counted_ = true;
    server_.open_streams.fetch_add(1);
    queue_frames(std::move(first), end_now);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    http::async_write_header(stream_, *sr,
                             [self = this->shared_from_this(), res, sr](beast::error_code ec, std::size_t) {
                               if (ec) return self->stream_lost();
                               self->header_sent_ = true;
                               self->watch_client();
                               self->write_frames();
                             });
  }

  // A client sends nothing on an event stream; a read ends when it goes away.
  void watch_client() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->stream_lost();
                              self->watch_client();
                            });
  }

  void queue_frames(std::vector<Frame> frames, bool end_now) {
    if (!streaming_ || finished_ || end_after_) return;
    for (auto& f : frames) {
      backlog_ += f->size();
      out_.push_back(std::move(f));
    }
    if (end_now) end_after_ = true;
    if (backlog_ > stream_backlog_limit) {
      spdlog::warn("request {}: event stream {} cut: its client left {} bytes unread", request_id_, target_, backlog_);
      return stream_lost();
    }
    write_frames();
  }

  void write_frames() {
    if (!header_sent_ || write_busy_ || finished_) return;
    if (out_.empty()) {
      if (!end_after_) return;
      finished_ = true;
      write_busy_ = true;
      net::async_write(stream_, http::make_chunk_last(),
                       [self = this->shared_from_this()](beast::error_code, std::size_t) {
                         self->write_busy_ = false;
                         self->stream_lost();
                       });
      return;
    }
    writing_.assign(std::make_move_iterator(out_.begin()), std::make_move_iterator(out_.end()));
    out_.clear();
    std::vector<net::const_buffer> buffers;
    buffers.reserve(writing_.size());
    for (const auto& f : writing_) buffers.emplace_back(f->data(), f->size());
    write_busy_ = true;
    net::async_write(stream_, http::make_chunk(buffers),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->write_busy_ = false;
                       for (const auto& f : self->writing_) self->backlog_ -= f->size();
                       self->writing_.clear();
                       if (ec) return self->stream_lost();
                       self->write_frames();
                     });
  }

  // The stream is over (ended, cut, or its client left): forget it and close the connection.
  void stream_lost() {
    if (!gone_.exchange(true)) server_.hub->forget_gone();
    if (stream_counted_) {
      stream_counted_ = false;
      server_.open_streams.fetch_sub(1);
    }
    finished_ = true;
    out_.clear();
    close();
  }

  void close() {
    end();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().close();
  }
};

void Core::accept(tcp::acceptor& a) {
  a.async_accept(net::make_strand(ioc), [this, &a](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted && !stopping.load()) {
        spdlog::warn("accept: {}", ec.message());
        accept(a);
      }
      return;
    }
    if (tls)
      std::make_shared<Session<tls_stream>>(*this, std::move(socket), *tls)->start();
    else
      std::make_shared<Session<plain_stream>>(*this, std::move(socket))->start();
    accept(a);
  });
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
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    h.host = host;
    h.pid = static_cast<int>(::getpid());
    h.listener_name = h.host + " " + std::to_string(h.pid) + " " + request_id("");
    d.hub = std::make_unique<EventHub>(std::move(h));
  }
  d.pool = std::make_unique<DbPool>(ClientOptions{d.o.store, d.o.limits}, d.o.config.db_pool,
                                    d.o.config.db_acquire_timeout, enqueue_answer, get_answer);
  d.routes = std::make_unique<RouteContext>(
      RouteContext{*d.auth, d.o.limits, d.metrics, d.in_flight, d.o.version, d.o.config.metrics_auth, d.hub.get()});
  d.routes->pool = d.pool.get();
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
      const auto local = a->local_endpoint();
      d.bound.push_back(
          (local.address().is_v6() ? "[" + local.address().to_string() + "]" : local.address().to_string()) + ":" +
          std::to_string(local.port()));
      d.acceptors.push_back(std::move(a));
    }
  }
  for (auto& a : d.acceptors) d.accept(*a);
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
  net::post(d.ioc, [&d] {
    beast::error_code ec;
    for (auto& a : d.acceptors) a->close(ec);
  });
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
  return impl_->bound;
}

bool Server::healthy(Duration max_stall) const {
  return steady_ns() - impl_->loop_round.load() <
         std::chrono::duration_cast<std::chrono::nanoseconds>(max_stall).count();
}

bool Server::db_moving(Duration max_stall) const {
  return !impl_->pool || impl_->pool->stalled_for() < max_stall;
}

}  // namespace taskq::api
