#pragma once
// One HTTP connection of taskq-apid (internal to server.cpp): reads requests one after another
// (keep-alive) and answers each, on its own strand. Stream is a TCP stream, or a TLS stream over
// one (the handshake comes first).
//
// A request is read in two steps: the headers, then (only when the route wants it) the body.
// Route, method, token and Content-Length are judged from the headers, so 401, 403, 404, 405,
// 413 and 415 never wait for a body; such an answer closes the connection when a body was
// announced, since it was not read.
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <optional>
#include <random>
#include <type_traits>

#include "server_core.hpp"

namespace taskq::api {

namespace session_detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::size_t header_limit = 16 * 1024;
// An event stream whose client has this much unsent is cut: it reads too slowly (or not at all).
constexpr std::size_t stream_backlog_limit = 4 * 1024 * 1024;

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// A client's X-Request-Id is kept when it is 1-128 characters of [A-Za-z0-9._:-]; else one is made.
inline std::string request_id(std::string_view given) {
  if (!given.empty() && given.size() <= 128 &&
      given.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
          std::string_view::npos)
    return std::string(given);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

inline std::chrono::steady_clock::duration steady(Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

template <class Stream>
class Session : public StreamSink, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  explicit Session(Core& server, ConnectionLimit::Slot slot, Args&&... args)
      : stream_(std::forward<Args>(args)...),
        server_(server),
        slot_(std::move(slot)),
        write_timer_(stream_.get_executor()) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, tls_stream>) {
        self->lowest().expires_after(steady(self->server_.o.config.request_timeout));
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
      self->stream_slot_.reset();
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
  ConnectionLimit::Slot slot_;                     // this connection's place under api.max_connections
  std::optional<StreamLimits::Slot> stream_slot_;  // its place under api.max_event_streams
  std::string request_id_ = "-";
  std::string method_ = "-", target_ = "-";
  bool keep_alive_ = true;
  bool unread_ = false;  // a request body was left unread: close gently (linger) after the answer
  std::size_t drained_ = 0;
  bool counted_ = false;  // counted in server_.in_flight
  std::chrono::steady_clock::time_point started_{};
  Request request_;

  // Event stream state (on the strand, but gone_ which the hub reads).
  std::atomic<bool> gone_{false};
  std::string stream_route_;
  bool streaming_ = false, header_sent_ = false, write_busy_ = false, end_after_ = false, finished_ = false;
  bool stream_counted_ = false;
  std::deque<Frame> out_;
  std::vector<Frame> writing_;
  std::size_t backlog_ = 0;
  std::array<char, 256> discard_{};
  net::steady_timer write_timer_;  // a stream write pending past api.stream_write_timeout cuts the stream
  std::uint64_t write_seq_ = 0;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  const beast::tcp_stream& lowest() const { return beast::get_lowest_layer(stream_); }

  void read() {
    if (server_.stopping.load()) return close();
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(boost::none);  // Content-Length is judged after the route (on_header)
    // The whole request must arrive within request_timeout; slow or stalled clients are cut.
    lowest().expires_after(steady(server_.o.config.request_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, this->shared_from_this()));
  }

  // Errors that end a read without an answer; true when the connection was closed.
  bool lost(const beast::error_code& ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted) {
      close();
      return true;
    }
    if (ec == beast::error::timeout) {
      spdlog::debug("connection from {} cut: no complete request within {}", peer(),
                    format_duration(server_.o.config.request_timeout));
      close();
      return true;
    }
    return false;
  }

  // A request that cannot be read on: answered, then the connection closes.
  void refuse_unread(const beast::error_code& ec) {
    keep_alive_ = false;
    unread_ = true;
    if (ec == http::error::body_limit) return write(too_large(), "unread");
    if (ec == http::error::header_limit)
      return write(error_response(431, "headers_too_large",
                                  "the request headers are larger than " + std::to_string(header_limit) + " bytes"),
                   "unread");
    write(error_response(400, "malformed_request", "malformed HTTP request: " + ec.message()), "unread");
  }

  Response too_large() const {
    return error_response(
        413, "payload_too_large",
        "the body is larger than api.max_body (" + std::to_string(server_.o.config.max_body) + " bytes)");
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (lost(ec)) return;
    started_ = std::chrono::steady_clock::now();
    begin();
    if (!parser_->is_header_done()) {
      request_id_ = request_id("");
      return refuse_unread(ec);
    }
    const auto& h = parser_->get();
    request_id_ = request_id(h["X-Request-Id"]);
    method_ = std::string(h.method_string());
    target_ = std::string(h.target());
    if (ec) return refuse_unread(ec);
    keep_alive_ = h.keep_alive();

    request_ = Request{};
    request_.method = method_;
    const std::string_view target = h.target();
    const auto q = target.find('?');
    request_.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) request_.query = std::string(target.substr(q + 1));
    request_.content_type = std::string(h[http::field::content_type]);
    request_.authorization = std::string(h[http::field::authorization]);
    request_.if_none_match = std::string(h[http::field::if_none_match]);
    request_.idempotency_key = std::string(h["Idempotency-Key"]);
    request_.trace = request_trace(h, request_id_);
    if (parser_->is_done()) return dispatch(route(request_, *server_.routes));

    // A body is announced: decide from the headers first, read it only if still wanted.
    request_.body_pending = true;
    Routed routed = route(request_, *server_.routes);
    request_.body_pending = false;
    if (routed.response) {
      keep_alive_ = false;  // the body stays unread
      unread_ = true;
      return write(std::move(*routed.response), routed.route);
    }
    const auto length = parser_->content_length();
    if (length && *length > server_.o.config.max_body) {
      keep_alive_ = false;
      unread_ = true;
      return write(too_large(), routed.route);
    }
    parser_->body_limit(server_.o.config.max_body);
    if (beast::iequals(h[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      return http::async_write(stream_, *cont,
                               [self = this->shared_from_this(), cont](beast::error_code e, std::size_t) {
                                 if (e) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_body, this->shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (lost(ec)) return;
    if (ec) return refuse_unread(ec);
    request_.body = std::move(parser_->get().body());
    dispatch(route(request_, *server_.routes));
  }

  void dispatch(Routed routed) {
    if (routed.response) return write(std::move(*routed.response), routed.route);
    if (routed.stream) {
      stream_route_ = routed.route;
      auto taken = server_.stream_limits.take(routed.token);
      if (!taken.slot) {
        spdlog::info("request {}: {} {} refused: {}", request_id_, method_, target_, taken.reason);
        return write(std::move(taken.refusal), routed.route);
      }
      stream_slot_ = std::move(taken.slot);
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

  // A 500 never shows what went wrong inside (SQL, SQLSTATE, a library's message): the log has it
  // under the request id, the client gets the id. Other errors keep their (client-facing) text.
  void keep_detail_in_log(Response& resp, const std::string& route_name) {
    if (resp.status == 500) {
      std::string said = resp.detail.empty() ? resp.body : resp.detail;  // the body: an error made elsewhere
      while (!said.empty() && said.back() == '\n') said.pop_back();
      spdlog::error("request {}: {} {} ({}): {}", request_id_, method_, target_, route_name, said);
      auto headers = std::move(resp.headers);
      resp = internal_error_response(request_id_);
      resp.headers = std::move(headers);
    } else if (!resp.detail.empty()) {
      spdlog::warn("request {}: {} {} ({}) -> {}: {}", request_id_, method_, target_, route_name, resp.status,
                   resp.detail);
    }
  }

  void write(Response resp, const std::string& route_name) {
    keep_detail_in_log(resp, route_name);
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
    lowest().expires_after(steady(server_.o.config.request_timeout));
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->end();
      if (!ec && self->unread_) return self->linger();
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
    arm_write_timer();
    http::async_write_header(stream_, *sr,
                             [self = this->shared_from_this(), res, sr](beast::error_code ec, std::size_t) {
                               ++self->write_seq_;
                               self->write_timer_.cancel();
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

  // Each write of a stream must be taken by the client within api.stream_write_timeout.
  void arm_write_timer() {
    const auto seq = ++write_seq_;
    write_timer_.expires_after(steady(server_.o.config.stream_write_timeout));
    write_timer_.async_wait([self = this->shared_from_this(), seq](beast::error_code ec) {
      if (ec || seq != self->write_seq_) return;
      spdlog::warn("request {}: event stream {} cut: its client took no data for {} ({} bytes waiting)",
                   self->request_id_, self->target_, format_duration(self->server_.o.config.stream_write_timeout),
                   self->backlog_);
      self->stream_lost();
    });
  }

  void write_frames() {
    if (!header_sent_ || write_busy_ || finished_) return;
    if (out_.empty()) {
      if (!end_after_) return;
      finished_ = true;
      write_busy_ = true;
      arm_write_timer();
      net::async_write(stream_, http::make_chunk_last(),
                       [self = this->shared_from_this()](beast::error_code, std::size_t) {
                         self->write_busy_ = false;
                         ++self->write_seq_;
                         self->write_timer_.cancel();
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
    arm_write_timer();
    net::async_write(stream_, http::make_chunk(buffers),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->write_busy_ = false;
                       ++self->write_seq_;  // this write is done: its timer no longer applies
                       self->write_timer_.cancel();
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
    stream_slot_.reset();
    ++write_seq_;
    write_timer_.cancel();
    finished_ = true;
    out_.clear();
    close();
  }

  // After answering a request whose body was not read: stop sending, then take and drop what
  // the client still sends (at most 1 MiB, for at most 2 s) before closing, so that the close
  // does not reset the connection and destroy the answer before the client reads it.
  void linger() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().expires_after(std::chrono::seconds{2});
    drain();
  }
  void drain() {
    lowest().async_read_some(net::buffer(discard_),
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                               self->drained_ += n;
                               if (ec || self->drained_ > 1024 * 1024) return self->close();
                               self->drain();
                             });
  }

  void close() {
    end();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().close();
  }
};

}  // namespace session_detail

}  // namespace taskq::api
