// What every connection is told at connect time (session_conninfo), how database errors of
// sessions that meet locks or time out are classified (rethrow_as_error, is_transient), and the
// [database] keys that set them per program.
#include <catch2/catch.hpp>
#include <pqxx/except>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/db/connection.hpp"

using taskq::config::Config;
using taskq::config::parse_config;
using taskq::config::Program;

using namespace taskq;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

db::DbOptions options(const std::string& url) {
  db::DbOptions o;
  o.url = url;
  o.application_name = "taskq-test";
  o.session.statement_timeout = 10s;
  o.session.lock_timeout = 2s;
  o.session.idle_in_transaction_timeout = 1min;
  return o;
}

// Runs rethrow_as_error on a server error with this SQLSTATE and message; returns the Error.
Error mapped(const char* sqlstate, const std::string& message, const std::string& context = "cancel job 42") {
  try {
    try {
      throw pqxx::sql_error("ERROR:  " + message + "\n", "SELECT 1", sqlstate);
    } catch (...) {
      db::rethrow_as_error(context, "taskq");
    }
  } catch (const Error& e) {
    return e;
  }
  FAIL("nothing thrown");
  return Error(Errc::internal, "");
}

}  // namespace

TEST_CASE("every connection carries the session limits in its startup packet", "[db][session]") {
  const auto c = db::session_conninfo(options("postgresql://u:secret@db.example:5433/jobs"));
  INFO(c);
  CHECK(contains(c, "host='db.example'"));
  CHECK(contains(c, "port='5433'"));
  CHECK(contains(c, "dbname='jobs'"));
  CHECK(contains(c, "password='secret'"));
  CHECK(contains(c, "fallback_application_name='taskq-test'"));
  CHECK(contains(c, "keepalives='1'"));
  CHECK(contains(c, "keepalives_idle='30'"));
  CHECK(contains(c, "keepalives_interval='10'"));
  CHECK(contains(c, "keepalives_count='3'"));
  CHECK(contains(c, "tcp_user_timeout='30000'"));
  CHECK(contains(c,
                 "options='-c statement_timeout=10000 -c lock_timeout=2000 -c "
                 "idle_in_transaction_session_timeout=60000'"));
}

TEST_CASE("a limit that is off is sent as 0, and synchronous_commit off travels the same way", "[db][session]") {
  auto o = options("host=/run/postgresql");
  o.session.statement_timeout = {};
  o.synchronous_commit = false;
  const auto c = db::session_conninfo(o);
  INFO(c);
  CHECK(contains(c, "-c statement_timeout=0 "));
  CHECK(contains(c, "-c synchronous_commit=off"));
}

TEST_CASE("the URL's own settings win over taskq's", "[db][session]") {
  const auto c = db::session_conninfo(
      options("host=h keepalives_idle=5 options='-c lock_timeout=99 --statement-timeout=7 -c search_path=x'"));
  INFO(c);
  CHECK(contains(c, "keepalives_idle='5'"));
  CHECK_FALSE(contains(c, "keepalives_idle='30'"));
  CHECK(contains(c, "-c lock_timeout=99"));
  CHECK_FALSE(contains(c, "lock_timeout=2000"));
  CHECK(contains(c, "--statement-timeout=7"));
  CHECK_FALSE(contains(c, "statement_timeout=10000"));
  CHECK(contains(c, "-c search_path=x"));
  CHECK(contains(c, "idle_in_transaction_session_timeout=60000"));
  // URI form, percent-encoded.
  const auto u = db::session_conninfo(options("postgresql:///jobs?options=-c%20lock_timeout%3D5"));
  INFO(u);
  CHECK(contains(u, "-c lock_timeout=5 -c statement_timeout=10000"));
  CHECK_FALSE(contains(u, "lock_timeout=2000"));
}

TEST_CASE("a URL libpq cannot parse is invalid input naming it, password hidden", "[db][session]") {
  try {
    (void)db::session_conninfo(options("postgresql://u:secret@h/db?nonsense_key=1"));
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    CHECK(contains(e.what(), "nonsense_key"));
    CHECK_FALSE(contains(e.what(), "secret"));
  }
}

TEST_CASE("lock and statement timeouts are transient errors naming what was being done", "[db][errors]") {
  const auto lock = mapped("55P03", "canceling statement due to lock timeout");
  CHECK(lock.code() == Errc::locked);
  CHECK(std::string(lock.what()) ==
        "cancel job 42: locked by another session (waited database.lock_timeout); try again");
  CHECK(is_transient(lock));

  const auto deadlock = mapped("40P01", "deadlock detected");
  CHECK(deadlock.code() == Errc::locked);
  CHECK(is_transient(deadlock));

  const auto slow = mapped("57014", "canceling statement due to statement timeout", "list jobs");
  CHECK(slow.code() == Errc::timeout);
  CHECK(std::string(slow.what()) == "list jobs: took longer than database.statement_timeout; try again");
  CHECK(is_transient(slow));

  CHECK(is_transient(Error(Errc::unavailable, "x")));
  // Data errors and conflicts are not: retrying the same data fails the same way.
  CHECK_FALSE(is_transient(mapped("22P05", "unsupported Unicode escape sequence")));
  CHECK_FALSE(is_transient(mapped("23505", "duplicate key value violates unique constraint \"x\"")));
  CHECK_FALSE(is_transient(Error(Errc::conflict, "x")));
}

TEST_CASE("[database] timeouts: one duration for every program, or a table by program", "[config][session]") {
  const Config defaults;
  CHECK(defaults.database.session(Program::apid).lock_timeout == 2s);
  CHECK(defaults.database.session(Program::apid).statement_timeout == 10s);
  CHECK(defaults.database.session(Program::taskctl).statement_timeout == Duration{});
  CHECK(defaults.database.session(Program::taskctl).idle_in_transaction_timeout == Duration{});
  CHECK(defaults.database.session(Program::schedulerd).lock_timeout == 5s);

  const auto all = parse_config("[database]\nlock_timeout = \"3s\"\nkeepalives_count = 5\n", "t.toml");
  for (auto p : {Program::apid, Program::workerd, Program::schedulerd, Program::taskctl})
    CHECK(all.database.session(p).lock_timeout == 3s);
  CHECK(all.database.session(Program::workerd).keepalives_count == 5);

  const auto some =
      parse_config("[database]\nstatement_timeout = { apid = \"5s\" }\nlock_timeout.taskctl = \"0s\"\n", "t.toml");
  CHECK(some.database.session(Program::apid).statement_timeout == 5s);
  CHECK(some.database.session(Program::workerd).statement_timeout == 30s);  // default kept
  CHECK(some.database.session(Program::taskctl).lock_timeout == Duration{});
  CHECK(some.database.session(Program::apid).lock_timeout == 2s);

  const auto error = [](const std::string& toml) {
    try {
      parse_config(toml, "t.toml");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_input);
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(error("[database]\nlock_timeout = { api = \"1s\" }\n") ==
        "t.toml:2: database.lock_timeout.api: unknown program (use apid, workerd, schedulerd, taskctl)");
  CHECK(
      contains(error("[database]\nstatement_timeout = \"25h\"\n"), "database.statement_timeout: must be at most 24h"));
  CHECK(contains(error("[database]\nkeepalives_count = 0\n"), "database.keepalives_count: must be between 1 and 100"));
  const auto api = parse_config("[api]\ndb_acquire_timeout = \"1ms\"\n", "t.toml");
  CHECK_FALSE(api.api_errors.empty());
}
