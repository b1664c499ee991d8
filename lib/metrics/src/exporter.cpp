#include "taskq/metrics/exporter.hpp"

#include <utility>  // before Asio (see DESIGN.md)

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>

#include "taskq/core/error.hpp"

namespace taskq::metrics {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t max_head = 8192;
constexpr std::size_t max_body = 1024;  // read and ignored (a POST gets 405); more: 413

std::pair<std::string, std::string> split_address(const std::string& a) {
  const auto colon = a.rfind(':');
  if (colon == std::string::npos) return {a, ""};
  std::string host = a.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, a.substr(colon + 1)};
}

// One client connection: read a request, answer, repeat while it keeps the connection alive.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const std::function<std::string()>& render, std::chrono::milliseconds timeout,
             std::atomic<int>& open)
      : stream_(std::move(socket)), render_(render), timeout_(timeout), open_(open) {}
  ~Connection() { open_.fetch_sub(1); }

  void read() {
    parser_.emplace();
    parser_->header_limit(max_head);
    parser_->body_limit(max_body);
    stream_.expires_after(timeout_);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return close();
    if (ec) {
      // Too large or malformed: say so once, then close; timeouts and resets: just close.
      if (ec == http::error::header_limit)
        return answer(http::status::request_header_fields_too_large, "request head too large\n", false, 11);
      if (ec == http::error::body_limit) return answer(http::status::payload_too_large, "body too large\n", false, 11);
      if (ec.category() == http::make_error_code(http::error::bad_target).category())
        return answer(http::status::bad_request, "bad request\n", false, 11);
      return close();
    }
    const auto& req = parser_->get();
    const bool keep = req.keep_alive();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") return answer(http::status::not_found, "not found: try /metrics\n", keep, req.version());
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return answer(http::status::method_not_allowed, "only GET and HEAD\n", keep, req.version());
    std::string body;
    try {
      body = render_();
    } catch (const std::exception& e) {
      return answer(http::status::internal_server_error, std::string("metrics: ") + e.what() + "\n", false,
                    req.version());
    }
    answer(http::status::ok, req.method() == http::verb::head ? std::string() : std::move(body), keep, req.version(),
           "text/plain; version=0.0.4; charset=utf-8");
  }

  void answer(http::status status, std::string body, bool keep, unsigned version,
              const char* type = "text/plain; charset=utf-8") {
    auto res = std::make_shared<http::response<http::string_body>>(status, version);
    res->set(http::field::content_type, type);
    if (status == http::status::method_not_allowed) res->set(http::field::allow, "GET, HEAD");
    res->keep_alive(keep);
    res->body() = std::move(body);
    res->prepare_payload();
    stream_.expires_after(timeout_);
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep](beast::error_code ec, std::size_t) {
      if (!ec && keep) return self->read();
      self->close();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{max_head};
  std::optional<http::request_parser<http::string_body>> parser_;
  const std::function<std::string()>& render_;
  std::chrono::milliseconds timeout_;
  std::atomic<int>& open_;
};

}  // namespace

struct Exporter::Impl {
  ExporterOptions o;
  std::function<std::string()> render;
  std::atomic<int> open{0};  // before ioc: connections left in it count down as it is destroyed
  std::unique_ptr<net::io_context> ioc = std::make_unique<net::io_context>(1);
  std::optional<tcp::acceptor> acceptor;
  std::jthread thread;
  std::string endpoint;
  bool started = false, stopped = false;

  void accept() {
    acceptor->async_accept(*ioc, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        if (open.fetch_add(1) >= o.max_connections) {
          open.fetch_sub(1);
          beast::error_code ignored;
          socket.close(ignored);
        } else {
          std::make_shared<Connection>(std::move(socket), render, o.request_timeout, open)->read();
        }
      }
      accept();
    });
  }
};

Exporter::Exporter(ExporterOptions options, std::function<std::string()> render) : impl_(std::make_unique<Impl>()) {
  impl_->o = std::move(options);
  impl_->render = std::move(render);
}

Exporter::~Exporter() {
  stop();
}

void Exporter::start() {
  auto& d = *impl_;
  if (d.started) return;
  const auto [host, port] = split_address(d.o.listen);
  const std::string where = d.o.config_key + " '" + d.o.listen + "'";
  beast::error_code ec;
  tcp::resolver resolver(*d.ioc);
  const auto results = resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    throw Error(Errc::invalid_input, where + ": cannot resolve '" + host + "': " + ec.message());
  const auto ep = results.begin()->endpoint();
  d.acceptor.emplace(*d.ioc);
  d.acceptor->open(ep.protocol(), ec);
  if (!ec) d.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) d.acceptor->bind(ep, ec);
  if (!ec) d.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error(Errc::unavailable, where + ": cannot listen on " + ep.address().to_string() + ":" +
                                       std::to_string(ep.port()) + ": " + ec.message());
  const auto bound = d.acceptor->local_endpoint();
  d.endpoint = (bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string()) + ":" +
               std::to_string(bound.port());
  d.accept();
  d.thread = std::jthread([&d] { d.ioc->run(); });
  d.started = true;
}

void Exporter::stop() {
  auto& d = *impl_;
  if (!d.started || d.stopped) return;
  d.stopped = true;
  d.ioc->stop();
  d.thread.join();
  // Close the listening socket, then every connection: they live in the handlers the
  // io_context still holds, and close as it is destroyed.
  d.acceptor.reset();
  d.ioc.reset();
}

std::string Exporter::endpoint() const {
  return impl_->endpoint;
}

}  // namespace taskq::metrics
