#include "events.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <unordered_map>

#include "taskq/core/json.hpp"
#include "taskq/store/db_link.hpp"

namespace taskq::api {

namespace json = boost::json;
using Steady = std::chrono::steady_clock;

Frame sse_frame(std::string_view event, std::string_view data) {
  std::string s;
  s.reserve(event.size() + data.size() + 16);
  s.append("event: ").append(event).append("\ndata: ").append(data).append("\n\n");
  return std::make_shared<const std::string>(std::move(s));
}

namespace {

const Frame& keep_alive_frame() {
  static const Frame f = std::make_shared<const std::string>(": keep-alive\n\n");
  return f;
}

Frame end_frame(std::string_view reason) {
  return sse_frame("end", json::serialize(json::object{{"reason", reason}}));
}

// One entry of a "<schema>_events" payload: [op, id, queue, kind, state, attempt, progress].
struct Entry {
  char op = 's';  // 's' state or attempt, 'p' progress, 'd' deleted while running (completed)
  JobId id = 0;
  std::string queue, kind, state;
  std::int64_t attempt = 0;
  json::value progress;
};

std::vector<Entry> parse_entries(const std::string& payload) {
  std::vector<Entry> out;
  json::error_code ec;
  const auto v = json::parse(payload, ec);
  if (ec || !v.is_array()) {
    spdlog::warn("event hub: ignoring a malformed job-events payload ({} bytes)", payload.size());
    return out;
  }
  for (const auto& item : v.get_array()) {
    const auto* a = item.if_array();
    if (!a || a->size() < 7 || !(*a)[0].is_string() || !(*a)[1].is_int64() || !(*a)[2].is_string() ||
        !(*a)[3].is_string() || !(*a)[4].is_string() || !(*a)[5].is_int64())
      continue;
    Entry e;
    const auto op = (*a)[0].get_string();
    e.op = op.empty() ? '?' : op[0];
    e.id = (*a)[1].get_int64();
    e.queue = (*a)[2].get_string();
    e.kind = (*a)[3].get_string();
    e.state = (*a)[4].get_string();
    e.attempt = (*a)[5].get_int64();
    e.progress = (*a)[6];
    out.push_back(std::move(e));
  }
  return out;
}

bool terminal(const std::string& state) {
  return state == "completed" || state == "failed" || state == "cancelled";
}

// A per-job stream.
struct JobSub {
  std::shared_ptr<StreamSink> sink;
  std::string state;  // last sent
  std::int64_t attempt = -1;
  bool ended = false;
};

// Queue streams with the same filter share one group: their frames are built once.
struct Group {
  std::vector<std::string> queues;  // sorted; empty: every queue
  std::vector<std::shared_ptr<StreamSink>> sinks;
  bool wants(const std::string& queue) const {
    return queues.empty() || std::binary_search(queues.begin(), queues.end(), queue);
  }
};

std::string group_key(const std::vector<std::string>& queues) {
  std::string key;
  for (const auto& q : queues) key.append(q).push_back('\0');
  return key;
}

}  // namespace

struct EventHub::State {
  std::mutex mu;
  std::vector<std::pair<std::shared_ptr<StreamSink>, StreamRequest>> incoming;
  bool stop = false;
  int wake_fd = -1;

  // The hub thread's own.
  std::unordered_map<JobId, std::vector<JobSub>> by_job;
  std::map<std::string, Group> groups;
  bool registered = false;
  EventWatch watch;  // as last written to the listener row
  Steady::time_point renew_at{}, empty_since{}, poll_at{}, keep_alive_at{};
  bool resync = false;  // a new connection: notifications may have been missed

  ~State() {
    if (wake_fd >= 0) ::close(wake_fd);
  }
  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd, &one, sizeof one);
  }
  void drain_wake() const {
    std::uint64_t v = 0;
    while (::read(wake_fd, &v, sizeof v) > 0) {
    }
  }
};

EventHub::EventHub(EventHubOptions options) : options_(std::move(options)), state_(std::make_unique<State>()) {
  state_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state_->wake_fd < 0) throw Error(Errc::internal, "eventfd failed");
}

EventHub::~EventHub() {
  stop();
}

void EventHub::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void EventHub::subscribe(std::shared_ptr<StreamSink> sink, StreamRequest request) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stop) {
      sink->refuse(error_response(503, "unavailable", "taskq-apid is shutting down"));
      return;
    }
    state_->incoming.emplace_back(std::move(sink), std::move(request));
  }
  state_->wake();
}

