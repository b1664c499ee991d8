#include "taskq/config/config.hpp"

#include <toml++/toml.h>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>

#include "taskq/core/error.hpp"
#include "taskq/core/job.hpp"

namespace taskq {
namespace {

struct KeyHandler {
  ConfigKey key;
  std::function<void(Config&, const toml::node&, const std::string& where)> apply;
};

[[noreturn]] void bad(const std::string& where, std::string_view key, const std::string& why) {
  throw Error(Errc::invalid_input, where + ": " + std::string(key) + ": " + why);
}

std::string get_string(const toml::node& n, const std::string& where, std::string_view key) {
  if (auto s = n.value<std::string>(); s && n.is_string()) return *s;
  bad(where, key, "must be a string");
}

// A duration is a string ("5s", "1h30m") or a number of seconds.
Duration get_duration(const toml::node& n, const std::string& where, std::string_view key) {
  if (n.is_integer() || n.is_floating_point()) {
    try {
      return duration_from_seconds(n.value<double>().value_or(-1));
    } catch (const Error& e) {
      bad(where, key, e.what());
    }
  }
  if (!n.is_string()) bad(where, key, "must be a duration such as \"5s\" or a number of seconds");
  try {
    return parse_duration(*n.value<std::string>());
  } catch (const Error& e) {
    bad(where, key, e.what());
  }
}

Duration get_duration_at_least(const toml::node& n, const std::string& where, std::string_view key, Duration min,
                               const char* min_text) {
  const Duration d = get_duration(n, where, key);
  if (d < min) bad(where, key, std::string("must be at least ") + min_text);
  return d;
}

std::int64_t get_int(const toml::node& n, const std::string& where, std::string_view key, std::int64_t min,
                     std::int64_t max) {
  auto v = n.value<std::int64_t>();
  if (!v || !n.is_integer()) bad(where, key, "must be an integer");
  if (*v < min || *v > max) bad(where, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  return *v;
}

bool get_bool(const toml::node& n, const std::string& where, std::string_view key) {
  if (!n.is_boolean()) bad(where, key, "must be true or false");
  return *n.value<bool>();
}

const toml::table& get_table(const toml::node& n, const std::string& where, std::string_view key) {
  const auto* t = n.as_table();
  if (!t) bad(where, key, "must be a table, e.g. { name = value }");
  return *t;
}

// "512MiB", "1GiB", "100MB", "4096" or an integer: bytes. KiB/MiB/GiB/TiB are 1024-based,
// KB/MB/GB/TB 1000-based.
std::uint64_t get_size(const toml::node& n, const std::string& where, std::string_view key) {
  if (n.is_integer()) {
    const auto v = *n.value<std::int64_t>();
    if (v < 1) bad(where, key, "must be at least 1 byte");
    return static_cast<std::uint64_t>(v);
  }
  if (!n.is_string()) bad(where, key, "must be a size such as \"512MiB\" or a number of bytes");
  const std::string text = *n.value<std::string>();
  std::size_t pos = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  if (pos == 0 || pos > 18) bad(where, key, "'" + text + "' is not a size such as \"512MiB\" or \"1GiB\"");
  const std::uint64_t number = std::stoull(text.substr(0, pos));
  std::string unit = text.substr(pos);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::pair<const char*, std::uint64_t> units[] = {{"", 1},
                                                                {"B", 1},
                                                                {"KiB", 1ULL << 10},
                                                                {"MiB", 1ULL << 20},
                                                                {"GiB", 1ULL << 30},
                                                                {"TiB", 1ULL << 40},
                                                                {"KB", 1000ULL},
                                                                {"MB", 1000000ULL},
                                                                {"GB", 1000000000ULL},
                                                                {"TB", 1000000000000ULL}};
  for (const auto& [name, factor] : units)
    if (unit == name) {
      if (number == 0) bad(where, key, "must be at least 1 byte");
      if (number > (~0ULL) / factor) bad(where, key, "'" + text + "' is too large");
      return number * factor;
    }
  bad(where, key, "unknown unit in '" + text + "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
}

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

std::vector<std::pair<std::string, std::string>> get_string_table(const toml::node& n, const std::string& where,
                                                                  std::string_view key, bool env_names) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : get_table(n, where, key)) {
    const std::string k = std::string(key) + "." + std::string(name.str());
    if (!value.is_string()) bad(where, k, "must be a string");
    if (env_names && (name.str().empty() || name.str().find('=') != std::string_view::npos))
      bad(where, k, "an environment variable name must be non-empty and contain no '='");
    out.emplace_back(std::string(name.str()), *value.value<std::string>());
  }
  return out;
}

const std::vector<KeyHandler>& handlers() {
  static const std::vector<KeyHandler> table = {
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
      {{"worker.queues", "table", "{ default = 16 }",
        "The queues taskq-workerd serves, each with the most jobs it runs at once in this process "
        "(1 to 10000). At least one."},
       [](Config& c, const toml::node& n, const std::string& w) {
         std::map<std::string, int> queues;
         for (const auto& [name, value] : get_table(n, w, "worker.queues")) {
           const std::string key = "worker.queues." + std::string(name.str());
           try {
             validate_name("queue", name.str());
           } catch (const Error& e) {
             bad(w, key, e.what());
           }
           queues[std::string(name.str())] = static_cast<int>(get_int(value, w, key, 1, 10000));
         }
         if (queues.empty()) bad(w, "worker.queues", "needs at least one queue, e.g. { default = 16 }");
         c.worker.queues = std::move(queues);
       }},
      {{"worker.pass_env", "array of strings", "[]",
        "Names of variables of the worker's own environment that exec handlers also get (besides PATH, HOME, "
        "LANG, LC_*, TZ, TMPDIR, USER). PG* and TASKQ_* names are refused: the worker's database settings "
        "never reach a handler. Applies at restart."},
       [](Config& c, const toml::node& n, const std::string& w) {
         const auto* arr = n.as_array();
         if (!arr) bad(w, "worker.pass_env", "must be an array of variable names such as [\"HTTP_PROXY\"]");
         std::vector<std::string> names;
         for (const auto& item : *arr) {
           const auto name = item.value<std::string>();
           if (!item.is_string() || !name || name->empty() || name->find('=') != std::string::npos)
             bad(w, "worker.pass_env", "must be an array of variable names (non-empty, without '=')");
           if (never_passed_to_handlers(*name))
             bad(w, "worker.pass_env",
                 "'" + *name +
                     "' is one of the worker's own database settings (PG*, TASKQ_*), never passed to handlers; "
                     "give the handler its own value in kinds.NAME.env");
           names.push_back(*name);
         }
         c.worker.pass_env = std::move(names);
       }},
      {{"worker.shutdown_timeout", "duration", "\"30s\"",
        "On SIGTERM, how long running jobs may finish before they are stopped and returned to the queue."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.worker.shutdown_timeout = get_duration(n, w, "worker.shutdown_timeout");
       }},
      {{"worker.heartbeat_interval", "duration", "\"2s\"",
        "How often the worker records that it is alive (at least 100ms). Rescue treats a worker whose "
        "heartbeat is older than its grace as dead."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.worker.heartbeat_interval =
             get_duration_at_least(n, w, "worker.heartbeat_interval", std::chrono::milliseconds{100}, "100ms");
       }},
      {{"worker.poll_interval", "duration", "\"1s\"",
        "Safety poll (at least 10ms): wake-ups come from LISTEN/NOTIFY; this also paces the promotion of "
        "due scheduled jobs and the check for missed cancel requests."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.worker.poll_interval =
             get_duration_at_least(n, w, "worker.poll_interval", std::chrono::milliseconds{10}, "10ms");
       }},
      {{"worker.delete_completed", "boolean", "false",
        "Delete a job's row when it completes instead of keeping it as completed (failed and cancelled "
        "jobs are kept)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.worker.delete_completed = get_bool(n, w, "worker.delete_completed");
       }},
      {{"scheduler.lease_ttl", "duration", "\"15s\"",
        "How long the leader's lease lasts without renewal (at least 1s). The leader renews it about every "
        "third of it; after a crash a standby takes over within it."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.scheduler.lease_ttl = get_duration_at_least(n, w, "scheduler.lease_ttl", std::chrono::seconds{1}, "1s");
       }},
      {{"scheduler.rescue_interval", "duration", "\"5s\"",
        "How often the leader rescues the jobs of dead workers and fails stuck jobs (at least 100ms)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.scheduler.rescue_interval =
             get_duration_at_least(n, w, "scheduler.rescue_interval", std::chrono::milliseconds{100}, "100ms");
       }},
      {{"scheduler.worker_grace", "duration", "\"30s\"",
        "Heartbeat age after which a worker is dead and its running jobs are rescued (at least 1s; keep it "
        "several times worker.heartbeat_interval)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.scheduler.worker_grace =
             get_duration_at_least(n, w, "scheduler.worker_grace", std::chrono::seconds{1}, "1s");
       }},
      {{"scheduler.stuck_grace", "duration", "\"5m\"",
        "A running job with a timeout is stuck once it has run this long past its timeout (its worker is "
        "alive but did not stop it); the leader then records a failed attempt (at least 1s)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.scheduler.stuck_grace = get_duration_at_least(n, w, "scheduler.stuck_grace", std::chrono::seconds{1}, "1s");
       }},
      {{"scheduler.prune_interval", "duration", "\"1m\"",
        "How often the leader deletes finished jobs older than their retention (at least 1s)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.scheduler.prune_interval =
             get_duration_at_least(n, w, "scheduler.prune_interval", std::chrono::seconds{1}, "1s");
       }},
      {{"scheduler.prune_batch", "integer", "10000",
        "Most jobs deleted per pruning transaction (1 to 10000), so no transaction runs long."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.scheduler.prune_batch = static_cast<int>(get_int(n, w, "scheduler.prune_batch", 1, 10000));
       }},
      {{"scheduler.retention", "table", "{ completed = \"24h\", cancelled = \"7d\", failed = \"30d\" }",
        "How long finished jobs are kept, by state (each at least 1s; keys not given keep their default)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         for (const auto& [k, v] : get_table(n, w, "scheduler.retention")) {
           const std::string key = "scheduler.retention." + std::string(k.str());
           Duration* target = k.str() == "completed"   ? &c.scheduler.retention.completed
                              : k.str() == "cancelled" ? &c.scheduler.retention.cancelled
                              : k.str() == "failed"    ? &c.scheduler.retention.failed
                                                       : nullptr;
           if (!target) bad(w, key, "unknown state (retention takes completed, cancelled, failed)");
           *target = get_duration_at_least(v, w, key, std::chrono::seconds{1}, "1s");
         }
       }},
      {{"scheduler.missed_ticks", "string", "\"skip\"",
        "After downtime of the schedulers: skip (ticks missed by more than twice lease_ttl are not "
        "enqueued) or run_once (one catch-up job per schedule, for its latest missed tick)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         const auto v = get_string(n, w, "scheduler.missed_ticks");
         if (v != "skip" && v != "run_once") bad(w, "scheduler.missed_ticks", "'" + v + "' is not skip or run_once");
         c.scheduler.missed_run_once = v == "run_once";
       }},
      {{"api.listen", "array of strings", "[\"127.0.0.1:8080\"]",
        "Addresses taskq-apid listens on: HOST:PORT or [IPV6]:PORT, one or more."},
       [](Config& c, const toml::node& n, const std::string& w) {
         const auto* arr = n.as_array();
         if (!arr || arr->empty()) bad(w, "api.listen", "must be a non-empty array such as [\"127.0.0.1:8080\"]");
         std::vector<std::string> out;
         for (const auto& item : *arr) {
           if (!item.is_string()) bad(w, "api.listen", "must be an array of strings");
           const std::string a = *item.value<std::string>();
           const auto colon = a.rfind(':');
           const bool v6 = !a.empty() && a.front() == '[';
           if (colon == std::string::npos || colon == 0 || colon + 1 == a.size() ||
               (v6 && (colon < 2 || a[colon - 1] != ']')) ||
               a.find_first_not_of("0123456789", colon + 1) != std::string::npos || a.size() - colon - 1 > 5 ||
               std::stoi(a.substr(colon + 1)) > 65535)
             bad(w, "api.listen", "'" + a + "' is not HOST:PORT or [IPV6]:PORT (port 0 to 65535)");
           out.push_back(a);
         }
         c.api.listen = std::move(out);
       }},
      {{"api.threads", "integer", "2", "I/O threads of taskq-apid (1 to 64)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.threads = static_cast<int>(get_int(n, w, "api.threads", 1, 64));
       }},
      {{"api.db_pool", "integer", "8",
        "Database connections of taskq-apid, each with its own thread (1 to 256); database work never runs on "
        "the I/O threads."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.db_pool = static_cast<int>(get_int(n, w, "api.db_pool", 1, 256));
       }},
      {{"api.db_acquire_timeout", "duration", "\"1s\"",
        "Longest a request waits for a free database connection (10ms to 1m); then it gets 503 with Retry-After. "
        "/readyz answers 503 while the pool is stuck that long."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.db_acquire_timeout =
             get_duration_at_least(n, w, "api.db_acquire_timeout", std::chrono::milliseconds{10}, "10ms");
         if (c.api.db_acquire_timeout > std::chrono::minutes{1}) bad(w, "api.db_acquire_timeout", "must be at most 1m");
       }},
      {{"api.max_body", "size", "\"1MiB\"", "Largest request body; larger requests get 413."},
       [](Config& c, const toml::node& n, const std::string& w) { c.api.max_body = get_size(n, w, "api.max_body"); }},
      {{"api.request_timeout", "duration", "\"30s\"",
        "How long a client may take to send a request (at least 100ms); slower clients are cut off."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.request_timeout =
             get_duration_at_least(n, w, "api.request_timeout", std::chrono::milliseconds{100}, "100ms");
       }},
      {{"api.max_connections", "integer", "10000",
        "Open connections taskq-apid serves at most (1 to 1000000), event streams included; a connection "
        "beyond it is accepted and closed at once (plain HTTP gets a 503 first)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.max_connections = static_cast<int>(get_int(n, w, "api.max_connections", 1, 1000000));
       }},
      {{"api.max_event_streams", "integer", "5000",
        "Event streams open at once in all (1 to 1000000); a stream request beyond it gets 503 with Retry-After."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.max_event_streams = static_cast<int>(get_int(n, w, "api.max_event_streams", 1, 1000000));
       }},
      {{"api.max_event_streams_per_token", "integer", "1000",
        "Event streams open at once per token (1 to 1000000; without tokens, for all clients together); a "
        "stream request beyond it gets 429 with Retry-After."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.max_event_streams_per_token =
             static_cast<int>(get_int(n, w, "api.max_event_streams_per_token", 1, 1000000));
       }},
      {{"api.stream_write_timeout", "duration", "\"30s\"",
        "An event stream whose client has not taken a write within this time (at least 100ms) is closed; so is "
        "one with more than 4 MiB unsent."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.stream_write_timeout =
             get_duration_at_least(n, w, "api.stream_write_timeout", std::chrono::milliseconds{100}, "100ms");
       }},
      {{"api.shutdown_timeout", "duration", "\"10s\"",
        "On SIGTERM, how long in-flight requests may finish before taskq-apid exits."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.shutdown_timeout = get_duration(n, w, "api.shutdown_timeout");
       }},
      {{"api.insecure_no_auth", "boolean", "false",
        "true: serve without tokens (every request may do everything). Without tokens and without this, "
        "taskq-apid refuses to start."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.insecure_no_auth = get_bool(n, w, "api.insecure_no_auth");
       }},
      {{"api.metrics_auth", "boolean", "false", "true: /metrics needs a token with the read scope."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.metrics_auth = get_bool(n, w, "api.metrics_auth");
       }},
  };
  return table;
}

std::string where_of(std::string_view source, const toml::node& n) {
  std::string w(source);
  if (n.source().begin.line > 0) w += ":" + std::to_string(n.source().begin.line);
  return w;
}

// One [kinds.NAME] table.
KindConfig parse_kind(std::string_view name, const toml::node& node, std::string_view source) {
  const std::string prefix = "kinds." + std::string(name);
  const std::string where0 = where_of(source, node);
  const auto* table = node.as_table();
  if (!table) bad(where0, prefix, "expected a [" + prefix + "] table");
  try {
    validate_name("kind", name);
  } catch (const Error& e) {
    bad(where0, prefix, e.what());
  }
  if (name == "noop" || name == "sleep" || name == "fail")
    bad(where0, prefix, "'" + std::string(name) + "' is a built-in kind and cannot be redefined");
  KindConfig k;
  k.name = std::string(name);
  k.line = static_cast<int>(node.source().begin.line);
  for (const auto& [key_name, value] : *table) {
    const std::string key = prefix + "." + std::string(key_name.str());
    const std::string w = where_of(source, value);
    const std::string_view kn = key_name.str();
    if (kn == "exec") {
      const auto* arr = value.as_array();
      if (!arr || arr->empty()) bad(w, key, "must be a non-empty array of strings, e.g. [\"/usr/bin/convert\", \"-\"]");
      for (const auto& item : *arr) {
        if (!item.is_string()) bad(w, key, "must be an array of strings");
        k.exec.push_back(*item.value<std::string>());
      }
      if (k.exec.front().empty()) bad(w, key, "the program (first element) must not be empty");
    } else if (kn == "http") {
      HttpHandlerConfig h;
      bool has_url = false;
      for (const auto& [hk, hv] : get_table(value, w, key)) {
        const std::string sub = key + "." + std::string(hk.str());
        const std::string hw = where_of(source, hv);
        if (hk.str() == "url") {
          h.url = get_string(hv, hw, sub);
          if (h.url.rfind("https://", 0) == 0)
            bad(hw, sub, "only http:// URLs are supported (no TLS in the worker yet)");
          if (h.url.rfind("http://", 0) != 0 || h.url.size() <= 7)
            bad(hw, sub, "must be an http:// URL such as \"http://127.0.0.1:9000/hooks\"");
          has_url = true;
        } else if (hk.str() == "timeout") {
          h.timeout = get_duration(hv, hw, sub);
          if (h.timeout <= Duration{}) bad(hw, sub, "must be greater than 0");
        } else if (hk.str() == "headers") {
          h.headers = get_string_table(hv, hw, sub, false);
        } else {
          bad(hw, sub, "unknown key (http takes url, timeout, headers)");
        }
      }
      if (!has_url) bad(w, key, "needs a url");
      k.http = std::move(h);
    } else if (kn == "timeout") {
      k.timeout = get_duration(value, w, key);
      if (*k.timeout <= Duration{}) bad(w, key, "must be greater than 0");
    } else if (kn == "max_attempts") {
      k.max_attempts = static_cast<int>(get_int(value, w, key, 1, 1000));
    } else if (kn == "backoff") {
      if (value.is_string() && *value.value<std::string>() == "exponential") {
        k.backoff = BackoffConfig{};
      } else {
        const Duration d = get_duration(value, w, key);
        if (d <= Duration{}) bad(w, key, "must be \"exponential\" or a delay greater than 0");
        k.backoff = BackoffConfig{false, d};
      }
    } else if (kn == "kill_grace") {
      k.kill_grace = get_duration(value, w, key);
    } else if (kn == "env") {
      k.env = get_string_table(value, w, key, true);
    } else if (kn == "working_dir") {
      k.working_dir = get_string(value, w, key);
      if (k.working_dir->empty()) bad(w, key, "must not be empty");
    } else if (kn == "limits") {
      for (const auto& [lk, lv] : get_table(value, w, key)) {
        const std::string sub = key + "." + std::string(lk.str());
        const std::string lw = where_of(source, lv);
        if (lk.str() == "memory") {
          k.limits.memory_bytes = get_size(lv, lw, sub);
        } else if (lk.str() == "cpu") {
          const Duration d = get_duration(lv, lw, sub);
          if (d < std::chrono::seconds{1}) bad(lw, sub, "must be at least 1s");
          k.limits.cpu_seconds = static_cast<std::uint64_t>((d.count() + 999999) / 1000000);
        } else if (lk.str() == "open_files") {
          k.limits.open_files = static_cast<std::uint64_t>(get_int(lv, lw, sub, 1, 1048576));
        } else {
          bad(lw, sub, "unknown key (limits takes memory, cpu, open_files)");
        }
      }
    } else {
      bad(w, key, "unknown key (see man taskq.toml)");
    }
  }
  if (k.exec.empty() && !k.http) bad(where0, prefix, "needs exec = [...] or http = { url = ... }");
  if (!k.exec.empty() && k.http) bad(where0, prefix, "has both exec and http; choose one");
  return k;
}

boost::json::value toml_to_json(const toml::node& n) {
  if (const auto* t = n.as_table()) {
    boost::json::object o;
    for (const auto& [k, v] : *t) o[k.str()] = toml_to_json(v);
    return o;
  }
  if (const auto* a = n.as_array()) {
    boost::json::array arr;
    for (const auto& v : *a) arr.push_back(toml_to_json(v));
    return arr;
  }
  if (n.is_string()) return boost::json::value(*n.value<std::string>());
  if (n.is_integer()) return boost::json::value(*n.value<std::int64_t>());
  if (n.is_floating_point()) return boost::json::value(*n.value<double>());
  if (n.is_boolean()) return boost::json::value(*n.value<bool>());
  std::ostringstream text;  // dates and times: as TOML writes them (RFC 3339)
  n.visit([&](const auto& v) { text << v; });
  return boost::json::value(text.str());
}

// One [[scheduler.periodic]] entry. Cron text, zone and duplicate names are checked later
// (taskq-schedulerd), the job's limits too.
PeriodicConfig parse_periodic(const toml::node& node, std::size_t index, std::string_view source) {
  const std::string where0 = where_of(source, node);
  const std::string prefix = "scheduler.periodic[" + std::to_string(index) + "]";
  const auto* table = node.as_table();
  if (!table) bad(where0, prefix, "expected a [[scheduler.periodic]] table");
  PeriodicConfig p;
  p.line = static_cast<int>(node.source().begin.line);
  std::string label = prefix;
  if (const auto* name = table->get("name"); name && name->is_string())
    label = "scheduler.periodic '" + *name->value<std::string>() + "'";
  bool has_kind = false;
  for (const auto& [key_name, value] : *table) {
    const std::string_view kn = key_name.str();
    const std::string key = label + ": " + std::string(kn);
    const std::string w = where_of(source, value);
    if (kn == "name") {
      p.name = get_string(value, w, key);
      try {
        validate_name("schedule name", p.name);
      } catch (const Error& e) {
        bad(w, key, e.what());
      }
    } else if (kn == "cron") {
      p.cron = get_string(value, w, key);
    } else if (kn == "timezone") {
      p.timezone = get_string(value, w, key);
    } else if (kn == "kind") {
      p.job.kind = get_string(value, w, key);
      has_kind = true;
    } else if (kn == "args") {
      if (!value.is_table()) bad(w, key, "must be a table, e.g. { scope = \"all\" }");
      p.job.args = boost::json::serialize(toml_to_json(value));
    } else if (kn == "queue") {
      p.job.queue = get_string(value, w, key);
    } else if (kn == "priority") {
      p.job.priority = static_cast<int>(get_int(value, w, key, min_priority, max_priority));
    } else if (kn == "max_attempts") {
      p.job.max_attempts = static_cast<int>(get_int(value, w, key, 1, 1000000));
    } else if (kn == "timeout") {
      p.job.timeout = get_duration(value, w, key);
      if (*p.job.timeout <= Duration{}) bad(w, key, "must be greater than 0");
    } else if (kn == "tags") {
      const auto* arr = value.as_array();
      if (!arr) bad(w, key, "must be an array of strings");
      for (const auto& item : *arr) {
        if (!item.is_string()) bad(w, key, "must be an array of strings");
        p.job.tags.push_back(*item.value<std::string>());
      }
    } else {
      bad(w, key,
          "unknown key (a schedule takes name, cron, timezone, kind, args, queue, priority, max_attempts, timeout, "
          "tags)");
    }
  }
  if (p.name.empty()) bad(where0, label, "needs a name");
  if (p.cron.empty()) bad(where0, label, "needs cron = \"...\" (e.g. \"0 3 * * *\")");
  if (!has_kind) bad(where0, label, "needs a kind");
  return p;
}

// [api] tls = { cert = "...", key = "..." }
ApiTls parse_tls(const toml::node& node, const std::string& where) {
  ApiTls tls;
  for (const auto& [k, v] : get_table(node, where, "api.tls")) {
    const std::string key = "api.tls." + std::string(k.str());
    if (k.str() == "cert")
      tls.cert = get_string(v, where, key);
    else if (k.str() == "key")
      tls.key = get_string(v, where, key);
    else
      bad(where, key, "unknown key (tls takes cert and key)");
  }
  if (tls.cert.empty() || tls.key.empty()) bad(where, "api.tls", "needs both cert and key (PEM file paths)");
  return tls;
}

// One [[api.tokens]] entry.
ApiToken parse_token(const toml::node& node, std::size_t index, std::string_view source) {
  const std::string where0 = where_of(source, node);
  std::string label = "api.tokens[" + std::to_string(index) + "]";
  const auto* table = node.as_table();
  if (!table) bad(where0, label, "expected an [[api.tokens]] table");
  ApiToken t;
  t.line = static_cast<int>(node.source().begin.line);
  if (const auto* name = table->get("name"); name && name->is_string())
    label = "api.tokens '" + *name->value<std::string>() + "'";
  bool has_scopes = false;
  for (const auto& [k, v] : *table) {
    const std::string key = label + ": " + std::string(k.str());
    const std::string w = where_of(source, v);
    if (k.str() == "name") {
      t.name = get_string(v, w, key);
    } else if (k.str() == "sha256") {
      t.sha256 = get_string(v, w, key);
      for (char& ch : t.sha256)
        if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
      if (t.sha256.size() != 64 || t.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
        bad(w, key,
            "must be the 64 hex digits of the token's SHA-256 (printf %s \"$TOKEN\" | sha256sum), never the token "
            "itself");
    } else if (k.str() == "scopes") {
      const auto* arr = v.as_array();
      if (!arr) bad(w, key, "must be an array such as [\"enqueue\", \"read\"]");
      for (const auto& item : *arr) {
        const auto scope = item.value<std::string>();
        if (!item.is_string() || !scope || (*scope != "enqueue" && *scope != "read" && *scope != "admin"))
          bad(w, key, "scopes are enqueue, read and admin");
        t.scopes.push_back(*scope);
      }
      has_scopes = true;
    } else {
      bad(w, key, "unknown key (a token takes name, sha256, scopes)");
    }
  }
  if (t.name.empty()) bad(where0, label, "needs a name");
  if (t.sha256.empty()) bad(where0, label, "needs sha256");
  if (!has_scopes) bad(where0, label, "needs scopes, e.g. [\"enqueue\", \"read\"]");
  return t;
}

}  // namespace

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

const std::vector<ConfigKey>& api_table_keys() {
  static const std::vector<ConfigKey> keys = {
      {"api.tls", "table", "(none)",
       "Serve HTTPS: { cert = \"/etc/taskq/tls.crt\", key = \"/etc/taskq/tls.key\" } (PEM files). Without it, "
       "plain HTTP."},
      {"api.tokens.name", "string", "(required)", "The token's name, for logs."},
      {"api.tokens.sha256", "string", "(required)",
       "The token's SHA-256 as 64 hex digits; the token itself never appears in the config."},
      {"api.tokens.scopes", "array of strings", "(required)",
       "What it may do: enqueue (POST jobs), read (GET), admin (cancel, retry, pause, resume)."},
  };
  return keys;
}

namespace {}  // namespace

const std::vector<ConfigKey>& periodic_keys() {
  static const std::vector<ConfigKey> keys = {
      {"scheduler.periodic.name", "string", "(required)",
       "The schedule's name: unique, it names the schedule in logs, in `taskctl cron` and in each job's "
       "metadata.periodic."},
      {"scheduler.periodic.cron", "string", "(required)",
       "When it fires: 5 fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or "
       "@yearly, @monthly, @weekly, @daily, @hourly, @every DURATION (see man taskq-schedulerd)."},
      {"scheduler.periodic.timezone", "string", "\"UTC\"", "IANA time zone the expression is read in."},
      {"scheduler.periodic.kind", "string", "(required)", "Kind of the jobs it enqueues."},
      {"scheduler.periodic.args", "table", "{}", "Arguments of the jobs (a TOML table, stored as JSON)."},
      {"scheduler.periodic.queue", "string", "\"default\"", "Queue of the jobs."},
      {"scheduler.periodic.priority", "integer", "5", "Priority of the jobs (0 runs first, 9 last)."},
      {"scheduler.periodic.max_attempts", "integer", "25", "Attempts of each job."},
      {"scheduler.periodic.timeout", "duration", "(none)", "Timeout of each attempt."},
      {"scheduler.periodic.tags", "array of strings", "[]", "Tags of the jobs."},
  };
  return keys;
}

const std::vector<ConfigKey>& kind_keys() {
  static const std::vector<ConfigKey> keys = {
      {"kinds.NAME.exec", "array of strings", "(none)",
       "Program and arguments run for each job of the kind, one process per job (see man taskq-workerd). "
       "A kind has exec or http."},
      {"kinds.NAME.http", "table", "(none)",
       "POST each job to a URL: { url = \"http://...\", timeout = \"30s\", headers = { ... } }."},
      {"kinds.NAME.timeout", "duration", "(none)", "Longest one attempt may run; a job's own timeout wins."},
      {"kinds.NAME.max_attempts", "integer", "(none)",
       "Attempts (1 to 1000) for jobs enqueued with the default max_attempts (25); a job's own value wins."},
      {"kinds.NAME.backoff", "string or duration", "\"exponential\"",
       "Delay before a retry: exponential (attempt^4 seconds, +-10% jitter, at most 24h) or a fixed delay."},
      {"kinds.NAME.kill_grace", "duration", "\"10s\"", "Time between SIGTERM and SIGKILL when a job is stopped."},
      {"kinds.NAME.env", "table", "{}", "Environment variables added for the handler process."},
      {"kinds.NAME.working_dir", "string", "(the worker's)", "Working directory of the handler process."},
      {"kinds.NAME.limits", "table", "{}",
       "Resource limits of the handler process: memory (RLIMIT_AS), cpu (RLIMIT_CPU), open_files (RLIMIT_NOFILE)."},
  };
  return keys;
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& h : handlers()) out.push_back(h.key);
    return out;
  }();
  return keys;
}

