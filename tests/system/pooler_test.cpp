// taskq behind PgBouncer (transaction pooling, the Debian package): PgBouncer refuses the startup
// packet's `options`, where taskq sends its session limits; taskctl connects again without them,
// works, and warns once that the limits must be set on the role instead.
#include "pgbouncer.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("taskctl through PgBouncer: connects without the startup options, warns once, and works",
          "[taskctl][pooler]") {
  TestSchema db;
  PgBouncer bouncer(db, {});
  INFO("--- pgbouncer ---\n" << bouncer.log());
  const std::vector<std::string> through{"--database-url", bouncer.url(), "--schema", db.name()};
  const auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), through.begin(), through.end());
    return args;
  };

  const auto added = taskctl_raw(with({"enqueue", "pooled", R"({"n": 1})"}));
  REQUIRE_EXIT(added, 0);
  const auto id = parse_id(added);
  CHECK(job_field(db, id, "kind") == "pooled");
  const std::string warning = "the server refused the startup parameter 'options'";
  CHECK(count_of(added.err, warning) == 1);
  CHECK(contains(added.err, "ALTER ROLE"));
  CHECK(contains(bouncer.log(), "unsupported startup parameter: options"));

  const auto shown = taskctl_raw(with({"show", std::to_string(id)}));
  CHECK_EXIT(shown, 0);
  CHECK(contains(shown.out, "pooled"));

  // Straight to PostgreSQL the options go through: no warning.
  const auto direct = taskctl(db, {"show", std::to_string(id)});
  CHECK_EXIT(direct, 0);
  CHECK_FALSE(contains(direct.err, warning));
}

}  // namespace taskq::systest
