// taskq-apid, the real binary, through a real HTTP client against a real PostgreSQL: every
// endpoint built so far, every error status, auth scopes, idempotent retries, hostile clients,
// graceful shutdown.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <regex>
#include <set>
#include <thread>

#include "apid_fixture.hpp"
#include "daemon_process.hpp"
#include "http_client.hpp"
#include "sse_client.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::EventStream;
using taskq::test::http_request;
using taskq::test::HttpResult;
using taskq::test::SseEvent;
using taskq::test::wait_until;

// The next event of a stream, which must come within `timeout`.
SseEvent next_event(EventStream& s, std::chrono::milliseconds timeout = 10s) {
  auto e = s.next(timeout);
  REQUIRE(e.has_value());
  return *e;
}

bool listener_live(const TestSchema& db) {
  return db.scalar("SELECT count(*) FROM event_listeners WHERE expires_at > now()") == "1";
}

}  // namespace

TEST_CASE("apid --check-config refuses no tokens, bad tokens and TLS, with exit 78", "[apid]") {
  auto check = [](const std::string& text) {
    TempFile f(text, ".toml");
    return taskq::test::run_program(APID_PATH, {"--config", f.path(), "--check-config"}, "", clean_env());
  };
  const auto none = check("[api]\nthreads = 2\n");
  CHECK_EXIT(none, 78);
  CHECK(contains(none.err, "insecure_no_auth"));
  const auto open = check("[api]\ninsecure_no_auth = true\n");
  CHECK_EXIT(open, 0);
  CHECK(contains(open.out, "no authentication"));
  const auto bad = check("[[api.tokens]]\nname = \"x\"\nsha256 = \"plain-token\"\nscopes = [\"read\"]\n");
  CHECK_EXIT(bad, 78);
  CHECK(contains(bad.err, ":3: api.tokens 'x': sha256"));
  const auto tls = check("[api]\ninsecure_no_auth = true\ntls = { cert = \"/c\" }\n");
  CHECK_EXIT(tls, 78);
  CHECK(contains(tls.err, "api.tls"));
  CHECK_EXIT(check(tokens_section()), 0);
}

TEST_CASE("apid refuses an unmigrated schema with exit 69", "[apid]") {
  TestSchema db(false);
  TempFile f("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                 "\"\n[api]\nlisten = [\"127.0.0.1:0\"]\ninsecure_no_auth = true\n",
             ".toml");
  const auto r = taskq::test::run_program(APID_PATH, {"--config", f.path()}, "", clean_env());
  CHECK_EXIT(r, 69);
  CHECK(contains(r.err, "taskctl migrate"));
}

TEST_CASE("apid: probes answer without a token, and every response carries X-Request-Id", "[apid]") {
  TestSchema db;
  Apid api(db);
  const auto health = api.get("/healthz", "");
  CHECK_STATUS(health, 200);
  CHECK(json(health.body).at("status").as_string() == "ok");
  CHECK(health.header("x-request-id").size() == 16);
  CHECK_STATUS(api.get("/readyz", ""), 200);
  const auto echoed = http_request(api.port(), "GET", "/healthz", "", {{"X-Request-Id", "req-42.a"}});
  CHECK(echoed.header("x-request-id") == "req-42.a");
  const auto replaced = http_request(api.port(), "GET", "/healthz", "", {{"X-Request-Id", "bad id with spaces"}});
  CHECK(replaced.header("x-request-id").size() == 16);
  const auto missing = api.get("/v1/jobs/1", "");
  CHECK(missing.header("x-request-id").size() == 16);
  const auto head = http_request(api.port(), "HEAD", "/healthz");
  CHECK_STATUS(head, 200);
  CHECK(head.header("content-length") == std::to_string(health.body.size()));
  CHECK(head.body.empty());
}

TEST_CASE("apid: POST /v1/jobs enqueues, and an idempotent retry answers the same job", "[apid]") {
  TestSchema db;
  Apid api(db);
  const auto created = api.post("/v1/jobs", R"({"kind": "email.send", "args": {"to": "a@b"}, "queue": "mail",
                                               "priority": 2, "tags": ["x"]})");
  REQUIRE_STATUS(created, 201);
  const auto job = json(created.body).as_object();
  const auto id = job.at("id").to_number<long long>();
  CHECK(job.at("state").as_string() == "available");
  CHECK(job.at("duplicate").as_bool() == false);
  CHECK(job_field(db, id, "kind") == "email.send");
  CHECK(job_field(db, id, "queue") == "mail");
  CHECK(job_field(db, id, "args->>'to'") == "a@b");

  const auto first = api.post("/v1/jobs", R"({"kind": "k"})", ci, {{"Idempotency-Key", "order-7"}});
  REQUIRE_STATUS(first, 201);
  const auto again = api.post("/v1/jobs", R"({"kind": "k"})", ci, {{"Idempotency-Key", "order-7"}});
  REQUIRE_STATUS(again, 200);
  CHECK(json(again.body).at("id") == json(first.body).at("id"));
  CHECK(json(again.body).at("duplicate").as_bool());
  const auto by_field = api.post("/v1/jobs", R"({"kind": "k", "unique_key": "order-7"})");
  CHECK_STATUS(by_field, 200);
  CHECK(count_jobs(db, "unique_key = 'order-7'") == 1);

  const auto differ = api.post("/v1/jobs", R"({"kind": "k", "unique_key": "a"})", ci, {{"Idempotency-Key", "b"}});
  CHECK_STATUS(differ, 422);
  CHECK(error_of(differ).at("field").as_string() == "unique_key");
}

