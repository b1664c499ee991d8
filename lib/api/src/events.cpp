#include "events.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <unordered_map>

#include "taskq/core/fd.hpp"
#include "taskq/core/json.hpp"
#include "taskq/queue/client_link.hpp"

using taskq::store::EventWatch;

using taskq::queue::Client;
using taskq::queue::ClientLink;
using taskq::queue::ClientOptions;

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

using Pending = std::vector<std::pair<std::shared_ptr<StreamSink>, StreamRequest>>;

// What other threads hand the hub's thread: new streams, a wake-up, the stop.
struct EventHub::Inbox {
  std::mutex mu;
  Pending incoming;
  bool stop = false;
  WakeFd wake_fd;

  void wake() const { wake_fd.notify(); }
  // Moves the new streams to `batch`; true once the hub is to stop.
  bool take(Pending& batch) {
    std::lock_guard lock(mu);
    for (auto& item : incoming) batch.push_back(std::move(item));
    incoming.clear();
    return stop;
  }
};

// The hub's thread: its streams, its listening connection and listener row, and each step of
// its loop. Only that thread touches it.
class EventHub::Loop {
 public:
  explicit Loop(EventHub& hub)
      : hub_(hub),
        options_(hub.options_),
        inbox_(*hub.inbox_),
        link_("events", ClientOptions{options_.store, {}}, [this](Client& db) { on_connect(db); }) {}

  // Until stop(): take new streams, keep the database side in step, send keep-alives, wait for
  // notifications. Then end every stream.
  void run() {
    const auto now = Steady::now();
    poll_at_ = now + options_.job_poll;
    keep_alive_at_ = now + options_.keep_alive;
    while (!inbox_.take(batch_)) {
      purge();
      // The connection opens with the first stream (an apid without streams uses none).
      const bool need_db = !batch_.empty() || count_streams() > 0 || registered_;
      // No database: new streams cannot start; open ones stay and catch up after the reconnect.
      if (need_db && !link_.with([this](Client& db) { sync(db); }))
        refuse_batch("the database is unreachable; try again");
      send_keep_alives();
      wait(need_db);
    }
    shut_down();
  }

 private:
  EventHub& hub_;
  const EventHubOptions& options_;
  Inbox& inbox_;
  std::unordered_map<JobId, std::vector<JobSub>> by_job_;
  std::map<std::string, Group> groups_;
  Pending batch_;  // taken from the inbox, not admitted yet
  bool registered_ = false;
  EventWatch watch_;  // as last written to the listener row
  Steady::time_point renew_at_{}, empty_since_{}, poll_at_{}, keep_alive_at_{};
  bool resync_ = false;  // a new connection: notifications may have been missed
  ClientLink link_;      // last: its callback uses the members above

  void on_connect(Client& db) {
    db.listen({"events"});
    resync_ = true;
  }

  std::size_t count_streams() {
    std::size_t n = 0;
    for (auto& [id, subs] : by_job_) n += subs.size();
    for (auto& [key, g] : groups_) n += g.sinks.size();
    hub_.streams_.store(static_cast<int>(n));
    return n;
  }

  void deliver(const std::shared_ptr<StreamSink>& sink, std::vector<Frame> frames, bool end) {
    hub_.delivered_.fetch_add(static_cast<std::int64_t>(frames.size()));
    sink->send(std::move(frames), end);
  }

  // `frame` to every open stream (keep-alives and the shutdown: not counted as delivered).
  void broadcast(const Frame& frame, bool end) {
    for (auto& [id, subs] : by_job_)
      for (auto& sub : subs)
        if (!sub.ended && !sub.sink->gone()) sub.sink->send({frame}, end);
    for (auto& [key, g] : groups_)
      for (auto& sink : g.sinks)
        if (!sink->gone()) sink->send({frame}, end);
  }

  void refuse_batch(const std::string& message) {
    for (auto& [sink, req] : batch_) sink->refuse(error_response(503, "unavailable", message));
    batch_.clear();
  }

  // Drops streams that ended or whose client went away.
  void purge() {
    for (auto it = by_job_.begin(); it != by_job_.end();) {
      auto& subs = it->second;
      subs.erase(std::remove_if(subs.begin(), subs.end(), [](const JobSub& j) { return j.ended || j.sink->gone(); }),
                 subs.end());
      it = subs.empty() ? by_job_.erase(it) : std::next(it);
    }
    for (auto it = groups_.begin(); it != groups_.end();) {
      auto& sinks = it->second.sinks;
      sinks.erase(std::remove_if(sinks.begin(), sinks.end(), [](const auto& k) { return k->gone(); }), sinks.end());
      it = sinks.empty() ? groups_.erase(it) : std::next(it);
    }
  }

