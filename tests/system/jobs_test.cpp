// System tests of the job commands of taskctl: list, show, cancel, retry, prune.
#include <string>
#include <vector>

#include "system_helpers.hpp"

using namespace taskq::systest;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string id_text(long long id) {
  return std::to_string(id);
}

std::vector<long long> ids_in(const boost::json::value& array) {
  std::vector<long long> out;
  for (const auto& j : array.as_array()) out.push_back(j.at("id").as_int64());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// list

TEST_CASE("list prints a table of jobs, oldest first, data on stdout only", "[list]") {
  TestSchema db;
  const long long a = enqueue(db, {"email.send", "--queue", "mail", "--tag", "x", "--tag", "y"});
  const long long b = enqueue(db, {"report.build", "--in", "1h", "--priority", "2"});
  const auto r = taskctl(db, {"list"});
  REQUIRE_EXIT(r, 0);
  CHECK(r.err.empty());
  const auto lines = lines_of(trim(r.out));
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], StartsWith("ID") && Contains("QUEUE") && Contains("KIND") && Contains("STATE") &&
                           Contains("RUN_AT") && Contains("TAGS"));
  CHECK_THAT(lines[1], StartsWith(id_text(a) + " ") && Contains("mail") && Contains("email.send") &&
                           Contains("available") && Contains("0/25") && Contains("x,y"));
  CHECK_THAT(lines[2],
             StartsWith(id_text(b) + " ") && Contains("report.build") && Contains("scheduled") && Contains(" 2 "));
}

TEST_CASE("list filters by queue, states, kind and tag", "[list]") {
  TestSchema db;
  const long long mail1 = enqueue(db, {"email.send", "--queue", "mail", "--tag", "nightly"});
  const long long mail2 = enqueue(db, {"email.send", "--queue", "mail"});
  const long long img = enqueue(db, {"resize", "--queue", "images", "--tag", "nightly"});
  const long long later = enqueue(db, {"resize", "--queue", "images", "--in", "1h"});
  const long long done = enqueue(db, {"email.send", "--queue", "other"});
  make_finished(db, done, "failed");

  auto ids = [&](const std::vector<std::string>& filter) {
    std::vector<std::string> args{"-o", "json", "list"};
    args.insert(args.end(), filter.begin(), filter.end());
    const auto r = taskctl(db, args);
    REQUIRE_EXIT(r, 0);
    return ids_in(json(r.out));
  };
  using V = std::vector<long long>;
  CHECK(ids({}) == V{mail1, mail2, img, later, done});
  CHECK(ids({"--queue", "mail"}) == V{mail1, mail2});
  CHECK(ids({"--queue", "mail", "--queue", "other"}) == V{mail1, mail2, done});
  CHECK(ids({"--state", "scheduled,failed"}) == V{later, done});
  CHECK(ids({"--state", "available"}) == V{mail1, mail2, img});
  CHECK(ids({"--kind", "resize"}) == V{img, later});
  CHECK(ids({"--tag", "nightly"}) == V{mail1, img});
  CHECK(ids({"--kind", "email.send", "--tag", "nightly"}) == V{mail1});
  CHECK(ids({"--queue", "nope"}).empty());
}

TEST_CASE("list pages with --limit and --after, hinting on stderr unless -q", "[list]") {
  TestSchema db;
  std::vector<long long> all;
  for (int i = 0; i < 5; ++i) all.push_back(enqueue(db, {"k" + std::to_string(i)}));

  const auto page1 = taskctl(db, {"-o", "json", "list", "--limit", "2"});
  REQUIRE_EXIT(page1, 0);
  CHECK(ids_in(json(page1.out)) == std::vector<long long>{all[0], all[1]});
  CHECK_THAT(page1.err, Contains("more jobs may follow: add --after " + id_text(all[1])));

  const auto page2 = taskctl(db, {"-o", "json", "list", "--limit", "2", "--after", id_text(all[1])});
  REQUIRE_EXIT(page2, 0);
  CHECK(ids_in(json(page2.out)) == std::vector<long long>{all[2], all[3]});
  CHECK_THAT(page2.err, Contains("--after " + id_text(all[3])));

  const auto last = taskctl(db, {"-o", "json", "list", "--limit", "2", "--after", id_text(all[3])});
  REQUIRE_EXIT(last, 0);
  CHECK(ids_in(json(last.out)) == std::vector<long long>{all[4]});
  CHECK(last.err.empty());

  const auto quiet = taskctl(db, {"-q", "list", "--limit", "2"});
  REQUIRE_EXIT(quiet, 0);
  CHECK(quiet.err.empty());
  CHECK(lines_of(trim(quiet.out)).size() == 3);
}

