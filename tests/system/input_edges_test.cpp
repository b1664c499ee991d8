// Input edges through the real binaries: out-of-range ids, limits and durations are refused
// with exit 2 / HTTP 404 or 422 and a clear message; args are limited by their size as stored;
// handler-supplied text cannot drive the operator's terminal.
#include <chrono>
#include <regex>

#include "daemon_process.hpp"
#include "http_client.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::http_request;
using taskq::test::HttpResult;

// taskq-apid without tokens on a free port; `extra` goes at the end of the config.
class OpenApid {
 public:
  OpenApid(const TestSchema& db, const std::string& extra = "")
      : config_("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() + "\"\n" + extra +
                    "\n[api]\nlisten = [\"127.0.0.1:0\"]\ndb_pool = 2\ninsecure_no_auth = true\n",
                ".toml"),
        proc_(APID_PATH, {"--config", config_.path()}, clean_env()) {
    INFO(proc_.log());
    REQUIRE(proc_.wait_log("listening on http://", 10s));
    std::smatch m;
    const std::string log = proc_.log();
    REQUIRE(std::regex_search(log, m, std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)")));
    port_ = std::stoi(m[1].str());
  }
  HttpResult call(const std::string& method, const std::string& target, const std::string& body = "") const {
    return http_request(port_, method, target, body, {{"Content-Type", "application/json"}});
  }

 private:
  TempFile config_;
  DaemonProcess proc_;
  int port_ = 0;
};

bool has_terminal_controls(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f)
      return true;
  }
  return false;
}

}  // namespace

TEST_CASE("taskctl: out-of-range ids, limits and durations exit 2 and say what is wrong", "[cli][edges]") {
  TestSchema db;
  const auto id = enqueue(db, {"k"});
  const std::string before = snapshot(db);
  const struct {
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {{"show", "99999999999999999999"}, "invalid job id '99999999999999999999'"},
      {{"show", "-5"}, "invalid job id '-5'"},
      {{"show", "0"}, "invalid job id '0'"},
      {{"show", "1e3"}, "invalid job id '1e3'"},
      {{"cancel", std::to_string(id), "99999999999999999999"}, "invalid job id"},
      {{"retry", "-1"}, "invalid job id"},
      {{"list", "--after", "99999999999999999999"}, "invalid job id"},
      {{"list", "--limit", "0"}, "limit: 0 is out of range 1..100000"},
      {{"list", "--limit", "100001"}, "limit: 100001 is out of range 1..100000"},
      {{"list", "--limit", "99999999999999999999"}, "--limit"},
      {{"list", "--limit", "-3"}, "limit"},
      {{"enqueue", "k", "--timeout", "9999999999d"}, "invalid duration '9999999999d': more than the maximum of 36500d"},
      {{"enqueue", "k", "--timeout", "1" + std::string(400, '0') + "s"}, "more than the maximum of 36500d"},
      {{"enqueue", "k", "--in", "36501d"}, "more than the maximum of 36500d"},
      {{"enqueue", "k", "--in", "1e30"}, "invalid duration '1e30'"},
      {{"enqueue", "k", "--in", "-1s"}, "must not be negative"},
      {{"enqueue", "k", "--run-at", "99999-01-01T00:00:00Z"}, "invalid timestamp"},
      {{"prune", "--older-than", "99999999d"}, "more than the maximum"},
  };
  for (const auto& c : cases) {
    const auto r = taskctl(db, c.args);
    INFO(describe(r));
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, c.expect));
  }
  CHECK(snapshot(db) == before);  // nothing was done, half or whole
}

TEST_CASE("apid: out-of-range ids, limits and durations are 404 or 422 with a clear message", "[apid][edges]") {
  TestSchema db;
  OpenApid api(db);
  const struct {
    std::string method, target, body;
    int status;
    std::string expect;
  } cases[] = {
      {"GET", "/v1/jobs/99999999999999999999", "", 404, "is not a job id"},
      {"GET", "/v1/jobs/-1", "", 404, "is not a job id"},
      {"POST", "/v1/jobs/99999999999999999999/cancel", "", 404, "is not a job id"},
      {"GET", "/v1/jobs?limit=99999999999", "", 422, "limit: must be an integer from 1 to 1000"},
      {"GET", "/v1/jobs?limit=-1", "", 422, "limit: must be an integer from 1 to 1000"},
      {"GET", "/v1/jobs?limit=0", "", 422, "limit"},
      {"GET", "/v1/jobs?after=-1", "", 422, "after: must be a job id"},
      {"GET", "/v1/jobs?after=99999999999999999999", "", 422, "after: must be a job id"},
      {"POST", "/v1/jobs", R"({"kind":"k","timeout":1e30})", 422, "timeout: more than the maximum of 36500d"},
      {"POST", "/v1/jobs", R"({"kind":"k","in":"9999999999d"})", 422, "more than the maximum of 36500d"},
      {"POST", "/v1/jobs", R"({"kind":"k","in":1e300})", 422, "in: more than the maximum"},
      {"POST", "/v1/jobs", R"({"kind":"k","priority":99999999999999999999})", 422, "priority"},
      {"POST", "/v1/jobs", R"({"kind":"k","max_attempts":-1})", 422, "max_attempts"},
      {"POST", "/v1/jobs/batch", R"([{"kind":"k"},{"kind":"k","timeout":99999999999}])", 422, "more than the maximum"},
  };
  for (const auto& c : cases) {
    const auto r = api.call(c.method, c.target, c.body);
    INFO(c.method << " " << c.target << " " << c.body << "\nHTTP " << r.status << "\n" << r.body);
    CHECK(r.status == c.status);
    CHECK(contains(r.body, c.expect));
  }
  CHECK(count_jobs(db) == 0);
}

