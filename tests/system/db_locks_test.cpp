// A database session never hangs a daemon: a job row (or the whole jobs table) locked by another
// session -- the forgotten `BEGIN; SELECT ... FOR UPDATE` in psql -- costs only the requests that
// need it, and only for database.lock_timeout. The real binaries against a real PostgreSQL.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <regex>
#include <thread>

#include "daemon_process.hpp"
#include "http_client.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using taskq::test::DaemonProcess;
using taskq::test::HeldLock;
using taskq::test::http_request;
using taskq::test::HttpResult;
using taskq::test::wait_until;

// The lock timeout the tests give the programs, and what "answered within it" allows on top
// (a loaded CI machine with two cores).
constexpr auto lock_timeout = 1s;
constexpr auto margin = 1500ms;
// How long the first test holds its row lock: the forgotten psql session of the issue, 30 s.
constexpr auto hold = 30s;
// Unrelated requests during the hold: a round of three every `pace` (not a busy loop, which on a
// loaded two-core machine would time the test's own load rather than apid).
constexpr auto pace = 200ms;
// "Well under a second".
constexpr auto quick = 500ms;

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string database_section(const TestSchema& db, const std::string& lock = "1s") {
  return "[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() + "\"\nlock_timeout = \"" + lock +
         "\"\n[log]\nlevel = \"info\"\n";
}

// taskq-apid without authentication on a free port; `api` adds [api] keys.
class Apid {
 public:
  Apid(const TestSchema& db, const std::string& api, std::map<std::string, std::string> env = {},
       const std::string& lock = "1s")
      : config_(database_section(db, lock) + "[api]\nlisten = [\"127.0.0.1:0\"]\ninsecure_no_auth = true\n" + api,
                ".toml"),
        proc_(APID_PATH, {"--config", config_.path()}, clean_env(std::move(env))) {
    INFO(proc_.log());
    REQUIRE(proc_.wait_log("listening on http://", 10s));
    std::smatch m;
    const std::string log = proc_.log();
    REQUIRE(std::regex_search(log, m, std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)")));
    port_ = std::stoi(m[1].str());
  }
  [[nodiscard]] HttpResult get(const std::string& target) const { return http_request(port_, "GET", target); }
  [[nodiscard]] HttpResult post(const std::string& target, const std::string& body = "") const {
    return http_request(port_, "POST", target, body, {{"Content-Type", "application/json"}});
  }
  DaemonProcess& proc() { return proc_; }

 private:
  TempFile config_;
  DaemonProcess proc_;
  int port_ = 0;
};

std::string describe(const HttpResult& r) {
  return "HTTP " + std::to_string(r.status) + "\n" + r.body;
}

std::string error_code(const HttpResult& r) {
  INFO(describe(r));
  const auto v = json(r.body);
  REQUIRE(v.is_object());
  return std::string(v.as_object().at("error").as_object().at("code").as_string());
}

long long new_job(const Apid& api) {
  const auto r = api.post("/v1/jobs", R"({"kind": "k"})");
  INFO(describe(r));
  REQUIRE(r.status == 201);
  return json(r.body).at("id").to_number<long long>();
}

// Sessions of `application_name` prefix waiting for a lock right now.
int waiting_on_locks(const TestSchema& db, const std::string& application) {
  return std::stoi(
      db.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE '" +
                application + "%'"));
}

struct Timed {
  HttpResult result;
  long long ms = 0;
};

}  // namespace

