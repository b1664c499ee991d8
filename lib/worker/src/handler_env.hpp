#pragma once
// The environment of an exec handler, built from nothing rather than copied from the worker:
//
//   1. a small base taken from the worker's environment when present: PATH, HOME, LANG, LC_*,
//      TZ, TMPDIR, USER (PATH defaults to default_handler_path when the worker has none);
//   2. the variables named in worker.pass_env, when the worker has them;
//   3. the kind's own variables (kinds.NAME.env), which replace earlier ones of the same name;
//   4. TASKQ_JOB_ID, TASKQ_JOB_KIND, TASKQ_JOB_QUEUE, TASKQ_JOB_ATTEMPT, TASKQ_JOB_MAX_ATTEMPTS,
//      TRACEPARENT (the attempt's span, W3C) and TRACESTATE (when the job has one; otherwise
//      removed), which nothing can replace.
//
// Invariant: nothing else of the worker's environment reaches a handler. In particular its
// database settings (PG* variables such as PGPASSWORD or PGHOST) and its TASKQ_* variables
// (TASKQ_DATABASE_URL) are never passed, even when listed in worker.pass_env (the config refuses
// such a listing; see never_passed_to_handlers).
// Pure: the worker's environment comes in as a list.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "taskq/core/job.hpp"
#include "taskq/worker/handler.hpp"

namespace taskq::worker {

using EnvList = std::vector<std::pair<std::string, std::string>>;

/// PATH of a handler when the worker has none.
inline constexpr std::string_view default_handler_path = "/usr/local/bin:/usr/bin:/bin";

/// "NAME=value" strings (such as `environ`) as a list; entries without '=' are skipped.
EnvList env_from_strings(char** strings);

/// Steps 1 and 2, computed once when the worker starts: the part of the worker's environment a
/// handler gets.
EnvList inherited_handler_env(const EnvList& worker_env, const std::vector<std::string>& pass_env);

/// The whole environment of one attempt of `job`: `inherited`, then `kind_env`, then TASKQ_JOB_*
/// and the attempt's trace context.
EnvList handler_env(const EnvList& inherited, const EnvList& kind_env, const Job& job, int max_attempts,
                    const AttemptTrace& trace);

}  // namespace taskq::worker
