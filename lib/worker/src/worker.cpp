#include "taskq/worker/worker.hpp"

#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <queue>
#include <set>
#include <thread>
#include <unordered_map>

#include "completer.hpp"
#include "executor.hpp"
#include "job_trace.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/fd.hpp"
#include "taskq/core/host.hpp"
#include "taskq/core/time.hpp"
#include "taskq/store/db_link.hpp"
#include "worker_metrics.hpp"

using taskq::config::KindConfig;

using taskq::store::DbLink;
using taskq::store::Notification;
using taskq::store::Outcome;
using taskq::store::ProgressUpdate;
using taskq::store::Store;
using taskq::store::StoreOptions;
using taskq::store::WorkerRegistration;

namespace taskq::worker {
using taskq::store::DbLink;
using worker::Completer;
using worker::Executor;

namespace {

// Largest claim: bigger batches save round trips but hold row locks longer and delay other
// workers' claims.
constexpr int max_claim_batch = 1000;
// Due scheduled jobs promoted per statement.
constexpr int promote_batch = 10000;
// Held outcomes beyond which no more jobs are claimed (writing them is failing or slow).
constexpr std::size_t max_held_outcomes = 100000;
// Due times of retries remembered for timely promotion; beyond it the safety poll takes over.
constexpr std::size_t max_tracked_dues = 10000;

struct QueueSlots {
  std::string name;
  int limit = 0;
  std::atomic<int> in_flight{0};
  std::atomic<bool> has_work{true};  // worth a claim: notified, polled, or the last claim was full
};

using Steady = std::chrono::steady_clock;

}  // namespace

struct Worker::Impl {
  WorkerOptions options;
  std::map<std::string, InProcessHandler> handlers;
  std::int64_t worker_id = 0;
  std::vector<std::unique_ptr<QueueSlots>> queues;
  std::unordered_map<std::string, QueueSlots*> by_name;

  std::unique_ptr<Completer> completer;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<WorkerMetrics> metrics;  // when options.metrics is set
  std::unique_ptr<DbLink> fetch_link, listen_link;
  std::jthread fetcher, listener;
  WakeFd wake_fd;  // ends the listener's wait at stop

  // The fetcher waits on its own connection's socket (it LISTENs for inserts itself, so a new job
  // reaches the claim without a hop between threads) and on this eventfd, which other threads
  // write when it waits and they freed a slot, wrote a retry due soon, or stop the worker.
  WakeFd fetch_wake_fd;
  std::atomic<bool> wake{false};
  std::atomic<bool> fetcher_waiting{false};
  std::mutex wake_mu;  // guards dues
  // Due times of written retries and snoozes, earliest first, for timely promotion.
  std::priority_queue<Steady::time_point, std::vector<Steady::time_point>, std::greater<>> dues;

  std::mutex owned_mu;
  // Claimed and outcome not yet written, by (job id, attempt): a job claimed again while an
  // earlier attempt's outcome is still pending is two entries.
  std::set<std::pair<JobId, int>> owned;
  bool orphan_check = false;     // fetcher thread only
  bool recheck_cancels = false;  // listener thread only: after a reconnect
  // An outcome was refused: the listener checks at once which runs are no longer this worker's.
  std::atomic<bool> recheck_owned{false};
  WorkerRegistration registration;  // what the heartbeat puts back if the row vanished

  std::mutex done_mu;
  std::condition_variable done_cv;

  std::atomic<std::int64_t> n_claimed{0}, n_completed{0}, n_retried{0}, n_failed{0}, n_snoozed{0}, n_cancelled{0},
      n_returned{0};
  bool started = false, stopped = false;
  // Last time each loop went round (steady clock, ns), for the systemd watchdog.
  std::atomic<std::int64_t> fetcher_tick{0}, listener_tick{0};

  void wake_fetcher() {
    wake.store(true);
    if (fetcher_waiting.exchange(false)) fetch_wake_fd.notify();
  }

