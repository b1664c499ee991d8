// Every taskq session reads timestamps back in UTC and ISO form (db::connect sets TimeZone and
// DateStyle in the session itself), whatever the URL, the server's defaults or the environment
// ask for, and nothing of it goes through the process environment: libpq's PGTZ and PGDATESTYLE
// would change it for the whole process and every child it starts (exec handlers among them).
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "taskq/core/time.hpp"
#include "taskq/db/connection.hpp"
#include "taskq/queue/client.hpp"
#include "test_db.hpp"

using taskq::store::Store;
using taskq::store::StoreOptions;

using taskq::queue::Client;

using namespace taskq;
using taskq::test::TestSchema;

namespace {

// Sets (or, given nullopt, unsets) an environment variable for one test; restores it after.
class EnvVar {
 public:
  EnvVar(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~EnvVar() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The test database URL asking for another time zone and date style through its own `options`.
std::string url_asking_otherwise() {
  const std::string url = test::database_url();
  const std::string options = "-c TimeZone=America/New_York -c DateStyle=SQL,DMY";
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0)
    return url + (url.find('?') == std::string::npos ? "?" : "&") +
           "options=-c%20TimeZone%3DAmerica/New_York%20-c%20DateStyle%3DSQL,DMY";
  return url + " options='" + options + "'";
}

db::DbOptions options_for(const std::string& url) {
  db::DbOptions o;
  o.url = url;
  o.application_name = "taskq-test";
  return o;
}

std::string show(pqxx::connection& conn, const std::string& name) {
  pqxx::nontransaction tx(conn);
  return tx.exec1("SHOW " + name)[0].c_str();
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

}  // namespace

TEST_CASE("a session is UTC and ISO without PGTZ or PGDATESTYLE in the process environment", "[db][session]") {
  const EnvVar no_tz("PGTZ", std::nullopt), no_datestyle("PGDATESTYLE", std::nullopt);
  const auto conn = db::connect(options_for(url_asking_otherwise()));
  CHECK(std::getenv("PGTZ") == nullptr);
  CHECK(std::getenv("PGDATESTYLE") == nullptr);
  CHECK(show(*conn, "TimeZone") == "UTC");
  CHECK(starts_with(show(*conn, "DateStyle"), "ISO"));

  pqxx::nontransaction tx(*conn);
  const std::string text = tx.exec1("SELECT '2026-11-23 10:00:00.5-05'::timestamptz")[0].c_str();
  CHECK(text == "2026-11-23 15:00:00.5+00");
  CHECK(parse_pg_timestamp(text) == parse_rfc3339("2026-11-23T15:00:00.5Z"));
}

TEST_CASE("a PGTZ or PGDATESTYLE of the user's does not change a taskq session", "[db][session]") {
  const EnvVar tz("PGTZ", "Asia/Kolkata"), datestyle("PGDATESTYLE", "Postgres, DMY");
  const auto conn = db::connect(options_for(test::database_url()));
  CHECK(show(*conn, "TimeZone") == "UTC");
  CHECK(starts_with(show(*conn, "DateStyle"), "ISO"));
  CHECK(std::string(std::getenv("PGTZ")) == "Asia/Kolkata");  // and taskq left them alone
  CHECK(std::string(std::getenv("PGDATESTYLE")) == "Postgres, DMY");
}

TEST_CASE("the session settings hold when libpqxx reconnects a lost session", "[db][session]") {
  const auto conn = db::connect(options_for(url_asking_otherwise()));
  const int first = conn->backendpid();
  {
    pqxx::connection other(test::database_url());
    pqxx::nontransaction tx(other);
    // Returns once that backend has exited (or after 10 s: false).
    REQUIRE(tx.exec1("SELECT pg_terminate_backend(" + std::to_string(first) + ", 10000)")[0].as<bool>());
  }
  // The first uses after the loss fail while libpqxx notices it and lets the session go; a later
  // one connects again, with the URL's own options, then sets what it had been told to set.
  std::string zone;
  for (int attempt = 0; attempt < 5 && zone.empty(); ++attempt) {
    try {
      zone = show(*conn, "TimeZone");
    } catch (const pqxx::broken_connection&) {
    }
  }
  CHECK(conn->backendpid() != first);
  CHECK(zone == "UTC");
  CHECK(starts_with(show(*conn, "DateStyle"), "ISO"));
}

TEST_CASE("timestamps read back exactly through the store whatever the URL asks for", "[db][session]") {
  const TestSchema s;
  StoreOptions o = s.options();
  o.url = url_asking_otherwise();
  Client client(Store::open(o));
  const auto before = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  EnqueueParams p;
  p.kind = "later";
  p.run_at = parse_rfc3339("2031-07-04T12:34:56.789012Z");
  const auto id = client.enqueue(p).job.id;
  const auto job = client.get(id);
  REQUIRE(job);
  CHECK(job->run_at == *p.run_at);
  CHECK(job->created_at >= before - std::chrono::minutes{1});
  CHECK(job->created_at <= before + std::chrono::minutes{1});
}
