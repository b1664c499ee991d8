// [scheduler] and its [[scheduler.periodic]] entries: taskq-schedulerd's section. Its errors are
// kept in Config::scheduler_errors (see config.cpp) for scheduler::validate_config.
#include <boost/json.hpp>
#include <sstream>
#include <string>

#include "config_parse.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/job.hpp"

namespace taskq::config {

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

namespace parsing {

KeyHandlers scheduler_handlers() {
  return {
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
      {{"scheduler.metrics_listen", "string", "\"\"",
        "Where taskq-schedulerd serves GET /metrics (Prometheus text format): HOST:PORT or [IPV6]:PORT, e.g. "
        "\"127.0.0.1:9466\". Empty: no metrics are kept or served."},
       [](Config& c, const toml::node& n, const std::string& w) {
         const auto s = get_string(n, w, "scheduler.metrics_listen");
         c.scheduler.metrics_listen = s.empty() ? s : get_listen_address(n, w, "scheduler.metrics_listen");
       }},
  };
}

namespace {

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

}  // namespace

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

}  // namespace parsing
}  // namespace taskq::config
