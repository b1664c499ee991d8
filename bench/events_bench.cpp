// taskq_events_bench: many open event streams (Server-Sent Events) of taskq-apid, and how long an
// event takes to reach all of them (bench/events). Prints one JSON object on stdout; progress and
// errors go to stderr.
//
//   taskq_events_bench --port P --token T [--host 127.0.0.1] [--streams 5000] [--rounds 50]
//       [--warmup 2] [--interval-ms 200] [--queue bench] [--connect-concurrency 200]
//       [--threads 1] [--open-timeout 60] [--settle-ms 5000] [--sync-dir DIR] [--end-timeout 60]
//   Every flag can also be given in the environment: --interval-ms as EVENTS_INTERVAL_MS, etc.
//   (flags win).
//
// 1. Raises its RLIMIT_NOFILE soft limit to the hard limit (fails when that is below STREAMS+64).
// 2. Opens STREAMS connections, at most CONNECT_CONCURRENCY connecting at a time, each sending
//    `GET /v1/events?queue=QUEUE` (a queue stream: the response starts with no event) and reading
//    the chunked SSE response incrementally, until every stream got its 200 headers (or failed,
//    or OPEN_TIMEOUT passed).
// 3. With --sync-dir: creates DIR/opened and waits (up to 60 s) for DIR/go, so that the script can
//    sample apid with every stream open.
// 4. WARMUP + ROUNDS rounds on a fixed schedule of one every INTERVAL_MS: `POST /v1/jobs`
//    {"kind":"bench","queue":QUEUE} on a separate keep-alive connection (blocking, main thread);
//    T0 = steady_clock just before the request is written. Every stream records when the `state`
//    event of each job id arrived (at the completion of the read that brought it). After the
//    last round it waits up to SETTLE_MS for the missing deliveries. Latency = arrival - T0, over
//    every stream and measured round; "last stream" = per round, the latest arrival.
// 5. With --sync-dir: creates DIR/rounds-done and keeps the streams until the server ends them
//    (the script sends apid SIGTERM), counting `event: end` {"reason":"shutdown"}, up to
//    END_TIMEOUT seconds. Without it the streams are simply closed.
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Steady = std::chrono::steady_clock;

// ---- options ---------------------------------------------------------------------------------

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string token;
  std::string queue = "bench";
  long streams = 5000;
  long rounds = 50;
  long warmup = 2;
  long interval_ms = 200;
  long connect_concurrency = 200;
  long threads = 1;
  long open_timeout_s = 60;
  long settle_ms = 5000;
  long end_timeout_s = 60;
  std::string sync_dir;
};

[[noreturn]] void usage_error(const std::string& msg) {
  if (!msg.empty()) std::cerr << "taskq_events_bench: " << msg << "\n";
  std::cerr << "usage: taskq_events_bench --port P --token T [--host H] [--streams N] [--rounds N] [--warmup N]"
               " [--interval-ms MS] [--queue Q] [--connect-concurrency N] [--threads N] [--open-timeout S]"
               " [--settle-ms MS] [--sync-dir DIR] [--end-timeout S]\n"
               "(each flag also as an environment variable: --interval-ms as EVENTS_INTERVAL_MS)\n";
  std::exit(msg.empty() ? 0 : 2);
}

