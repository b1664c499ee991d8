#pragma once
// The accept loop of taskq-apid, and the bound on open connections.
//
// A connection beyond api.max_connections is accepted and closed at once (a plain HTTP client
// first gets a fixed 503 written without waiting): the client learns at once, the listen backlog
// never fills with connections nobody will serve, and one refusal costs an accept and a close.
// An accept that fails (EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or the system is out of
// something) is retried after a pause that doubles from 10 ms to 1 s, never in a tight loop; each
// episode is logged twice, when it starts and when it ends (with its count), never per attempt.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace taskq::api {

/// When to retry a failing accept and when to log it. Pure.
class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds first_delay{10};
  static constexpr std::chrono::milliseconds max_delay{1000};

  struct Step {
    std::chrono::milliseconds delay;
    bool first = false;  // the first error of an episode: log it
  };
  /// An accept failed: how long to wait before the next one.
  Step failed();
  /// An accept succeeded: how many errors the episode that just ended had (0: there was none).
  std::int64_t succeeded();

 private:
  std::chrono::milliseconds delay_{0};
  std::int64_t errors_ = 0;
};

/// Counts open connections against a maximum. Thread-safe.
class ConnectionLimit {
 public:
  explicit ConnectionLimit(int max) : max_(max) {}

  /// Holds one connection's place until destroyed. Move-only.
  class Slot {
   public:
    Slot() = default;
    explicit Slot(ConnectionLimit* owner) : owner_(owner) {}
    Slot(Slot&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)) {}
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = std::exchange(o.owner_, nullptr);
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    void release();

   private:
    ConnectionLimit* owner_ = nullptr;
  };

  /// A place for one more connection, or nothing at the maximum (the refusal is counted and its
  /// episode logged once).
  std::optional<Slot> take();
  [[nodiscard]] int open() const { return open_.load(); }
  [[nodiscard]] int max() const { return max_; }
  /// Connections refused so far (for /metrics).
  [[nodiscard]] std::int64_t refused() const { return refused_.load(); }

 private:
  std::atomic<int> open_{0};
  const int max_;
  std::atomic<std::int64_t> refused_{0};
  std::atomic<std::int64_t> refused_in_episode_{0};
  std::atomic<bool> refusing_{false};
};

/// Accepts connections on one acceptor and hands each, with its slot, to `serve`.
class Listener {
 public:
  using Serve = std::function<void(boost::asio::ip::tcp::socket, ConnectionLimit::Slot)>;
  /// `plain`: connections speak plain HTTP (a refused one gets a 503 line; TLS ones are just closed).
  Listener(boost::asio::io_context& ioc, std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor,
           ConnectionLimit& limit, bool plain, Serve serve);
  void start();
  /// Stops accepting (closes the acceptor). Thread-safe.
  void close();
  [[nodiscard]] std::string address() const { return address_; }

 private:
  void accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  boost::asio::steady_timer pause_;
  ConnectionLimit& limit_;
  bool plain_;
  Serve serve_;
  AcceptBackoff backoff_;
  std::string address_;
  bool closed_ = false;
};

}  // namespace taskq::api
