#include "sse_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace taskq::test {

using Clock = std::chrono::steady_clock;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

EventStream::EventStream(int port, const std::string& target, const std::string& token,
                         std::chrono::milliseconds timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw std::runtime_error("connect to port " + std::to_string(port) + ": " + std::strerror(errno));
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  req += "\r\n";
  if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    throw std::runtime_error("send: " + std::string(std::strerror(errno)));
  const auto deadline = Clock::now() + timeout;
  std::size_t end = std::string::npos;
  while ((end = raw_.find("\r\n\r\n")) == std::string::npos)
    if (!fill(deadline)) throw std::runtime_error("no response headers from " + target + " (got: " + raw_ + ")");
  const std::string head = raw_.substr(0, end);
  raw_.erase(0, end + 4);
  std::size_t pos = head.find("\r\n");
  const std::string status_line = head.substr(0, pos);
  if (status_line.size() < 12) throw std::runtime_error("bad status line: " + status_line);
  status_ = std::stoi(status_line.substr(9, 3));
  while (pos != std::string::npos && pos < head.size()) {
    const auto next = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      headers_[lower(line.substr(0, colon))] = v;
    }
    pos = next;
  }
  chunked_ = lower(header("transfer-encoding")) == "chunked";
}

EventStream::~EventStream() {
  if (fd_ >= 0) ::close(fd_);
}

std::string EventStream::header(const std::string& lower_name) const {
  const auto it = headers_.find(lower_name);
  return it == headers_.end() ? "" : it->second;
}

bool EventStream::fill(Clock::time_point deadline) {
  if (closed_) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  char buf[8192];
  const auto n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  raw_.append(buf, static_cast<std::size_t>(n));
  return true;
}

void EventStream::decode() {
  if (!chunked_) {
    body_ += raw_;
    raw_.clear();
    return;
  }
  while (!body_done_) {
    const auto eol = raw_.find("\r\n");
    if (eol == std::string::npos) return;
    const std::size_t size = std::stoul(raw_.substr(0, eol), nullptr, 16);
    if (raw_.size() < eol + 2 + size + 2) return;
    body_.append(raw_, eol + 2, size);
    raw_.erase(0, eol + 2 + size + 2);
    if (size == 0) body_done_ = true;
  }
}

std::string EventStream::body(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto length = header("content-length");
  const std::size_t want = length.empty() ? std::string::npos : std::stoul(length);
  while (raw_.size() < want && fill(deadline)) {
  }
  return raw_.substr(0, want);
}

std::optional<SseEvent> EventStream::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    decode();
    std::size_t end;
    while ((end = body_.find("\n\n")) != std::string::npos) {
      const std::string block = body_.substr(0, end);
      body_.erase(0, end + 2);
      SseEvent e;
      bool any = false;
      std::size_t pos = 0;
      while (pos <= block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string::npos) nl = block.size();
        const std::string line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.rfind("event: ", 0) == 0) {
          e.event = line.substr(7);
          any = true;
        } else if (line.rfind("data: ", 0) == 0) {
          e.data += line.substr(6);
          any = true;
        } else if (!line.empty() && line[0] == ':') {
          ++comments_;
        }
      }
      if (any) return e;
    }
    if (body_done_ || !fill(deadline)) return std::nullopt;
  }
}

bool EventStream::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) {
    if (fill(deadline)) decode();
  }
  return closed_;
}

}  // namespace taskq::test
