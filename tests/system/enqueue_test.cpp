// System tests of `taskctl enqueue`: one job from flags, and a JSON Lines stream (--file).
#include <string>
#include <vector>

#include "system_helpers.hpp"

using namespace taskq::systest;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("enqueue stores every option verbatim and prints only the id", "[enqueue]") {
  TestSchema db;
  const auto r = taskctl(db, {"enqueue",
                              "email.send",
                              R"({"to":"ada@example.com","n":[1,2]})",
                              "--queue",
                              "mail",
                              "--priority",
                              "1",
                              "--run-at",
                              "2030-01-02T03:04:05.5+01:00",
                              "--max-attempts",
                              "3",
                              "--timeout",
                              "1h30m",
                              "--unique-key",
                              "u-1",
                              "--tag",
                              "a",
                              "--tag",
                              "b",
                              "--meta",
                              "team=ops",
                              "--meta",
                              "note=x=y"});
  REQUIRE_EXIT(r, 0);
  CHECK(r.err.empty());
  const long long id = parse_id(r);
  CHECK(r.out == std::to_string(id) + "\n");
  CHECK(count_jobs(db) == 1);
  CHECK(job_field(db, id, "queue") == "mail");
  CHECK(job_field(db, id, "kind") == "email.send");
  CHECK(job_field(db, id, R"(args = '{"to":"ada@example.com","n":[1,2]}'::jsonb)") == "true");
  CHECK(job_field(db, id, "state") == "scheduled");
  CHECK(job_field(db, id, "priority") == "1");
  CHECK(job_field(db, id, "attempt") == "0");
  CHECK(job_field(db, id, "max_attempts") == "3");
  CHECK(job_field(db, id, "run_at = '2030-01-02T02:04:05.5Z'::timestamptz") == "true");
  CHECK(job_field(db, id, "timeout_ms") == "5400000");
  CHECK(job_field(db, id, "unique_key") == "u-1");
  CHECK(job_field(db, id, "tags = ARRAY['a', 'b']") == "true");
  CHECK(job_field(db, id, R"(metadata = '{"team":"ops","note":"x=y"}'::jsonb)") == "true");
  CHECK(job_field(db, id, "finished_at IS NULL AND worker_id IS NULL AND attempted_at IS NULL") == "true");
  CHECK(job_field(db, id, "coalesce(jsonb_array_length(errors), 0)") == "0");
}

TEST_CASE("enqueue applies the documented defaults", "[enqueue]") {
  TestSchema db;
  const long long id = enqueue(db, {"noop"});
  CHECK(job_field(db, id, "queue") == "default");
  CHECK(job_field(db, id, "args = '{}'::jsonb") == "true");
  CHECK(job_field(db, id, "state") == "available");
  CHECK(job_field(db, id, "priority") == "5");
  CHECK(job_field(db, id, "max_attempts") == "25");
  CHECK(job_field(db, id, "run_at <= now()") == "true");
  CHECK(job_field(db, id, "timeout_ms IS NULL AND unique_key IS NULL") == "true");
  // Empty tags and metadata may be stored as NULL; what taskctl shows is [] and {}.
  CHECK(job_field(db, id, "coalesce(cardinality(tags), 0) = 0 AND coalesce(metadata, '{}') = '{}'") == "true");
  const auto shown = taskctl(db, {"-o", "json", "show", std::to_string(id)});
  REQUIRE_EXIT(shown, 0);
  const auto v = json(shown.out);
  CHECK(v.at("tags").as_array().empty());
  CHECK(v.at("metadata").as_object().empty());
  CHECK(v.at("errors").as_array().empty());
  CHECK(v.at("args").as_object().empty());
  CHECK(v.at("timeout").is_null());
  CHECK(v.at("unique_key").is_null());
}

