// The session settings taskq relies on (TimeZone UTC, DateStyle ISO) hold behind PgBouncer in
// transaction pooling, whether it refuses the startup packet's `options` (its default) or drops
// them (ignore_startup_parameters = options), even when its server connections start with another
// date style and time zone: taskq sets both in the session, and PgBouncer carries them over to
// every server connection it lends. Without them taskctl could not read a timestamp back.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include "daemon_process.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;

const std::string pgbouncer_path = "/usr/sbin/pgbouncer";

// PgBouncer on a port of its own in front of the test cluster, its server connections started with
// the SQL date style and New York time. `extra` adds lines to its [pgbouncer] section; `port` is
// the port it takes if free (each test its own: tests run in parallel). Stopped (SIGKILL, by pid)
// at the end. As root it runs as the user postgres, through setpriv, which execs it.
class SkewedBouncer {
 public:
  SkewedBouncer(const TestSchema& db, const std::string& extra, const std::string& port)
      : dir_((std::filesystem::temp_directory_path() / ("taskq-systest-pgbs-" + std::to_string(::getpid()))).string()) {
    REQUIRE(std::filesystem::exists(pgbouncer_path));  // scripts/deps installs it with the test tools
    std::smatch m;
    const std::string url = db.url();
    INFO("test database URL: " << url);
    REQUIRE(std::regex_search(url, m, std::regex("@([^:/@]+):([0-9]+)/([^?/]+)")));
    const auto free = taskq::test::run_program(std::string(TASKQ_SOURCE_DIR) + "/scripts/pg", {"free-port", port});
    REQUIRE_EXIT(free, 0);
    port_ = trim(free.out);
    std::filesystem::create_directories(dir_);
    ::chmod(dir_.c_str(), 0777);
    write(dir_ + "/users.txt", "\"postgres\" \"\"\n");
    const std::string database =
        m[3].str() + " = host=" + m[1].str() + " port=" + m[2].str() + " datestyle=SQL timezone=America/New_York\n";
    write(dir_ + "/pgbouncer.ini", "[databases]\n" + database +
                                       "[pgbouncer]\n"
                                       "listen_addr = 127.0.0.1\n"
                                       "listen_port = " +
                                       port_ + "\nauth_type = trust\nauth_file = " + dir_ +
                                       "/users.txt\n"
                                       "pool_mode = transaction\n"
                                       "unix_socket_dir =\n" +
                                       extra);
    std::vector<std::string> args{pgbouncer_path, dir_ + "/pgbouncer.ini"};
    std::string program = pgbouncer_path;
    if (::geteuid() == 0) {
      program = "/usr/bin/setpriv";
      args.insert(args.begin(), {"--reuid=postgres", "--regid=postgres", "--clear-groups"});
    } else {
      args.erase(args.begin());
    }
    proc_.emplace(program, args, clean_env());
    INFO(proc_->log());
    REQUIRE(proc_->wait_log("process up", 10s));
    url_ = "postgresql://postgres@127.0.0.1:" + port_ + "/" + m[3].str();
  }
  ~SkewedBouncer() {
    proc_.reset();
    std::filesystem::remove_all(dir_);
  }
  SkewedBouncer(const SkewedBouncer&) = delete;
  SkewedBouncer& operator=(const SkewedBouncer&) = delete;
  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] std::string log() const { return proc_ ? proc_->log() : ""; }

 private:
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0644);
  }
  std::string dir_, port_, url_;
  std::optional<DaemonProcess> proc_;
};

// Enqueues a job at an exact time through the bouncer and reads it back through it.
void round_trip(const TestSchema& db, const SkewedBouncer& bouncer) {
  const std::vector<std::string> through{"--database-url", bouncer.url(), "--schema", db.name()};
  const auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), through.begin(), through.end());
    return args;
  };
  const auto added = taskctl_raw(with({"enqueue", "pooled", "--run-at", "2031-07-04T12:34:56.789012Z"}));
  REQUIRE_EXIT(added, 0);
  const auto id = parse_id(added);
  CHECK(job_field(db, id, "run_at = '2031-07-04 12:34:56.789012+00'") == "true");

  const auto shown = taskctl_raw(with({"-o", "json", "show", std::to_string(id)}));
  REQUIRE_EXIT(shown, 0);
  const auto v = json(shown.out);
  CHECK(v.at("run_at").as_string() == "2031-07-04T12:34:56.789012Z");
  const std::string created(v.at("created_at").as_string());
  CHECK(created.back() == 'Z');
}

}  // namespace

TEST_CASE("behind PgBouncer refusing the startup options, sessions are still UTC and ISO",
          "[taskctl][pooler][session]") {
  TestSchema db;
  SkewedBouncer bouncer(db, "", "26532");
  INFO("--- pgbouncer ---\n" << bouncer.log());
  round_trip(db, bouncer);
  CHECK(contains(bouncer.log(), "unsupported startup parameter: options"));
}

TEST_CASE("behind PgBouncer ignoring the startup options, sessions are still UTC and ISO",
          "[taskctl][pooler][session]") {
  TestSchema db;
  SkewedBouncer bouncer(db, "ignore_startup_parameters = options\n", "26632");
  INFO("--- pgbouncer ---\n" << bouncer.log());
  round_trip(db, bouncer);
  CHECK_FALSE(contains(bouncer.log(), "unsupported startup parameter: options"));
}

}  // namespace taskq::systest