TEST_CASE("list -o json is one array, -o jsonl one object per line, empty results stay valid", "[list]") {
  TestSchema db;
  const long long a = enqueue(db, {"k", R"({"n":1})"});
  const long long b = enqueue(db, {"k", R"({"n":2})", "--meta", "who=me"});

  const auto arr = taskctl(db, {"-o", "json", "list"});
  REQUIRE_EXIT(arr, 0);
  const auto v = json(arr.out);
  REQUIRE(v.is_array());
  REQUIRE(v.as_array().size() == 2);
  CHECK(v.as_array()[1].at("args").at("n").as_int64() == 2);
  CHECK(v.as_array()[1].at("metadata").at("who").as_string() == "me");
  CHECK(v.as_array()[0].at("state").as_string() == "available");

  const auto jl = taskctl(db, {"--output", "jsonl", "list"});
  REQUIRE_EXIT(jl, 0);
  const auto lines = lines_of(trim(jl.out));
  REQUIRE(lines.size() == 2);
  CHECK(json(lines[0]).at("id").as_int64() == a);
  CHECK(json(lines[1]).at("id").as_int64() == b);

  const auto empty_json = taskctl(db, {"-o", "json", "list", "--kind", "none"});
  REQUIRE_EXIT(empty_json, 0);
  CHECK(json(empty_json.out).as_array().empty());
  const auto empty_jsonl = taskctl(db, {"-o", "jsonl", "list", "--kind", "none"});
  REQUIRE_EXIT(empty_jsonl, 0);
  CHECK(empty_jsonl.out.empty());
  const auto empty_table = taskctl(db, {"list", "--kind", "none"});
  REQUIRE_EXIT(empty_table, 0);
  CHECK(empty_table.out.empty());
  CHECK_THAT(empty_table.err, Contains("no jobs match"));
}

TEST_CASE("list rejects bad filters with exit 2", "[list][errors]") {
  TestSchema db;
  enqueue(db, {"k"});
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"list", "--state", "bogus"}, "unknown state 'bogus'"},
      {{"list", "--state", "running,"}, "empty state"},
      {{"list", "--state", "Failed"}, "unknown state 'Failed'"},
      {{"list", "--limit", "0"}, "limit: 0"},
      {{"list", "--limit", "100001"}, "limit: 100001"},
      {{"list", "--limit", "many"}, "many"},
      {{"list", "--after", "x"}, "invalid job id 'x'"},
      {{"list", "--after", "0"}, "invalid job id '0'"},
      {{"list", "--queue", ""}, "queue"},
      {{"-o", "xml", "list"}, "xml"},
  };
  for (const auto& c : cases) {
    INFO("args: " << c.args[0] << " " << c.args[1] << " " << c.args[2]);
    const auto r = taskctl(db, c.args);
    CHECK_EXIT(r, 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Contains(c.expect));
  }
}

// ---------------------------------------------------------------------------------------------
// show