TEST_CASE("enqueue --in delays the job, --run-at in the past or a bare date makes it available", "[enqueue]") {
  TestSchema db;
  const long long later = enqueue(db, {"k", "--in", "1h30m"});
  CHECK(job_field(db, later, "state") == "scheduled");
  CHECK(job_field(db, later, "extract(epoch FROM run_at - created_at)") == "5400.000000");
  const long long now = enqueue(db, {"k", "--in", "0s"});
  CHECK(job_field(db, now, "state") == "available");
  const long long past = enqueue(db, {"k", "--run-at", "2020-01-01"});
  CHECK(job_field(db, past, "state") == "available");
  CHECK(job_field(db, past, "run_at = '2020-01-01T00:00:00Z'::timestamptz") == "true");
  const long long fractional = enqueue(db, {"k", "--in", "1.5h"});
  CHECK(job_field(db, fractional, "extract(epoch FROM run_at - created_at)") == "5400.000000");
}

TEST_CASE("enqueue -o json prints the whole job with duplicate=false", "[enqueue]") {
  TestSchema db;
  const auto r = taskctl(db, {"-o", "json", "enqueue", "resize", R"({"id":7})", "--queue", "images", "--tag", "t"});
  REQUIRE_EXIT(r, 0);
  CHECK(r.err.empty());
  const auto v = json(r.out);
  REQUIRE(v.is_object());
  const auto& o = v.get_object();
  const long long id = o.at("id").as_int64();
  CHECK(id == std::stoll(db.scalar("SELECT max(id) FROM jobs")));
  CHECK(o.at("state").as_string() == "available");
  CHECK(o.at("queue").as_string() == "images");
  CHECK(o.at("kind").as_string() == "resize");
  CHECK(o.at("duplicate").as_bool() == false);
  CHECK(o.at("args").at("id").as_int64() == 7);
  CHECK(o.at("priority").as_int64() == 5);
  CHECK(o.at("tags").as_array().size() == 1);
  CHECK(o.at("run_at").as_string().size() > 10);
}

TEST_CASE("enqueue with a live unique key returns the existing job, flagged as a duplicate", "[enqueue]") {
  TestSchema db;
  const long long first = enqueue(db, {"report.build", "--unique-key", "report-2026-11-23"});

  const auto again = taskctl(db, {"enqueue", "other.kind", R"({"x":1})", "--unique-key", "report-2026-11-23"});
  REQUIRE_EXIT(again, 0);
  CHECK(parse_id(again) == first);
  CHECK_THAT(again.err, Contains("already exists") && Contains("report-2026-11-23"));

  const auto as_json = taskctl(db, {"-o", "json", "enqueue", "report.build", "--unique-key", "report-2026-11-23"});
  REQUIRE_EXIT(as_json, 0);
  const auto v = json(as_json.out);
  CHECK(v.at("id").as_int64() == first);
  CHECK(v.at("duplicate").as_bool() == true);
  CHECK(v.at("kind").as_string() == "report.build");

  const auto quiet = taskctl(db, {"-q", "enqueue", "report.build", "--unique-key", "report-2026-11-23"});
  REQUIRE_EXIT(quiet, 0);
  CHECK(parse_id(quiet) == first);
  CHECK(quiet.err.empty());

  CHECK(count_jobs(db) == 1);
  CHECK(job_field(db, first, "kind") == "report.build");

  // Cancelling the job releases its key.
  REQUIRE_EXIT(taskctl(db, {"-q", "cancel", std::to_string(first)}), 0);
  const long long second = enqueue(db, {"report.build", "--unique-key", "report-2026-11-23"});
  CHECK(second != first);
  CHECK(count_jobs(db) == 2);
}