Config parse_config(std::string_view toml_text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    throw Error(Errc::invalid_input, std::string(source_name) + ":" + std::to_string(e.source().begin.line) + ": " +
                                         std::string(e.description()));
  }
  Config config;
  config.source = std::string(source_name);
  for (const auto& [section, node] : root) {
    const std::string where = where_of(source_name, node);
    const auto* table = node.as_table();
    if (!table) bad(where, section.str(), "expected a [section] table");
    // [worker] and [kinds.*] belong to taskq-workerd: their errors are kept for
    // validate_worker_config(), so a typo there does not stop taskctl.
    const bool worker_section = section.str() == "worker" || section.str() == "kinds";
    // [scheduler] likewise belongs to taskq-schedulerd, [api] to taskq-apid.
    const bool scheduler_section = section.str() == "scheduler";
    const bool api_section = section.str() == "api";
    if (section.str() == "kinds") {
      for (const auto& [name, kind] : *table) {
        try {
          config.kinds[std::string(name.str())] = parse_kind(name.str(), kind, source_name);
        } catch (const Error& e) {
          config.worker_errors.emplace_back(e.what());
        }
      }
      continue;
    }
    for (const auto& [key, value] : *table) {
      const std::string full = std::string(section.str()) + "." + std::string(key.str());
      if (api_section && (key.str() == "tokens" || key.str() == "tls")) {
        try {
          if (key.str() == "tls") {
            config.api.tls = parse_tls(value, where_of(source_name, value));
          } else {
            const auto* entries = value.as_array();
            if (!entries)
              bad(where_of(source_name, value), "api.tokens", "write each token as an [[api.tokens]] table");
            std::size_t index = 0;
            for (const auto& entry : *entries) config.api.tokens.push_back(parse_token(entry, index++, source_name));
          }
        } catch (const Error& e) {
          config.api_errors.emplace_back(e.what());
        }
        continue;
      }
      if (scheduler_section && key.str() == "periodic") {
        const auto* entries = value.as_array();
        if (!entries) {
          config.scheduler_errors.push_back(
              where_of(source_name, value) +
              ": scheduler.periodic: write each schedule as a [[scheduler.periodic]] table");
          continue;
        }
        std::size_t index = 0;
        for (const auto& entry : *entries) {
          try {
            config.scheduler.periodic.push_back(parse_periodic(entry, index++, source_name));
          } catch (const Error& e) {
            config.scheduler_errors.emplace_back(e.what());
          }
        }
        continue;
      }
      const KeyHandler* handler = nullptr;
      for (const auto& h : handlers())
        if (h.key.name == full) handler = &h;
      try {
        if (!handler) {
          // Sections of other components are theirs to validate; only our own keys are checked.
          if (section.str() == "database" || section.str() == "log" || section.str() == "jobs" || worker_section ||
              scheduler_section || api_section)
            bad(where_of(source_name, value), full, "unknown key (see man taskq.toml)");
          continue;
        }
        handler->apply(config, value, where_of(source_name, value));
      } catch (const Error& e) {
        if (scheduler_section) {
          config.scheduler_errors.emplace_back(e.what());
          continue;
        }
        if (api_section) {
          config.api_errors.emplace_back(e.what());
          continue;
        }
        if (!worker_section) throw;
        config.worker_errors.emplace_back(e.what());
      }
    }
  }
  return config;
}

