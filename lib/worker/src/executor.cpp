#include "executor.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "backoff.hpp"
#include "exec_pipes.hpp"
#include "exec_protocol.hpp"
#include "handler_env.hpp"
#include "http_call.hpp"
#include "job_trace.hpp"
#include "run_outcome.hpp"
#include "run_output.hpp"
#include "subprocess.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/time.hpp"
#include "taskq/core/utf8.hpp"
#include "thread_pool.hpp"

using taskq::config::BackoffConfig;
using taskq::config::KindConfig;

using taskq::store::Outcome;

extern char** environ;

namespace taskq::worker {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

std::string json_string(std::string_view s) {
  return boost::json::serialize(boost::json::value(boost::json::string(s)));
}

}  // namespace

// One running job. Shared by the async operations working on it; `done` makes finishing happen
// exactly once whichever of exit, timeout, cancel or shutdown comes first.
struct Run {
  explicit Run(asio::io_context& io, Job j)
      : job(std::move(j)), timeout_timer(io), kill_timer(io), sleep_timer(io), pidfd(io), in(io), progress_timer(io) {}
  Job job;
  AttemptTrace trace;  // this attempt's span (job_trace.hpp)
  std::int64_t started_ns = steady_ns();
  std::shared_ptr<const KindConfig> kind;  // null for built-ins and in-process handlers
  int max_attempts = 0;                    // effective
  bool max_attempts_from_kind = false;
  StopReason stop = StopReason::none;
  bool done = false;
  Duration timeout{};
  asio::steady_timer timeout_timer, kill_timer, sleep_timer;
  // exec
  pid_t pid = -1;
  asio::posix::stream_descriptor pidfd, in;
  std::string stdin_data;
  std::shared_ptr<ExecPipes> pipes;  // stdout, stderr, fd 3
  // progress, from any thread (in-process handlers report from theirs): the latest report waits
  // here until the loop writes it (at most one write per progress_interval).
  struct PendingProgress {
    int percent = 0;
    std::string message;
    Timestamp at{};
  };
  std::mutex progress_mu;
  std::optional<PendingProgress> progress;                // guarded by progress_mu
  bool progress_posted = false;                           // guarded by progress_mu: a delivery is on its way
  std::chrono::steady_clock::time_point progress_next{};  // loop thread
  asio::steady_timer progress_timer;
  // http
  std::shared_ptr<HttpCall> http;
  // in-process
  std::stop_source stop_source;
  bool in_process = false;
};

struct Executor::Impl {
  Impl(Executor& owner, ExecutorOptions o, ExecutorCallbacks c)
      : self(owner),
        callbacks(std::move(c)),
        config_source(std::move(o.config_source)),
        in_process(std::move(o.in_process)) {
    set_kinds(std::move(o.kinds));
    inherited_env = inherited_handler_env(env_from_strings(environ), o.pass_env);
  }

  Executor& self;
  ExecutorCallbacks callbacks;
  std::string config_source;
  std::map<std::string, InProcessHandler> in_process;
  std::map<std::string, std::shared_ptr<const KindConfig>> kinds;  // loop thread only
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::jthread thread;  // runs io; ended by shutdown() (io.stop(), then join), not by a stop request
  // Live runs by (job id, attempt): a job claimed again while an earlier run of it lives here
  // has two entries until the earlier one is stopped. Loop thread only; `live` mirrors the keys
  // for other threads (Executor::live_runs).
  std::map<std::pair<JobId, int>, std::shared_ptr<Run>> runs;
  mutable std::mutex live_mu;
  std::set<std::pair<JobId, int>> live;
  std::mt19937_64 rng{std::random_device{}()};
  std::array<char, 65536> scratch{};  // read buffer shared by every pipe (one thread)
  std::unique_ptr<ThreadPool> pool;
  EnvList inherited_env;  // what handlers get of the worker's environment (handler_env.hpp)

  void set_kinds(std::map<std::string, KindConfig> k) {
    kinds.clear();
    for (auto& [name, cfg] : k) kinds.emplace(name, std::make_shared<const KindConfig>(std::move(cfg)));
  }