TEST_CASE("apid: concurrent POSTs are grouped, yet each gets its own job, and one key gives one job", "[apid]") {
  TestSchema db;
  Apid api(db);
  constexpr int threads = 16, each = 40;
  std::vector<std::thread> pool;
  std::vector<std::vector<std::pair<int, std::string>>> seen(threads);
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < each; ++i) {
        const auto n = std::to_string(t * 1000 + i);
        const auto r = api.post("/v1/jobs", R"({"kind": "k", "args": {"n": )" + n + "}}");
        seen[t].emplace_back(r.status, r.body);
        const auto k = api.post("/v1/jobs", R"({"kind": "once"})", ci, {{"Idempotency-Key", "same"}});
        seen[t].emplace_back(k.status == 201 ? 1201 : k.status == 200 ? 1200 : k.status, k.body);
      }
    });
  for (auto& th : pool) th.join();
  std::set<long long> ids;
  int created_once = 0, dup_once = 0;
  std::string once_id;
  for (const auto& list : seen)
    for (const auto& [status, body] : list) {
      INFO(status << " " << body);
      const auto job = json(body).as_object();
      if (status == 201) {
        const auto id = job.at("id").to_number<long long>();
        CHECK(ids.insert(id).second);
        CHECK(job_field(db, id, "args->>'n'") == std::to_string(job.at("args").at("n").to_number<long long>()));
      } else {
        REQUIRE((status == 1201 || status == 1200));
        (status == 1201 ? created_once : dup_once)++;
        const auto id = std::to_string(job.at("id").to_number<long long>());
        if (once_id.empty()) once_id = id;
        CHECK(id == once_id);
      }
    }
  CHECK(ids.size() == static_cast<std::size_t>(threads * each));
  CHECK(created_once == 1);
  CHECK(dup_once == threads * each - 1);
  CHECK(count_jobs(db) == threads * each + 1);
}

TEST_CASE("apid: bad requests get 400, 404, 405, 413, 415, 422 and 431 and change nothing", "[apid]") {
  TestSchema db;
  Apid api(db, "max_body = \"4KiB\"\n");
  const auto before = snapshot(db);

  const auto malformed = api.post("/v1/jobs", R"({"kind": "k",)");
  CHECK_STATUS(malformed, 400);
  CHECK(error_of(malformed).at("code").as_string() == "malformed_json");
  CHECK(contains(std::string(error_of(malformed).at("message").as_string()), "invalid JSON at byte"));

  const auto invalid = api.post("/v1/jobs", R"({"kind": "k", "priority": 12})");
  CHECK_STATUS(invalid, 422);
  CHECK(error_of(invalid).at("field").as_string() == "priority");
  const auto unknown = api.post("/v1/jobs", R"({"kind": "k", "colour": "red"})");
  CHECK_STATUS(unknown, 422);
  const auto no_kind = api.post("/v1/jobs", R"({"args": {}})");
  CHECK_STATUS(no_kind, 422);
  CHECK(error_of(no_kind).at("field").as_string() == "kind");

  const auto text = http_request(api.port(), "POST", "/v1/jobs", R"({"kind": "k"})",
                                 {{"Authorization", "Bearer " + ci}, {"Content-Type", "text/plain"}});
  CHECK_STATUS(text, 415);
  CHECK(error_of(text).at("code").as_string() == "unsupported_media_type");

  const auto big = api.post("/v1/jobs", R"({"kind": "k", "args": {"s": ")" + std::string(5000, 'x') + R"("}})");
  CHECK_STATUS(big, 413);
  CHECK(error_of(big).at("code").as_string() == "payload_too_large");

  const auto headers = http_request(api.port(), "GET", "/v1/jobs", "",
                                    {{"Authorization", "Bearer " + ci}, {"X-Padding", std::string(20000, 'p')}});
  CHECK_STATUS(headers, 431);

  CHECK_STATUS(api.get("/v1/nothing"), 404);
  CHECK_STATUS(api.get("/v1/jobs/123456789"), 404);
  CHECK_STATUS(api.get("/v1/jobs/abc"), 404);
  const auto method = http_request(api.port(), "DELETE", "/v1/jobs", "", {{"Authorization", "Bearer " + ci}});
  CHECK_STATUS(method, 405);
  CHECK(method.header("allow") == "GET, POST");
  CHECK(error_of(method).at("code").as_string() == "method_not_allowed");

  const auto limit = api.get("/v1/jobs?limit=0");
  CHECK_STATUS(limit, 422);
  CHECK(error_of(limit).at("field").as_string() == "limit");
  CHECK_STATUS(api.get("/v1/jobs?state=done"), 422);
  CHECK_STATUS(api.get("/v1/jobs?queue=%zz"), 400);

  CHECK(snapshot(db) == before);
  CHECK(api.proc().running());
}