TEST_CASE("show prints every field, including error history, result and progress", "[show]") {
  TestSchema db;
  const long long id = enqueue(db, {"video.encode", R"({"file":"a.mp4"})", "--queue", "media", "--timeout", "10m",
                                    "--unique-key", "enc-1", "--tag", "big", "--meta", "owner=ops"});
  db.exec(
      "UPDATE jobs SET state = 'failed', attempt = 2, max_attempts = 2, attempted_at = now(), finished_at = now(), "
      "worker_id = 9, result = '{\"frames\": 12}', progress = '{\"percent\": 50}', errors = "
      "'[{\"at\": \"2026-11-23T10:00:00Z\", \"attempt\": 1, \"exit_status\": 3, \"message\": \"codec missing\", "
      "\"stderr_tail\": \"first line\\nsecond line\"}, {\"at\": \"2026-11-23T10:01:00Z\", \"attempt\": 2, "
      "\"message\": \"gave up\"}]' WHERE id = " +
      id_text(id));
  const auto r = taskctl(db, {"show", id_text(id)});
  REQUIRE_EXIT(r, 0);
  CHECK(r.err.empty());
  for (const char* field : {"id:",
                            "queue:",
                            "kind:",
                            "state:",
                            "priority:",
                            "attempt:",
                            "args:",
                            "run_at:",
                            "created_at:",
                            "attempted_at:",
                            "finished_at:",
                            "worker_id:",
                            "timeout:",
                            "unique_key:",
                            "tags:",
                            "metadata:",
                            "result:",
                            "progress:",
                            "cancel_requested_at:",
                            "errors:"}) {
    INFO(field);
    CHECK_THAT(r.out, Contains(std::string("\n") + field) || StartsWith(field));
  }
  CHECK_THAT(r.out, Contains("video.encode") && Contains("media") && Contains("failed") && Contains("2 of 2") &&
                        Contains("a.mp4") && Contains("10m") && Contains("enc-1") && Contains("big") &&
                        Contains("owner") && Contains("frames") && Contains("percent"));
  CHECK_THAT(r.out, Contains("errors:              2"));
  CHECK_THAT(r.out, Contains("exit_status=3") && Contains("message=codec missing"));
  CHECK_THAT(r.out, Contains("| first line") && Contains("| second line") && Contains("message=gave up"));

  const auto j = taskctl(db, {"-o", "json", "show", id_text(id)});
  REQUIRE_EXIT(j, 0);
  const auto v = json(j.out);
  CHECK(v.at("id").as_int64() == id);
  CHECK(v.at("state").as_string() == "failed");
  CHECK(v.at("result").at("frames").as_int64() == 12);
  CHECK(v.at("progress").at("percent").as_int64() == 50);
  CHECK(v.at("errors").as_array().size() == 2);
  CHECK(v.at("errors").as_array()[0].at("message").as_string() == "codec missing");
  CHECK(v.at("timeout").as_string() == "10m");
  CHECK(v.at("worker_id").as_int64() == 9);
  CHECK(v.at("unique_key").as_string() == "enc-1");
  CHECK(v.at("finished_at").is_string());
  CHECK(v.at("cancel_requested_at").is_null());
}

TEST_CASE("show: unknown id is exit 3, malformed id exit 2", "[show][errors]") {
  TestSchema db;
  const long long id = enqueue(db, {"k"});
  const auto missing = taskctl(db, {"show", id_text(id + 1000)});
  CHECK_EXIT(missing, 3);
  CHECK(missing.out.empty());
  CHECK_THAT(missing.err, Contains("no job with id " + id_text(id + 1000)));

  for (const std::string bad : {"abc", "0", "1.5", "12abc", "99999999999999999999", ""}) {
    INFO("id '" << bad << "'");
    const auto r = taskctl(db, {"show", bad});
    CHECK_EXIT(r, 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Contains("invalid job id"));
  }
  const auto largest = taskctl(db, {"show", "9223372036854775807"});
  CHECK_EXIT(largest, 3);
  const auto negative = taskctl(db, {"show", "--", "-5"});
  CHECK_EXIT(negative, 2);
  CHECK_THAT(negative.err, Contains("invalid job id '-5'"));
  const auto none = taskctl(db, {"show"});
  CHECK_EXIT(none, 2);
  CHECK_THAT(none.err, Contains("id"));
  const auto two = taskctl(db, {"show", id_text(id), id_text(id)});
  CHECK_EXIT(two, 2);
}

// ---------------------------------------------------------------------------------------------
// cancel

