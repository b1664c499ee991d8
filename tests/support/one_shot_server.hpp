#pragma once
// A tiny HTTP server for tests: serves one request on 127.0.0.1 (a free port) from a thread.
#include <utility>  // before Asio (g++ 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace taskq::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

// Serves one request on 127.0.0.1 with `respond` (nullopt: read the request and never answer).
class OneShotServer {
 public:
  using Responder =
      std::function<std::optional<http::response<http::string_body>>(const http::request<http::string_body>&)>;
  explicit OneShotServer(Responder respond) : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, respond = std::move(respond)] {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      request_ = req;
      if (auto res = respond(req)) {
        res->prepare_payload();
        http::write(socket, *res, ec);
      } else {
        char c;
        socket.read_some(asio::buffer(&c, 1), ec);  // until the client gives up
      }
    });
  }
  OneShotServer(const OneShotServer&) = delete;
  OneShotServer& operator=(const OneShotServer&) = delete;
  ~OneShotServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  [[nodiscard]] std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  [[nodiscard]] const http::request<http::string_body>& request() const { return request_; }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  http::request<http::string_body> request_;
};

}  // namespace taskq::test
