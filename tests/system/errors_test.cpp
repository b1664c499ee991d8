// System tests of taskctl's failure modes that cut across commands: an unreachable database or
// an unmigrated schema (exit 69), unexpected database errors (exit 1), and hostile names that
// must be stored verbatim, never interpolated into SQL.
#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

#include "system_helpers.hpp"

using namespace taskq::systest;
using Catch::Matchers::Contains;

namespace {

// Every command that needs the database, with harmless arguments.
const std::vector<std::vector<std::string>>& database_commands() {
  static const std::vector<std::vector<std::string>> commands = {
      {"migrate"},        {"migrate", "status"},
      {"enqueue", "k"},   {"enqueue", "--file", "-"},
      {"list"},           {"show", "1"},
      {"cancel", "1"},    {"cancel", "--queue", "q"},
      {"retry", "1"},     {"retry", "--state", "failed"},
      {"pause", "q"},     {"resume", "q"},
      {"pause", "--all"}, {"drain", "q", "--timeout", "1s"},
      {"stats"},          {"prune", "--older-than", "1d"},
  };
  return commands;
}

std::string shown(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += a + " ";
  return out;
}

std::string json_string(const std::string& s) {
  return boost::json::serialize(boost::json::value(s));
}

// The test database's URL with another database name.
std::string with_database(const std::string& url, const std::string& name) {
  const auto query = url.find('?');
  const std::string base = url.substr(0, query);
  return base.substr(0, base.rfind('/') + 1) + name + (query == std::string::npos ? "" : url.substr(query));
}

}  // namespace

TEST_CASE("an unreachable database is exit 69 with one line saying where, for every command", "[errors][db]") {
  const std::string job_line = R"({"kind":"k"})"
                               "\n";
  for (const auto& cmd : database_commands()) {
    INFO("taskctl " << shown(cmd));
    std::vector<std::string> args{"--database-url", unreachable_url, "--schema", "anything"};
    args.insert(args.end(), cmd.begin(), cmd.end());
    const auto r = taskctl_raw(args, job_line);
    CHECK_EXIT(r, 69);
    CHECK(r.out.empty());
    CHECK(lines_of(trim(r.err)).size() == 1);
    CHECK_THAT(r.err, Contains("cannot connect to PostgreSQL") && Contains("127.0.0.1") && Contains("port 1"));
  }
}

TEST_CASE("the unreachable database may come from the environment or the config file", "[errors][db]") {
  const auto env = taskctl_raw({"list"}, "", {{"TASKQ_DATABASE_URL", unreachable_url}});
  CHECK_EXIT(env, 69);
  CHECK_THAT(env.err, Contains("127.0.0.1") && Contains("cannot connect"));

  TempFile config("[database]\nurl = \"" + unreachable_url + "\"\nconnect_timeout = \"1s\"\n", ".toml");
  const auto from_config = taskctl_raw({"--config", config.path(), "stats"});
  CHECK_EXIT(from_config, 69);
  CHECK_THAT(from_config.err, Contains("127.0.0.1"));
  CHECK(lines_of(trim(from_config.err)).size() == 1);
}

TEST_CASE("connection errors never show the password", "[errors][db]") {
  const auto r = taskctl_raw({"--database-url", "postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres", "list"});
  CHECK_EXIT(r, 69);
  CHECK_THAT(r.err, Contains("127.0.0.1"));
  CHECK_THAT(r.err, !Contains("s3cret-pw"));
}

TEST_CASE("a database that does not exist is exit 69", "[errors][db]") {
  TestSchema db;
  const auto r = taskctl_raw({"--database-url", with_database(db.url(), "no_such_database_here"), "list"});
  CHECK_EXIT(r, 69);
  CHECK_THAT(r.err, Contains("no_such_database_here"));
  CHECK(lines_of(trim(r.err)).size() == 1);
}

TEST_CASE("an unmigrated schema is exit 69 with a hint to migrate, and is not created", "[errors][db]") {
  TestSchema db(false);
  const std::string job_line = R"({"kind":"k"})"
                               "\n";
  for (const auto& cmd : database_commands()) {
    if (cmd.front() == "migrate") continue;
    INFO("taskctl " << shown(cmd));
    const auto r = taskctl(db, cmd, job_line);
    CHECK_EXIT(r, 69);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Contains(db.name()) && Contains("not migrated") && Contains("taskctl migrate"));
  }
  CHECK(db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = '" + db.name() + "'") == "0");
}