TEST_CASE("apid: a locked job row costs only the requests on that job, each answered within lock_timeout",
          "[apid][locks]") {
  TestSchema db;
  Apid api(db, "db_pool = 4\ndb_acquire_timeout = \"500ms\"\n");
  const long long locked = new_job(api);
  const long long other = new_job(api);
  const std::string cancel = "/v1/jobs/" + std::to_string(locked) + "/cancel";

  HeldLock lock(db, "SELECT 1 FROM jobs WHERE id = " + std::to_string(locked) + " FOR UPDATE");
  const auto held_at = Clock::now();

  // Rounds of 16 concurrent cancels of the locked job, one after another, while the lock is held.
  std::atomic<bool> holding{true};
  std::mutex mu;
  std::vector<Timed> cancels;
  std::thread canceller([&] {
    while (holding.load()) {
      std::vector<std::future<Timed>> round;
      for (int i = 0; i < 16; ++i)
        round.push_back(std::async(std::launch::async, [&] {
          const auto t = Clock::now();
          auto r = api.post(cancel);
          return Timed{std::move(r), ms_since(t)};
        }));
      for (auto& f : round) {
        auto t = f.get();
        std::lock_guard lk(mu);
        cancels.push_back(std::move(t));
      }
    }
  });
  REQUIRE(wait_until([&] { return waiting_on_locks(db, "taskq-apid") > 0; }, 5s));

  // Meanwhile unrelated requests are served at once, again and again.
  int rounds = 0;
  while (Clock::now() - held_at < hold) {
    for (const auto& [what, call] : std::vector<std::pair<std::string, std::function<HttpResult()>>>{
             {"POST /v1/jobs", [&] { return api.post("/v1/jobs", R"({"kind": "k"})"); }},
             {"GET /v1/jobs/{other}", [&] { return api.get("/v1/jobs/" + std::to_string(other)); }},
             {"GET /v1/stats", [&] { return api.get("/v1/stats"); }}}) {
      const auto t = Clock::now();
      const auto r = call();
      const auto took = ms_since(t);
      INFO(what << " took " << took << " ms: " << describe(r));
      CHECK((r.status == 200 || r.status == 201));
      CHECK(took < std::chrono::duration_cast<std::chrono::milliseconds>(quick).count());
    }
    ++rounds;
    std::this_thread::sleep_for(pace);
  }
  holding.store(false);
  canceller.join();
  CHECK(rounds >= 30);
  CHECK(waiting_on_locks(db, "taskq-apid") == 0);

  // Every cancel got an answer within the lock timeout (plus the margin): 409 "locked" naming
  // the job, or 503 "busy" when it found no connection in time; both say when to retry.
  REQUIRE(cancels.size() >= 16);
  int locked_answers = 0;
  for (const auto& c : cancels) {
    INFO("a cancel took " << c.ms << " ms: " << describe(c.result));
    CHECK(c.ms < std::chrono::duration_cast<std::chrono::milliseconds>(lock_timeout + margin).count());
    REQUIRE((c.result.status == 409 || c.result.status == 503));
    const auto code = error_code(c.result);
    CHECK((code == "locked" || code == "busy"));
    CHECK(c.result.header("retry-after") == "1");
    if (code == "locked") {
      ++locked_answers;
      CHECK(contains(c.result.body, "cancel job " + std::to_string(locked) + ": locked by another session"));
    }
  }
  CHECK(locked_answers > 0);
  CHECK(job_field(db, locked, "state") == "available");

  // Once the lock goes, the cancel works.
  lock.release();
  const auto done = api.post(cancel);
  INFO(describe(done));
  CHECK(done.status == 200);
  CHECK(job_field(db, locked, "state") == "cancelled");
}

TEST_CASE("apid: while every connection waits on a locked table, /readyz says so and requests get 503 busy in time",
          "[apid][locks]") {
  TestSchema db;
  Apid api(db, "db_pool = 2\ndb_acquire_timeout = \"300ms\"\n");
  const long long id = new_job(api);
  REQUIRE(api.get("/readyz").status == 200);
  {
    HeldLock lock(db, "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE");
    // Two reads of /v1/stats take both connections; each waits for the table until lock_timeout.
    auto a = std::async(std::launch::async, [&] { return api.get("/v1/stats"); });
    auto b = std::async(std::launch::async, [&] { return api.get("/v1/stats"); });
    REQUIRE(wait_until([&] { return waiting_on_locks(db, "taskq-apid") >= 2; }, 5s));
    // A third request finds no connection: 503 busy at the acquire deadline, not at the lock's.
    const auto t = Clock::now();
    const auto busy = api.get("/v1/jobs/" + std::to_string(id));
    const auto took = ms_since(t);
    INFO(describe(busy) << "\ntook " << took << " ms");
    CHECK(busy.status == 503);
    CHECK(error_code(busy) == "busy");
    CHECK(busy.header("retry-after") == "1");
    CHECK(took < 300 + 700);
    // The pool has been stuck longer than the acquire deadline: not ready, and why.
    const auto ready = api.get("/readyz");
    INFO(describe(ready));
    CHECK(ready.status == 503);
    CHECK(contains(ready.body, "all 2 database connections have been busy"));
    const auto ra = a.get(), rb = b.get();
    CHECK(ra.status == 409);
    CHECK(rb.status == 409);
    CHECK(error_code(ra) == "locked");
  }
  CHECK(wait_until([&] { return api.get("/readyz").status == 200; }, 5s));
}