  // The database side of one round: new streams admitted, the listener row kept in step, the
  // per-job streams' jobs re-read when due (or after a reconnect).
  void sync(Client& db) {
    if (!batch_.empty()) {
      // Watched before the jobs' current state is read: no change falls in between.
      register_listener(db, watch_of(batch_));
      admit(db);
    }
    const auto now = Steady::now();
    keep_listener(db, now);
    if (resync_ || now >= poll_at_) {
      resync_ = false;
      poll_at_ = now + options_.job_poll;
      refresh_jobs(db, all_job_ids(), {});
    }
  }

  // What the streams (and those about to open) follow: written to the listener row whenever it
  // changes, so the database announces exactly that.
  EventWatch watch_of(const Pending& pending) {
    EventWatch w;
    std::set<JobId> jobs;
    std::set<std::string> queues;
    for (auto& [id, subs] : by_job_) jobs.insert(id);
    for (auto& [key, g] : groups_) {
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
  }

  void register_listener(Client& db, const EventWatch& w) {
    db.register_event_listener(options_.listener_name, options_.host, options_.pid, w, options_.listener_ttl);
    if (!registered_) spdlog::info("event hub: announcing job events ({} stream(s) open)", w.streams);
    registered_ = true;
    watch_ = w;
    renew_at_ = Steady::now() + options_.listener_ttl / 3;
  }

  // The listener row: renewed while streams are open and rewritten when what they follow
  // changes; removed once no stream has been open for the linger.
  void keep_listener(Client& db, Steady::time_point now) {
    const auto n = count_streams();
    const auto w = watch_of({});
    const bool changed = w.jobs != watch_.jobs || w.queues != watch_.queues || w.all_queues != watch_.all_queues ||
                         w.streams != watch_.streams;
    if (n > 0) {
      empty_since_ = now;
      if (!registered_ || changed || now >= renew_at_) register_listener(db, w);
    } else if (registered_ && changed) {
      register_listener(db, w);  // watching nothing until the linger is over
    } else if (registered_ && now - empty_since_ >= options_.linger) {
      db.unregister_event_listener(options_.listener_name);
      registered_ = false;
      spdlog::info("event hub: no stream open for {}; job events are no longer announced",
                   format_duration(options_.linger));
    }
  }

  // New streams: the current state of each job asked for (the listener row is already written).
  void admit(Client& db) {
    std::vector<JobId> ids;
    for (auto& [sink, req] : batch_)
      if (req.job) ids.push_back(*req.job);
    std::unordered_map<JobId, Job> found;
    if (!ids.empty())
      for (auto& j : db.get_many(ids)) found.emplace(j.id, std::move(j));
    for (auto& [sink, req] : batch_) {
      if (sink->gone()) continue;
      if (!req.job) {
        open_queue_stream(sink, req.queues);
        continue;
      }
      const auto f = found.find(*req.job);
      if (f == found.end()) {
        sink->refuse(error_response(404, "not_found", "job " + std::to_string(*req.job) + " does not exist"));
        continue;
      }
      open_job_stream(sink, f->second);
    }
    batch_.clear();
  }

  void open_queue_stream(const std::shared_ptr<StreamSink>& sink, std::vector<std::string> queues) {
    std::sort(queues.begin(), queues.end());
    queues.erase(std::unique(queues.begin(), queues.end()), queues.end());
    auto& g = groups_[group_key(queues)];
    g.queues = std::move(queues);
    g.sinks.push_back(sink);
    sink->open({}, false);
  }

  // The job's current state first; a job already finished ends its stream at once.
  void open_job_stream(const std::shared_ptr<StreamSink>& sink, const Job& job) {
    JobSub sub{sink, std::string(to_string(job.state)), job.attempt, false};
    std::vector<Frame> first{sse_frame("state", json::serialize(job_to_json(job)))};
    hub_.delivered_.fetch_add(1);
    if (is_final(job.state)) {
      first.push_back(end_frame("finished"));
      hub_.delivered_.fetch_add(1);
      sink->open(std::move(first), true);
      return;
    }
    sink->open(std::move(first), false);
    by_job_[job.id].push_back(std::move(sub));
  }

  std::vector<JobId> all_job_ids() const {
    std::vector<JobId> ids;
    ids.reserve(by_job_.size());
    for (auto& [id, subs] : by_job_) ids.push_back(id);
    return ids;
  }

  // Reads the jobs of per-job streams (all of them, or `ids`) and sends what changed.
  void refresh_jobs(Client& db, const std::vector<JobId>& ids, const std::unordered_map<JobId, const Entry*>& deleted) {
    if (ids.empty()) return;
    std::unordered_map<JobId, Job> found;
    for (auto& j : db.get_many(ids)) found.emplace(j.id, std::move(j));
    for (const JobId id : ids) {
      auto it = by_job_.find(id);
      if (it == by_job_.end()) continue;
      const auto f = found.find(id);
      const auto d = deleted.find(id);
      for (auto& sub : it->second)
        update_job_sub(sub, f == found.end() ? nullptr : &f->second, d == deleted.end() ? nullptr : d->second);
    }
  }

  // Sends a per-job stream what is new in `job` (nullptr: the job is gone).
  void update_job_sub(JobSub& sub, const Job* job, const Entry* deleted) {
    if (sub.ended || sub.sink->gone()) return;
    if (!job) return end_deleted(sub, deleted);
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
  }

  // The job is gone: its last state (when the notification told it and it is news), then `end`.
  void end_deleted(JobSub& sub, const Entry* deleted) {
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
  }

  // One notification: per-job streams get the jobs re-read (state) or the progress; queue
  // streams get every entry as it is.
  void dispatch(Client& db, const std::string& payload) {
    const auto entries = parse_entries(payload);
    if (entries.empty()) return;
    if (!by_job_.empty()) fan_out_to_jobs(db, entries);
    for (auto& [key, g] : groups_) fan_out_to_group(g, entries);
  }

  void fan_out_to_jobs(Client& db, const std::vector<Entry>& entries) {
    std::vector<JobId> ids;
    std::unordered_map<JobId, const Entry*> deleted;
    for (const auto& e : entries) {
      if (e.op == 'p' || !by_job_.count(e.id)) continue;
      ids.push_back(e.id);
      if (e.op == 'd') deleted[e.id] = &e;
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    // Progress first: it was recorded before any state change in the same payload's statements.
    for (const auto& e : entries) {
      if (e.op != 'p') continue;
      auto it = by_job_.find(e.id);
      if (it == by_job_.end()) continue;
      const auto frame = sse_frame(
          "progress", json::serialize(json::object{{"id", e.id}, {"attempt", e.attempt}, {"progress", e.progress}}));
      for (auto& sub : it->second)
        if (!sub.ended && !sub.sink->gone()) deliver(sub.sink, {frame}, false);
    }
    refresh_jobs(db, ids, deleted);
  }

  void fan_out_to_group(Group& g, const std::vector<Entry>& entries) {
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
    if (frames.empty()) return;
    for (const auto& sink : g.sinks)
      if (!sink->gone()) deliver(sink, frames, false);
  }

  void send_keep_alives() {
    const auto now = Steady::now();
    if (now < keep_alive_at_) return;
    keep_alive_at_ = now + options_.keep_alive;
    broadcast(keep_alive_frame(), false);
  }

  // Until the next thing due: a keep-alive, a job poll, the listener row's renewal or its linger,
  // or (without a connection) the next reconnect.
  Duration wait_time(bool need_db) {
    auto until = std::min(keep_alive_at_, by_job_.empty() ? keep_alive_at_ : poll_at_);
    if (registered_) until = std::min(until, renew_at_);
    if (registered_ && count_streams() == 0) until = std::min(until, empty_since_ + options_.linger);
    auto timeout = std::chrono::duration_cast<Duration>(until - Steady::now());
    if (!link_.connected() && need_db) timeout = std::min(timeout, std::max(link_.retry_in(), Duration{}));
    return std::max(timeout, Duration{});
  }

  // Waits for notifications (each dispatched), a wake-up or the next thing due.
  void wait(bool need_db) {
    const auto timeout = wait_time(need_db);
    if (link_.connected()) {
      link_.with([&](Client& db) {
        for (const auto& n : db.wait_notifications(timeout, inbox_.wake_fd.fd()))
          if (n.event == "events") dispatch(db, n.payload);
      });
    } else {
      pollfd p{inbox_.wake_fd.fd(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + 1);
    }
    inbox_.wake_fd.clear();
  }

  // Every stream ends with a final event; new ones are refused; the listener row goes.
  void shut_down() {
    inbox_.take(batch_);
    refuse_batch("taskq-apid is shutting down");
    broadcast(end_frame("shutdown"), true);
    by_job_.clear();
    groups_.clear();
    hub_.streams_.store(0);
    if (registered_) link_.with([this](Client& db) { db.unregister_event_listener(options_.listener_name); });
  }
};

EventHub::EventHub(EventHubOptions options) : options_(std::move(options)), inbox_(std::make_unique<Inbox>()) {}

EventHub::~EventHub() {
  stop();
}

void EventHub::start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this] { Loop(*this).run(); });
}

void EventHub::subscribe(std::shared_ptr<StreamSink> sink, StreamRequest request) {
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->stop) {
      sink->refuse(error_response(503, "unavailable", "taskq-apid is shutting down"));
      return;
    }
    inbox_->incoming.emplace_back(std::move(sink), std::move(request));
  }
  inbox_->wake();
}

void EventHub::forget_gone() {
  inbox_->wake();
}

void EventHub::stop() {
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->stop) return;
    inbox_->stop = true;
  }
  inbox_->wake();
  if (thread_.joinable()) thread_.join();
}

}  // namespace taskq::api