  std::vector<std::string> queue_names() const {
    std::vector<std::string> out;
    for (const auto& q : queues) out.push_back(q->name);
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Executor -> completer

  void on_finished(const Job& job, Outcome o, Timestamp retry_at) {
    switch (o.kind) {
      case Outcome::Kind::completed:
        ++n_completed;
        break;
      case Outcome::Kind::retry:
        ++n_retried;
        break;
      case Outcome::Kind::failed:
        ++n_failed;
        break;
      case Outcome::Kind::snoozed:
        ++n_snoozed;
        break;
      case Outcome::Kind::cancelled:
        ++n_cancelled;
        break;
      case Outcome::Kind::returned:
        ++n_returned;
        break;
    }
    if (metrics) metrics->finished(job, o.kind);
    completer->push(std::move(o), {job.queue, job.kind, retry_at, 0, trace_id_of(job)});
    if (auto it = by_name.find(job.queue); it != by_name.end()) {
      QueueSlots& q = *it->second;
      q.in_flight.fetch_sub(1, std::memory_order_acq_rel);
      if (q.has_work.load(std::memory_order_acquire)) wake_fetcher();
    }
    if (executor->running() == 0) {
      std::lock_guard lock(done_mu);
      done_cv.notify_all();
    }
  }

  void on_written(const std::vector<Outcome>& written, std::size_t applied) {
    if (applied < written.size()) {
      // Those jobs were rescued (or cancelled by hand) while they ran here; other runs of this
      // worker may have been too: the listener looks now rather than at the next heartbeat.
      spdlog::warn("worker {}: {} of {} outcome(s) were refused: their jobs are no longer running here on that attempt",
                   worker_id, written.size() - applied, written.size());
      recheck_owned.store(true);
      wake_fd.notify();
    }
    std::vector<Timestamp> due_at;
    {
      std::lock_guard lock(owned_mu);
      for (const auto& o : written) {
        owned.erase({o.id, o.attempt});
        if (o.run_at) due_at.push_back(*o.run_at);
      }
    }
    if (due_at.empty()) return;
    // Retries and snoozes due before the next safety poll are promoted on time instead of up to
    // a poll interval late. (A few ms after due: the promotion compares with the database clock.)
    const auto steady_now = Steady::now();
    const auto system_now = SystemClock{}.now();
    {
      std::lock_guard lock(wake_mu);
      for (const auto t : due_at)
        if (dues.size() < max_tracked_dues)
          dues.push(steady_now + std::max(Duration{}, t - system_now) + std::chrono::milliseconds{2});
    }
    wake_fetcher();
  }

  // -------------------------------------------------------------------------------------------
  // Fetcher: claims, promotes, returns orphans

  void fetch_loop(const std::stop_token& stop) {
    auto next_promote = Steady::now();
    while (!stop.stop_requested()) {
      fetcher_tick = steady_ns();
      const auto now = Steady::now();
      {
        std::lock_guard lock(wake_mu);
        if (!dues.empty() && dues.top() < next_promote) next_promote = dues.top();
        while (!dues.empty() && dues.top() <= now) dues.pop();
      }
      if (now >= next_promote) {
        fetch_link->with([&](Store& s) { s.promote_due(queue_names(), promote_batch); });
        next_promote = now + options.worker.poll_interval;
        for (auto& q : queues) q->has_work.store(true, std::memory_order_release);
      }
      if (orphan_check && fetch_link->with([&](Store& s) { return_orphans(s); })) orphan_check = false;

      bool progressed = false;
      if (completer->pending() < max_held_outcomes) {
        for (auto& qp : queues) {
          QueueSlots& q = *qp;
          const int free = q.limit - q.in_flight.load(std::memory_order_acquire);
          if (free <= 0 || !q.has_work.load(std::memory_order_acquire) || stop.stop_requested()) continue;
          const int want = std::min(free, max_claim_batch);
          std::vector<Job> jobs;
          const auto began = steady_ns();
          if (!fetch_link->with([&](Store& s) { jobs = s.claim(worker_id, q.name, want); })) break;
          if (metrics) metrics->claimed(q.name, jobs, static_cast<double>(steady_ns() - began) / 1e9);
          if (static_cast<int>(jobs.size()) < want) q.has_work.store(false, std::memory_order_release);
          if (jobs.empty()) continue;
          {
            std::lock_guard lock(owned_mu);
            for (const auto& j : jobs) owned.emplace(j.id, j.attempt);
          }
          q.in_flight.fetch_add(static_cast<int>(jobs.size()), std::memory_order_acq_rel);
          n_claimed += static_cast<std::int64_t>(jobs.size());
          executor->submit(std::move(jobs));
          progressed = true;
        }
      }
      if (progressed) continue;
      auto until = next_promote;
      {
        std::lock_guard lock(wake_mu);
        if (!dues.empty() && dues.top() < until) until = dues.top();
      }
      if (!fetch_link->connected())
        until = std::min(until, Steady::now() + std::max(fetch_link->retry_in(), Duration{}));
      wait_for_work(stop, until);
    }
  }

  // Sleeps until `until`, an insert notification, or a wake-up from another thread. Setting
  // fetcher_waiting before testing `wake` means a waker either is seen here or writes the eventfd.
  void wait_for_work(const std::stop_token& stop, Steady::time_point until) {
    fetcher_waiting.store(true);
    if (!wake.exchange(false) && !stop.stop_requested()) {
      const auto timeout = std::chrono::duration_cast<Duration>(until - Steady::now());
      if (timeout > Duration{}) {
        std::vector<Notification> got;
        if (fetch_link->connected()) {
          if (fetch_link->with([&](Store& s) { got = s.wait_notifications(timeout, fetch_wake_fd.fd()); }))
            for (const auto& n : got) on_notification(n);
        } else {
          pollfd p{fetch_wake_fd.fd(), POLLIN, 0};
          ::poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + 1);
        }
      }
    }
    fetcher_waiting.store(false);
    wake.store(false);
    fetch_wake_fd.clear();
  }