TEST_CASE("cancel ids: waiting jobs become cancelled, running ones get a cancel request", "[cancel]") {
  TestSchema db;
  const long long waiting = enqueue(db, {"a", "--queue", "q"});
  const long long scheduled = enqueue(db, {"b", "--queue", "q", "--in", "1h"});
  const long long running = enqueue(db, {"c", "--queue", "q"});
  const long long untouched = enqueue(db, {"d", "--queue", "q"});
  make_running(db, running);

  const auto r = taskctl(db, {"cancel", id_text(waiting), id_text(scheduled), id_text(running)});
  REQUIRE_EXIT(r, 0);
  const auto lines = lines_of(trim(r.out));
  REQUIRE(lines.size() == 4);
  CHECK_THAT(lines[0], StartsWith("ID") && Contains("FROM") && Contains("TO"));
  CHECK_THAT(lines[1], StartsWith(id_text(waiting)) && Contains("available") && Contains("cancelled"));
  CHECK_THAT(lines[2], StartsWith(id_text(scheduled)) && Contains("scheduled") && Contains("cancelled"));
  CHECK_THAT(lines[3], StartsWith(id_text(running)) && Contains("cancel requested"));
  CHECK_THAT(r.err, Contains("cancelled 2 job(s)") && Contains("cancellation of 1 running job(s)"));

  CHECK(job_field(db, waiting, "state") == "cancelled");
  CHECK(job_field(db, waiting, "finished_at IS NOT NULL") == "true");
  CHECK(job_field(db, scheduled, "state") == "cancelled");
  CHECK(job_field(db, running, "state") == "running");
  CHECK(job_field(db, running, "cancel_requested_at IS NOT NULL") == "true");
  CHECK(job_field(db, untouched, "state") == "available");
}

TEST_CASE("cancel -o json and --dry-run", "[cancel]") {
  TestSchema db;
  const long long waiting = enqueue(db, {"a"});
  const long long running = enqueue(db, {"b"});
  make_running(db, running);
  const std::string before = snapshot(db);

  const auto dry = taskctl(db, {"-o", "json", "cancel", "--dry-run", id_text(waiting), id_text(running)});
  REQUIRE_EXIT(dry, 0);
  const auto v = json(dry.out).as_array();
  REQUIRE(v.size() == 2);
  CHECK(v[0].at("id").as_int64() == waiting);
  CHECK(v[0].at("from").as_string() == "available");
  CHECK(v[0].at("to").as_string() == "cancelled");
  CHECK(v[0].at("cancel_requested").as_bool() == false);
  CHECK(v[1].at("to").as_string() == "running");
  CHECK(v[1].at("cancel_requested").as_bool() == true);
  CHECK_THAT(dry.err, Contains("dry run: would cancel 1 job(s)"));
  CHECK(snapshot(db) == before);

  const auto real = taskctl(db, {"-q", "-o", "jsonl", "cancel", id_text(waiting)});
  REQUIRE_EXIT(real, 0);
  CHECK(real.err.empty());
  CHECK(json(trim(real.out)).at("to").as_string() == "cancelled");
  CHECK(job_field(db, waiting, "state") == "cancelled");
}

TEST_CASE("cancel with filters cancels every matching unfinished job", "[cancel]") {
  TestSchema db;
  const long long mail_a = enqueue(db, {"email.send", "--queue", "mail"});
  const long long mail_b = enqueue(db, {"email.digest", "--queue", "mail"});
  const long long mail_done = enqueue(db, {"email.send", "--queue", "mail"});
  make_finished(db, mail_done, "completed");
  const long long other = enqueue(db, {"email.send", "--queue", "other"});

  const auto dry = taskctl(db, {"cancel", "--queue", "mail", "--kind", "email.send", "--dry-run"});
  REQUIRE_EXIT(dry, 0);
  CHECK_THAT(dry.out, Contains(id_text(mail_a)));
  CHECK(count_jobs(db, "state = 'cancelled'") == 0);

  const auto r = taskctl(db, {"cancel", "--queue", "mail", "--kind", "email.send"});
  REQUIRE_EXIT(r, 0);
  CHECK(job_field(db, mail_a, "state") == "cancelled");
  CHECK(job_field(db, mail_b, "state") == "available");
  CHECK(job_field(db, mail_done, "state") == "completed");
  CHECK(job_field(db, other, "state") == "available");

  const auto by_state = taskctl(db, {"-q", "cancel", "--queue", "mail", "--state", "available"});
  REQUIRE_EXIT(by_state, 0);
  CHECK(job_field(db, mail_b, "state") == "cancelled");
  CHECK(job_field(db, other, "state") == "available");
}