Config load_config_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(Errc::invalid_input, "config file " + path + ": does not exist");
  toml::table root;
  std::string text;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(Errc::invalid_input, "config file " + path + ": cannot be read");
    char buf[8192];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return parse_config(text, path);
}

std::optional<std::string> default_config_path() {
  std::error_code ec;
  const std::string p = "/etc/taskq/taskq.toml";
  if (std::filesystem::exists(p, ec)) return p;
  return std::nullopt;
}

void apply_env_overrides(Config& config) {
  if (const char* v = std::getenv("TASKQ_DATABASE_URL"); v && *v) config.database.url = v;
  if (const char* v = std::getenv("TASKQ_SCHEMA"); v && *v) config.database.schema = v;
  if (const char* v = std::getenv("TASKQ_LOG_LEVEL"); v && *v) {
    config.log.level = v;
    config.log_level_source = "environment variable TASKQ_LOG_LEVEL";
  }
}

bool never_passed_to_handlers(std::string_view name) {
  return name.substr(0, 2) == "PG" || name.substr(0, 6) == "TASKQ_";
}

void validate_schema_name(std::string_view schema) {
  auto fail = [&](const std::string& why) {
    throw Error(Errc::invalid_input, "schema '" + std::string(schema) + "': " + why);
  };
  if (schema.empty()) fail("must not be empty");
  if (schema.size() > 48) fail("longer than 48 bytes");
  if (schema[0] >= '0' && schema[0] <= '9') fail("must not start with a digit");
  for (char c : schema)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      fail("use only lower-case letters, digits and '_'");
}