  // After a reconnect: a claim whose reply was lost left jobs running under this worker that no
  // one runs. They go back to available, without using up the attempt.
  void return_orphans(Store& s) {
    const auto running = s.running_of_worker(worker_id);
    std::vector<Outcome> orphans;
    {
      std::lock_guard lock(owned_mu);
      for (const auto& [id, attempt] : running)
        if (!owned.count({id, attempt})) orphans.push_back({id, attempt, Outcome::Kind::returned});
    }
    if (orphans.empty()) return;
    spdlog::warn("fetcher: {} job(s) claimed before the connection was lost were never received; returning them",
                 orphans.size());
    s.complete(worker_id, orphans);
  }

  // -------------------------------------------------------------------------------------------
  // Listener: wake-ups, cancel requests, heartbeat

  // Inserts arrive on the fetcher's connection (it claims right after), cancels on the listener's.
  void on_notification(const Notification& n) {
    if (n.event == "insert") {
      if (auto it = by_name.find(n.payload); it != by_name.end())
        it->second->has_work.store(true, std::memory_order_release);
      else if (n.payload.empty())
        for (auto& q : queues) q->has_work.store(true, std::memory_order_release);
    } else if (n.event == "cancel") {
      try {
        executor->cancel(std::stoll(n.payload));
      } catch (const std::exception&) {
        spdlog::warn("listener: ignoring a cancel notification with payload '{}'", n.payload);
      }
    }
  }

  // Runs living here whose job the database no longer gives this worker on that attempt (it was
  // rescued while this process was frozen or cut off past the grace) are stopped: another run
  // of the job may already be going elsewhere.
  void stop_lost_runs(Store& s) {
    const auto runs = executor->live_runs();
    if (runs.empty()) return;
    for (const auto& [id, attempt] : s.not_owned(worker_id, runs)) executor->stop_lost(id, attempt);
  }

