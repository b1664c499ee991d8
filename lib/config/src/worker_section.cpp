// [worker] and [kinds.NAME]: taskq-workerd's sections. Their errors are kept in
// Config::worker_errors (see config.cpp), so a typo there does not stop the other programs.
#include <map>
#include <string>

#include "config_parse.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/job.hpp"

namespace taskq::config {

bool never_passed_to_handlers(std::string_view name) {
  return name.substr(0, 2) == "PG" || name.substr(0, 6) == "TASKQ_";
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

namespace parsing {

KeyHandlers worker_handlers() {
  return {
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
      {{"worker.metrics_listen", "string", "\"\"",
        "Where taskq-workerd serves GET /metrics (Prometheus text format): HOST:PORT or [IPV6]:PORT, e.g. "
        "\"127.0.0.1:9465\". Empty: no metrics are kept or served. Give each worker on a host its own port."},
       [](Config& c, const toml::node& n, const std::string& w) {
         const auto s = get_string(n, w, "worker.metrics_listen");
         c.worker.metrics_listen = s.empty() ? s : get_listen_address(n, w, "worker.metrics_listen");
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
  };
}

namespace {

// kinds.NAME.exec = ["program", "arg", ...]
std::vector<std::string> get_exec(const toml::node& value, const std::string& w, const std::string& key) {
  const auto* arr = value.as_array();
  if (!arr || arr->empty()) bad(w, key, "must be a non-empty array of strings, e.g. [\"/usr/bin/convert\", \"-\"]");
  std::vector<std::string> exec;
  for (const auto& item : *arr) {
    if (!item.is_string()) bad(w, key, "must be an array of strings");
    exec.push_back(*item.value<std::string>());
  }
  if (exec.front().empty()) bad(w, key, "the program (first element) must not be empty");
  return exec;
}

// kinds.NAME.http = { url = "http://...", timeout = "30s", headers = { ... } }
HttpHandlerConfig get_http(const toml::node& value, const std::string& w, const std::string& key,
                           std::string_view source) {
  HttpHandlerConfig h;
  bool has_url = false;
  for (const auto& [hk, hv] : get_table(value, w, key)) {
    const std::string sub = key + "." + std::string(hk.str());
    const std::string hw = where_of(source, hv);
    if (hk.str() == "url") {
      h.url = get_string(hv, hw, sub);
      if (h.url.rfind("https://", 0) == 0) bad(hw, sub, "only http:// URLs are supported (no TLS in the worker yet)");
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
  return h;
}

// kinds.NAME.backoff = "exponential" or a fixed delay.
BackoffConfig get_backoff(const toml::node& value, const std::string& w, const std::string& key) {
  if (value.is_string() && *value.value<std::string>() == "exponential") return BackoffConfig{};
  const Duration d = get_duration(value, w, key);
  if (d <= Duration{}) bad(w, key, "must be \"exponential\" or a delay greater than 0");
  return BackoffConfig{false, d};
}

// kinds.NAME.limits = { memory = "512MiB", cpu = "10m", open_files = 1024 }
ResourceLimits get_limits(const toml::node& value, const std::string& w, const std::string& key,
                          std::string_view source) {
  ResourceLimits limits;
  for (const auto& [lk, lv] : get_table(value, w, key)) {
    const std::string sub = key + "." + std::string(lk.str());
    const std::string lw = where_of(source, lv);
    if (lk.str() == "memory") {
      limits.memory_bytes = get_size(lv, lw, sub);
    } else if (lk.str() == "cpu") {
      const Duration d = get_duration(lv, lw, sub);
      if (d < std::chrono::seconds{1}) bad(lw, sub, "must be at least 1s");
      limits.cpu_seconds = static_cast<std::uint64_t>((d.count() + 999999) / 1000000);
    } else if (lk.str() == "open_files") {
      limits.open_files = static_cast<std::uint64_t>(get_int(lv, lw, sub, 1, 1048576));
    } else {
      bad(lw, sub, "unknown key (limits takes memory, cpu, open_files)");
    }
  }
  return limits;
}

// One key of a [kinds.NAME] table into `k`.
void apply_kind_key(KindConfig& k, std::string_view kn, const toml::node& value, const std::string& key,
                    const std::string& w, std::string_view source) {
  if (kn == "exec") {
    k.exec = get_exec(value, w, key);
  } else if (kn == "http") {
    k.http = get_http(value, w, key, source);
  } else if (kn == "timeout") {
    k.timeout = get_duration(value, w, key);
    if (*k.timeout <= Duration{}) bad(w, key, "must be greater than 0");
  } else if (kn == "max_attempts") {
    k.max_attempts = static_cast<int>(get_int(value, w, key, 1, 1000));
  } else if (kn == "backoff") {
    k.backoff = get_backoff(value, w, key);
  } else if (kn == "kill_grace") {
    k.kill_grace = get_duration(value, w, key);
  } else if (kn == "env") {
    k.env = get_string_table(value, w, key, true);
  } else if (kn == "working_dir") {
    k.working_dir = get_string(value, w, key);
    if (k.working_dir->empty()) bad(w, key, "must not be empty");
  } else if (kn == "limits") {
    k.limits = get_limits(value, w, key, source);
  } else {
    bad(w, key, "unknown key (see man taskq.toml)");
  }
}

}  // namespace

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
    apply_kind_key(k, key_name.str(), value, key, where_of(source, value), source);
  }
  if (k.exec.empty() && !k.http) bad(where0, prefix, "needs exec = [...] or http = { url = ... }");
  if (!k.exec.empty() && k.http) bad(where0, prefix, "has both exec and http; choose one");
  return k;
}

}  // namespace parsing
}  // namespace taskq::config
