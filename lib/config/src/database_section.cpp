// [database], [log] and [jobs]: their keys, and the connection settings each program gets.
#include <string>

#include "config_parse.hpp"
#include "taskq/core/error.hpp"

namespace taskq::config {
namespace parsing {
namespace {

// Session timeouts: PostgreSQL takes at most INT_MAX milliseconds; taskq documents 24h.
constexpr Duration max_session_timeout = std::chrono::hours{24};

Duration get_session_timeout(const toml::node& n, const std::string& where, std::string_view key) {
  const Duration d = get_duration(n, where, key);
  if (d > max_session_timeout) bad(where, key, "must be at most 24h (0 turns it off)");
  if (d > Duration{} && d < std::chrono::milliseconds{1}) bad(where, key, "must be 0 (off) or at least 1ms");
  return d;
}

// A duration for every program, or a table { apid = .., workerd = .., schedulerd = .., taskctl = .. }
// whose missing keys keep their default.
void get_per_program(PerProgram& out, const toml::node& n, const std::string& where, std::string_view key) {
  if (!n.is_table()) {
    const Duration d = get_session_timeout(n, where, key);
    out = PerProgram{d, d, d, d};
    return;
  }
  for (const auto& [k, v] : *n.as_table()) {
    const std::string sub = std::string(key) + "." + std::string(k.str());
    Duration* target = k.str() == "apid"         ? &out.apid
                       : k.str() == "workerd"    ? &out.workerd
                       : k.str() == "schedulerd" ? &out.schedulerd
                       : k.str() == "taskctl"    ? &out.taskctl
                                                 : nullptr;
    if (!target) bad(where, sub, "unknown program (use apid, workerd, schedulerd, taskctl)");
    *target = get_session_timeout(v, where, sub);
  }
}

}  // namespace

KeyHandlers database_handlers() {
  return {
      {{"database.url", "string", "\"\"",
        "PostgreSQL connection URL (libpq URI or key=value). Empty: libpq defaults (PGHOST, PGPORT, ...). "
        "The environment variable TASKQ_DATABASE_URL overrides it."},
       [](Config& c, const toml::node& n, const std::string& w) { c.database.url = get_string(n, w, "database.url"); }},
      {{"database.schema", "string", "\"taskq\"",
        "Schema holding taskq's tables. Several deployments can share a database with different schemas."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.schema = get_string(n, w, "database.schema");
       }},
      {{"database.connect_timeout", "duration", "\"5s\"",
        "How long to wait for a connection to PostgreSQL before giving up (whole seconds; at least 1s)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.connect_timeout = get_duration(n, w, "database.connect_timeout");
       }},
      {{"database.statement_timeout", "duration or table",
        "{ apid = \"10s\", workerd = \"30s\", schedulerd = \"1m\", taskctl = \"0s\" }",
        "Longest one SQL statement may run before PostgreSQL cancels it (0s: no limit; at most 24h). One "
        "duration for every program, or a table by program whose missing keys keep their default."},
       [](Config& c, const toml::node& n, const std::string& w) {
         get_per_program(c.database.statement_timeout, n, w, "database.statement_timeout");
       }},
      {{"database.lock_timeout", "duration or table",
        "{ apid = \"2s\", workerd = \"2s\", schedulerd = \"5s\", taskctl = \"5s\" }",
        "Longest a statement waits for a lock another session holds (a job row, a queue row) before it fails "
        "with \"locked by another session; try again\" (0s: wait forever; at most 24h). Migrations ignore it."},
       [](Config& c, const toml::node& n, const std::string& w) {
         get_per_program(c.database.lock_timeout, n, w, "database.lock_timeout");
       }},
      {{"database.idle_in_transaction_timeout", "duration or table",
        "{ apid = \"1m\", workerd = \"1m\", schedulerd = \"1m\", taskctl = \"0s\" }",
        "PostgreSQL closes a session left idle inside an open transaction this long, releasing its locks "
        "(idle_in_transaction_session_timeout; 0s: never; at most 24h)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         get_per_program(c.database.idle_in_transaction_timeout, n, w, "database.idle_in_transaction_timeout");
       }},
      {{"database.keepalives", "boolean", "true",
        "TCP keepalives on connections to PostgreSQL, so a peer that vanished (host down, network cut) is "
        "noticed even by an idle connection."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.keepalives = get_bool(n, w, "database.keepalives");
       }},
      {{"database.keepalives_idle", "duration", "\"30s\"",
        "Idle time before the first keepalive probe (whole seconds, 1s to 1h)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.keepalives_idle =
             get_duration_at_least(n, w, "database.keepalives_idle", std::chrono::seconds{1}, "1s");
         if (c.database.keepalives_idle > std::chrono::hours{1})
           bad(w, "database.keepalives_idle", "must be at most 1h");
       }},
      {{"database.keepalives_interval", "duration", "\"10s\"",
        "Time between unanswered keepalive probes (whole seconds, 1s to 1h)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.keepalives_interval =
             get_duration_at_least(n, w, "database.keepalives_interval", std::chrono::seconds{1}, "1s");
         if (c.database.keepalives_interval > std::chrono::hours{1})
           bad(w, "database.keepalives_interval", "must be at most 1h");
       }},
      {{"database.keepalives_count", "integer", "3",
        "Unanswered keepalive probes after which the connection is dropped (1 to 100)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.keepalives_count = static_cast<int>(get_int(n, w, "database.keepalives_count", 1, 100));
       }},
      {{"database.tcp_user_timeout", "duration", "\"30s\"",
        "Longest data sent to PostgreSQL may stay unacknowledged before the connection is dropped "
        "(tcp_user_timeout; 0s: the kernel's default; at most 1h)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.database.tcp_user_timeout = get_duration(n, w, "database.tcp_user_timeout");
         if (c.database.tcp_user_timeout > std::chrono::hours{1})
           bad(w, "database.tcp_user_timeout", "must be at most 1h");
       }},
  };
}

KeyHandlers log_jobs_handlers() {
  return {
      {{"log.level", "string", "\"info\"", "Least severe level logged: trace, debug, info, warn, error, off."},
       [](Config& c, const toml::node& n, const std::string& w) { c.log.level = get_string(n, w, "log.level"); }},
      {{"log.format", "string", "\"text\"", "text (one line per event) or json (one JSON object per line)."},
       [](Config& c, const toml::node& n, const std::string& w) { c.log.format = get_string(n, w, "log.format"); }},
      {{"jobs.max_args_bytes", "integer", "1048576",
        "Largest accepted args JSON of one job, in bytes, as PostgreSQL stores it (numbers written out in "
        "full: 1e300 counts 301 bytes). Larger jobs are refused at enqueue."},
       [](Config& c, const toml::node& n, const std::string& w) {
         auto v = n.value<std::int64_t>();
         if (!v || !n.is_integer()) bad(w, "jobs.max_args_bytes", "must be an integer");
         if (*v < 2 || *v > 256LL * 1024 * 1024) bad(w, "jobs.max_args_bytes", "must be between 2 and 268435456");
         c.jobs.max_args_bytes = static_cast<std::size_t>(*v);
       }},
  };
}

}  // namespace parsing

Duration PerProgram::of(Program p) const {
  switch (p) {
    case Program::apid:
      return apid;
    case Program::workerd:
      return workerd;
    case Program::schedulerd:
      return schedulerd;
    case Program::taskctl:
      return taskctl;
  }
  return Duration{};
}

SessionSettings DatabaseConfig::session(Program program) const {
  SessionSettings s;
  s.statement_timeout = statement_timeout.of(program);
  s.lock_timeout = lock_timeout.of(program);
  s.idle_in_transaction_timeout = idle_in_transaction_timeout.of(program);
  s.keepalives = keepalives;
  s.keepalives_idle = keepalives_idle;
  s.keepalives_interval = keepalives_interval;
  s.keepalives_count = keepalives_count;
  s.tcp_user_timeout = tcp_user_timeout;
  return s;
}

}  // namespace taskq::config