  void listen_loop(const std::stop_token& stop) {
    auto next_heartbeat = Steady::now() + options.worker.heartbeat_interval;
    auto next_cancel_poll = Steady::now() + options.worker.poll_interval;
    while (!stop.stop_requested()) {
      listener_tick = steady_ns();
      auto now = Steady::now();
      const bool recheck = recheck_owned.exchange(false);
      if (now >= next_heartbeat || recheck) {
        const bool beat = now >= next_heartbeat;
        listen_link->with([&](Store& s) {
          if (beat && s.heartbeat(worker_id, registration))
            spdlog::warn(
                "worker {}: its row in workers had vanished; registered again under the same id (the jobs it runs "
                "stay its own unless they were already rescued)",
                worker_id);
          stop_lost_runs(s);
        });
        // Unreachable: the next heartbeat checks again.
        if (beat) next_heartbeat = now + options.worker.heartbeat_interval;
      }
      if (now >= next_cancel_poll) {
        // Safety net for cancel notifications missed while disconnected.
        if (executor->running() > 0) {
          std::vector<JobId> ids;
          if (listen_link->with([&](Store& s) { ids = s.cancel_requested_of_worker(worker_id); }))
            for (JobId id : ids) executor->cancel(id);
        }
        next_cancel_poll = now + options.worker.poll_interval;
      }
      if (recheck_cancels) {
        recheck_cancels = false;
        next_cancel_poll = Steady::now();  // cancel requests may have been missed while disconnected
        continue;
      }
      now = Steady::now();
      const auto until = std::min(next_heartbeat, next_cancel_poll);
      const auto timeout = std::chrono::duration_cast<Duration>(until - now);
      if (timeout <= Duration{}) continue;
      if (recheck_owned.load()) continue;
      if (listen_link->connected() || listen_link->retry_in() == Duration{}) {
        std::vector<Notification> got;
        if (listen_link->with([&](Store& s) { got = s.wait_notifications(timeout, wake_fd.fd()); })) {
          for (const auto& n : got) on_notification(n);
          drain_wake_fd();
          continue;
        }
      }
      // Disconnected: wait for the reconnect backoff (or the stop request).
      pollfd p{wake_fd.fd(), POLLIN, 0};
      const auto wait = std::min(timeout, std::max(listen_link->retry_in(), Duration{std::chrono::milliseconds{10}}));
      ::poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) + 1);
      drain_wake_fd();
    }
  }

  // The listener's eventfd is written after a refused outcome, and at stop (after the stop
  // request, which the loop sees before it waits again).
  void drain_wake_fd() { wake_fd.clear(); }

  // -------------------------------------------------------------------------------------------
  // Metrics (worker_metrics.hpp): recorded by the executor's and completer's hooks and the
  // fetcher; the gauges read these parts at each scrape.

  std::set<std::string> handled_kinds() const {
    std::set<std::string> out;
    for (const auto& [k, c] : options.kinds) out.insert(k);
    for (const auto& [k, h] : handlers) out.insert(k);
    return out;
  }

  void add_metrics(ExecutorCallbacks& callbacks) {
    metrics = std::make_unique<WorkerMetrics>(*options.metrics, options.worker.queues, handled_kinds());
    callbacks.ran = [this](const Job& job, Duration ran) {
      metrics->ran(job, std::chrono::duration<double>(ran).count());
    };
    callbacks.start_failed = [this](const Job& job) { metrics->start_failed(job); };
    completer->observe_writes([this](std::size_t, double seconds) { metrics->outcomes_written(seconds); });
  }

  // Once the connections and the completer exist (the end of start()).
  void read_metrics_at_scrape() {
    metrics->read_at_scrape(WorkerMetrics::Readers{
        [this](const std::string& queue) {
          const auto it = by_name.find(queue);
          return it == by_name.end() ? 0 : it->second->in_flight.load(std::memory_order_relaxed);
        },
        [this] { return completer->pending(); },
        [this] {
          using Link = taskq::metrics::LinkState;
          return std::map<std::string, Link>{{"fetcher", Link{fetch_link->reconnects(), fetch_link->up()}},
                                             {"listener", Link{listen_link->reconnects(), listen_link->up()}},
                                             {"completer", Link{completer->reconnects(), completer->db_up()}}};
        }});
  }
};