TEST_CASE("an unexpected database error is exit 1 (internal) with one line", "[errors][db]") {
  TestSchema db;
  const long long id = enqueue(db, {"k"});
  db.exec("ALTER TABLE jobs DROP COLUMN progress");
  const std::string before = snapshot(db);
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"list"}, {"show", std::to_string(id)}, {"enqueue", "k"}}) {
    INFO("taskctl " << shown(cmd));
    const auto r = taskctl(db, cmd);
    CHECK_EXIT(r, 1);
    CHECK(r.out.empty());
    CHECK(lines_of(trim(r.err)).size() == 1);
    CHECK_THAT(r.err, Contains("progress"));
  }
  CHECK(snapshot(db) == before);
}

TEST_CASE("SQL metacharacters in queue, kind, tag and key names are stored verbatim", "[errors][names]") {
  TestSchema db;
  const std::string queue = "q'; DROP TABLE jobs; --";
  const std::string kind = "k\"\\{schema}$1%_é";
  const std::string tag = "t,{x}\"'\\ NULL";
  const std::string key = "u' OR '1'='1";
  const long long bystander = enqueue(db, {"plain"});

  const long long id = enqueue(db, {kind, R"({"q":"'; SELECT 1; --"})", "--queue", queue, "--tag", tag, "--tag", "NULL",
                                    "--unique-key", key, "--meta", "a'b=c\"d"});
  CHECK(job_field(db, id, "queue") == queue);
  CHECK(job_field(db, id, "kind") == kind);
  CHECK(job_field(db, id, "tags[1]") == tag);
  CHECK(job_field(db, id, "tags[2] IS NOT NULL AND tags[2] = 'NULL'") == "true");
  CHECK(job_field(db, id, "unique_key") == key);
  CHECK(job_field(db, id, "metadata->>'a''b'") == "c\"d");
  CHECK(job_field(db, id, "args->>'q'") == "'; SELECT 1; --");

  // The same names through the COPY path.
  const std::string line = "{\"kind\":" + json_string(kind) + ",\"queue\":" + json_string(queue) + ",\"tags\":[" +
                           json_string(tag) + ",\"NULL\"],\"metadata\":{" + json_string("k\\") + ":" +
                           json_string("v\n") + "}}\n";
  const auto streamed = taskctl(db, {"enqueue", "--file", "-"}, line);
  REQUIRE_EXIT(streamed, 0);
  const std::string copied = db.scalar("SELECT max(id) FROM jobs");
  const long long copied_id = std::stoll(copied);
  CHECK(job_field(db, copied_id, "queue") == queue);
  CHECK(job_field(db, copied_id, "kind") == kind);
  CHECK(job_field(db, copied_id, "tags[1]") == tag);
  CHECK(job_field(db, copied_id, "tags[2]") == "NULL");
  CHECK(job_field(db, copied_id, "metadata->>'k\\'") == "v\n");

  // Filters match them exactly, and the rest of the table is untouched.
  const auto listed = taskctl(db, {"-o", "json", "list", "--queue", queue, "--kind", kind, "--tag", tag});
  REQUIRE_EXIT(listed, 0);
  const auto arr = json(listed.out).as_array();
  REQUIRE(arr.size() == 2);
  CHECK(arr[0].at("queue").as_string() == queue);
  CHECK(arr[0].at("kind").as_string() == kind);
  CHECK(arr[0].at("tags").as_array()[0].as_string() == tag);

  const auto dup = taskctl(db, {"-q", "enqueue", "other", "--unique-key", key});
  REQUIRE_EXIT(dup, 0);
  CHECK(parse_id(dup) == id);

  REQUIRE_EXIT(taskctl(db, {"-q", "pause", queue}), 0);
  CHECK(db.scalar("SELECT count(*) FROM queues WHERE name = $$" + queue + "$$ AND paused_at IS NOT NULL") == "1");
  const auto stats = taskctl(db, {"-o", "json", "stats", "--queue", queue});
  REQUIRE_EXIT(stats, 0);
  CHECK(json(stats.out).as_array().at(0).at("available").as_int64() == 2);

  REQUIRE_EXIT(taskctl(db, {"-q", "cancel", "--queue", queue, "--tag", tag}), 0);
  CHECK(count_jobs(db, "state = 'cancelled'") == 2);
  CHECK(job_field(db, bystander, "state") == "available");
  CHECK(count_jobs(db) == 3);
  CHECK(db.scalar("SELECT to_regclass('" + db.name() + ".jobs') IS NOT NULL") == "t");
}