TEST_CASE("apid: POST /v1/jobs/batch takes a JSON array or NDJSON, all or nothing", "[apid]") {
  TestSchema db;
  Apid api(db);
  const auto array = api.post("/v1/jobs/batch", R"([{"kind": "a"}, {"kind": "b", "queue": "q", "tags": ["t1", "t2"]},
                                                   {"kind": "c", "in": "1h"}, {"kind": "d", "unique_key": "u1"}])");
  REQUIRE_STATUS(array, 201);
  const auto body = json(array.body).as_object();
  CHECK(body.at("count").to_number<long long>() == 4);
  const auto& ids = body.at("ids").as_array();
  REQUIRE(ids.size() == 4);
  const char* kinds[] = {"a", "b", "c", "d"};
  for (std::size_t i = 0; i < 4; ++i) CHECK(job_field(db, ids[i].to_number<long long>(), "kind") == kinds[i]);
  CHECK(job_field(db, ids[1].to_number<long long>(), "tags") == "{t1,t2}");
  CHECK(job_field(db, ids[2].to_number<long long>(), "state") == "scheduled");

  const auto lines = http_request(api.port(), "POST", "/v1/jobs/batch",
                                  "{\"kind\": \"n1\"}\n\n{\"kind\": \"n2\", \"unique_key\": \"u1\"}\n",
                                  {{"Authorization", "Bearer " + ci}, {"Content-Type", "application/x-ndjson"}});
  REQUIRE_STATUS(lines, 201);
  CHECK(json(lines.body).at("count").to_number<long long>() == 2);
  CHECK(json(lines.body).at("duplicates").to_number<long long>() == 1);
  CHECK(json(lines.body).at("ids").as_array()[1] == ids[3]);

  const auto before = snapshot(db);
  const auto bad = api.post("/v1/jobs/batch", R"([{"kind": "x"}, {"kind": "y", "priority": 42}])");
  CHECK_STATUS(bad, 422);
  CHECK(error_of(bad).at("field").as_string() == "jobs[1].priority");
  std::string many = "[";
  for (int i = 0; i < 10001; ++i) many += std::string(i ? "," : "") + R"({"kind":"k"})";
  many += "]";
  const auto too_many = api.post("/v1/jobs/batch", many);
  CHECK_STATUS(too_many, 422);
  CHECK(contains(std::string(error_of(too_many).at("message").as_string()), "at most 10000"));
  CHECK_STATUS(api.post("/v1/jobs/batch", R"({"kind": "k"})"), 422);
  CHECK_STATUS(api.post("/v1/jobs/batch", "[]"), 422);
  CHECK_STATUS(api.post("/v1/jobs/batch", "[{\"kind\":"), 400);
  CHECK_STATUS(api.post("/v1/jobs/batch", R"([{"kind": "k"}])", ro), 403);
  CHECK(snapshot(db) == before);

  std::string full = "[";
  for (int i = 0; i < 10000; ++i)
    full += std::string(i ? "," : "") + R"({"kind":"bulk","args":{"i":)" + std::to_string(i) + "}}";
  full += "]";
  const auto max = api.post("/v1/jobs/batch", full);
  REQUIRE_STATUS(max, 201);
  CHECK(count_jobs(db, "kind = 'bulk'") == 10000);
  const auto max_body = json(max.body);
  const auto& max_ids = max_body.at("ids").as_array();
  CHECK(job_field(db, max_ids[9999].to_number<long long>(), "args->>'i'") == "9999");
}