Options parse_options(int argc, char** argv) {
  std::map<std::string, std::string> given;
  // The environment first (EVENTS_STREAMS=..., EVENTS_INTERVAL_MS=...), then the flags.
  for (const char* key : {"host", "port", "token", "queue", "streams", "rounds", "warmup", "interval-ms",
                          "connect-concurrency", "threads", "open-timeout", "settle-ms", "end-timeout", "sync-dir"}) {
    std::string env = "EVENTS_";
    for (const char* c = key; *c; ++c) env.push_back(*c == '-' ? '_' : static_cast<char>(std::toupper(*c)));
    if (const char* v = std::getenv(env.c_str()); v && *v) given[key] = v;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") usage_error("");
    if (k.rfind("--", 0) != 0 || i + 1 >= argc) usage_error("bad argument '" + k + "'");
    given[k.substr(2)] = argv[++i];
  }
  Options o;
  auto num = [&](const std::string& k, long& out, long min) {
    auto it = given.find(k);
    if (it == given.end()) return;
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    if (errno || end == it->second.c_str() || *end || v < min)
      usage_error("--" + k + ": expected an integer >= " + std::to_string(min) + ", got '" + it->second + "'");
    out = v;
  };
  for (auto& [k, v] : given) {
    if (k == "host")
      o.host = v;
    else if (k == "port")
      o.port = v;
    else if (k == "token")
      o.token = v;
    else if (k == "queue")
      o.queue = v;
    else if (k == "sync-dir")
      o.sync_dir = v;
    else if (k != "streams" && k != "rounds" && k != "warmup" && k != "interval-ms" && k != "connect-concurrency" &&
             k != "threads" && k != "open-timeout" && k != "settle-ms" && k != "end-timeout")
      usage_error("unknown option --" + k);
  }
  num("streams", o.streams, 1);
  num("rounds", o.rounds, 1);
  num("warmup", o.warmup, 0);
  num("interval-ms", o.interval_ms, 1);
  num("connect-concurrency", o.connect_concurrency, 1);
  num("threads", o.threads, 1);
  num("open-timeout", o.open_timeout_s, 1);
  num("settle-ms", o.settle_ms, 0);
  num("end-timeout", o.end_timeout_s, 1);
  if (o.port.empty()) usage_error("--port is required");
  return o;
}

// ---- small helpers ---------------------------------------------------------------------------

double ms(Steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double percentile(std::vector<double> v, double p) {  // nearest rank; v not empty
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(rank == 0 ? 0 : rank - 1, v.size() - 1)];
}

double round3(double x) {
  return std::round(x * 1000) / 1000;
}

json::object summary(const std::vector<double>& v) {
  if (v.empty()) return {{"n", 0}};
  return {{"n", v.size()},
          {"min", round3(*std::min_element(v.begin(), v.end()))},
          {"p50", round3(percentile(v, 50))},
          {"p90", round3(percentile(v, 90))},
          {"p99", round3(percentile(v, 99))},
          {"max", round3(*std::max_element(v.begin(), v.end()))}};
}

void touch(const std::string& path) {
  std::ofstream f(path);
  if (!f) std::cerr << "taskq_events_bench: cannot create " << path << "\n";
}

