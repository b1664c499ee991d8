// The session settings taskq relies on (TimeZone UTC, DateStyle ISO) hold behind PgBouncer in
// transaction pooling, whether it refuses the startup packet's `options` (its default) or drops
// them (ignore_startup_parameters = options), even when its server connections start with another
// date style and time zone: taskq sets both in the session, and PgBouncer carries them over to
// every server connection it lends. Without them taskctl could not read a timestamp back.
#include "pgbouncer.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

// Its server connections start with the SQL date style and New York time.
PgBouncerOptions skewed(const std::string& port, const std::string& extra) {
  return {.port = port, .server_settings = "datestyle=SQL timezone=America/New_York", .extra = extra};
}

// Enqueues a job at an exact time through the bouncer and reads it back through it.
void round_trip(const TestSchema& db, const PgBouncer& bouncer) {
  const std::vector<std::string> through{"--database-url", bouncer.url(), "--schema", db.name()};
  const auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), through.begin(), through.end());
    return args;
  };
  const auto added = taskctl_raw(with({"enqueue", "pooled", "--run-at", "2031-07-04T12:34:56.789012Z"}));
  REQUIRE_EXIT(added, 0);
  const auto id = parse_id(added);
  CHECK(job_field(db, id, "run_at = '2031-07-04 12:34:56.789012+00'") == "true");

  const auto shown = taskctl_raw(with({"-o", "json", "show", std::to_string(id)}));
  REQUIRE_EXIT(shown, 0);
  const auto v = json(shown.out);
  CHECK(v.at("run_at").as_string() == "2031-07-04T12:34:56.789012Z");
  const std::string created(v.at("created_at").as_string());
  CHECK(created.back() == 'Z');
}

}  // namespace

TEST_CASE("behind PgBouncer refusing the startup options, sessions are still UTC and ISO",
          "[taskctl][pooler][session]") {
  TestSchema db;
  PgBouncer bouncer(db, skewed("26532", ""));
  INFO("--- pgbouncer ---\n" << bouncer.log());
  round_trip(db, bouncer);
  CHECK(contains(bouncer.log(), "unsupported startup parameter: options"));
}

TEST_CASE("behind PgBouncer ignoring the startup options, sessions are still UTC and ISO",
          "[taskctl][pooler][session]") {
  TestSchema db;
  PgBouncer bouncer(db, skewed("26632", "ignore_startup_parameters = options\n"));
  INFO("--- pgbouncer ---\n" << bouncer.log());
  round_trip(db, bouncer);
  CHECK_FALSE(contains(bouncer.log(), "unsupported startup parameter: options"));
}

}  // namespace taskq::systest
