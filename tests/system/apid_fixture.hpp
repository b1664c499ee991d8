#pragma once
// A real taskq-apid for system tests: started on a free port of the test's schema with three
// tokens, and the checks its answers share.
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "daemon_process.hpp"
#include "http_client.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::http_request;
using taskq::test::HttpResult;

// The hex SHA-256 of a token, as an operator computes it (printf %s TOKEN | sha256sum).
inline std::string sha256_of(const std::string& token) {
  const auto r = taskq::test::run_program("/usr/bin/sha256sum", {}, token);
  REQUIRE(r.exit_code == 0);
  return r.out.substr(0, 64);
}

// Tokens "admin-token" (enqueue, read, admin), "ci-token" (enqueue, read), "ro-token" (read).
inline const std::string admin = "admin-token", ci = "ci-token", ro = "ro-token";

inline std::string tokens_section() {
  return "[[api.tokens]]\nname = \"admin\"\nsha256 = \"" + sha256_of(admin) +
         "\"\nscopes = [\"admin\"]\n"
         "[[api.tokens]]\nname = \"ci\"\nsha256 = \"" +
         sha256_of(ci) +
         "\"\nscopes = [\"enqueue\", \"read\"]\n"
         "[[api.tokens]]\nname = \"ro\"\nsha256 = \"" +
         sha256_of(ro) + "\"\nscopes = [\"read\"]\n";
}

// A running taskq-apid on a free port of the test's schema.
class Apid {
 public:
  /// `open_files`: start it under `ulimit -n` (soft and hard limit) of that many descriptors.
  Apid(const TestSchema& db, const std::string& api = "", const std::string& scheme = "http",
       std::optional<int> open_files = std::nullopt)
      : config_("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                    "\"\n[log]\nlevel = \"debug\"\n[api]\nlisten = [\"127.0.0.1:0\"]\ndb_pool = 2\n" + api +
                    tokens_section(),
                ".toml"),
        proc_(open_files ? "/bin/sh" : APID_PATH,
              open_files ? std::vector<std::string>{"-c",
                                                    "ulimit -n " + std::to_string(*open_files) +
                                                        " && exec \"$0\" --config \"$1\"",
                                                    APID_PATH, config_.path()}
                         : std::vector<std::string>{"--config", config_.path()},
              clean_env()) {
    INFO(proc_.log());
    REQUIRE(proc_.wait_log("listening on " + scheme + "://", 10s));
    std::smatch m;
    const std::string log = proc_.log();
    REQUIRE(std::regex_search(log, m, std::regex("listening on " + scheme + "://127\\.0\\.0\\.1:([0-9]+)")));
    port_ = std::stoi(m[1].str());
  }
  [[nodiscard]] int port() const { return port_; }
  DaemonProcess& proc() { return proc_; }

  HttpResult get(const std::string& target, const std::string& token = ci) const {
    return http_request(port_, "GET", target, "", auth(token));
  }
  HttpResult post(const std::string& target, const std::string& body, const std::string& token = ci,
                  std::vector<std::pair<std::string, std::string>> headers = {}) const {
    auto h = auth(token);
    h.emplace_back("Content-Type", "application/json");
    for (auto& x : headers) h.push_back(std::move(x));
    return http_request(port_, "POST", target, body, h);
  }

 private:
  static std::vector<std::pair<std::string, std::string>> auth(const std::string& token) {
    if (token.empty()) return {};
    return {{"Authorization", "Bearer " + token}};
  }
  TempFile config_;
  DaemonProcess proc_;
  int port_ = 0;
};

inline std::string describe(const HttpResult& r) {
  return "HTTP " + std::to_string(r.status) + "\n" + r.body;
}

#define REQUIRE_STATUS(result, code)                  \
  do {                                                \
    const ::taskq::test::HttpResult& res_ = (result); \
    INFO(describe(res_));                             \
    REQUIRE(res_.status == (code));                   \
  } while (false)

#define CHECK_STATUS(result, code)                    \
  do {                                                \
    const ::taskq::test::HttpResult& res_ = (result); \
    INFO(describe(res_));                             \
    CHECK(res_.status == (code));                     \
  } while (false)

// The error object of a response, checked for its shape.
inline boost::json::object error_of(const HttpResult& r) {
  INFO(describe(r));
  const auto v = json(r.body);
  REQUIRE(v.is_object());
  const auto& e = v.as_object().at("error").as_object();
  REQUIRE(e.at("code").is_string());
  REQUIRE(e.at("message").is_string());
  REQUIRE(e.contains("field"));
  CHECK(r.header("content-type") == "application/json");
  return e;
}

}  // namespace taskq::systest