TEST_CASE("args are limited by their size as stored, wherever they enter", "[enqueue][edges]") {
  TestSchema db;
  const std::string limit = "[jobs]\nmax_args_bytes = 100\n";
  TempFile config(limit, ".toml");
  // taskctl, one job: 7 bytes of text, 303 bytes stored.
  auto r = taskctl(db, {"--config", config.path(), "enqueue", "k", "[1e300]"});
  CHECK_EXIT(r, 2);
  CHECK(contains(r.err, "args: 303 bytes as stored is over the limit of 100 bytes"));
  // taskctl, a stream: the whole batch is refused, naming the line.
  r = taskctl(db, {"--config", config.path(), "enqueue", "--file", "-"},
              "{\"kind\":\"k\",\"args\":[1]}\n{\"kind\":\"k\",\"args\":{\"n\":1e300}}\n");
  CHECK_EXIT(r, 2);
  CHECK(contains(r.err, "stdin:2: args: 308 bytes as stored is over the limit of 100 bytes"));
  // What fits as stored is accepted, and stored as PostgreSQL writes it.
  const auto fits = enqueue(db, {"--config", config.path(), "k", "[1e90]"});
  CHECK(job_field(db, fits, "args") == "[1" + std::string(90, '0') + "]");
  CHECK(count_jobs(db) == 1);
  {
    OpenApid api(db, limit);
    auto h = api.call("POST", "/v1/jobs", R"({"kind":"k","args":[1e300]})");
    CHECK(h.status == 422);
    CHECK(contains(h.body, "303 bytes as stored is over the limit of 100 bytes"));
    h = api.call("POST", "/v1/jobs/batch", R"([{"kind":"k"},{"kind":"k","args":{"n":-1.5e-200}}])");
    CHECK(h.status == 422);
    CHECK(contains(h.body, "bytes as stored is over the limit of 100 bytes"));
  }
  CHECK(count_jobs(db) == 1);
  // A periodic schedule from the config file.
  TempFile periodic(
      limit + "[[scheduler.periodic]]\nname = \"big\"\ncron = \"@hourly\"\nkind = \"k\"\n" + "args = { n = 1e300 }\n",
      ".toml");
  r = taskq::test::run_program(SCHEDULERD_PATH, {"--config", periodic.path(), "--check-config"}, "", clean_env());
  CHECK_EXIT(r, 78);
  CHECK(contains(r.err, "scheduler.periodic 'big': args: 308 bytes as stored is over the limit of 100 bytes"));
}

TEST_CASE("taskctl: handler-supplied text is shown escaped, never sent to the terminal", "[cli][edges]") {
  TestSchema db;
  const auto id = enqueue(db, {"k", "--tag", "t"});
  // What a hostile handler (and a hostile enqueuer, for names) can leave in a job.
  db.exec(
      "UPDATE jobs SET state = 'failed', attempt = 1, attempted_at = now(), finished_at = now(), "
      "kind = E'k\\u009b2J', "
      "errors = jsonb_build_array(jsonb_build_object('at', '2026-11-29T00:00:00Z', 'attempt', 1, "
      "  'message', E'boom \\x1b]0;pwned\\x07 \\x1b[2J \\r\\b\\x7f', 'stderr_tail', E'line\\x1b[31m red\\nnext\\r')), "
      "result = jsonb_build_object('r', E'\\x1b]0;pwned\\x07\\u009b'), "
      "progress = jsonb_build_object('percent', 5, 'message', E'\\x1b[2J\\u2028') "
      "WHERE id = " +
      std::to_string(id));
  for (const std::vector<std::string>& args : {std::vector<std::string>{"show", std::to_string(id)},
                                               std::vector<std::string>{"list"}, std::vector<std::string>{"stats"}}) {
    const auto r = taskctl(db, args);
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    CHECK_FALSE(has_terminal_controls(r.out));
    CHECK_FALSE(has_terminal_controls(r.err));
  }
  const auto shown = taskctl(db, {"show", std::to_string(id)});
  CHECK(contains(shown.out, "message=boom \\x1b]0;pwned\\x07 \\x1b[2J \\r\\x08\\x7f"));
  CHECK(contains(shown.out, "| line\\x1b[31m red\n"));
  CHECK(contains(shown.out, "| next\\r\n"));
  CHECK(contains(shown.out, "k\\u009b2J"));
  CHECK(contains(taskctl(db, {"list"}).out, "k\\u009b2J"));
  // JSON output stays JSON: the same text, escaped the JSON way.
  const auto as_json = taskctl(db, {"-o", "json", "show", std::to_string(id)});
  REQUIRE_EXIT(as_json, 0);
  // Every C0 control (ESC, BEL), DEL and every C1 control (U+009B, the one-byte CSI) is escaped
  // as JSON allows (\u001b, \u007f, \u009b): the terminal sees none of them, a parser the same text.
  CHECK_FALSE(has_terminal_controls(as_json.out));
  CHECK(as_json.out.find("\xc2\x9b") == std::string::npos);
  CHECK(as_json.out.find('\x7f') == std::string::npos);
  CHECK(contains(as_json.out, "\\u009b"));
  CHECK(contains(as_json.out, "\\u007f"));
  const auto v = json(as_json.out);
  CHECK(v.at("errors").at(0).at("message").as_string() == "boom \x1b]0;pwned\x07 \x1b[2J \r\b\x7f");
  CHECK(v.at("result").at("r").as_string() == "\x1b]0;pwned\x07\xc2\x9b");
  const auto as_jsonl = taskctl(db, {"-o", "jsonl", "list"});
  REQUIRE_EXIT(as_jsonl, 0);
  CHECK_FALSE(has_terminal_controls(as_jsonl.out));
}

}  // namespace taskq::systest
