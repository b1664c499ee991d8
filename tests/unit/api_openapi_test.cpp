// The route table of taskq-apid and docs/openapi.yaml list the same operations, both ways, with
// the same access: every (method, path) the server answers is documented, every documented
// operation is answered, and the scope in each operation's bearerAuth requirement is the one the
// route checks. The YAML is read line by line: only the `paths:` block, whose layout (two
// spaces per level) the Redocly lint of the same file keeps regular.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "route_table.hpp"

using namespace taskq::api;

namespace {

// TASKQ_SOURCE_DIR is not defined for unit tests: the repo root is three levels up from here.
std::filesystem::path openapi_path() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "docs" / "openapi.yaml";
}

std::size_t indent(const std::string& line) {
  const auto n = line.find_first_not_of(' ');
  return n == std::string::npos ? line.size() : n;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s.substr(std::min(s.size(), indent(s)));
}

// "/v1/queues/{queue}/pause" -> "/v1/queues/{}/pause": parameter names may differ (the route
// names of the metrics keep their own).
std::string shape(const std::string& pattern) {
  std::string out;
  bool in_param = false;
  for (const char c : pattern) {
    if (c == '{') in_param = true, out += "{}";
    if (!in_param) out += c;
    if (c == '}') in_param = false;
  }
  return out;
}

// An operation's security as "open" (`security: []`), "read", "enqueue", "admin", or "read?"
// (`- {}` and a scope: anyone, or that scope when the server asks for it).
struct Operation {
  std::string security;
  int line = 0;
};

// "GET /v1/jobs/{}" -> its operation, from the `paths:` block.
std::map<std::string, Operation> read_operations(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::map<std::string, Operation> ops;
  std::string line, current_path, current_op;
  bool in_paths = false, in_security = false;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    const auto level = indent(line);
    if (level == 0) {
      in_paths = text == "paths:";
      continue;
    }
    if (!in_paths) continue;
    if (level <= 6) in_security = false;
    if (level == 2 && text[0] == '/' && text.back() == ':') {
      current_path = text.substr(0, text.size() - 1);
      current_op.clear();
    } else if (level == 4) {
      static const std::set<std::string> methods{"get", "put", "post", "delete", "options", "head", "patch", "trace"};
      const std::string word = text.substr(0, text.find(':'));
      current_op.clear();
      if (!methods.count(word)) continue;
      std::string method = word;
      for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      current_op = method + " " + shape(current_path);
      ops[current_op].line = number;
    } else if (level == 6 && !current_op.empty() && text.rfind("security:", 0) == 0) {
      in_security = text != "security: []";
      if (!in_security) ops[current_op].security = "open";
    } else if (level == 8 && in_security) {
      auto& security = ops[current_op].security;
      if (text == "- {}") {
        security += "?";
      } else if (text.rfind("- bearerAuth: [", 0) == 0) {
        security = text.substr(15, text.size() - 16) + security;
      }
    }
  }
  return ops;
}

std::string security_of(Access access) {
  switch (access) {
    case Access::open:
      return "open";
    case Access::read_if_metrics_auth:
      return "read?";
    case Access::read:
      return "read";
    case Access::enqueue:
      return "enqueue";
    case Access::admin:
      return "admin";
  }
  return "?";
}

}  // namespace

TEST_CASE("openapi: the reader finds the operations and their security", "[unit][api][docs]") {
  const auto ops = read_operations(openapi_path());
  REQUIRE(ops.count("POST /v1/jobs"));
  CHECK(ops.at("POST /v1/jobs").security == "enqueue");
  REQUIRE(ops.count("POST /v1/queues/{}/pause"));
  CHECK(ops.at("POST /v1/queues/{}/pause").security == "admin");
  REQUIRE(ops.count("GET /metrics"));
  CHECK(ops.at("GET /metrics").security == "read?");
  REQUIRE(ops.count("GET /healthz"));
  CHECK(ops.at("GET /healthz").security == "open");
  CHECK(ops.size() >= 16);
  CHECK(!ops.count("GET /v1/queues/{}/pause"));  // "parameters:" and "post:" at the same level are told apart
}

TEST_CASE("openapi: every route is documented, with the access it checks", "[unit][api][docs]") {
  const auto ops = read_operations(openapi_path());
  for (const auto& e : route_table()) {
    const std::string key = e.method + " " + shape(e.pattern);
    INFO(e.name << " in " << openapi_path().string());
    REQUIRE(ops.count(key));
    CHECK(ops.at(key).security == security_of(e.access));
  }
}

TEST_CASE("openapi: every documented operation is a route", "[unit][api][docs]") {
  std::set<std::string> routes;
  for (const auto& e : route_table()) routes.insert(e.method + " " + shape(e.pattern));
  for (const auto& [op, where] : read_operations(openapi_path())) {
    INFO(op << " at " << openapi_path().string() << ":" << where.line);
    CHECK(routes.count(op));
  }
}
