#pragma once
// Shared helpers of the system tests: run the real taskctl against a throwaway schema, read the
// database behind its back, and describe a run when an assertion fails.
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "process.hpp"
#include "test_db.hpp"

namespace taskq::systest {

using taskq::test::RunResult;
using taskq::test::TestSchema;

/// The environment of every run: no TASKQ_* variable leaks in from the caller's shell.
inline std::map<std::string, std::string> clean_env(std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> env{{"TASKQ_DATABASE_URL", ""}, {"TASKQ_SCHEMA", ""}, {"TASKQ_LOG_LEVEL", ""}};
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}

/// taskctl with exactly these arguments.
inline RunResult taskctl_raw(const std::vector<std::string>& args, const std::string& input = "",
                             const std::map<std::string, std::string>& env = {}) {
  return taskq::test::run_program(TASKCTL_PATH, args, input, clean_env(env));
}

/// taskctl --database-url URL --schema NAME args... (the test's own schema).
inline RunResult taskctl(const TestSchema& db, const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> all{"--database-url", db.url(), "--schema", db.name()};
  all.insert(all.end(), args.begin(), args.end());
  return taskctl_raw(all, input);
}

/// What a run did, for failure messages.
inline std::string describe(const RunResult& r) {
  return "exit code: " + std::to_string(r.exit_code) + "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

/// Asserts the exit code; on failure shows stdout and stderr. `result` is evaluated once.
#define REQUIRE_EXIT(result, code)                      \
  do {                                                  \
    const ::taskq::systest::RunResult& run_ = (result); \
    INFO(::taskq::systest::describe(run_));             \
    REQUIRE(run_.exit_code == (code));                  \
  } while (false)

#define CHECK_EXIT(result, code)                        \
  do {                                                  \
    const ::taskq::systest::RunResult& run_ = (result); \
    INFO(::taskq::systest::describe(run_));             \
    CHECK(run_.exit_code == (code));                    \
  } while (false)

inline std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const auto nl = s.find('\n', pos);
    out.push_back(s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

inline boost::json::value json(const std::string& text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  INFO("JSON text: " << text);
  REQUIRE(!ec);
  return v;
}

/// The id printed by a plain `taskctl enqueue`.
inline long long parse_id(const RunResult& r) {
  INFO(describe(r));
  const std::string t = trim(r.out);
  REQUIRE(!t.empty());
  REQUIRE(t.find_first_not_of("0123456789") == std::string::npos);
  return std::stoll(t);
}

/// Enqueues one job through taskctl and returns its id.
inline long long enqueue(const TestSchema& db, const std::vector<std::string>& args) {
  std::vector<std::string> all{"enqueue"};
  all.insert(all.end(), args.begin(), args.end());
  const auto r = taskctl(db, all);
  REQUIRE_EXIT(r, 0);
  return parse_id(r);
}

inline long long count_jobs(const TestSchema& db, const std::string& where = "true") {
  return std::stoll(db.scalar("SELECT count(*) FROM jobs WHERE " + where));
}

inline std::string job_field(const TestSchema& db, long long id, const std::string& expr) {
  return db.scalar("SELECT (" + expr + ")::text FROM jobs WHERE id = " + std::to_string(id));
}

/// Every row of jobs and queues, condensed: compare before and after to prove nothing changed.
inline std::string snapshot(const TestSchema& db) {
  return db.scalar(
      "SELECT (SELECT count(*) FROM jobs) || ' jobs ' || "
      "(SELECT coalesce(md5(string_agg(j::text, '|' ORDER BY j.id)), '-') FROM jobs j) || ' / ' || "
      "(SELECT count(*) FROM queues) || ' queues ' || "
      "(SELECT coalesce(md5(string_agg(q::text, '|' ORDER BY q.name)), '-') FROM queues q)");
}

inline void make_running(const TestSchema& db, long long id) {
  db.exec("UPDATE jobs SET state = 'running', attempt = 1, attempted_at = now(), worker_id = 1 WHERE id = " +
          std::to_string(id));
}

inline void make_finished(const TestSchema& db, long long id, const std::string& state,
                          const std::string& finished_at = "now()") {
  db.exec("UPDATE jobs SET state = '" + state + "', attempt = 1, attempted_at = " + finished_at +
          ", finished_at = " + finished_at + " WHERE id = " + std::to_string(id));
}

/// A file removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& content, const std::string& suffix = ".txt") {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("taskq-systest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + suffix))
                .string();
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A port on 127.0.0.1 where nothing listens (port 1 needs root to bind; nobody does).
inline const std::string unreachable_url = "postgresql://postgres@127.0.0.1:1/postgres";

/// A PostgreSQL cluster of the test's own (scripts/pg, a port of its own), for tests that stop
/// or restart the database: doing that to the shared cluster would disturb the other tests.
/// Stopped and removed at the end.
class OwnCluster {
 public:
  OwnCluster()
      : dir_((std::filesystem::temp_directory_path() /
              ("taskq-systest-pg-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++)))
                 .string()) {
    const auto started = start();
    REQUIRE_EXIT(started, 0);
    url_ = trim(started.out);
    REQUIRE_EXIT(taskctl_raw({"--database-url", url_, "migrate"}), 0);
  }
  ~OwnCluster() {
    taskq::test::run_program(pg(), {"stop", dir_});
    std::filesystem::remove_all(dir_);
  }
  OwnCluster(const OwnCluster&) = delete;
  OwnCluster& operator=(const OwnCluster&) = delete;

  [[nodiscard]] const std::string& url() const { return url_; }
  RunResult start() const { return taskq::test::run_program(pg(), {"start", dir_}, "", clean_env()); }
  RunResult stop() const { return taskq::test::run_program(pg(), {"stop", dir_}); }
  RunResult restart() const { return taskq::test::run_program(pg(), {"restart", dir_}); }

 private:
  static std::string pg() { return std::string(TASKQ_SOURCE_DIR) + "/scripts/pg"; }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string dir_, url_;
};

}  // namespace taskq::systest