TEST_CASE("enqueue rejects bad input with exit 2, says what is wrong, and changes nothing", "[enqueue][errors]") {
  TestSchema db;
  enqueue(db, {"existing", "--queue", "q1"});
  const std::string before = snapshot(db);
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> expect;  // substrings of stderr
  };
  const std::vector<Case> cases = {
      {{"k", "{bad"}, {"args", "invalid JSON"}},
      {{"k", "[1,"}, {"args", "invalid JSON"}},
      {{"k", R"({"a":"\u0000"})"}, {"args", "\\u0000"}},
      {{"k", "--priority", "10"}, {"priority", "10", "0..9"}},
      {{"k", "--priority", "-1"}, {"priority", "-1", "0..9"}},
      {{"k", "--priority", "abc"}, {"priority", "abc"}},
      {{"k", "--max-attempts", "0"}, {"max_attempts", "0"}},
      {{"k", "--max-attempts", "1001"}, {"max_attempts", "1001"}},
      {{"k", "--in", "5x"}, {"invalid duration '5x'", "unknown unit"}},
      {{"k", "--in=-5m"}, {"invalid duration '-5m'", "negative"}},
      {{"k", "--in", "soon"}, {"invalid duration 'soon'"}},
      {{"k", "--timeout", "0s"}, {"timeout", "positive"}},
      {{"k", "--timeout", "10 minutes"}, {"invalid duration '10 minutes'"}},
      {{"k", "--run-at", "tomorrow"}, {"invalid timestamp 'tomorrow'", "RFC 3339"}},
      {{"k", "--run-at", "2026-13-01T00:00:00Z"}, {"invalid timestamp '2026-13-01T00:00:00Z'", "out of range"}},
      {{"k", "--run-at", "2026-02-30T10:00:00Z"}, {"invalid timestamp", "no such date"}},
      {{"k", "--run-at", "2026-11-23T25:00:00Z"}, {"invalid timestamp", "out of range"}},
      {{"k", "--run-at", "2026-11-23T10:00:00"}, {"invalid timestamp", "time zone"}},
      {{"k", "--run-at", "2030-01-01T00:00:00Z", "--in", "5m"}, {"--run-at", "--in", "not both"}},
      {{"k", "--meta", "novalue"}, {"--meta 'novalue'", "KEY=VALUE"}},
      {{"k", "--meta", "=v"}, {"--meta '=v'", "KEY=VALUE"}},
      {{}, {"KIND is required"}},
      {{"k", "--queue", std::string(129, 'q')}, {"queue", "128 bytes"}},
      {{"k", "--queue", "a\tb"}, {"queue", "control character"}},
      {{std::string("bad\x01kind")}, {"kind", "control character"}},
      {{"k", "--tag", ""}, {"tag", "empty"}},
      {{"k", "--unique-key", std::string(200, 'u')}, {"unique_key", "128 bytes"}},
      {{"k", "{}", "extra"}, {"extra"}},
      {{"k", "--no-such-flag"}, {"--no-such-flag"}},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"enqueue"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto r = taskctl(db, args);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    INFO("taskctl " << shown);
    CHECK_EXIT(r, 2);
    CHECK(r.out.empty());
    for (const auto& e : c.expect) CHECK_THAT(r.err, Contains(e));
  }
  CHECK(snapshot(db) == before);
}

TEST_CASE("enqueue rejects more than 64 tags", "[enqueue][errors]") {
  TestSchema db;
  std::vector<std::string> args{"enqueue", "k"};
  for (int i = 0; i < 65; ++i) {
    args.push_back("--tag");
    args.push_back("t" + std::to_string(i));
  }
  const auto r = taskctl(db, args);
  CHECK_EXIT(r, 2);
  CHECK_THAT(r.err, Contains("tags") && Contains("64"));
  CHECK(count_jobs(db) == 0);
}

// Empty values of name options must be rejected like the library does (names are 1..128 bytes, and
// --file rejects "unique_key": ""), not silently treated as "not given": a script passing an empty
// $KEY would lose idempotency without noticing.
TEST_CASE("enqueue rejects an empty --unique-key or --queue instead of ignoring it", "[enqueue][errors][regression]") {
  TestSchema db;
  const auto key = taskctl(db, {"enqueue", "k", "--unique-key", ""});
  CHECK_EXIT(key, 2);
  CHECK_THAT(key.err, Contains("unique_key"));
  const auto key2 = taskctl(db, {"enqueue", "k", "--unique-key", ""});
  CHECK_EXIT(key2, 2);
  const auto queue = taskctl(db, {"enqueue", "k", "--queue", ""});
  CHECK_EXIT(queue, 2);
  CHECK_THAT(queue.err, Contains("queue"));
  CHECK(count_jobs(db) == 0);
}

