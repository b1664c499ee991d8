#pragma once
// PgBouncer (the Debian package) in transaction pooling mode, on a port of its own, in front of the
// test cluster; stopped (SIGKILL, by pid) at the end. As root it runs as the user postgres (it
// refuses to run as root), through setpriv, which execs it: the pid is PgBouncer's own.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {

struct PgBouncerOptions {
  std::string port = "26432";   // taken if free, else the next free one (tests run in parallel)
  std::string server_settings;  // appended to the [databases] entry ("datestyle=SQL timezone=...")
  std::string extra;            // lines added to the [pgbouncer] section
};

class PgBouncer {
 public:
  static inline const std::string program_path = "/usr/sbin/pgbouncer";

  PgBouncer(const TestSchema& db, const PgBouncerOptions& o) : dir_(unique_dir()) {
    using namespace std::chrono_literals;
    REQUIRE(std::filesystem::exists(program_path));  // scripts/deps installs it with the test tools
    std::smatch m;
    const std::string url = db.url();
    INFO("test database URL: " << url);
    REQUIRE(std::regex_search(url, m, std::regex("@([^:/@]+):([0-9]+)/([^?/]+)")));
    const auto free = taskq::test::run_program(std::string(TASKQ_SOURCE_DIR) + "/scripts/pg", {"free-port", o.port});
    REQUIRE_EXIT(free, 0);
    port_ = trim(free.out);
    std::filesystem::create_directories(dir_);
    ::chmod(dir_.c_str(), 0777);
    write(dir_ + "/users.txt", "\"postgres\" \"\"\n");
    const std::string server = m[3].str() + " = host=" + m[1].str() + " port=" + m[2].str() +
                               (o.server_settings.empty() ? "" : " " + o.server_settings);
    write(dir_ + "/pgbouncer.ini", "[databases]\n" + server + "\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " +
                                       port_ + "\nauth_type = trust\nauth_file = " + dir_ +
                                       "/users.txt\npool_mode = transaction\nunix_socket_dir =\n" + o.extra);
    std::vector<std::string> args{program_path, dir_ + "/pgbouncer.ini"};
    std::string program = program_path;
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
  ~PgBouncer() {
    proc_.reset();
    std::filesystem::remove_all(dir_);
  }
  PgBouncer(const PgBouncer&) = delete;
  PgBouncer& operator=(const PgBouncer&) = delete;
  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] std::string log() const { return proc_ ? proc_->log() : ""; }

 private:
  static std::string unique_dir() {
    static std::atomic<int> n{0};
    return (std::filesystem::temp_directory_path() /
            ("taskq-systest-pgb-" + std::to_string(::getpid()) + "-" + std::to_string(n++)))
        .string();
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0644);
  }
  std::string dir_, port_, url_;
  std::optional<taskq::test::DaemonProcess> proc_;
};

}  // namespace taskq::systest