TEST_CASE("apid: the systemd watchdog is fed only while database work moves", "[apid][locks]") {
  TestSchema db;
  // A notify socket of the test's own, as systemd would provide.
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("taskq-notify-" + std::to_string(::getpid()) + "-" + db.name() + ".sock"))
                               .string();
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ::unlink(path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  // Counts WATCHDOG=1 datagrams received so far.
  int pings = 0;
  const auto read_pings = [&] {
    char buf[512];
    for (;;) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (std::string(buf, static_cast<std::size_t>(n)).find("WATCHDOG=1") != std::string::npos) ++pings;
    }
    return pings;
  };
  // WatchdogSec=1: pings every 500 ms while healthy. The lock timeout (2s) is longer than that,
  // so a pool waiting on the table is stuck for several watchdog intervals.
  Apid api(db, "db_pool = 2\n", {{"NOTIFY_SOCKET", path}, {"WATCHDOG_USEC", "1000000"}}, "2s");
  REQUIRE(wait_until([&] { return read_pings() >= 2; }, 5s));  // an idle pool is healthy
  {
    HeldLock lock(db, "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE");
    auto a = std::async(std::launch::async, [&] { return api.get("/v1/stats"); });
    auto b = std::async(std::launch::async, [&] { return api.get("/v1/stats"); });
    REQUIRE(wait_until([&] { return waiting_on_locks(db, "taskq-apid") >= 2; }, 5s));
    // Past one watchdog interval (500 ms) of no progress, the pings stop (one may be in flight):
    // none arrives between 700 ms and 1500 ms into the stall (the lock timeout ends it at 2s).
    const auto stuck_from = Clock::now();
    REQUIRE(wait_until([&] { return ms_since(stuck_from) >= 700; }, 2s));
    const int before = read_pings();
    REQUIRE(wait_until([&] { return ms_since(stuck_from) >= 1500; }, 3s));
    CHECK(read_pings() == before);
    a.get();
    b.get();
  }
  // Work moves again: the pings come back.
  const int after = read_pings();
  CHECK(wait_until([&] { return read_pings() > after; }, 5s));
  ::close(fd);
  ::unlink(path.c_str());
}

TEST_CASE("taskctl cancel of a locked job exits 6 within lock_timeout, and works once the lock goes",
          "[taskctl][locks]") {
  TestSchema db;
  const long long id = enqueue(db, {"k"});
  TempFile config(database_section(db), ".toml");
  HeldLock lock(db, "SELECT 1 FROM jobs WHERE id = " + std::to_string(id) + " FOR UPDATE");
  const auto t = Clock::now();
  const auto r = taskctl_raw({"--config", config.path(), "cancel", std::to_string(id)});
  const auto took = ms_since(t);
  INFO(describe(r) << "took " << took << " ms");
  CHECK_EXIT(r, 6);
  CHECK(contains(r.err, "cancel job " + std::to_string(id) + ": locked by another session"));
  CHECK(contains(r.err, "try again"));
  CHECK(took < std::chrono::duration_cast<std::chrono::milliseconds>(lock_timeout + margin).count());
  CHECK(job_field(db, id, "state") == "available");
  lock.release();
  CHECK_EXIT(taskctl_raw({"--config", config.path(), "cancel", std::to_string(id)}), 0);
  CHECK(job_field(db, id, "state") == "cancelled");
}