// `--tag` is repeatable; it must not swallow the ARGS positional that follows it.
TEST_CASE("enqueue KIND --tag T ARGS keeps ARGS as the args of the job", "[enqueue][regression]") {
  TestSchema db;
  const auto r = taskctl(db, {"enqueue", "k", "--tag", "nightly", R"({"b":2})"});
  REQUIRE_EXIT(r, 0);
  const long long id = parse_id(r);
  CHECK(job_field(db, id, "tags") == "{nightly}");
  CHECK(job_field(db, id, "args") == R"({"b": 2})");
}

// ---------------------------------------------------------------------------------------------
// enqueue --file

TEST_CASE("enqueue --file reads JSON Lines with every field and prints count and rate", "[enqueue][file]") {
  TestSchema db;
  TempFile file(R"({"kind":"a","args":{"x":1}})"
                "\n"
                "\n"  // blank lines are skipped
                R"({"kind":"b","queue":"q2","priority":1,"tags":["t1","t2"],"metadata":{"m":"v"},"in":"1h",)"
                R"("max_attempts":3,"timeout":"30s","unique_key":"u1"})"
                "\n"
                R"({"kind":"c","run_at":"2030-01-01T00:00:00Z"})"
                "\n",
                ".jsonl");
  const auto r = taskctl(db, {"enqueue", "--file", file.path()});
  REQUIRE_EXIT(r, 0);
  CHECK_THAT(r.out, StartsWith("3 jobs enqueued in ") && Contains("jobs/s"));
  CHECK(r.err.empty());
  CHECK(count_jobs(db) == 3);
  CHECK(count_jobs(db, R"(kind = 'a' AND queue = 'default' AND args = '{"x":1}'::jsonb AND state = 'available')") == 1);
  CHECK(count_jobs(db,
                   "kind = 'b' AND queue = 'q2' AND priority = 1 AND tags = ARRAY['t1','t2'] AND "
                   R"(metadata = '{"m":"v"}'::jsonb AND state = 'scheduled' AND max_attempts = 3 AND )"
                   "timeout_ms = 30000 AND unique_key = 'u1' AND "
                   "run_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes'") == 1);
  CHECK(count_jobs(db, "kind = 'c' AND state = 'scheduled' AND run_at = '2030-01-01T00:00:00Z'") == 1);
}

TEST_CASE("enqueue --file - reads stdin, -o json reports inserted and duplicates", "[enqueue][file]") {
  TestSchema db;
  const long long existing = enqueue(db, {"k", "--unique-key", "taken"});
  const std::string input = R"({"kind":"a"})"
                            "\n"
                            R"({"kind":"b","unique_key":"taken"})"
                            "\n"
                            R"({"kind":"c","unique_key":"fresh"})"
                            "\n"
                            R"({"kind":"d","unique_key":"fresh"})"
                            "\n";
  const auto r = taskctl(db, {"-o", "json", "enqueue", "--file", "-"}, input);
  REQUIRE_EXIT(r, 0);
  const auto v = json(r.out);
  CHECK(v.at("inserted").as_int64() == 2);
  CHECK(v.at("duplicates").as_int64() == 2);
  CHECK(v.at("jobs_per_second").is_int64());
  CHECK(count_jobs(db) == 3);
  CHECK(count_jobs(db, "unique_key = 'taken'") == 1);
  CHECK(job_field(db, existing, "kind") == "k");
  CHECK(count_jobs(db, "unique_key = 'fresh' AND kind = 'c'") == 1);

  const auto table = taskctl(db, {"enqueue", "-f", "-"},
                             R"({"kind":"e","unique_key":"taken"})"
                             "\n");
  REQUIRE_EXIT(table, 0);
  CHECK_THAT(table.out, StartsWith("0 jobs enqueued, 1 duplicates skipped in "));
}