Worker::Worker(WorkerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

Worker::~Worker() {
  if (impl_->started && !impl_->stopped) {
    try {
      stop(Duration{});
    } catch (const std::exception& e) {
      spdlog::error("worker: stopping failed: {}", e.what());
    }
  }
}

void Worker::register_handler(const std::string& kind, InProcessHandler handler) {
  if (impl_->started) throw Error(Errc::internal, "register_handler: the worker has already started");
  validate_name("kind", kind);
  impl_->handlers[kind] = std::move(handler);
}

void Worker::start() {
  auto& d = *impl_;
  if (d.started) return;
  if (d.options.worker.queues.empty()) throw Error(Errc::invalid_input, "worker: no queues to serve");
  int total = 0;
  for (const auto& [name, limit] : d.options.worker.queues) {
    auto q = std::make_unique<QueueSlots>();
    q->name = name;
    q->limit = limit;
    total += limit;
    d.by_name[name] = q.get();
    d.queues.push_back(std::move(q));
  }
  {
    StoreOptions reg = d.options.store;
    reg.application_name = "taskq-workerd";
    auto store = Store::open(reg);
    d.registration = {host_name(), static_cast<int>(::getpid()), d.queue_names(), total, d.options.version};
    d.worker_id = store->register_worker(d.registration);
  }
  // Connections are named "taskq-workerd <schema>/w<id> <role>" in pg_stat_activity, and so are
  // log lines.
  d.options.store.application_name = "taskq-workerd";
  const std::string w = d.options.store.schema + "/w" + std::to_string(d.worker_id) + " ";
  d.completer = std::make_unique<Completer>(
      w + "completer", d.options.store, d.worker_id, d.options.worker.delete_completed,
      [&d](const std::vector<Outcome>& written, std::size_t applied) { d.on_written(written, applied); });
  d.completer->connect_or_throw();
  worker::ExecutorCallbacks callbacks{
      [&d](const Job& job, Outcome o, Timestamp retry_at) { d.on_finished(job, std::move(o), retry_at); },
      [&d](const Job& job, ProgressUpdate u) {
        d.completer->push_progress(std::move(u), job.queue, job.kind, trace_id_of(job));
      }};
  if (d.options.metrics) d.add_metrics(callbacks);
  d.executor = std::make_unique<Executor>(
      worker::ExecutorOptions{d.options.kinds, d.handlers, d.options.config_source, d.options.worker.pass_env},
      std::move(callbacks));
  d.listen_link = std::make_unique<DbLink>(w + "listener", d.options.store, [&d](Store& s) {
    s.listen({"cancel"});
    d.recheck_cancels = true;
  });
  // Claims and promotions need not wait for the WAL flush: a claim lost in a server crash only
  // returns its jobs to available (they run again, as at-least-once allows); enqueues and
  // outcomes stay synchronous.
  StoreOptions fetch_options = d.options.store;
  fetch_options.synchronous_commit = false;
  d.fetch_link = std::make_unique<DbLink>(w + "fetcher", fetch_options, [&d](Store& s) {
    s.listen({"insert"});
    d.orphan_check = true;
    // Inserts may have been missed while disconnected: look at every queue.
    for (auto& q : d.queues) q->has_work.store(true, std::memory_order_release);
  });
  d.listen_link->connect_or_throw();
  d.fetch_link->connect_or_throw();
  d.orphan_check = false;  // nothing can be orphaned before the first claim

  d.completer->start();
  d.executor->start();
  d.listener = std::jthread([&d](const std::stop_token& st) { d.listen_loop(st); });
  d.fetcher = std::jthread([&d](const std::stop_token& st) { d.fetch_loop(st); });
  if (d.metrics) d.read_metrics_at_scrape();
  d.started = true;
  spdlog::info(
      "worker {} started: queues {}, {} connections", d.worker_id,
      [&] {
        std::string s;
        for (const auto& q : d.queues) s += (s.empty() ? "" : ", ") + q->name + "=" + std::to_string(q->limit);
        return s;
      }(),
      3);
}

void Worker::stop(Duration wait) {
  auto& d = *impl_;
  if (!d.started || d.stopped) return;
  d.stopped = true;
  // 1. No more claims.
  d.fetcher.request_stop();
  d.wake_fetcher();
  d.fetcher.join();
  // 2. Let running jobs finish (the listener keeps heartbeating and delivering cancels).
  const auto running = d.executor->running();
  if (running > 0) {
    spdlog::info("worker {}: waiting up to {} for {} running job(s)", d.worker_id, format_duration(wait), running);
    std::unique_lock lock(d.done_mu);
    d.done_cv.wait_for(lock, wait, [&] { return d.executor->running() == 0; });
  }
  // 3. Stop the rest; they return to the queue without using up an attempt.
  if (d.executor->running() > 0) {
    spdlog::info("worker {}: stopping {} job(s) still running", d.worker_id, d.executor->running());
    d.executor->stop_all();
    Duration grace{std::chrono::seconds{10}};
    for (const auto& [name, k] : d.options.kinds) grace = std::max(grace, k.kill_grace);
    std::unique_lock lock(d.done_mu);
    if (!d.done_cv.wait_for(lock, grace + std::chrono::seconds{5}, [&] { return d.executor->running() == 0; }))
      spdlog::error("worker {}: {} job(s) did not stop", d.worker_id, d.executor->running());
  }
  // 4. Write every outcome, then leave.
  d.listener.request_stop();
  d.wake_fd.notify();
  d.listener.join();
  const std::size_t left = d.completer->stop(std::chrono::seconds{10});
  d.executor->shutdown();
  if (left > 0) {
    spdlog::error(
        "worker {}: {} outcome(s) could not be written; those jobs stay running under this worker and are rescued "
        "once its heartbeat is older than the rescue grace",
        d.worker_id, left);
    return;
  }
  try {
    StoreOptions reg = d.options.store;
    reg.application_name = "taskq-workerd";
    Store::open(reg)->unregister_worker(d.worker_id);
  } catch (const std::exception& e) {
    spdlog::warn("worker {}: could not unregister: {}", d.worker_id, e.what());
  }
  spdlog::info("worker {} stopped", d.worker_id);
}

void Worker::reload_kinds(std::map<std::string, KindConfig> kinds) {
  impl_->options.kinds = kinds;
  if (impl_->metrics) impl_->metrics->set_kinds(impl_->handled_kinds());
  if (impl_->executor) impl_->executor->reload_kinds(std::move(kinds));
}

std::int64_t Worker::worker_id() const {
  return impl_->worker_id;
}

bool Worker::healthy(Duration stall) const {
  const auto& d = *impl_;
  if (!d.started || d.stopped) return d.started;
  const auto now = steady_ns();
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(stall).count();
  return now - d.fetcher_tick.load() < limit && now - d.listener_tick.load() < limit;
}

WorkerStats Worker::stats() const {
  const auto& d = *impl_;
  WorkerStats s;
  s.claimed = d.n_claimed;
  s.completed = d.n_completed;
  s.retried = d.n_retried;
  s.failed = d.n_failed;
  s.snoozed = d.n_snoozed;
  s.cancelled = d.n_cancelled;
  s.returned = d.n_returned;
  s.running = d.executor ? static_cast<std::int64_t>(d.executor->running()) : 0;
  s.held_outcomes = d.completer ? static_cast<std::int64_t>(d.completer->pending()) : 0;
  return s;
}

}  // namespace taskq::worker