TEST_CASE("cancel: unknown ids are exit 3, finished jobs exit 4, and nothing changes", "[cancel][errors]") {
  TestSchema db;
  const long long a = enqueue(db, {"a"});
  const long long b = enqueue(db, {"b"});
  const long long done = enqueue(db, {"c"});
  make_finished(db, done, "completed");
  const std::string before = snapshot(db);

  const auto missing = taskctl(db, {"cancel", id_text(a), id_text(b + 100), id_text(b)});
  CHECK_EXIT(missing, 3);
  CHECK_THAT(missing.err, Contains(id_text(b + 100)) && Contains("nothing was changed"));
  CHECK(missing.out.empty());
  CHECK(snapshot(db) == before);

  const auto finished = taskctl(db, {"cancel", id_text(a), id_text(done)});
  CHECK_EXIT(finished, 4);
  CHECK_THAT(finished.err,
             Contains("job " + id_text(done)) && Contains("already completed") && Contains("nothing was changed"));
  CHECK(snapshot(db) == before);

  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> usage = {
      {{"cancel"}, "give job ids"},
      {{"cancel", "abc"}, "invalid job id 'abc'"},
      {{"cancel", id_text(a), "x1"}, "invalid job id 'x1'"},
      {{"cancel", id_text(a), "--queue", "default"}, "not both"},
      {{"cancel", "--state", "bogus"}, "unknown state 'bogus'"},
      {{"cancel", "--queue", ""}, "queue"},
  };
  for (const auto& c : usage) {
    INFO(c.expect);
    const auto r = taskctl(db, c.args);
    CHECK_EXIT(r, 2);
    CHECK_THAT(r.err, Contains(c.expect));
  }
  CHECK(snapshot(db) == before);
}

// `cancel ID --queue Q` is refused; the same words in the other order must be refused too, not
// turned into "cancel every job of queue Q (and of a queue named ID)".
TEST_CASE("cancel --queue Q ID is refused like cancel ID --queue Q", "[cancel][errors][regression]") {
  TestSchema db;
  const long long keep = enqueue(db, {"a", "--queue", "mail"});
  const long long target = enqueue(db, {"b", "--queue", "mail"});
  const std::string before = snapshot(db);
  const auto r = taskctl(db, {"cancel", "--queue", "mail", id_text(target)});
  CHECK_EXIT(r, 2);
  CHECK_THAT(r.err, Contains("not both"));
  CHECK(job_field(db, keep, "state") == "available");
  CHECK(snapshot(db) == before);
}

// An empty filter value must not widen the filter to "everything".
TEST_CASE("cancel --queue Q --kind EMPTY does not cancel every job of Q", "[cancel][errors][regression]") {
  TestSchema db;
  enqueue(db, {"a", "--queue", "mail"});
  enqueue(db, {"b", "--queue", "mail"});
  const std::string before = snapshot(db);
  const auto r = taskctl(db, {"cancel", "--queue", "mail", "--kind", ""});
  CHECK_EXIT(r, 2);
  CHECK_THAT(r.err, Contains("kind"));
  CHECK(snapshot(db) == before);
}

// ---------------------------------------------------------------------------------------------
// retry

TEST_CASE("retry ids: jobs become available now, a job out of attempts gets one more", "[retry]") {
  TestSchema db;
  const long long failed = enqueue(db, {"a", "--max-attempts", "3", "--in", "1h"});
  db.exec(
      "UPDATE jobs SET state = 'failed', attempt = 3, attempted_at = now(), finished_at = now(), "
      "errors = '[{\"message\": \"x\"}]' WHERE id = " +
      id_text(failed));
  const long long cancelled = enqueue(db, {"b"});
  REQUIRE_EXIT(taskctl(db, {"-q", "cancel", id_text(cancelled)}), 0);
  const long long scheduled = enqueue(db, {"c", "--in", "2h"});

  const auto r = taskctl(db, {"retry", id_text(failed), id_text(cancelled), id_text(scheduled)});
  REQUIRE_EXIT(r, 0);
  const auto lines = lines_of(trim(r.out));
  REQUIRE(lines.size() == 4);
  CHECK_THAT(lines[1], StartsWith(id_text(failed)) && Contains("failed") && Contains("available"));
  CHECK_THAT(lines[2], StartsWith(id_text(cancelled)) && Contains("cancelled") && Contains("available"));
  CHECK_THAT(r.err, Contains("retried 3 job(s)"));

  CHECK(job_field(db, failed, "state") == "available");
  CHECK(job_field(db, failed, "max_attempts") == "4");
  CHECK(job_field(db, failed, "attempt") == "3");
  CHECK(job_field(db, failed, "finished_at IS NULL AND run_at <= now()") == "true");
  CHECK(job_field(db, failed, "jsonb_array_length(errors)") == "1");  // history is kept
  CHECK(job_field(db, cancelled, "state") == "available");
  CHECK(job_field(db, scheduled, "state") == "available");
  CHECK(job_field(db, scheduled, "run_at <= now()") == "true");
}