TEST_CASE("enqueue --file accepts CRLF line ends and a last line without newline", "[enqueue][file]") {
  TestSchema db;
  const auto r = taskctl(db, {"enqueue", "--file", "-"}, "{\"kind\":\"a\"}\r\n\r\n{\"kind\":\"b\",\"tags\":[\"t\"]}");
  REQUIRE_EXIT(r, 0);
  CHECK_THAT(r.out, StartsWith("2 jobs enqueued"));
  CHECK(count_jobs(db, "kind IN ('a', 'b')") == 2);
  CHECK(count_jobs(db, "kind = 'b' AND tags = ARRAY['t']") == 1);
}

TEST_CASE("enqueue --file of an empty input enqueues nothing and says so", "[enqueue][file]") {
  TestSchema db;
  TempFile empty("", ".jsonl");
  const auto r = taskctl(db, {"enqueue", "--file", empty.path()});
  REQUIRE_EXIT(r, 0);
  CHECK_THAT(r.out, StartsWith("0 jobs enqueued"));
  CHECK(count_jobs(db) == 0);
}

TEST_CASE("enqueue --file is all or nothing: one bad line after thousands inserts nothing", "[enqueue][file]") {
  TestSchema db;
  enqueue(db, {"existing"});
  const std::string before = snapshot(db);
  std::string content;
  // Enough to push several COPY chunks to the server before the bad line is read.
  for (int i = 1; i <= 3000; ++i)
    content += R"({"kind":"bulk","args":{"i":)" + std::to_string(i) +
               R"(,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}})"
               "\n";
  content += R"({"kind":"bulk","priority":"high"})"
             "\n";
  content += R"({"kind":"bulk"})"
             "\n";
  TempFile file(content, ".jsonl");
  const auto r = taskctl(db, {"enqueue", "--file", file.path()});
  CHECK_EXIT(r, 2);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Contains(file.path() + ":3001:") && Contains("priority") && Contains("nothing was enqueued"));
  CHECK(lines_of(trim(r.err)).size() == 1);
  CHECK(snapshot(db) == before);
  CHECK(count_jobs(db, "kind = 'bulk'") == 0);

  // The same lines without the bad one all go in.
  const auto good =
      taskctl(db, {"enqueue", "--file", "-"}, content.substr(0, content.find(R"({"kind":"bulk","priority")")));
  REQUIRE_EXIT(good, 0);
  CHECK_THAT(good.out, StartsWith("3000 jobs enqueued"));
  CHECK(count_jobs(db, "kind = 'bulk'") == 3000);
}

TEST_CASE("enqueue --file names the line and the field of each kind of bad line", "[enqueue][file][errors]") {
  TestSchema db;
  enqueue(db, {"existing"});
  const std::string before = snapshot(db);
  const std::string good = R"({"kind":"ok"})"
                           "\n";
  struct Case {
    std::string line;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {R"({"kind":"b")", {"invalid JSON"}},
      {R"(not json)", {"invalid JSON"}},
      {R"([1,2])", {"JSON object"}},
      {R"({"args":{}})", {"kind", "missing"}},
      {R"({"kind":"b","bogus":1})", {"unknown field \"bogus\""}},
      {R"({"kind":5})", {"kind", "string"}},
      {R"({"kind":"b","priority":10})", {"priority", "0..9"}},
      {R"({"kind":"b","priority":1.5})", {"priority", "integer"}},
      {R"({"kind":"b","max_attempts":0})", {"max_attempts"}},
      {R"({"kind":"b","tags":"t"})", {"tags", "array"}},
      {R"({"kind":"b","tags":[1]})", {"tags[]", "string"}},
      {R"({"kind":"b","metadata":[]})", {"metadata", "object"}},
      {R"({"kind":"b","run_at":"yesterday"})", {"invalid timestamp 'yesterday'"}},
      {R"({"kind":"b","in":"5 parsecs"})", {"in", "invalid duration"}},
      {R"({"kind":"b","in":-5})", {"in", "negative"}},
      {R"({"kind":"b","timeout":"0s"})", {"timeout", "positive"}},
      {R"({"kind":"b","in":"5m","run_at":"2030-01-01T00:00:00Z"})", {"run_at", "in", "not both"}},
      {R"({"kind":"b","queue":""})", {"queue", "empty"}},
      {R"({"kind":"b","unique_key":""})", {"unique_key", "empty"}},
      {R"({"kind":"b","args":{"s":"\u0000"}})", {"args", "\\u0000"}},
  };
  for (const auto& c : cases) {
    INFO("bad line: " << c.line);
    // Line numbers count blank lines too: the bad line is line 4.
    const auto r = taskctl(db, {"enqueue", "--file", "-"}, good + "\n" + good + c.line + "\n" + good);
    CHECK_EXIT(r, 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Contains("stdin:4:") && Contains("nothing was enqueued"));
    for (const auto& e : c.expect) CHECK_THAT(r.err, Contains(e));
  }
  CHECK(snapshot(db) == before);
}