  // ------------------------------------------------------------------------------------------
  // Start

  void start_job(Job job) {
    const auto& kind = job.kind;
    // Fast path for the cheapest built-in: no bookkeeping beyond the outcome.
    if (kind == "noop" && !in_process.count(kind)) {
      Outcome o;
      o.id = job.id;
      o.attempt = job.attempt;
      o.kind = Outcome::Kind::completed;
      self.running_.fetch_sub(1, std::memory_order_acq_rel);
      if (callbacks.ran) callbacks.ran(job, Duration{});
      callbacks.finished(job, std::move(o), Timestamp{});
      return;
    }
    auto run = std::make_shared<Run>(io, std::move(job));
    run->trace = begin_attempt(run->job);
    auto kit = kinds.find(run->job.kind);
    if (kit != kinds.end()) run->kind = kit->second;
    const auto& j = run->job;
    run->max_attempts = j.max_attempts;
    if (run->kind && run->kind->max_attempts && j.max_attempts == default_max_attempts) {
      run->max_attempts = *run->kind->max_attempts;
      run->max_attempts_from_kind = true;
    }
    if (j.timeout)
      run->timeout = *j.timeout;
    else if (run->kind && run->kind->timeout)
      run->timeout = *run->kind->timeout;
    stop_earlier_runs(j);
    add_run(run);
    spdlog::debug("{} started, attempt {}/{} (span {})", job_label(j), j.attempt, run->max_attempts,
                  run->trace.span_id);

    if (auto h = in_process.find(j.kind); h != in_process.end()) {
      start_in_process(run, h->second);
    } else if (j.kind == "sleep" && !run->kind) {
      start_sleep(run);
    } else if (j.kind == "fail" && !run->kind) {
      HandlerResult r;
      r.kind = HandlerResult::Kind::retry;
      r.message = "failed on purpose";
      if (auto v = parse_args(j.args); v && v->is_object())
        if (const auto* m = v->as_object().if_contains("message"); m && m->is_string())
          r.message = std::string(m->get_string());
      finish(run, std::move(r));
      return;
    } else if (run->kind && !run->kind->exec.empty()) {
      start_exec(run);
    } else if (run->kind && run->kind->http) {
      start_http(run);
    } else {
      HandlerResult r;
      r.kind = HandlerResult::Kind::failed;
      r.message = "no handler for kind '" + j.kind + "': add a [kinds." + j.kind + "] section to " + config_source;
      if (callbacks.start_failed) callbacks.start_failed(j);
      finish(run, std::move(r));
      return;
    }
    arm_timeout(run);
  }

  void add_run(const std::shared_ptr<Run>& run) {
    const std::pair key{run->job.id, run->job.attempt};
    runs[key] = run;
    std::lock_guard lock(live_mu);
    live.insert(key);
  }

  void remove_run(const std::shared_ptr<Run>& run) {
    const std::pair key{run->job.id, run->job.attempt};
    auto it = runs.find(key);
    if (it == runs.end() || it->second != run) return;
    runs.erase(it);
    std::lock_guard lock(live_mu);
    live.erase(key);
  }

  // The runs of a job, any attempt.
  std::vector<std::shared_ptr<Run>> runs_of(JobId id) const {
    std::vector<std::shared_ptr<Run>> out;
    for (auto it = runs.lower_bound({id, INT_MIN}); it != runs.end() && it->first.first == id; ++it)
      out.push_back(it->second);
    return out;
  }

  // A job claimed again while an earlier run of it still lives here (it was rescued away from
  // this worker, say after a freeze, and came back): the earlier run is no longer the job's.
  void stop_earlier_runs(const Job& j) {
    for (const auto& old : runs_of(j.id)) {
      spdlog::warn("{} was claimed again (attempt {}) while its attempt {} still runs here; stopping that run",
                   job_label(j), j.attempt, old->job.attempt);
      stop_run(old, StopReason::lost);
    }
  }

