#include "handler_env.hpp"

#include "taskq/config/config.hpp"

using taskq::config::never_passed_to_handlers;

namespace taskq::worker {
namespace {

bool in_base(std::string_view name) {
  static constexpr std::string_view names[] = {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER"};
  for (const auto n : names)
    if (name == n) return true;
  return name.size() > 3 && name.substr(0, 3) == "LC_";
}

// Replaces the value of `name`, or appends it: a later layer wins over an earlier one.
void set(EnvList& env, std::string_view name, std::string value) {
  for (auto& [n, v] : env)
    if (n == name) {
      v = std::move(value);
      return;
    }
  env.emplace_back(std::string(name), std::move(value));
}

}  // namespace

EnvList env_from_strings(char** strings) {
  EnvList out;
  for (char** e = strings; e && *e; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    out.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

EnvList inherited_handler_env(const EnvList& worker_env, const std::vector<std::string>& pass_env) {
  EnvList out;
  auto listed = [&](const std::string& name) {
    for (const auto& p : pass_env)
      if (p == name) return true;
    return false;
  };
  for (const auto& [name, value] : worker_env) {
    if (never_passed_to_handlers(name)) continue;
    if (in_base(name) || listed(name)) set(out, name, value);
  }
  bool has_path = false;
  for (const auto& [name, value] : out) has_path = has_path || name == "PATH";
  if (!has_path) out.emplace(out.begin(), "PATH", std::string(default_handler_path));
  return out;
}

EnvList handler_env(const EnvList& inherited, const EnvList& kind_env, const Job& job, int max_attempts,
                    const AttemptTrace& trace) {
  EnvList env = inherited;
  for (const auto& [name, value] : kind_env) set(env, name, value);
  set(env, "TASKQ_JOB_ID", std::to_string(job.id));
  set(env, "TASKQ_JOB_KIND", job.kind);
  set(env, "TASKQ_JOB_QUEUE", job.queue);
  set(env, "TASKQ_JOB_ATTEMPT", std::to_string(job.attempt));
  set(env, "TASKQ_JOB_MAX_ATTEMPTS", std::to_string(max_attempts));
  set(env, "TRACEPARENT", trace.traceparent);
  if (trace.tracestate)
    set(env, "TRACESTATE", *trace.tracestate);
  else
    std::erase_if(env, [](const auto& kv) { return kv.first == "TRACESTATE"; });
  return env;
}

}  // namespace taskq::worker
