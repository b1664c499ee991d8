#include "http_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <stdexcept>

namespace taskq::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

HttpResult http_request(int port, const std::string& method, const std::string& target, const std::string& body,
                        const std::vector<std::pair<std::string, std::string>>& headers) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST") {
    req.body() = body;
    req.prepare_payload();
  }
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (method == "HEAD") parser.skip(true);  // a HEAD response has headers only
  http::read(stream, buffer, parser);
  const auto& res = parser.get();
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  out.body = res.body();
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

std::pair<std::string, bool> raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  if (!bytes.empty()) net::write(stream.socket(), net::buffer(bytes));
  std::string out;
  bool closed = false;
  char buf[4096];
  stream.expires_after(timeout);
  for (;;) {
    beast::error_code ec;
    const auto n = stream.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec == net::error::eof || ec == net::error::connection_reset) {
      closed = true;
      break;
    }
    if (ec) break;  // timeout
  }
  return {out, closed};
}

}  // namespace taskq::test