// Waits for `path` to exist; false after `timeout`.
bool wait_file(const std::string& path, std::chrono::seconds timeout) {
  const auto until = Steady::now() + timeout;
  while (!std::filesystem::exists(path)) {
    if (Steady::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return true;
}

// Case-insensitive search of `needle` (lower case) in `hay`.
bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && std::tolower(static_cast<unsigned char>(hay[i + j])) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

// ---- what the streams share ------------------------------------------------------------------

struct Shared {
  std::atomic<long> opened{0};      // 200 headers received
  std::atomic<long> failed{0};      // never opened: connect/write/read error or not 200
  std::atomic<long> lost{0};        // opened, then closed before an `end` event
  std::atomic<long> closed{0};      // opened, then closed (by the server or an error)
  std::atomic<long> deliveries{0};  // `state` events received, every stream
  std::atomic<long> ends_shutdown{0}, ends_other{0};
  std::atomic<long> next{0};  // next stream to start connecting
  std::atomic<bool> closing{false};
  std::mutex mu;
  std::map<std::string, long> errors;  // message -> count
  std::vector<double> end_unix;        // when each `end` {"reason":"shutdown"} arrived
  double closed_last_unix = 0;

  void error(const std::string& what) {
    std::lock_guard lock(mu);
    if (++errors[what] <= 3) std::cerr << "taskq_events_bench: stream error: " << what << "\n";
  }
};

// One event stream. All its handlers run one at a time (one operation pending at once), so its
// state needs no lock; the main thread reads `arrivals` only after the I/O threads are joined.
// Reads are recvmsg() calls with SO_TIMESTAMPNS, so that each arrival also has the kernel's receive
// time of its data (CLOCK_REALTIME): the client's own queueing (one thread reading thousands of
// sockets) shows as the difference between the two.
struct Stamp {
  Steady::time_point read;     // when the client read it
  std::int64_t kernel_ns = 0;  // when the kernel received it (realtime ns; 0: unknown)
};
struct Arrival {
  long long job = 0;
  Stamp at;
};

class Conn {
 public:
  Conn(net::io_context& ioc, Shared& shared, const Options& o, const std::string& request,
       const tcp::endpoint& endpoint, std::function<void()> launch_next)
      : socket_(ioc),
        shared_(shared),
        o_(o),
        request_(request),
        endpoint_(endpoint),
        launch_next_(std::move(launch_next)) {}

  std::vector<Arrival> arrivals;

  void start() {
    socket_.async_connect(endpoint_, [this](beast::error_code ec) {
      if (ec) return fail("connect: " + ec.message());
      const int on = 1;
      if (::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0)
        shared_.error(std::string("setsockopt(SO_TIMESTAMPNS): ") + std::strerror(errno));
      net::async_write(socket_, net::buffer(request_), [this](beast::error_code wec, std::size_t) {
        if (wec) return fail("write request: " + wec.message());
        read();
      });
    });
  }

  // From an I/O thread (posted): the bench is over, close without counting a loss.
  void close() {
    beast::error_code ec;
    socket_.close(ec);
  }

 private:
  enum class St { headers, size, data, data_crlf, last, done };
  tcp::socket socket_;
  Shared& shared_;
  const Options& o_;
  const std::string& request_;
  const tcp::endpoint& endpoint_;
  std::function<void()> launch_next_;
  std::array<char, 4096> buf_{};
  St st_ = St::headers;
  bool open_ = false, chunked_ = true, ended_ = false;
  std::string line_;  // headers or a chunk-size line so far
  std::string sse_;   // decoded body not yet split into events
  std::size_t left_ = 0;

  void read() {
    socket_.async_wait(tcp::socket::wait_read, [this](beast::error_code ec) {
      if (st_ == St::done) return;
      if (ec) return finish("wait: " + ec.message());
      for (;;) {
        iovec iov{buf_.data(), buf_.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const auto n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          return finish(std::string("read: ") + std::strerror(errno));
        }
        if (n == 0) return finish("");
        Stamp stamp{Steady::now(), 0};
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts{};
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            stamp.kernel_ns = static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
          }
        consume(std::string_view(buf_.data(), static_cast<std::size_t>(n)), stamp);
        if (st_ == St::done) return;
      }
      read();
    });
  }

  void fail(const std::string& what) {
    st_ = St::done;
    beast::error_code ec;
    socket_.close(ec);
    if (shared_.closing.load()) return;
    shared_.failed.fetch_add(1);
    shared_.error(what);
    launch_next_();
  }

  // The connection ended (eof: `what` empty).
  void finish(const std::string& what) {
    st_ = St::done;
    beast::error_code ec;
    socket_.close(ec);
    if (shared_.closing.load()) return;
    if (!open_) {
      shared_.failed.fetch_add(1);
      shared_.error(what.empty() ? "closed before the response headers" : what);
      launch_next_();
      return;
    }
    shared_.closed.fetch_add(1);
    {
      std::lock_guard lock(shared_.mu);
      shared_.closed_last_unix = std::max(shared_.closed_last_unix, unix_now());
    }
    if (!ended_) {
      shared_.lost.fetch_add(1);
      shared_.error(what.empty() ? "stream closed by the server without an end event" : what);
    }
  }

  void consume(std::string_view in, const Stamp& now) {
    while (!in.empty() && st_ != St::done) {
      switch (st_) {
        case St::headers: {
          line_.append(in);
          in = {};
          const auto end = line_.find("\r\n\r\n");
          if (end == std::string::npos) {
            if (line_.size() > 64 * 1024) return finish("response headers over 64 KiB");
            break;
          }
          const std::string head = line_.substr(0, end);
          const std::string rest = line_.substr(end + 4);
          line_.clear();
          const auto sp = head.find(' ');
          const int status = sp == std::string::npos ? 0 : std::atoi(head.c_str() + sp + 1);
          if (status != 200) {
            const auto first = head.substr(0, head.find("\r\n"));
            return fail("response '" + first + "': " + rest.substr(0, 300));
          }
          chunked_ = contains_ci(head, "transfer-encoding: chunked");
          open_ = true;
          st_ = chunked_ ? St::size : St::data;
          left_ = static_cast<std::size_t>(-1);
          shared_.opened.fetch_add(1);
          launch_next_();
          if (!rest.empty()) consume(rest, now);
          return;
        }
        case St::size: {
          const auto nl = in.find('\n');
          line_.append(in.substr(0, nl == std::string_view::npos ? in.size() : nl + 1));
          in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
          if (nl == std::string_view::npos) break;
          left_ = std::strtoul(line_.c_str(), nullptr, 16);
          line_.clear();
          st_ = left_ == 0 ? St::last : St::data;
          break;
        }
        case St::data: {
          const auto take = std::min(left_, in.size());
          sse_.append(in.substr(0, take));
          in = in.substr(take);
          if (chunked_) {
            left_ -= take;
            if (left_ == 0) st_ = St::data_crlf, left_ = 2;
          }
          events(now);
          break;
        }
        case St::data_crlf: {
          const auto take = std::min(left_, in.size());
          in = in.substr(take);
          left_ -= take;
          if (left_ == 0) st_ = St::size;
          break;
        }
        case St::last:  // trailers: ignored; the server closes the connection
        case St::done:
          in = {};
          break;
      }
    }
  }

  // Splits the decoded body into SSE events ("...\n\n") and handles each.
  void events(const Stamp& now) {
    std::size_t from = 0;
    for (;;) {
      const auto end = sse_.find("\n\n", from);
      if (end == std::string::npos) break;
      event(std::string_view(sse_).substr(from, end - from), now);
      from = end + 2;
    }
    sse_.erase(0, from);
  }

  void event(std::string_view block, const Stamp& now) {
    std::string_view name, data;
    while (!block.empty()) {
      const auto nl = block.find('\n');
      const auto line = block.substr(0, nl);
      block = nl == std::string_view::npos ? std::string_view{} : block.substr(nl + 1);
      if (line.rfind("event: ", 0) == 0)
        name = line.substr(7);
      else if (line.rfind("data: ", 0) == 0)
        data = line.substr(6);
    }
    if (name == "state") {
      const auto at = data.find("\"id\":");
      if (at == std::string_view::npos) return;
      const long long id = std::strtoll(std::string(data.substr(at + 5, 24)).c_str(), nullptr, 10);
      arrivals.push_back({id, now});
      shared_.deliveries.fetch_add(1);
    } else if (name == "end") {
      ended_ = true;
      if (data.find("shutdown") != std::string_view::npos) {
        shared_.ends_shutdown.fetch_add(1);
        std::lock_guard lock(shared_.mu);
        shared_.end_unix.push_back(unix_now());
      } else {
        shared_.ends_other.fetch_add(1);
      }
    }
  }
};

// ---- the POST connection (blocking, main thread) ---------------------------------------------

class Poster {
 public:
  Poster(const Options& o, tcp::endpoint endpoint) : o_(o), endpoint_(std::move(endpoint)) {}

  // Enqueues one job; returns its id and sets t0 (just before the request is written).
  long long enqueue(Steady::time_point& t0, std::int64_t& t0_unix_ns, double& round_trip_ms) {
    for (int attempt = 0;; ++attempt) {
      try {
        if (!socket_) {
          socket_.emplace(ioc_);
          socket_->connect(endpoint_);
          socket_->set_option(tcp::no_delay(true));
        }
        http::request<http::string_body> req{http::verb::post, "/v1/jobs", 11};
        req.set(http::field::host, o_.host);
        req.set(http::field::content_type, "application/json");
        if (!o_.token.empty()) req.set(http::field::authorization, "Bearer " + o_.token);
        req.keep_alive(true);
        req.body() = json::serialize(json::object{{"kind", "bench"}, {"queue", o_.queue}});
        req.prepare_payload();
        t0 = Steady::now();
        t0_unix_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        http::write(*socket_, req);
        http::response<http::string_body> res;
        http::read(*socket_, buffer_, res);
        round_trip_ms = ms(Steady::now() - t0);
        if (!res.keep_alive()) socket_.reset();
        if (res.result_int() != 201 && res.result_int() != 200)
          throw std::runtime_error("POST /v1/jobs -> " + std::to_string(res.result_int()) + ": " + res.body());
        const auto v = json::parse(res.body());
        return v.at("id").to_number<long long>();
      } catch (const boost::system::system_error& e) {
        socket_.reset();
        buffer_.clear();
        if (attempt >= 1) throw std::runtime_error(std::string("POST /v1/jobs: ") + e.what());
      }
    }
  }

 private:
  const Options& o_;
  tcp::endpoint endpoint_;
  net::io_context ioc_;
  std::optional<tcp::socket> socket_;
  beast::flat_buffer buffer_;
};

int run(const Options& o) {
  // File descriptors: every stream is one, plus the POST connection, epoll, stdio, ...
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    std::cerr << "taskq_events_bench: getrlimit(RLIMIT_NOFILE): " << std::strerror(errno) << "\n";
    return 1;
  }
  const auto need = static_cast<rlim_t>(o.streams + 64);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      std::cerr << "taskq_events_bench: setrlimit(RLIMIT_NOFILE, " << rl.rlim_max << "): " << std::strerror(errno)
                << "\n";
      return 1;
    }
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    std::cerr << "taskq_events_bench: " << o.streams << " streams need " << need
              << " file descriptors, but the hard limit (ulimit -Hn) is " << rl.rlim_max
              << "; raise it (limits.conf, systemd LimitNOFILE=, docker --ulimit) or use fewer --streams\n";
    return 1;
  }

  net::io_context ioc;
  tcp::endpoint endpoint;
  {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    const auto r = resolver.resolve(o.host, o.port, ec);
    if (ec || r.empty()) {
      std::cerr << "taskq_events_bench: cannot resolve " << o.host << ":" << o.port << ": " << ec.message() << "\n";
      return 1;
    }
    endpoint = r.begin()->endpoint();
  }
  const std::string request = "GET /v1/events?queue=" + o.queue + " HTTP/1.1\r\nHost: " + o.host +
                              "\r\nAccept: text/event-stream\r\n" +
                              (o.token.empty() ? std::string() : "Authorization: Bearer " + o.token + "\r\n") + "\r\n";

  Shared shared;
  std::vector<std::unique_ptr<Conn>> conns;
  conns.reserve(static_cast<std::size_t>(o.streams));
  std::function<void()> launch = [&] {
    if (shared.closing.load()) return;
    const long i = shared.next.fetch_add(1);
    if (i < o.streams) net::post(ioc, [&conns, i] { conns[static_cast<std::size_t>(i)]->start(); });
  };
  for (long i = 0; i < o.streams; ++i)
    conns.push_back(std::make_unique<Conn>(ioc, shared, o, request, endpoint, launch));

  auto guard = net::make_work_guard(ioc);
  std::vector<std::thread> threads;
  for (long i = 0; i < o.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });

  // --- open ---
  const auto open_start = Steady::now();
  for (long i = 0; i < std::min(o.connect_concurrency, o.streams); ++i) launch();
  const auto open_deadline = open_start + std::chrono::seconds{o.open_timeout_s};
  long last_report = 0;
  while (shared.opened.load() + shared.failed.load() < o.streams && Steady::now() < open_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
    const long n = shared.opened.load();
    if (n >= last_report + 1000) {
      last_report = n - n % 1000;
      std::cerr << "taskq_events_bench: " << n << " stream(s) open (" << shared.failed.load() << " failed), "
                << std::lround(ms(Steady::now() - open_start)) << " ms\n";
    }
  }
  const double open_s = ms(Steady::now() - open_start) / 1000;
  const long opened = shared.opened.load();
  std::cerr << "taskq_events_bench: " << opened << " of " << o.streams << " stream(s) open in " << round3(open_s)
            << " s, " << shared.failed.load() << " failed"
            << (opened + shared.failed.load() < o.streams ? " (open timeout: the rest still pending)" : "") << "\n";

  if (!o.sync_dir.empty()) {
    touch(o.sync_dir + "/opened");
    if (!wait_file(o.sync_dir + "/go", std::chrono::seconds{60})) {
      std::cerr << "taskq_events_bench: no " << o.sync_dir << "/go within 60 s; going on\n";
    }
  }

  // --- rounds ---
  const long total_rounds = opened > 0 ? o.warmup + o.rounds : 0;
  std::vector<long long> job_ids;
  std::vector<Steady::time_point> t0s;
  std::vector<std::int64_t> t0s_unix_ns;
  std::vector<double> post_ms, post_ms_all;
  std::string round_error;
  Poster poster(o, endpoint);
  rusage ru0{};
  ::getrusage(RUSAGE_SELF, &ru0);
  const auto rounds_start = Steady::now();
  for (long r = 0; r < total_rounds; ++r) {
    std::this_thread::sleep_until(rounds_start + std::chrono::milliseconds{o.interval_ms} * r);
    Steady::time_point t0;
    std::int64_t t0_unix_ns = 0;
    double rt = 0;
    try {
      const long long id = poster.enqueue(t0, t0_unix_ns, rt);
      job_ids.push_back(id);
      t0s.push_back(t0);
      t0s_unix_ns.push_back(t0_unix_ns);
      post_ms_all.push_back(rt);
      if (r >= o.warmup) post_ms.push_back(rt);
    } catch (const std::exception& e) {
      round_error = e.what();
      std::cerr << "taskq_events_bench: round " << r << ": " << e.what() << "; stopping the rounds\n";
      break;
    }
  }
  const long done_rounds = static_cast<long>(job_ids.size());
  // Every stream open at the start of the rounds should get every job's event.
  const long expected_all = opened * done_rounds;
  const auto settle_deadline = Steady::now() + std::chrono::milliseconds{o.settle_ms};
  while (shared.deliveries.load() < expected_all && Steady::now() < settle_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  rusage ru1{};
  ::getrusage(RUSAGE_SELF, &ru1);
  auto tv_s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  const double client_cpu_s = tv_s(ru1.ru_utime) + tv_s(ru1.ru_stime) - tv_s(ru0.ru_utime) - tv_s(ru0.ru_stime);
  std::cerr << "taskq_events_bench: " << done_rounds << " round(s) done, " << shared.deliveries.load() << " of "
            << expected_all << " deliveries\n";

  // --- shutdown by the server (with --sync-dir) ---
  double end_wait_s = 0;
  if (!o.sync_dir.empty()) {
    touch(o.sync_dir + "/rounds-done");
    const auto t = Steady::now();
    const auto deadline = t + std::chrono::seconds{o.end_timeout_s};
    while (shared.closed.load() < opened && Steady::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    end_wait_s = ms(Steady::now() - t) / 1000;
    if (shared.closed.load() < opened)
      std::cerr << "taskq_events_bench: " << opened - shared.closed.load() << " stream(s) still open after "
                << o.end_timeout_s << " s\n";
  }
  shared.closing.store(true);
  for (auto& c : conns) net::post(ioc, [p = c.get()] { p->close(); });
  guard.reset();
  // Pending connects (open timeout) end with operation_aborted once closed; give them a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds{50});
  ioc.stop();
  for (auto& t : threads) t.join();

  // --- figures ---
  std::unordered_map<long long, std::size_t> round_of;
  for (std::size_t r = 0; r < job_ids.size(); ++r) round_of[job_ids[r]] = r;
  std::vector<double> latency, kernel_latency;
  std::vector<std::vector<double>> per_round(job_ids.size()), per_round_kernel(job_ids.size());
  long unknown = 0, duplicates = 0;
  for (auto& c : conns) {
    std::vector<bool> seen(job_ids.size(), false);
    for (const auto& [id, at] : c->arrivals) {
      const auto it = round_of.find(id);
      if (it == round_of.end()) {
        ++unknown;
        continue;
      }
      if (seen[it->second]) {
        ++duplicates;
        continue;
      }
      seen[it->second] = true;
      const double l = ms(at.read - t0s[it->second]);
      per_round[it->second].push_back(l);
      if (static_cast<long>(it->second) >= o.warmup) latency.push_back(l);
      if (at.kernel_ns > 0) {
        const double k = static_cast<double>(at.kernel_ns - t0s_unix_ns[it->second]) / 1e6;
        per_round_kernel[it->second].push_back(k);
        if (static_cast<long>(it->second) >= o.warmup) kernel_latency.push_back(k);
      }
    }
  }
  std::vector<double> last_stream, last_stream_kernel;
  long incomplete_rounds = 0;
  json::array rounds_json;
  for (std::size_t r = static_cast<std::size_t>(o.warmup); r < per_round.size(); ++r) {
    const auto& v = per_round[r];
    if (static_cast<long>(v.size()) < opened) ++incomplete_rounds;
    if (v.empty()) continue;
    const double last = *std::max_element(v.begin(), v.end());
    last_stream.push_back(last);
    const auto& k = per_round_kernel[r];
    if (!k.empty()) last_stream_kernel.push_back(*std::max_element(k.begin(), k.end()));
    rounds_json.push_back(json::object{{"job", job_ids[r]},
                                       {"received", v.size()},
                                       {"post_ms", round3(post_ms_all[r])},
                                       {"first_ms", round3(*std::min_element(v.begin(), v.end()))},
                                       {"p50_ms", round3(percentile(v, 50))},
                                       {"last_ms", round3(last)}});
  }
  const long measured_rounds = std::max<long>(0, done_rounds - o.warmup);
  json::object out{
      {"streams_requested", o.streams},
      {"streams_opened", opened},
      {"streams_failed", shared.failed.load()},
      {"streams_lost", shared.lost.load()},
      {"open_seconds", round3(open_s)},
      {"threads", o.threads},
      {"connect_concurrency", o.connect_concurrency},
      {"rounds", measured_rounds},
      {"warmup_rounds", std::min(o.warmup, done_rounds)},
      {"interval_ms", o.interval_ms},
      {"deliveries_expected", opened * measured_rounds},
      {"deliveries_received", static_cast<long>(latency.size())},
      {"deliveries_missing", opened * measured_rounds - static_cast<long>(latency.size())},
      {"deliveries_unknown_job", unknown},
      {"deliveries_duplicate", duplicates},
      {"incomplete_rounds", incomplete_rounds},
      {"latency_ms", summary(latency)},
      {"last_stream_ms", summary(last_stream)},
      {"post_ms", summary(post_ms)},
      {"kernel_latency_ms", summary(kernel_latency)},
      {"kernel_last_stream_ms", summary(last_stream_kernel)},
      {"client_cpu_s_rounds", round3(client_cpu_s)},
      {"per_round", rounds_json},
  };
  if (!round_error.empty()) out["round_error"] = round_error;
  if (!o.sync_dir.empty()) {
    std::lock_guard lock(shared.mu);
    out["end_events_shutdown"] = shared.ends_shutdown.load();
    out["end_events_other"] = shared.ends_other.load();
    out["streams_closed_by_server"] = shared.closed.load();
    out["end_wait_seconds"] = round3(end_wait_s);
    if (!shared.end_unix.empty()) {
      out["end_first_unix"] = *std::min_element(shared.end_unix.begin(), shared.end_unix.end());
      out["end_last_unix"] = *std::max_element(shared.end_unix.begin(), shared.end_unix.end());
    }
    if (shared.closed_last_unix > 0) out["closed_last_unix"] = shared.closed_last_unix;
  }
  {
    std::lock_guard lock(shared.mu);
    json::object errors;
    for (const auto& [k, n] : shared.errors) errors[k] = n;
    out["errors"] = std::move(errors);
  }
  std::cout << json::serialize(out) << std::endl;
  if (opened == 0) {
    std::cerr << "taskq_events_bench: no stream opened\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "taskq_events_bench: " << e.what() << "\n";
    return 1;
  }
}
