#pragma once
// A real taskq-workerd on a test's schema, and waiting for a job's state: shared by the system
// tests of the worker.
#include <chrono>
#include <map>
#include <string>

#include "daemon_process.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {

// A config file for the test's schema: [database] plus whatever the test adds.
inline std::string config_text(const std::string& url, const std::string& schema, const std::string& extra,
                               const std::string& worker = "queues = { default = 8 }") {
  const std::string shutdown =
      worker.find("shutdown_timeout") == std::string::npos ? "shutdown_timeout = \"5s\"\n" : "";
  return "[database]\nurl = \"" + url + "\"\nschema = \"" + schema + "\"\n[log]\nlevel = \"debug\"\n[worker]\n" +
         worker + "\npoll_interval = \"100ms\"\nheartbeat_interval = \"200ms\"\n" + shutdown + extra;
}

// A running worker on the test's schema.
class Workerd {
 public:
  Workerd(const TestSchema& db, const std::string& extra, const std::string& worker = "queues = { default = 8 }",
          std::map<std::string, std::string> env = {})
      : db_(db),
        config_(config_text(db.url(), db.name(), extra, worker), ".toml"),
        proc_(WORKERD_PATH, {"--config", config_.path()}, clean_env(std::move(env))) {
    INFO(proc_.log());
    REQUIRE(taskq::test::wait_until([&] { return registered() || !proc_.running(); }, std::chrono::seconds{10}));
    REQUIRE(proc_.running());
  }
  [[nodiscard]] bool registered() const {
    return db_.scalar("SELECT count(*) FROM workers WHERE pid = " + std::to_string(proc_.pid())) == "1";
  }
  taskq::test::DaemonProcess& proc() { return proc_; }
  [[nodiscard]] const std::string& config_path() const { return config_.path(); }

 private:
  const TestSchema& db_;
  TempFile config_;
  taskq::test::DaemonProcess proc_;
};

inline std::string state_of(const TestSchema& db, long long id) {
  return job_field(db, id, "state");
}

inline bool wait_state(const TestSchema& db, long long id, const std::string& state,
                       std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  return taskq::test::wait_until([&] { return state_of(db, id) == state; }, timeout);
}

#define REQUIRE_STATE(db, id, state, w)                                                             \
  do {                                                                                              \
    const bool reached_ = wait_state(db, id, state);                                                \
    INFO("job " << (id) << " is " << state_of(db, id) << ", errors " << job_field(db, id, "errors") \
                << "\n--- workerd log ---\n"                                                        \
                << (w).proc().log());                                                               \
    REQUIRE(reached_);                                                                              \
  } while (false)

}  // namespace taskq::systest