TEST_CASE("enqueue --file refuses per-job flags, a missing file, and args over the default 1 MiB", "[enqueue][file]") {
  TestSchema db;
  TempFile file(R"({"kind":"a"})"
                "\n",
                ".jsonl");
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"kind"}, {"--queue", "q"}, {"--priority", "1"}, {"--tag", "t"}, {"--in", "1m"}}) {
    std::vector<std::string> args{"enqueue", "--file", file.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = taskctl(db, args);
    INFO("with " << extra.front());
    CHECK_EXIT(r, 2);
    CHECK_THAT(r.err, Contains("cannot be combined with --file"));
  }

  const auto missing = taskctl(db, {"enqueue", "--file", "/nonexistent/jobs.jsonl"});
  CHECK_EXIT(missing, 2);
  CHECK_THAT(missing.err, Contains("/nonexistent/jobs.jsonl") && Contains("cannot be opened"));

  // Too big for a command-line argument, so through a file.
  const std::string big = R"({"kind":"big","args":{"blob":")" + std::string(1024 * 1024, 'x') +
                          R"("}})"
                          "\n";
  const auto too_big = taskctl(db, {"enqueue", "--file", "-"},
                               R"({"kind":"a"})"
                               "\n" +
                                   big);
  CHECK_EXIT(too_big, 2);
  CHECK_THAT(too_big.err, Contains("stdin:2:") && Contains("args") && Contains("over the limit of 1048576 bytes"));
  CHECK(count_jobs(db) == 0);
}

TEST_CASE("jobs.max_args_bytes from --config limits single and streamed enqueues", "[enqueue][config]") {
  TestSchema db;
  TempFile config("[jobs]\nmax_args_bytes = 100\n", ".toml");
  const std::string small = R"({"s":")" + std::string(50, 'x') + R"("})";
  const std::string large = R"({"s":")" + std::string(200, 'x') + R"("})";

  const auto ok = taskctl(db, {"--config", config.path(), "enqueue", "k", small});
  REQUIRE_EXIT(ok, 0);

  const auto single = taskctl(db, {"--config", config.path(), "enqueue", "k", large});
  CHECK_EXIT(single, 2);
  CHECK_THAT(single.err, Contains("args") && Contains("over the limit of 100 bytes") && Contains("max_args_bytes"));

  const auto stream = taskctl(db, {"--config", config.path(), "enqueue", "--file", "-"},
                              R"({"kind":"k","args":)" + small + "}\n" + R"({"kind":"k","args":)" + large + "}\n");
  CHECK_EXIT(stream, 2);
  CHECK_THAT(stream.err, Contains("stdin:2:") && Contains("over the limit of 100 bytes"));
  CHECK(count_jobs(db) == 1);

  // Without the config the same args are fine.
  REQUIRE_EXIT(taskctl(db, {"enqueue", "k", large}), 0);
  CHECK(count_jobs(db) == 2);
}
