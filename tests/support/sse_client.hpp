#pragma once
// A client of taskq-apid's event streams for system tests: a plain socket, an HTTP/1.1 request,
// the response headers, then the chunked body decoded and split into Server-Sent Events. Every
// read has a deadline (poll), so a test never hangs on a stream that stays silent.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace taskq::test {

struct SseEvent {
  std::string event;  // "state", "progress", "end", ...
  std::string data;
};

class EventStream {
 public:
  /// Connects to 127.0.0.1:port, sends GET `target` (with a bearer `token` unless empty) and
  /// reads the status line and headers. Throws std::runtime_error on a socket error or timeout.
  EventStream(int port, const std::string& target, const std::string& token,
              std::chrono::milliseconds timeout = std::chrono::seconds{10});
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  [[nodiscard]] int status() const { return status_; }
  [[nodiscard]] std::string header(const std::string& lower_name) const;
  /// A response that is not a stream (an error): its whole body.
  std::string body(std::chrono::milliseconds timeout = std::chrono::seconds{10});

  /// The next event (comments skipped) within `timeout`; nothing on timeout or when the stream ended.
  std::optional<SseEvent> next(std::chrono::milliseconds timeout);
  /// Comments seen so far (": keep-alive").
  [[nodiscard]] int comments() const { return comments_; }
  /// The last chunk arrived (the response is complete).
  [[nodiscard]] bool ended() const { return body_done_; }
  /// The server closed the connection.
  [[nodiscard]] bool closed() const { return closed_; }
  /// Reads until the connection closes or `timeout` passes; true when it closed.
  bool wait_closed(std::chrono::milliseconds timeout);

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);  // more raw bytes; false on timeout/close
  void decode();                                              // raw_ -> body_ (chunked)
  int fd_ = -1;
  int status_ = 0;
  std::map<std::string, std::string> headers_;
  std::string raw_;   // received, not yet decoded
  std::string body_;  // decoded, not yet split into events
  bool chunked_ = false, body_done_ = false, closed_ = false;
  int comments_ = 0;
};

}  // namespace taskq::test
