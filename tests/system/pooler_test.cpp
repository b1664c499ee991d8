// taskq behind PgBouncer (transaction pooling, the Debian package): PgBouncer refuses the startup
// packet's `options`, where taskq sends its session limits; taskctl connects again without them,
// works, and warns once that the limits must be set on the role instead.
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

// PgBouncer on a port of its own in front of the test cluster, stopped (SIGKILL, by pid) at the
// end. As root it runs as the user postgres (it refuses to run as root), through setpriv, which
// execs it: the pid is PgBouncer's own.
class Bouncer {
 public:
  explicit Bouncer(const TestSchema& db)
      : dir_((std::filesystem::temp_directory_path() / ("taskq-systest-pgb-" + std::to_string(::getpid()))).string()) {
    REQUIRE(std::filesystem::exists(pgbouncer_path));  // scripts/deps installs it with the test tools
    std::smatch m;
    const std::string url = db.url();
    INFO("test database URL: " << url);
    REQUIRE(std::regex_search(url, m, std::regex("@([^:/@]+):([0-9]+)/([^?/]+)")));
    const auto free = taskq::test::run_program(std::string(TASKQ_SOURCE_DIR) + "/scripts/pg", {"free-port", "26432"});
    REQUIRE_EXIT(free, 0);
    port_ = trim(free.out);
    std::filesystem::create_directories(dir_);
    ::chmod(dir_.c_str(), 0777);
    write(dir_ + "/users.txt", "\"postgres\" \"\"\n");
    write(dir_ + "/pgbouncer.ini", "[databases]\n" + m[3].str() + " = host=" + m[1].str() + " port=" + m[2].str() +
                                       "\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " + port_ +
                                       "\nauth_type = trust\nauth_file = " + dir_ +
                                       "/users.txt\npool_mode = transaction\nunix_socket_dir =\n");
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
  ~Bouncer() {
    proc_.reset();
    std::filesystem::remove_all(dir_);
  }
  Bouncer(const Bouncer&) = delete;
  Bouncer& operator=(const Bouncer&) = delete;
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

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("taskctl through PgBouncer: connects without the startup options, warns once, and works",
          "[taskctl][pooler]") {
  TestSchema db;
  Bouncer bouncer(db);
  INFO("--- pgbouncer ---\n" << bouncer.log());
  const std::vector<std::string> through{"--database-url", bouncer.url(), "--schema", db.name()};
  const auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), through.begin(), through.end());
    return args;
  };

  const auto added = taskctl_raw(with({"enqueue", "pooled", R"({"n": 1})"}));
  REQUIRE_EXIT(added, 0);
  const auto id = parse_id(added);
  CHECK(job_field(db, id, "kind") == "pooled");
  const std::string warning = "the server refused the startup parameter 'options'";
  CHECK(count_of(added.err, warning) == 1);
  CHECK(contains(added.err, "ALTER ROLE"));
  CHECK(contains(bouncer.log(), "unsupported startup parameter: options"));

  const auto shown = taskctl_raw(with({"show", std::to_string(id)}));
  CHECK_EXIT(shown, 0);
  CHECK(contains(shown.out, "pooled"));

  // Straight to PostgreSQL the options go through: no warning.
  const auto direct = taskctl(db, {"show", std::to_string(id)});
  CHECK_EXIT(direct, 0);
  CHECK_FALSE(contains(direct.err, warning));
}

}  // namespace taskq::systest
