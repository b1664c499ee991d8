#pragma once
// A real HTTP/1.1 client for system tests of taskq-apid (Boost.Beast, synchronous, one
// connection per request), and a raw socket for clients that misbehave on purpose.
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace taskq::test {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  [[nodiscard]] std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

/// One request to 127.0.0.1:port. Throws std::runtime_error when the connection fails.
HttpResult http_request(int port, const std::string& method, const std::string& target, const std::string& body = "",
                        const std::vector<std::pair<std::string, std::string>>& headers = {});

/// Sends `bytes` as they are, then reads until the server closes the connection or `timeout`
/// passes; returns what was read and whether the server closed it.
std::pair<std::string, bool> raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout);

}  // namespace taskq::test