TEST_CASE("retry with filters needs --state, leaves other jobs alone, and --dry-run changes nothing", "[retry]") {
  TestSchema db;
  const long long mail_failed = enqueue(db, {"email.send", "--queue", "mail"});
  const long long mail_failed_other_kind = enqueue(db, {"email.digest", "--queue", "mail"});
  const long long other_failed = enqueue(db, {"email.send", "--queue", "other"});
  const long long mail_cancelled = enqueue(db, {"email.send", "--queue", "mail"});
  for (long long id : {mail_failed, mail_failed_other_kind, other_failed}) make_finished(db, id, "failed");
  make_finished(db, mail_cancelled, "cancelled");
  const std::string before = snapshot(db);

  const auto dry = taskctl(db, {"-o", "json", "retry", "--state", "failed", "--queue", "mail", "--dry-run"});
  REQUIRE_EXIT(dry, 0);
  CHECK(ids_in(json(dry.out)) == std::vector<long long>{mail_failed, mail_failed_other_kind});
  CHECK_THAT(dry.err, Contains("dry run: would retry 2 job(s)"));
  CHECK(snapshot(db) == before);

  const auto r = taskctl(db, {"retry", "--state", "failed", "--queue", "mail", "--kind", "email.send"});
  REQUIRE_EXIT(r, 0);
  CHECK_THAT(r.err, Contains("retried 1 job(s)"));
  CHECK(job_field(db, mail_failed, "state") == "available");
  CHECK(job_field(db, mail_failed_other_kind, "state") == "failed");
  CHECK(job_field(db, other_failed, "state") == "failed");
  CHECK(job_field(db, mail_cancelled, "state") == "cancelled");
}

TEST_CASE("retry: running is exit 4, unknown exit 3, bad usage exit 2, and nothing changes", "[retry][errors]") {
  TestSchema db;
  const long long failed = enqueue(db, {"a"});
  make_finished(db, failed, "failed");
  const long long running = enqueue(db, {"b"});
  make_running(db, running);
  const std::string before = snapshot(db);

  const auto conflict = taskctl(db, {"retry", id_text(failed), id_text(running)});
  CHECK_EXIT(conflict, 4);
  CHECK_THAT(conflict.err,
             Contains("job " + id_text(running)) && Contains("is running") && Contains("Nothing was changed"));
  CHECK(conflict.out.empty());
  CHECK(snapshot(db) == before);

  const auto missing = taskctl(db, {"retry", id_text(failed), id_text(running + 50)});
  CHECK_EXIT(missing, 3);
  CHECK_THAT(missing.err, Contains("no job with id " + id_text(running + 50)));
  CHECK(snapshot(db) == before);

  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> usage = {
      {{"retry"}, "give job ids"},
      {{"retry", "--queue", "default"}, "--state is required"},
      {{"retry", "--state", "running"}, "running jobs cannot be retried"},
      {{"retry", "--state", "failed,bogus"}, "unknown state 'bogus'"},
      {{"retry", "-7"}, ""},
      {{"retry", "seven"}, "invalid job id 'seven'"},
      {{"retry", id_text(failed), "--state", "failed"}, "not both"},
  };
  for (const auto& c : usage) {
    INFO(c.args.back());
    const auto r = taskctl(db, c.args);
    CHECK_EXIT(r, 2);
    CHECK_THAT(r.err, Contains(c.expect));
  }
  CHECK(snapshot(db) == before);
}

TEST_CASE("retry of a job whose unique key was taken again is a conflict (exit 4)", "[retry][errors]") {
  TestSchema db;
  const long long old_job = enqueue(db, {"report", "--unique-key", "daily"});
  REQUIRE_EXIT(taskctl(db, {"-q", "cancel", id_text(old_job)}), 0);
  const long long new_job = enqueue(db, {"report", "--unique-key", "daily"});
  REQUIRE(new_job != old_job);
  const std::string before = snapshot(db);

  const auto r = taskctl(db, {"retry", id_text(old_job)});
  CHECK_EXIT(r, 4);
  CHECK_THAT(r.err, Contains("unique key") && Contains("nothing was changed"));
  CHECK(lines_of(trim(r.err)).size() == 1);
  CHECK(snapshot(db) == before);
}