TEST_CASE("apid: 401 without or with an unknown token, 403 without the scope", "[apid]") {
  TestSchema db;
  Apid api(db);
  const auto none = api.get("/v1/jobs", "");
  CHECK_STATUS(none, 401);
  CHECK(none.header("www-authenticate") == "Bearer");
  CHECK(error_of(none).at("code").as_string() == "unauthorized");
  CHECK_STATUS(api.get("/v1/jobs", "wrong-token"), 401);
  CHECK_STATUS(http_request(api.port(), "GET", "/v1/jobs", "", {{"Authorization", "Basic abc"}}), 401);

  const auto ro_post = api.post("/v1/jobs", R"({"kind": "k"})", ro);
  CHECK_STATUS(ro_post, 403);
  CHECK(contains(std::string(error_of(ro_post).at("message").as_string()), "enqueue"));
  CHECK_STATUS(api.get("/v1/jobs", ro), 200);

  const auto id = json(api.post("/v1/jobs", R"({"kind": "k"})").body).at("id").to_number<long long>();
  CHECK_STATUS(api.post("/v1/jobs/" + std::to_string(id) + "/cancel", "", ci), 403);
  CHECK_STATUS(api.post("/v1/queues/default/pause", "", ro), 403);
  CHECK(job_field(db, id, "state") == "available");
  CHECK_STATUS(api.post("/v1/jobs/" + std::to_string(id) + "/cancel", "", admin), 200);
  CHECK_STATUS(api.get("/v1/jobs", admin), 200);  // admin may also read
}

TEST_CASE("apid: list with filters and pagination, show one job", "[apid]") {
  TestSchema db;
  Apid api(db);
  for (int i = 0; i < 5; ++i)
    REQUIRE_STATUS(api.post("/v1/jobs", R"({"kind": "a", "queue": "q1", "tags": ["t"]})"), 201);
  for (int i = 0; i < 3; ++i) REQUIRE_STATUS(api.post("/v1/jobs", R"({"kind": "b", "queue": "q2"})"), 201);

  const auto page1 = json(api.get("/v1/jobs?queue=q1&limit=3").body).as_object();
  REQUIRE(page1.at("jobs").as_array().size() == 3);
  const auto after = page1.at("next_after").to_number<long long>();
  const auto page2 = json(api.get("/v1/jobs?queue=q1&limit=3&after=" + std::to_string(after)).body).as_object();
  CHECK(page2.at("jobs").as_array().size() == 2);
  CHECK(page2.at("next_after").is_null());
  CHECK(json(api.get("/v1/jobs?kind=b").body).at("jobs").as_array().size() == 3);
  CHECK(json(api.get("/v1/jobs?tag=t&state=available").body).at("jobs").as_array().size() == 5);
  CHECK(json(api.get("/v1/jobs?queue=q1,q2").body).at("jobs").as_array().size() == 8);

  const auto first_id = page1.at("jobs").as_array()[0].at("id").to_number<long long>();
  const auto one = api.get("/v1/jobs/" + std::to_string(first_id), ro);
  REQUIRE_STATUS(one, 200);
  CHECK(json(one.body).at("kind").as_string() == "a");
}

TEST_CASE("apid: cancel and retry, with 409 when the state does not allow it", "[apid]") {
  TestSchema db;
  Apid api(db);
  const auto id = json(api.post("/v1/jobs", R"({"kind": "k"})").body).at("id").to_number<long long>();
  const std::string base = "/v1/jobs/" + std::to_string(id);
  const auto cancelled = api.post(base + "/cancel", "", admin);
  REQUIRE_STATUS(cancelled, 200);
  CHECK(json(cancelled.body).at("to").as_string() == "cancelled");
  const auto twice = api.post(base + "/cancel", "", admin);
  CHECK_STATUS(twice, 409);
  CHECK(error_of(twice).at("code").as_string() == "conflict");
  const auto retried = api.post(base + "/retry", "", admin);
  REQUIRE_STATUS(retried, 200);
  CHECK(json(retried.body).at("to").as_string() == "available");
  CHECK(job_field(db, id, "state") == "available");
  CHECK_STATUS(api.post("/v1/jobs/999999/retry", "", admin), 404);
  const auto get_cancel = api.get(base + "/cancel", admin);
  CHECK_STATUS(get_cancel, 405);
  CHECK(get_cancel.header("allow") == "POST");
}

TEST_CASE("apid: queues, pause and resume, stats and workers", "[apid]") {
  TestSchema db;
  Apid api(db);
  REQUIRE_STATUS(api.post("/v1/jobs", R"({"kind": "k", "queue": "mail"})"), 201);
  const auto paused = api.post("/v1/queues/mail/pause", "", admin);
  REQUIRE_STATUS(paused, 200);
  CHECK(json(paused.body).at("changed").as_bool());
  CHECK_FALSE(json(api.post("/v1/queues/mail/pause", "", admin).body).at("changed").as_bool());
  const auto queues = json(api.get("/v1/queues").body).at("queues").as_array();
  REQUIRE(queues.size() == 1);
  CHECK(queues[0].at("queue").as_string() == "mail");
  CHECK(queues[0].at("paused").as_bool());
  CHECK(queues[0].at("available").to_number<long long>() == 1);
  REQUIRE_STATUS(api.post("/v1/queues/mail/resume", "", admin), 200);
  CHECK(db.scalar("SELECT paused_at IS NULL FROM queues WHERE name = 'mail'") == "t");

  const auto stats = json(api.get("/v1/stats").body).as_object();
  CHECK(stats.at("totals").at("available").to_number<long long>() == 1);
  CHECK(json(api.get("/v1/workers").body).at("workers").as_array().empty());
}