void validate_config(const Config& config) {
  validate_schema_name(config.database.schema);
  const auto& level = config.log.level;
  if (level != "trace" && level != "debug" && level != "info" && level != "warn" && level != "error" && level != "off")
    throw Error(Errc::invalid_input,
                (config.log_level_source.empty() ? config.source + ": log.level" : config.log_level_source) + ": '" +
                    level + "' is not one of trace, debug, info, warn, error, off");
  if (config.log.format != "text" && config.log.format != "json")
    throw Error(Errc::invalid_input, config.source + ": log.format: '" + config.log.format + "' is not text or json");
  if (config.database.connect_timeout < std::chrono::seconds{1})
    throw Error(Errc::invalid_input, config.source + ": database.connect_timeout: must be at least 1s");
}

void validate_api_config(const Config& config) {
  std::vector<std::string> errors = config.api_errors;
  std::vector<std::string> names;
  for (const auto& t : config.api.tokens) {
    const std::string at =
        config.source + (t.line > 0 ? ":" + std::to_string(t.line) : "") + ": api.tokens '" + t.name + "'";
    for (const auto& n : names)
      if (n == t.name) errors.push_back(at + ": duplicate token name");
    names.push_back(t.name);
  }
  if (config.api.tokens.empty() && !config.api.insecure_no_auth && errors.empty())
    errors.push_back(config.source +
                     ": [api]: no [[api.tokens]] configured; add one (name, sha256, scopes) or set "
                     "insecure_no_auth = true to serve without authentication");
  if (!errors.empty()) {
    std::string all = errors.front();
    for (std::size_t i = 1; i < errors.size(); ++i) all += "\n" + errors[i];
    throw Error(Errc::invalid_input, all);
  }
}