void EventHub::forget_gone() {
  state_->wake();
}

void EventHub::stop() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stop) return;
    state_->stop = true;
  }
  state_->wake();
  if (thread_.joinable()) thread_.join();
}

void EventHub::run() {
  State& s = *state_;
  DbLink link("events", options_.store, [&s](Store& store) {
    store.listen({"events"});
    s.resync = true;
  });

  auto count_streams = [&] {
    std::size_t n = 0;
    for (auto& [id, subs] : s.by_job) n += subs.size();
    for (auto& [key, g] : s.groups) n += g.sinks.size();
    streams_.store(static_cast<int>(n));
    return n;
  };

  auto deliver = [&](const std::shared_ptr<StreamSink>& sink, std::vector<Frame> frames, bool end) {
    delivered_.fetch_add(static_cast<std::int64_t>(frames.size()));
    sink->send(std::move(frames), end);
  };

  // Sends a per-job stream what is new in `job` (nullptr: the job is gone).
  auto update_job_sub = [&](JobSub& sub, const Job* job, const Entry* deleted) {
    if (sub.ended || sub.sink->gone()) return;
    if (!job) {
      std::vector<Frame> frames;
      if (deleted && sub.state != deleted->state) {
        frames.push_back(sse_frame("state", json::serialize(json::object{{"id", deleted->id},
                                                                         {"queue", deleted->queue},
                                                                         {"kind", deleted->kind},
                                                                         {"state", deleted->state},
                                                                         {"attempt", deleted->attempt},
                                                                         {"deleted", true}})));
      }
      frames.push_back(end_frame("deleted"));
      sub.ended = true;
      deliver(sub.sink, std::move(frames), true);
      return;
    }
    const std::string state(to_string(job->state));
    if (state == sub.state && job->attempt == sub.attempt) return;
    sub.state = state;
    sub.attempt = job->attempt;
    std::vector<Frame> frames{sse_frame("state", json::serialize(job_to_json(*job)))};
    if (terminal(state)) {
      frames.push_back(end_frame("finished"));
      sub.ended = true;
    }
    deliver(sub.sink, std::move(frames), sub.ended);
  };

  // Reads the jobs of per-job streams (all of them, or `ids`) and sends what changed.
  auto refresh_jobs = [&](Store& store, const std::vector<JobId>& ids,
                          const std::unordered_map<JobId, const Entry*>& deleted) {
    if (ids.empty()) return;
    std::unordered_map<JobId, Job> found;
    for (auto& j : store.get_many(ids)) found.emplace(j.id, std::move(j));
    for (const JobId id : ids) {
      auto it = s.by_job.find(id);
      if (it == s.by_job.end()) continue;
      const auto f = found.find(id);
      const auto d = deleted.find(id);
      for (auto& sub : it->second)
        update_job_sub(sub, f == found.end() ? nullptr : &f->second, d == deleted.end() ? nullptr : d->second);
    }
  };

  auto all_job_ids = [&] {
    std::vector<JobId> ids;
    ids.reserve(s.by_job.size());
    for (auto& [id, subs] : s.by_job) ids.push_back(id);
    return ids;
  };

  // Drops streams that ended or whose client went away.
  auto purge = [&] {
    for (auto it = s.by_job.begin(); it != s.by_job.end();) {
      auto& subs = it->second;
      subs.erase(std::remove_if(subs.begin(), subs.end(), [](const JobSub& j) { return j.ended || j.sink->gone(); }),
                 subs.end());
      it = subs.empty() ? s.by_job.erase(it) : std::next(it);
    }
    for (auto it = s.groups.begin(); it != s.groups.end();) {
      auto& sinks = it->second.sinks;
      sinks.erase(std::remove_if(sinks.begin(), sinks.end(), [](const auto& k) { return k->gone(); }), sinks.end());
      it = sinks.empty() ? s.groups.erase(it) : std::next(it);
    }
  };

  // One notification: per-job streams get the jobs re-read (state) or the progress; queue
  // streams get every entry as it is.
  auto dispatch = [&](Store& store, const std::string& payload) {
    const auto entries = parse_entries(payload);
    if (entries.empty()) return;
    if (!s.by_job.empty()) {
      std::vector<JobId> ids;
      std::unordered_map<JobId, const Entry*> deleted;
      for (const auto& e : entries) {
        if (e.op == 'p' || !s.by_job.count(e.id)) continue;
        ids.push_back(e.id);
        if (e.op == 'd') deleted[e.id] = &e;
      }
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      // Progress first: it was recorded before any state change in the same payload's statements.
      for (const auto& e : entries) {
        if (e.op != 'p') continue;
        auto it = s.by_job.find(e.id);
        if (it == s.by_job.end()) continue;
        const auto frame = sse_frame(
            "progress", json::serialize(json::object{{"id", e.id}, {"attempt", e.attempt}, {"progress", e.progress}}));
        for (auto& sub : it->second)
          if (!sub.ended && !sub.sink->gone()) deliver(sub.sink, {frame}, false);
      }
      refresh_jobs(store, ids, deleted);
    }
    for (auto& [key, g] : s.groups) {
      std::vector<Frame> frames;
      for (const auto& e : entries) {
        if (!g.wants(e.queue)) continue;
        json::object o{{"id", e.id}, {"queue", e.queue}, {"kind", e.kind}};
        if (e.op == 'p') {
          o["attempt"] = e.attempt;
          o["progress"] = e.progress;
          frames.push_back(sse_frame("progress", json::serialize(o)));
        } else {
          o["state"] = e.state;
          o["attempt"] = e.attempt;
          if (e.op == 'd') o["deleted"] = true;
          frames.push_back(sse_frame("state", json::serialize(o)));
        }
      }
      if (frames.empty()) continue;
      for (const auto& sink : g.sinks)
        if (!sink->gone()) deliver(sink, frames, false);
    }
  };

  // New streams: the listener row first (so changes from now on are announced), then the
  // current state of each job asked for.
  auto admit = [&](Store& store, std::vector<std::pair<std::shared_ptr<StreamSink>, StreamRequest>>& batch) {
    std::vector<JobId> ids;
    for (auto& [sink, req] : batch)
      if (req.job) ids.push_back(*req.job);
    std::unordered_map<JobId, Job> found;
    if (!ids.empty())
      for (auto& j : store.get_many(ids)) found.emplace(j.id, std::move(j));
    for (auto& [sink, req] : batch) {
      if (sink->gone()) continue;
      if (!req.job) {
        std::sort(req.queues.begin(), req.queues.end());
        req.queues.erase(std::unique(req.queues.begin(), req.queues.end()), req.queues.end());
        auto& g = s.groups[group_key(req.queues)];
        g.queues = req.queues;
        g.sinks.push_back(sink);
        sink->open({}, false);
        continue;
      }
      const auto f = found.find(*req.job);
      if (f == found.end()) {
        sink->refuse(error_response(404, "not_found", "job " + std::to_string(*req.job) + " does not exist"));
        continue;
      }
      const Job& job = f->second;
      JobSub sub{sink, std::string(to_string(job.state)), job.attempt, false};
      std::vector<Frame> first{sse_frame("state", json::serialize(job_to_json(job)))};
      delivered_.fetch_add(1);
      if (is_final(job.state)) {
        first.push_back(end_frame("finished"));
        delivered_.fetch_add(1);
        sink->open(std::move(first), true);
        continue;
      }
      sink->open(std::move(first), false);
      s.by_job[job.id].push_back(std::move(sub));
    }
    batch.clear();
  };

  // What the streams (and those about to open) follow: written to the listener row whenever it
  // changes, so the database announces exactly that.
  auto watch_of = [&](const std::vector<std::pair<std::shared_ptr<StreamSink>, StreamRequest>>& pending) {
    EventWatch w;
    std::set<JobId> jobs;
    std::set<std::string> queues;
    for (auto& [id, subs] : s.by_job) jobs.insert(id);
    for (auto& [key, g] : s.groups) {
      if (g.queues.empty()) w.all_queues = true;
      queues.insert(g.queues.begin(), g.queues.end());
    }
    for (const auto& [sink, req] : pending) {
      if (req.job)
        jobs.insert(*req.job);
      else if (req.queues.empty())
        w.all_queues = true;
      else
        queues.insert(req.queues.begin(), req.queues.end());
    }
    w.jobs.assign(jobs.begin(), jobs.end());
    if (!w.all_queues) w.queues.assign(queues.begin(), queues.end());
    w.streams = static_cast<int>(count_streams() + pending.size());
    return w;
  };

  auto register_listener = [&](Store& store, const EventWatch& w) {
    store.register_event_listener(options_.listener_name, options_.host, options_.pid, w, options_.listener_ttl);
    if (!s.registered) spdlog::info("event hub: announcing job events ({} stream(s) open)", w.streams);
    s.registered = true;
    s.watch = w;
    s.renew_at = Steady::now() + options_.listener_ttl / 3;
  };

  std::vector<std::pair<std::shared_ptr<StreamSink>, StreamRequest>> batch;
  const auto now0 = Steady::now();
  s.poll_at = now0 + options_.job_poll;
  s.keep_alive_at = now0 + options_.keep_alive;
  bool stopping = false;
  while (!stopping) {
    {
      std::lock_guard lock(s.mu);
      stopping = s.stop;
      for (auto& item : s.incoming) batch.push_back(std::move(item));
      s.incoming.clear();
    }
    if (stopping) break;
    purge();

    // The connection opens with the first stream (an apid without streams uses none).
    const bool need_db = !batch.empty() || count_streams() > 0 || s.registered;
    const bool ok = !need_db || link.with([&](Store& store) {
      if (!batch.empty()) {
        // Watched before the jobs' current state is read: no change falls in between.
        register_listener(store, watch_of(batch));
        admit(store, batch);
      }
      const auto n = count_streams();
      const auto now = Steady::now();
      const auto w = watch_of({});
      const bool changed = w.jobs != s.watch.jobs || w.queues != s.watch.queues || w.all_queues != s.watch.all_queues ||
                           w.streams != s.watch.streams;
      if (n > 0) {
        s.empty_since = now;
        if (!s.registered || changed || now >= s.renew_at) register_listener(store, w);
      } else if (s.registered && changed) {
        register_listener(store, w);  // watching nothing until the linger is over
      } else if (s.registered && now - s.empty_since >= options_.linger) {
        store.unregister_event_listener(options_.listener_name);
        s.registered = false;
        spdlog::info("event hub: no stream open for {}; job events are no longer announced",
                     format_duration(options_.linger));
      }
      if (s.resync || now >= s.poll_at) {
        s.resync = false;
        s.poll_at = now + options_.job_poll;
        refresh_jobs(store, all_job_ids(), {});
      }
    });
    if (!ok) {
      // No database: new streams cannot start; open ones stay and catch up after the reconnect.
      for (auto& [sink, req] : batch)
        sink->refuse(error_response(503, "unavailable", "the database is unreachable; try again"));
      batch.clear();
    }

    const auto now = Steady::now();
    if (now >= s.keep_alive_at) {
      s.keep_alive_at = now + options_.keep_alive;
      for (auto& [id, subs] : s.by_job)
        for (auto& sub : subs)
          if (!sub.ended && !sub.sink->gone()) sub.sink->send({keep_alive_frame()}, false);
      for (auto& [key, g] : s.groups)
        for (auto& sink : g.sinks)
          if (!sink->gone()) sink->send({keep_alive_frame()}, false);
    }

    auto until = std::min(s.keep_alive_at, s.by_job.empty() ? s.keep_alive_at : s.poll_at);
    if (s.registered) until = std::min(until, s.renew_at);
    if (s.registered && count_streams() == 0) until = std::min(until, s.empty_since + options_.linger);
    auto timeout = std::chrono::duration_cast<Duration>(until - Steady::now());
    if (!link.connected() && need_db) timeout = std::min(timeout, std::max(link.retry_in(), Duration{}));
    if (timeout < Duration{}) timeout = Duration{};
    if (link.connected()) {
      link.with([&](Store& store) {
        for (const auto& n : store.wait_notifications(timeout, s.wake_fd))
          if (n.event == "events") dispatch(store, n.payload);
      });
    } else {
      pollfd p{s.wake_fd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + 1);
    }
    s.drain_wake();
  }

  // Shutdown: every stream ends with a final event; new ones are refused.
  {
    std::lock_guard lock(s.mu);
    for (auto& item : s.incoming) batch.push_back(std::move(item));
    s.incoming.clear();
  }
  for (auto& [sink, req] : batch) sink->refuse(error_response(503, "unavailable", "taskq-apid is shutting down"));
  const auto bye = end_frame("shutdown");
  for (auto& [id, subs] : s.by_job)
    for (auto& sub : subs)
      if (!sub.ended && !sub.sink->gone()) sub.sink->send({bye}, true);
  for (auto& [key, g] : s.groups)
    for (auto& sink : g.sinks)
      if (!sink->gone()) sink->send({bye}, true);
  s.by_job.clear();
  s.groups.clear();
  streams_.store(0);
  if (s.registered) link.with([&](Store& store) { store.unregister_event_listener(options_.listener_name); });
}

}  // namespace taskq::api