// ---------------------------------------------------------------------------------------------
// prune

TEST_CASE("prune deletes finished jobs older than the duration, never unfinished ones", "[prune]") {
  TestSchema db;
  const long long old_completed = enqueue(db, {"a"});
  const long long old_failed = enqueue(db, {"b"});
  const long long old_cancelled = enqueue(db, {"c"});
  const long long recent = enqueue(db, {"d"});
  const long long waiting = enqueue(db, {"e"});
  const long long old_waiting = enqueue(db, {"f", "--run-at", "2020-01-01T00:00:00Z"});
  make_finished(db, old_completed, "completed", "now() - interval '3 days'");
  make_finished(db, old_failed, "failed", "now() - interval '3 days'");
  make_finished(db, old_cancelled, "cancelled", "now() - interval '3 days'");
  make_finished(db, recent, "completed", "now() - interval '1 hour'");
  db.exec("UPDATE jobs SET created_at = now() - interval '1 year' WHERE id = " + id_text(old_waiting));
  const std::string before = snapshot(db);

  const auto dry = taskctl(db, {"prune", "--older-than", "2d", "--dry-run"});
  REQUIRE_EXIT(dry, 0);
  CHECK(trim(dry.out) == "dry run: would delete 3 job(s)");
  CHECK(snapshot(db) == before);

  const auto only_completed = taskctl(db, {"-o", "json", "prune", "--older-than", "2d", "--state", "completed"});
  REQUIRE_EXIT(only_completed, 0);
  const auto v = json(only_completed.out);
  CHECK(v.at("deleted").as_int64() == 1);
  CHECK(v.at("dry_run").as_bool() == false);
  CHECK(count_jobs(db, "id = " + id_text(old_completed)) == 0);
  CHECK(count_jobs(db) == 5);

  const auto r = taskctl(db, {"prune", "--older-than", "2d"});
  REQUIRE_EXIT(r, 0);
  CHECK_THAT(r.out, StartsWith("deleted 2 job(s)"));
  CHECK(count_jobs(db) == 3);
  CHECK(count_jobs(db, "id IN (" + id_text(recent) + ", " + id_text(waiting) + ", " + id_text(old_waiting) + ")") == 3);
}

TEST_CASE("prune works in bounded batches", "[prune]") {
  TestSchema db;
  for (int i = 0; i < 5; ++i) enqueue(db, {"k"});
  db.exec("UPDATE jobs SET state = 'completed', attempt = 1, finished_at = now() - interval '2 hours'");
  const auto r = taskctl(db, {"-o", "json", "prune", "--older-than", "1h", "--batch", "2"});
  REQUIRE_EXIT(r, 0);
  const auto v = json(r.out);
  CHECK(v.at("deleted").as_int64() == 5);
  CHECK(v.at("batches").as_int64() == 3);
  CHECK(count_jobs(db) == 0);
}

TEST_CASE("prune rejects bad input with exit 2 and deletes nothing", "[prune][errors]") {
  TestSchema db;
  const long long id = enqueue(db, {"k"});
  make_finished(db, id, "completed", "now() - interval '3 days'");
  const std::string before = snapshot(db);
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"prune"}, "--older-than is required"},
      {{"prune", "--older-than", "1x"}, "invalid duration '1x'"},
      {{"prune", "--older-than", "yesterday"}, "invalid duration 'yesterday'"},
      {{"prune", "--older-than=-1d"}, "negative"},
      {{"prune", "--older-than", "1d", "--state", "running"}, "running jobs are not finished"},
      {{"prune", "--older-than", "1d", "--state", "available,completed"}, "available"},
      {{"prune", "--older-than", "1d", "--state", "gone"}, "unknown state 'gone'"},
      {{"prune", "--older-than", "1d", "--batch", "0"}, "batch size"},
  };
  for (const auto& c : cases) {
    INFO(c.expect);
    const auto r = taskctl(db, c.args);
    CHECK_EXIT(r, 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Contains(c.expect));
  }
  CHECK(snapshot(db) == before);
}