void validate_worker_config(const Config& config) {
  if (!config.worker_errors.empty()) {
    std::string all = config.worker_errors.front();
    for (std::size_t i = 1; i < config.worker_errors.size(); ++i) all += "\n" + config.worker_errors[i];
    throw Error(Errc::invalid_input, all);
  }
  const auto where = config.source + ": ";
  if (config.worker.queues.empty())
    throw Error(Errc::invalid_input, where + "worker.queues: needs at least one queue, e.g. { default = 16 }");
  for (const auto& [name, limit] : config.worker.queues)
    if (limit < 1 || limit > 10000)
      throw Error(Errc::invalid_input, where + "worker.queues." + name + ": must be between 1 and 10000");
  if (config.worker.heartbeat_interval < std::chrono::milliseconds{100})
    throw Error(Errc::invalid_input, where + "worker.heartbeat_interval: must be at least 100ms");
  if (config.worker.poll_interval < std::chrono::milliseconds{10})
    throw Error(Errc::invalid_input, where + "worker.poll_interval: must be at least 10ms");
  if (config.worker.shutdown_timeout < Duration{})
    throw Error(Errc::invalid_input, where + "worker.shutdown_timeout: must not be negative");
  for (const auto& [name, k] : config.kinds) {
    const std::string at = config.source + (k.line > 0 ? ":" + std::to_string(k.line) : "") + ": kinds." + name;
    if (k.exec.empty() && !k.http)
      throw Error(Errc::invalid_input, at + ": needs exec = [...] or http = { url = ... }");
    if (!k.exec.empty() && k.http) throw Error(Errc::invalid_input, at + ": has both exec and http; choose one");
  }
}

}  // namespace taskq
