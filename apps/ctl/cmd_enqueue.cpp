// taskctl enqueue KIND [ARGS_JSON] [options] | enqueue --file PATH|-
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/json.hpp"
#include "taskq/core/trace.hpp"

namespace taskq::ctl {
namespace {

struct EnqueueOptions {
  std::string kind;
  std::string args;
  std::string file;
  std::optional<std::string> queue;  // optional: an empty value given on purpose is an error, not a default
  int priority = default_priority;
  std::optional<std::string> run_at;
  std::optional<std::string> in;
  int max_attempts = default_max_attempts;
  std::optional<std::string> timeout;
  std::optional<std::string> unique_key;
  std::vector<std::string> tags;
  std::vector<std::string> meta;
  std::optional<std::string> traceparent;
  std::optional<std::string> tracestate;
};

EnqueueParams build_params(const EnqueueOptions& o) {
  EnqueueParams p;
  p.kind = o.kind;
  if (!o.args.empty()) p.args = o.args;
  if (o.queue) p.queue = *o.queue;
  p.priority = o.priority;
  if (o.run_at && o.in) throw Error(Errc::invalid_input, "--run-at and --in: give one, not both");
  if (o.run_at) p.run_at = parse_rfc3339(*o.run_at);
  if (o.in) p.delay = parse_duration(*o.in);
  p.max_attempts = o.max_attempts;
  if (o.timeout) p.timeout = parse_duration(*o.timeout);
  p.unique_key = o.unique_key;
  p.tags = o.tags;
  if (!o.meta.empty()) {
    boost::json::object m;
    for (const auto& kv : o.meta) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error(Errc::invalid_input, "--meta '" + kv + "': expected KEY=VALUE");
      m[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    p.metadata = boost::json::serialize(m);
  }
  // The flags are checked by validate_enqueue: a malformed value is bad input (exit 2). Without
  // them, the TRACEPARENT (and TRACESTATE) of the environment -- what a worker gives its exec
  // handlers -- is taken when valid and ignored otherwise, like a header.
  p.traceparent = o.traceparent;
  p.tracestate = o.tracestate;
  const char* env_parent = std::getenv("TRACEPARENT");
  if (!o.traceparent && !o.tracestate && env_parent)
    if (const auto t = parse_traceparent(env_parent)) {
      p.traceparent = format_traceparent(*t);
      const char* env_state = std::getenv("TRACESTATE");
      if (env_state && *env_state && tracestate_error(env_state).empty()) p.tracestate = env_state;
    }
  return p;
}

int run_single(Context& ctx, const EnqueueOptions& o) {
  const EnqueueParams params = build_params(o);
  // Validate before connecting, so bad input is exit 2 even when the database is down.
  validate_enqueue(params, EnqueueLimits{ctx.config().jobs.max_args_bytes});
  const EnqueueResult r = ctx.client().enqueue(params);
  if (ctx.output() == OutputFormat::table) {
    std::cout << r.job.id << '\n';
  } else {
    auto obj = job_to_json(r.job);
    obj["duplicate"] = r.duplicate;
    print_json(obj);
  }
  if (r.duplicate)
    ctx.note("job " + std::to_string(r.job.id) + " already exists with unique key '" + *params.unique_key +
             "' (state " + to_string(r.job.state) + "); nothing new was enqueued");
  return exit_ok;
}

int run_file(Context& ctx, const EnqueueOptions& o) {
  std::ifstream file;
  std::istream* in = &std::cin;
  std::string source = "stdin";
  if (o.file != "-") {
    file.open(o.file, std::ios::binary);
    if (!file) throw Error(Errc::invalid_input, "--file " + o.file + ": cannot be opened");
    in = &file;
    source = o.file;
  }
  std::ios::sync_with_stdio(false);
  static char buffer[1 << 16];
  in->rdbuf()->pubsetbuf(buffer, sizeof buffer);
  auto& client = ctx.client();
  const auto start = std::chrono::steady_clock::now();
  const auto r = client.enqueue_jsonl(*in, source);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = secs > 0 ? static_cast<double>(r.inserted) / secs : 0;
  if (ctx.output() == OutputFormat::table) {
    std::cout << r.inserted << " jobs enqueued";
    if (r.duplicates) std::cout << ", " << r.duplicates << " duplicates skipped";
    std::cout << " in " << fixed(secs, 3) << " s (" << static_cast<long long>(rate) << " jobs/s)\n";
  } else {
    print_json(boost::json::object{{"inserted", r.inserted},
                                   {"duplicates", r.duplicates},
                                   {"elapsed_ms", static_cast<std::int64_t>(secs * 1000)},
                                   {"jobs_per_second", static_cast<long long>(rate)}});
  }
  return exit_ok;
}

}  // namespace

void add_enqueue(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<EnqueueOptions>();
  auto* cmd = app.add_subcommand("enqueue", "Add a job, or a stream of jobs from JSON Lines (--file)");
  cmd->add_option("kind", o->kind, "Job kind: selects the handler that runs it");
  cmd->add_option("args", o->args, "Job arguments as JSON (default {})");
  auto* file = cmd->add_option("-f,--file", o->file,
                               "Read jobs from a JSON Lines file ('-' for stdin): one object per line with kind, "
                               "args and optionally queue, priority, run_at, in, max_attempts, timeout, unique_key, "
                               "tags, metadata, traceparent, tracestate. All or nothing.");
  cmd->add_option("--queue", o->queue, "Queue (default: default)");
  cmd->add_option("--priority", o->priority, "0 (runs first) to 9 (default 5)");
  cmd->add_option("--run-at", o->run_at, "Run at this RFC 3339 time, e.g. 2026-11-23T18:00:00Z");
  cmd->add_option("--in", o->in, "Run after this delay, e.g. 30s, 5m, 1h30m");
  cmd->add_option("--max-attempts", o->max_attempts, "Attempts before the job fails for good (default 25)");
  cmd->add_option("--timeout", o->timeout, "Longest one run may take, e.g. 10m (default: no limit set on the job)");
  cmd->add_option("--unique-key", o->unique_key,
                  "Idempotency key: while a job with this key is not cancelled or failed, enqueueing again returns "
                  "it instead of adding another");
  cmd->add_option("--tag", o->tags, "Tag (repeatable: --tag a --tag b)")->allow_extra_args(false);
  cmd->add_option("--meta", o->meta, "Metadata KEY=VALUE (repeatable)")->allow_extra_args(false);
  cmd->add_option("--traceparent", o->traceparent,
                  "W3C traceparent the job continues (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>); "
                  "default: the environment's TRACEPARENT when valid, else a new trace");
  cmd->add_option("--tracestate", o->tracestate, "W3C tracestate that goes with --traceparent, kept verbatim");
  cmd->footer(
      "Examples:\n"
      "  taskctl enqueue email.send '{\"to\":\"ada@example.com\"}' --queue mail --priority 1\n"
      "  taskctl enqueue report.build --in 10m --unique-key report-2026-11-23 --tag nightly\n"
      "  printf '%s\\n' '{\"kind\":\"resize\",\"args\":{\"id\":1}}' | taskctl enqueue --file -\n"
      "Prints the new job's id (with -o json, the whole job).");
  cmd->callback([&ctx, o, file, cmd] {
    ctx.action = [&ctx, o, file, cmd] {
      if (file->count() > 0) {
        for (const char* single : {"kind", "args", "--queue", "--priority", "--run-at", "--in", "--max-attempts",
                                   "--timeout", "--unique-key", "--tag", "--meta", "--traceparent", "--tracestate"})
          if (cmd->get_option(single)->count() > 0)
            throw Error(Errc::invalid_input, std::string("--file: ") + single +
                                                 " cannot be combined with --file (put it in each JSON line)");
        return run_file(ctx, *o);
      }
      if (o->kind.empty()) throw Error(Errc::invalid_input, "enqueue: KIND is required (or --file)");
      return run_single(ctx, *o);
    };
  });
}

}  // namespace taskq::ctl