  static std::optional<boost::json::value> parse_args(const std::string& text) {
    error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) return std::nullopt;
    return v;
  }

  void arm_timeout(const std::shared_ptr<Run>& run) {
    if (run->done || run->timeout <= Duration{}) return;
    run->timeout_timer.expires_after(run->timeout);
    run->timeout_timer.async_wait([this, run](error_code ec) {
      if (ec || run->done) return;
      spdlog::warn("{} timed out after {}; stopping it", job_label(run->job), format_duration(run->timeout));
      stop_run(run, StopReason::timeout);
    });
  }

  void start_sleep(const std::shared_ptr<Run>& run) {
    std::int64_t ms = -1;
    if (auto v = parse_args(run->job.args); v && v->is_object())
      if (const auto* m = v->as_object().if_contains("ms"); m && (m->is_int64() || m->is_uint64()))
        ms = m->to_number<std::int64_t>();
    if (ms < 0) {
      HandlerResult r;
      r.kind = HandlerResult::Kind::failed;
      r.message = "sleep: args must be {\"ms\": N} with N a non-negative integer";
      finish(run, std::move(r));
      return;
    }
    run->sleep_timer.expires_after(std::chrono::milliseconds{ms});
    run->sleep_timer.async_wait([this, run](error_code ec) {
      HandlerResult r;
      if (ec) {
        r.kind = HandlerResult::Kind::retry;
        r.message = "sleep interrupted";
      }
      finish(run, std::move(r));
    });
  }

  void start_in_process(const std::shared_ptr<Run>& run, const InProcessHandler& handler) {
    run->in_process = true;
    if (!pool) pool = std::make_unique<ThreadPool>();
    auto token = run->stop_source.get_token();
    pool->run([this, run, handler, token] {
      HandlerResult r;
      try {
        JobContext ctx{run->job, token,
                       [this, run](int percent, const std::string& message) { report_progress(run, percent, message); },
                       run->trace};
        r = handler(ctx);
      } catch (const std::exception& e) {
        r.kind = HandlerResult::Kind::retry;
        r.message = e.what();
      } catch (...) {
        r.kind = HandlerResult::Kind::retry;
        r.message = "handler threw a non-standard exception";
      }
      asio::post(io, [this, run, r = std::move(r)]() mutable { finish(run, std::move(r)); });
    });
  }

  // From any thread. Keeps the latest report; the loop writes it (deliver_progress).
  void report_progress(const std::shared_ptr<Run>& run, int percent, std::string_view message) {
    {
      std::lock_guard lock(run->progress_mu);
      run->progress = Run::PendingProgress{percent, std::string(utf8_head(message, max_progress_message_bytes)),
                                           SystemClock{}.now()};
      if (run->progress_posted) return;
      run->progress_posted = true;
    }
    asio::dispatch(io, [this, run] { deliver_progress(run); });
  }

  // On the loop: writes the latest progress now, or when the job's interval has passed.
  void deliver_progress(const std::shared_ptr<Run>& run) {
    if (run->done) return;  // finish() wrote the last one
    const auto now = std::chrono::steady_clock::now();
    if (now < run->progress_next) {
      run->progress_timer.expires_at(run->progress_next);
      run->progress_timer.async_wait([this, run](error_code ec) {
        if (!ec) deliver_progress(run);
      });
      return;
    }
    run->progress_next = now + progress_interval;
    send_progress(run);
  }

  void send_progress(const std::shared_ptr<Run>& run) {
    std::optional<Run::PendingProgress> p;
    {
      std::lock_guard lock(run->progress_mu);
      p.swap(run->progress);
      run->progress_posted = false;
    }
    if (p) callbacks.progress(run->job, {run->job.id, run->job.attempt, progress_json(p->percent, p->message, p->at)});
  }

  void start_http(const std::shared_ptr<Run>& run) {
    const auto& j = run->job;
    std::string body = "{\"id\":" + std::to_string(j.id) + ",\"kind\":" + json_string(j.kind) +
                       ",\"queue\":" + json_string(j.queue) + ",\"attempt\":" + std::to_string(j.attempt) +
                       ",\"args\":" + j.args + "}";
    run->http = start_http_call(
        io, *run->kind->http, std::move(body), [this, run](HandlerResult r) { finish(run, std::move(r)); }, run->trace);
  }

  // ------------------------------------------------------------------------------------------
  // exec

  void start_exec(const std::shared_ptr<Run>& run) {
    const auto& j = run->job;
    const auto& k = *run->kind;
    SpawnOptions opts;
    opts.argv = k.exec;
    opts.env = handler_env(inherited_env, k.env, j, run->max_attempts, run->trace);
    opts.working_dir = k.working_dir;
    opts.limits = k.limits;
    SpawnedProcess p;
    try {
      p = spawn_process(opts);
    } catch (const std::exception& e) {
      HandlerResult r;
      r.kind = HandlerResult::Kind::retry;
      r.message = e.what();
      if (callbacks.start_failed) callbacks.start_failed(j);
      finish(run, std::move(r));
      return;
    }
    run->pid = p.pid;
    run->pidfd.assign(p.pidfd.release());
    run->in.assign(p.stdin_w.release());
    run->pipes = std::make_shared<ExecPipes>(io, scratch, job_label(j),
                                             [this, weak = std::weak_ptr<Run>(run)](int percent, std::string_view msg) {
                                               if (auto r = weak.lock()) report_progress(r, percent, msg);
                                             });
    run->pipes->start(std::move(p.stdout_r), std::move(p.stderr_r), std::move(p.side_r));
    spdlog::debug("{} runs as pid {}", job_label(j), run->pid);

    run->stdin_data = j.args;
    asio::async_write(run->in, asio::buffer(run->stdin_data), [run](error_code, std::size_t) {
      error_code ignored;
      run->in.close(ignored);  // EOF for the handler; EPIPE (it did not read) is fine
    });
    run->pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [this, run](error_code ec) {
      if (!ec) on_exit(run);
    });
  }

  void on_exit(const std::shared_ptr<Run>& run) {
    auto status = try_reap(run->pid);
    if (!status) {  // spurious wake-up
      run->pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [this, run](error_code ec) {
        if (!ec) on_exit(run);
      });
      return;
    }
    run->pipes->finish();
    close_all(run);
    // Whatever the handler left behind in its process group goes with it.
    signal_group(run->pid, SIGKILL);

    ExecFacts facts;
    facts.status = *status;
    run->pipes->fill(facts);
    finish(run, classify_exit(facts));
  }

  static void close_all(const std::shared_ptr<Run>& run) {
    error_code ignored;
    run->in.close(ignored);
    if (run->pipes) run->pipes->close();
    run->pidfd.close(ignored);
  }

  // ------------------------------------------------------------------------------------------
  // Stop: timeout, cancel, shutdown

  void stop_run(const std::shared_ptr<Run>& run, StopReason reason) {
    if (run->done) return;
    if (run->stop == StopReason::none) run->stop = reason;
    if (run->pid > 0) {
      signal_group(run->pid, SIGTERM);
      const Duration grace = run->kind ? run->kind->kill_grace : Duration{std::chrono::seconds{10}};
      run->kill_timer.expires_after(grace);
      run->kill_timer.async_wait([run](error_code ec) {
        if (ec || run->done) return;
        if (run->pipes->log().take())
          spdlog::warn("{} did not stop within {} of SIGTERM; sending SIGKILL", job_label(run->job),
                       format_duration(run->kind ? run->kind->kill_grace : Duration{}));
        signal_group(run->pid, SIGKILL);
      });
    } else if (run->http) {
      run->http->cancel();  // completes through its callback
    } else if (run->in_process) {
      run->stop_source.request_stop();
      HandlerResult r;
      r.kind = HandlerResult::Kind::retry;
      r.message = "stopped";
      finish(run, std::move(r));  // a late result from the thread is ignored
    } else {
      run->sleep_timer.cancel();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Finish

  void finish(const std::shared_ptr<Run>& run, HandlerResult r) {
    if (run->done) return;
    run->done = true;
    run->http.reset();  // the call's callback holds this run
    run->timeout_timer.cancel();
    run->kill_timer.cancel();
    run->progress_timer.cancel();
    remove_run(run);
    send_progress(run);  // the last progress goes before the outcome
    {
      std::lock_guard lock(run->progress_mu);
      run->progress_posted = true;  // later reports of an in-process handler are dropped
    }
    if (run->pipes && run->pipes->log().suppressed() > 0)
      spdlog::warn("{}: {} more log line(s) about this run suppressed (at most {} per run)", job_label(run->job),
                   run->pipes->log().suppressed(), job_log_lines);
    Timestamp retry_at{};
    const RunFacts facts{run->job,          run->stop,
                         run->max_attempts, run->max_attempts_from_kind,
                         run->timeout,      run->kind ? run->kind->backoff : BackoffConfig{},
                         run->trace.span_id};
    Outcome o = run_outcome(facts, std::move(r), SystemClock{}.now(), rng, retry_at);
    self.running_.fetch_sub(1, std::memory_order_acq_rel);
    if (callbacks.ran)
      callbacks.ran(run->job,
                    std::chrono::duration_cast<Duration>(std::chrono::nanoseconds{steady_ns() - run->started_ns}));
    callbacks.finished(run->job, std::move(o), retry_at);
  }
};

Executor::Executor(ExecutorOptions options, ExecutorCallbacks callbacks)
    : impl_(std::make_unique<Impl>(*this, std::move(options), std::move(callbacks))) {
  // A handler that exits without reading its stdin must cost an EPIPE, not the whole process.
  std::signal(SIGPIPE, SIG_IGN);
}

Executor::~Executor() {
  shutdown();
}

void Executor::start() {
  impl_->thread = std::jthread([this] { impl_->io.run(); });
}

void Executor::submit(std::vector<Job> jobs) {
  running_.fetch_add(jobs.size(), std::memory_order_acq_rel);
  asio::post(impl_->io, [this, jobs = std::move(jobs)]() mutable {
    for (auto& j : jobs) impl_->start_job(std::move(j));
  });
}

void Executor::cancel(JobId id) {
  asio::post(impl_->io, [this, id] {
    for (const auto& run : impl_->runs_of(id)) {
      spdlog::info("{}: cancel requested; stopping it", job_label(run->job));
      impl_->stop_run(run, StopReason::cancel);
    }
  });
}

void Executor::stop_lost(JobId id, int attempt) {
  asio::post(impl_->io, [this, id, attempt] {
    auto it = impl_->runs.find({id, attempt});
    if (it == impl_->runs.end()) return;
    const auto run = it->second;
    spdlog::warn(
        "{} attempt {} is no longer this worker's (rescued while it ran here, e.g. after this process was frozen "
        "past the rescue grace); stopping it{}",
        job_label(run->job), attempt, run->pid > 0 ? " (process group " + std::to_string(run->pid) + ")" : "");
    impl_->stop_run(run, StopReason::lost);
  });
}

std::vector<std::pair<JobId, int>> Executor::live_runs() const {
  std::lock_guard lock(impl_->live_mu);
  return {impl_->live.begin(), impl_->live.end()};
}

void Executor::stop_all() {
  asio::post(impl_->io, [this] {
    std::vector<std::shared_ptr<Run>> all;
    for (auto& [key, run] : impl_->runs) all.push_back(run);
    for (auto& run : all) impl_->stop_run(run, StopReason::shutdown);
  });
}

void Executor::reload_kinds(std::map<std::string, KindConfig> kinds) {
  asio::post(impl_->io, [this, kinds = std::move(kinds)]() mutable { impl_->set_kinds(std::move(kinds)); });
}

void Executor::shutdown() {
  if (!impl_->thread.joinable()) return;
  impl_->guard.reset();
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace taskq::worker