TEST_CASE("apid: /metrics counts requests, latency and enqueued jobs, and passes promtool", "[apid]") {
  TestSchema db;
  Apid api(db);
  REQUIRE_STATUS(api.post("/v1/jobs", R"({"kind": "k", "queue": "mail"})"), 201);
  REQUIRE_STATUS(api.post("/v1/jobs/batch", R"([{"kind": "k", "queue": "mail"}, {"kind": "k"}])"), 201);
  CHECK_STATUS(api.get("/v1/jobs/999999"), 404);
  CHECK_STATUS(api.get("/v1/jobs", ""), 401);
  const auto m = api.get("/metrics", "");
  REQUIRE_STATUS(m, 200);
  CHECK(contains(m.header("content-type"), "text/plain; version=0.0.4"));
  INFO(m.body);
  CHECK(contains(m.body, "taskq_api_requests_total{route=\"POST /v1/jobs\",status=\"201\"} 1\n"));
  CHECK(contains(m.body, "taskq_api_requests_total{route=\"GET /v1/jobs/{id}\",status=\"404\"} 1\n"));
  CHECK(contains(m.body, "taskq_api_requests_total{route=\"GET /v1/jobs\",status=\"401\"} 1\n"));
  CHECK(contains(m.body, "taskq_api_request_duration_seconds_count{route=\"POST /v1/jobs\"} 1\n"));
  CHECK(contains(m.body, "taskq_api_jobs_enqueued_total{queue=\"mail\"} 2\n"));
  CHECK(contains(m.body, "taskq_api_jobs_enqueued_total{queue=\"default\"} 1\n"));
  CHECK(contains(m.body, "taskq_jobs{queue=\"mail\",state=\"available\"} 2\n"));
  CHECK(contains(m.body, "taskq_queue_paused{queue=\"mail\"} 0\n"));
  const auto lint = taskq::test::run_program("/usr/bin/promtool", {"check", "metrics"}, m.body);
  INFO(lint.out << lint.err);
  CHECK(lint.exit_code == 0);
}

TEST_CASE("apid: with metrics_auth, /metrics needs a read token", "[apid]") {
  TestSchema db;
  Apid api(db, "metrics_auth = true\n");
  CHECK_STATUS(api.get("/metrics", ""), 401);
  CHECK_STATUS(api.get("/metrics", ro), 200);
  CHECK_STATUS(api.get("/healthz", ""), 200);
}