TEST_CASE("workerd: the outcome of a locked job is held and lands after the lock goes, others are not held up",
          "[workerd][locks]") {
  TestSchema db;
  TempFile config(database_section(db) +
                      "[worker]\nqueues = { default = 4 }\npoll_interval = \"100ms\"\nheartbeat_interval = \"200ms\"\n",
                  ".toml");
  DaemonProcess worker(WORKERD_PATH, {"--config", config.path()}, clean_env());
  REQUIRE(
      wait_until([&] { return count_jobs(db, "true") == 0 && db.scalar("SELECT count(*) FROM workers") == "1"; }, 10s));
  const long long slow = enqueue(db, {"sleep", R"({"ms": 1500})"});
  REQUIRE(wait_until([&] { return job_field(db, slow, "state") == "running"; }, 10s));
  {
    HeldLock lock(db, "SELECT 1 FROM jobs WHERE id = " + std::to_string(slow) + " FOR UPDATE");
    // Its run ends while the row is locked: the outcome is held, logged with the job's id.
    INFO(worker.log());
    REQUIRE(worker.wait_log("holding the completed outcome of job " + std::to_string(slow), 10s));
    // Other jobs' outcomes are written meanwhile.
    const long long quick_job = enqueue(db, {"noop"});
    CHECK(wait_until([&] { return job_field(db, quick_job, "state") == "completed"; }, 5s));
    CHECK(job_field(db, slow, "state") == "running");
  }
  // Released: the held outcome lands; nothing was lost.
  CHECK(wait_until([&] { return job_field(db, slow, "state") == "completed"; }, 20s));
  INFO(worker.log());
  CHECK(worker.wait_log("the held completed outcome of job " + std::to_string(slow) + " (queue default, kind ", 5s));
  CHECK(contains(worker.log(), ") is written (after "));
  CHECK(worker.running());
}

TEST_CASE("schedulerd: steps that meet a locked jobs table time out, log, and catch up once it goes",
          "[schedulerd][locks]") {
  TestSchema db;
  TempFile config(database_section(db, "500ms") +
                      "[scheduler]\nlease_ttl = \"5s\"\n[[scheduler.periodic]]\nname = \"tick\"\n"
                      "cron = \"* * * * * *\"\nkind = \"noop\"\nqueue = \"ticks\"\n",
                  ".toml");
  DaemonProcess scheduler(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  INFO(scheduler.log());
  REQUIRE(wait_until([&] { return count_jobs(db, "queue = 'ticks'") >= 1; }, 10s));
  const long long due = enqueue(db, {"k", "--in", "1s"});
  {
    // Every step writes jobs: promotion, periodic ticks, rescue and pruning all wait on the lock.
    HeldLock lock(db, "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE");
    const auto held_at = Clock::now();
    REQUIRE(scheduler.wait_log("locked by another session", 10s));
    // Held past the job's due time; the scheduler keeps going (and keeps its lease) meanwhile.
    while (Clock::now() - held_at < 2500ms) {
      REQUIRE(scheduler.running());
      std::this_thread::sleep_for(100ms);
    }
    // (Reading the job here would wait on the lock too: the test's own session has no timeout.)
  }
  // The lock gone, the steps catch up: the due job is promoted, ticks come again, none twice.
  CHECK(wait_until([&] { return job_field(db, due, "state") == "available"; }, 5s));
  const auto ticks = count_jobs(db, "queue = 'ticks'");
  CHECK(wait_until([&] { return count_jobs(db, "queue = 'ticks'") > ticks; }, 5s));
  CHECK(db.scalar("SELECT count(*) - count(DISTINCT metadata->>'tick') FROM jobs WHERE queue = 'ticks'") == "0");
  CHECK(db.scalar("SELECT count(*) FROM leases WHERE name = 'scheduler' AND expires_at > now()") == "1");
  CHECK(scheduler.running());
}

}  // namespace taskq::systest