TEST_CASE("apid: a stalled client is cut at request_timeout, and apid serves on", "[apid]") {
  TestSchema db;
  Apid api(db, "request_timeout = \"500ms\"\n");
  const auto started = std::chrono::steady_clock::now();
  const auto [data, closed] = taskq::test::raw_exchange(api.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n", 10s);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(closed);
  CHECK(took < 5s);
  const auto garbage = taskq::test::raw_exchange(api.port(), "NOT HTTP AT ALL\r\n\r\n", 10s);
  CHECK(contains(garbage.first, "400"));
  CHECK_STATUS(api.get("/healthz", ""), 200);
}

TEST_CASE("apid: HTTPS with api.tls, and a certificate that cannot be loaded is exit 78", "[apid]") {
  TestSchema db;
  const auto dir = std::filesystem::temp_directory_path() / ("taskq-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  const std::string cert = (dir / "tls.crt").string(), key = (dir / "tls.key").string();
  const auto made = taskq::test::run_program(
      "/usr/bin/openssl", {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  REQUIRE_EXIT(made, 0);

  Apid api(db, "tls = { cert = \"" + cert + "\", key = \"" + key + "\" }\n", "https");
  const std::string url = "https://127.0.0.1:" + std::to_string(api.port());
  const auto health = taskq::test::run_program("/usr/bin/curl", {"-sS", "--cacert", cert, url + "/healthz"});
  CHECK_EXIT(health, 0);
  CHECK(contains(health.out, "\"status\":\"ok\""));
  const auto created =
      taskq::test::run_program("/usr/bin/curl", {"-sS", "--cacert", cert, "-X", "POST", "-H",
                                                 "Authorization: Bearer " + ci, "-H", "Content-Type: application/json",
                                                 "-d", R"({"kind": "tls"})", "-w", "\n%{http_code}", url + "/v1/jobs"});
  CHECK_EXIT(created, 0);
  CHECK(contains(created.out, "\n201"));
  CHECK(count_jobs(db, "kind = 'tls'") == 1);
  // Plain HTTP on the TLS port gets no HTTP answer.
  const auto plain = taskq::test::raw_exchange(api.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
  CHECK_FALSE(contains(plain.first, "HTTP/1.1 200"));
  CHECK(api.proc().running());

  TempFile bad("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                   "\"\n[api]\nlisten = [\"127.0.0.1:0\"]\ninsecure_no_auth = true\ntls = { cert = \"" +
                   (dir / "missing.crt").string() + "\", key = \"" + key + "\" }\n",
               ".toml");
  const auto refused = taskq::test::run_program(APID_PATH, {"--config", bad.path()}, "", clean_env());
  CHECK_EXIT(refused, 78);
  CHECK(contains(refused.err, "missing.crt"));
  const auto checked = taskq::test::run_program(APID_PATH, {"--config", bad.path(), "--check-config"}, "", clean_env());
  CHECK_EXIT(checked, 78);
  CHECK(contains(checked.err, "api.tls.cert: cannot read"));
  // A file that exists but is no certificate: refused at start, naming it.
  TempFile junk("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                    "\"\n[api]\nlisten = [\"127.0.0.1:0\"]\ninsecure_no_auth = true\ntls = { cert = \"" + key +
                    "\", key = \"" + key + "\" }\n",
                ".toml");
  const auto wrong = taskq::test::run_program(APID_PATH, {"--config", junk.path()}, "", clean_env());
  CHECK_EXIT(wrong, 78);
  CHECK(contains(wrong.err, "api.tls.cert"));
}

TEST_CASE("apid: SIGTERM lets an in-flight request finish, then exits 0", "[apid]") {
  TestSchema db;
  Apid api(db);
  const auto id = json(api.post("/v1/jobs", R"({"kind": "k"})").body).at("id").to_number<long long>();
  // Another session holds the job's row for a while (less than apid's lock_timeout, 2s), so the cancel
  // below waits on its lock.
  DaemonProcess locker("/usr/bin/psql", {db.url(), "-XAtq", "-c",
                                         "BEGIN; SELECT id FROM " + db.name() + ".jobs WHERE id = " +
                                             std::to_string(id) + " FOR UPDATE; SELECT pg_sleep(1.5); COMMIT;"});
  REQUIRE(wait_until(
      [&] {
        return db.scalar(
                   "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(1.5)%' AND "
                   "state = 'active' AND pid <> pg_backend_pid()") == "1";
      },
      10s));
  auto pending =
      std::async(std::launch::async, [&] { return api.post("/v1/jobs/" + std::to_string(id) + "/cancel", "", admin); });
  REQUIRE(wait_until(
      [&] {
        return db.scalar(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'taskq-apid%' AND "
                   "wait_event_type = 'Lock'") == "1";
      },
      10s));
  api.proc().signal(SIGTERM);
  const auto answered = pending.get();
  CHECK_STATUS(answered, 200);
  CHECK(answered.header("connection") == "close");
  CHECK(job_field(db, id, "state") == "cancelled");
  CHECK(api.proc().wait_exit(10s) == 0);
  CHECK(contains(api.proc().log(), "SIGTERM: stopping"));
  CHECK(locker.wait_exit(10s) == 0);
}

TEST_CASE("apid: a job's event stream shows running, progress and completed from a real workerd, then ends",
          "[apid][events]") {
  TestSchema db;
  Apid api(db);
  const auto id = json(api.post("/v1/jobs", R"({"kind": "slow"})").body).at("id").to_number<long long>();
  CHECK_FALSE(listener_live(db));  // no stream yet: nothing announced, nothing paid

  EventStream job(api.port(), "/v1/jobs/" + std::to_string(id) + "/events", ro);  // the read scope suffices
  REQUIRE(job.status() == 200);
  CHECK(job.header("content-type") == "text/event-stream; charset=utf-8");
  CHECK(job.header("cache-control") == "no-cache");
  CHECK_FALSE(job.header("x-request-id").empty());
  auto e = next_event(job);
  CHECK(e.event == "state");
  auto j = json(e.data).as_object();
  CHECK(j.at("id").to_number<long long>() == id);
  CHECK(j.at("state") == "available");
  CHECK(j.contains("args"));  // the whole job, as GET /v1/jobs/{id} shows it

  EventStream queue(api.port(), "/v1/events?queue=default", ro);
  REQUIRE(queue.status() == 200);
  CHECK(listener_live(db));

  TempFile worker_config("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                             "\"\n[worker]\nqueues = { default = 2 }\n[kinds.slow]\n"
                             "exec = [\"/bin/sh\", \"-c\", \"sleep 0.3; echo 'progress 50 half way' >&3; sleep 0.3; "
                             "echo 'result {\\\"ok\\\": true}' >&3\"]\n",
                         ".toml");
  DaemonProcess worker(WORKERD_PATH, {"--config", worker_config.path()}, clean_env());
  INFO(worker.log());

  e = next_event(job);
  CHECK(e.event == "state");
  j = json(e.data).as_object();
  CHECK(j.at("state") == "running");
  CHECK(j.at("attempt") == 1);
  e = next_event(job);
  CHECK(e.event == "progress");
  j = json(e.data).as_object();
  CHECK(j.at("id").to_number<long long>() == id);
  CHECK(j.at("progress").at("percent") == 50);
  CHECK(j.at("progress").at("message") == "half way");
  e = next_event(job);
  CHECK(e.event == "state");
  j = json(e.data).as_object();
  CHECK(j.at("state") == "completed");
  CHECK(j.at("result").at("ok") == true);
  e = next_event(job);
  CHECK(e.event == "end");
  CHECK(json(e.data).at("reason") == "finished");
  CHECK_FALSE(job.next(2s).has_value());
  CHECK(job.ended());
  CHECK(job.wait_closed(5s));

  // The queue stream saw the same changes, compact and straight from the notifications.
  std::vector<std::string> seen;
  while (seen.size() < 3) {
    const auto q = next_event(queue);
    const auto o = json(q.data).as_object();
    CHECK(o.at("id").to_number<long long>() == id);
    CHECK(o.at("queue") == "default");
    CHECK(o.at("kind") == "slow");
    CHECK_FALSE(o.contains("args"));
    seen.push_back(q.event == "state" ? std::string(o.at("state").as_string()) : q.event);
  }
  CHECK(seen == std::vector<std::string>{"running", "progress", "completed"});

  // The finished stream is forgotten; the queue stream is still counted.
  CHECK(wait_until([&] { return contains(api.get("/metrics").body, "\ntaskq_api_event_streams 1\n"); }, 5s));
  const auto metrics = api.get("/metrics").body;
  std::smatch m;
  REQUIRE(std::regex_search(metrics, m, std::regex("\ntaskq_api_events_sent_total ([0-9]+)\n")));
  CHECK(std::stoi(m[1].str()) >= 8);  // job stream: available, running, progress, completed, end; queue: 3
}

TEST_CASE(
    "apid: event streams need the read scope and GET, refuse unknown jobs and bad filters, and end at once "
    "for a finished job",
    "[apid][events]") {
  TestSchema db;
  Apid api(db);
  CHECK_STATUS(api.get("/v1/jobs/999999/events"), 404);
  CHECK(error_of(api.get("/v1/jobs/999999/events")).at("code") == "not_found");
  CHECK_STATUS(api.get("/v1/jobs/abc/events"), 404);
  CHECK_STATUS(api.get("/v1/events", ""), 401);
  CHECK_STATUS(api.get("/v1/jobs/1/events", "wrong-token"), 401);
  const auto post = api.post("/v1/events", "{}");
  CHECK_STATUS(post, 405);
  CHECK(post.header("allow") == "GET");
  CHECK_STATUS(http_request(api.port(), "HEAD", "/v1/events", "", {{"Authorization", "Bearer " + ro}}), 405);
  auto bad = api.get("/v1/events?queue=" + std::string(129, 'q'));
  CHECK_STATUS(bad, 422);
  CHECK(error_of(bad).at("field") == "queue");
  CHECK_STATUS(api.get("/v1/events?queue="), 422);
  CHECK(error_of(api.get("/v1/events?state=running")).at("code") == "invalid_field");
  CHECK_STATUS(api.get("/v1/events?queue=%zz"), 400);

  // The stream client reads a refusal like any response.
  EventStream missing(api.port(), "/v1/jobs/424242/events", ro);
  CHECK(missing.status() == 404);
  CHECK(contains(missing.body(), "job 424242 does not exist"));

  const auto id = enqueue(db, {"k"});
  make_finished(db, id, "failed");
  EventStream done(api.port(), "/v1/jobs/" + std::to_string(id) + "/events", ro);
  REQUIRE(done.status() == 200);
  auto e = next_event(done);
  CHECK(e.event == "state");
  CHECK(json(e.data).at("state") == "failed");
  e = next_event(done);
  CHECK(e.event == "end");
  CHECK(json(e.data).at("reason") == "finished");
  CHECK(done.wait_closed(5s));
}

TEST_CASE("apid: streams see changes made by taskctl: enqueue, cancel and retry", "[apid][events]") {
  TestSchema db;
  Apid api(db);
  EventStream queue(api.port(), "/v1/events?queue=mail,other", ro);
  REQUIRE(queue.status() == 200);
  EventStream everything(api.port(), "/v1/events", ro);
  REQUIRE(everything.status() == 200);
  REQUIRE(wait_until([&] { return listener_live(db); }, 5s));
  const auto id = enqueue(db, {"send", "{}", "--queue", "mail"});
  enqueue(db, {"ignored", "{}", "--queue", "elsewhere"});
  auto e = next_event(queue);
  CHECK(e.event == "state");
  CHECK(json(e.data).at("id").to_number<long long>() == id);
  CHECK(json(e.data).at("state") == "available");

  EventStream job(api.port(), "/v1/jobs/" + std::to_string(id) + "/events", ro);
  REQUIRE(job.status() == 200);
  CHECK(json(next_event(job).data).at("state") == "available");
  const auto cancelled = taskctl(db, {"cancel", std::to_string(id)});
  REQUIRE(cancelled.exit_code == 0);
  e = next_event(job);
  CHECK(json(e.data).at("state") == "cancelled");
  CHECK(next_event(job).event == "end");
  e = next_event(queue);
  CHECK(json(e.data).at("state") == "cancelled");
  REQUIRE(taskctl(db, {"retry", std::to_string(id)}).exit_code == 0);
  e = next_event(queue);
  CHECK(json(e.data).at("state") == "available");
  // The unfiltered stream saw the job of the other queue too: mail, elsewhere, then the changes.
  std::vector<std::string> queues;
  for (int i = 0; i < 4; ++i) queues.emplace_back(json(next_event(everything).data).at("queue").as_string());
  CHECK(queues == std::vector<std::string>{"mail", "elsewhere", "mail", "mail"});
}

TEST_CASE("apid: SIGTERM ends open event streams with a final event, then exits 0", "[apid][events]") {
  TestSchema db;
  Apid api(db);
  const auto id = enqueue(db, {"k"});
  EventStream job(api.port(), "/v1/jobs/" + std::to_string(id) + "/events", ro);
  REQUIRE(job.status() == 200);
  CHECK(next_event(job).event == "state");
  EventStream queue(api.port(), "/v1/events", ro);
  REQUIRE(queue.status() == 200);
  REQUIRE(wait_until([&] { return listener_live(db); }, 5s));
  api.proc().signal(SIGTERM);
  for (auto* s : {&job, &queue}) {
    const auto e = next_event(*s);
    CHECK(e.event == "end");
    CHECK(json(e.data).at("reason") == "shutdown");
    CHECK(s->wait_closed(5s));
    CHECK(s->ended());
  }
  CHECK(api.proc().wait_exit(10s) == 0);
  CHECK(contains(api.proc().log(), "ended 2 event stream(s)"));
  CHECK(db.scalar("SELECT count(*) FROM event_listeners") == "0");
}

TEST_CASE("apid: event streams stay open across a PostgreSQL restart and catch up after it", "[apid][events][outage]") {
  OwnCluster cluster;
  TempFile config("[database]\nurl = \"" + cluster.url() +
                      "\"\nconnect_timeout = \"1s\"\n[log]\nlevel = \"debug\"\n[api]\nlisten = [\"127.0.0.1:0\"]\n"
                      "db_pool = 1\ninsecure_no_auth = true\n",
                  ".toml");
  DaemonProcess apid(APID_PATH, {"--config", config.path()}, clean_env());
  INFO(apid.log());
  REQUIRE(apid.wait_log("listening on http://", 10s));
  std::smatch m;
  const std::string log = apid.log();
  REQUIRE(std::regex_search(log, m, std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)")));
  const int port = std::stoi(m[1].str());
  const auto queued = taskctl_raw({"--database-url", cluster.url(), "enqueue", "k"});
  REQUIRE_EXIT(queued, 0);
  const auto id = parse_id(queued);

  EventStream job(port, "/v1/jobs/" + std::to_string(id) + "/events", "");
  REQUIRE(job.status() == 200);
  CHECK(json(next_event(job).data).at("state") == "available");
  EventStream queue(port, "/v1/events", "");
  REQUIRE(queue.status() == 200);

  REQUIRE_EXIT(cluster.restart(), 0);
  // The hub's connection is gone; it reconnects, LISTENs and registers again, and reads the
  // followed jobs again: a change made meanwhile still reaches the per-job stream.
  REQUIRE_EXIT(taskctl_raw({"--database-url", cluster.url(), "cancel", std::to_string(id)}), 0);
  const auto e = next_event(job, 20s);
  CHECK(e.event == "state");
  CHECK(json(e.data).at("state") == "cancelled");
  CHECK(next_event(job).event == "end");
  REQUIRE(apid.wait_log("connected to PostgreSQL again", 10s));
  // Announcements resume for the queue stream (best effort: what happened while it was down is
  // not replayed).
  const auto later = taskctl_raw({"--database-url", cluster.url(), "enqueue", "k2"});
  REQUIRE_EXIT(later, 0);
  bool seen = false;
  for (int i = 0; i < 5 && !seen; ++i)  // the cancel may come first, if it was announced
    seen = json(next_event(queue, 20s).data).at("id").to_number<long long>() == parse_id(later);
  CHECK(seen);
  CHECK(apid.running());
}

}  // namespace taskq::systest
