#include "db_pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

using taskq::queue::Client;
using taskq::queue::ClientOptions;

namespace taskq::api {

DbPool::DbPool(ClientOptions options, int size, Duration acquire_timeout, EnqueueAnswer answer, GetAnswer get_answer)
    : options_(std::move(options)),
      answer_(std::move(answer)),
      get_answer_(std::move(get_answer)),
      last_change_(Clock::now()),
      size_(size),
      max_lockers_(std::max(1, size / 2)),
      acquire_timeout_(acquire_timeout) {
  for (int i = 0; i < size; ++i) threads_.emplace_back([this, i] { run(i); });
  reaper_ = std::jthread([this] { reap(); });
}

Response DbPool::busy(Duration acquire_timeout) {
  return retry_after(error_response(503, "busy",
                                    "no database connection was free within api.db_acquire_timeout (" +
                                        format_duration(acquire_timeout) + "); try again"),
                     1);
}

Duration DbPool::stalled_for() const {
  std::lock_guard lk(mu_);
  if (busy_ < size_) return Duration{};
  return std::chrono::duration_cast<Duration>(Clock::now() - last_change_);
}

void DbPool::took() {
  ++busy_;
  last_change_ = Clock::now();
}

void DbPool::finished() {
  --busy_;
  last_change_ = Clock::now();
}

std::deque<DbPool::Item>::iterator DbPool::next_task() {
  const bool lockers_full = lockers_running_ >= max_lockers_;
  for (auto it = queue_.begin(); it != queue_.end(); ++it)
    if (!it->may_lock || !lockers_full) return it;
  return queue_.end();
}

// Answers every request that has waited acquire_timeout for a connection, then sleeps until the
// next one would.
void DbPool::reap() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    const auto now = Clock::now();
    const auto limit = std::chrono::duration_cast<Clock::duration>(acquire_timeout_);
    std::vector<Done> expired;
    auto next = now + limit;
    const auto sweep = [&](auto& items) {
      for (auto it = items.begin(); it != items.end();) {
        if (now - it->queued >= limit) {
          expired.push_back(std::move(it->done));
          it = items.erase(it);
        } else {
          next = std::min(next, it->queued + limit);
          ++it;
        }
      }
    };
    sweep(queue_);
    sweep(enqueues_);
    sweep(gets_);
    if (!expired.empty()) {
      lk.unlock();
      refused_.fetch_add(static_cast<std::int64_t>(expired.size()));
      spdlog::warn(
          "db pool: {} request(s) waited {} for a database connection ({} in all, at most {} for cancel, "
          "retry, pause and resume); answered 503 busy",
          expired.size(), format_duration(acquire_timeout_), size_, max_lockers_);
      for (auto& done : expired) done(busy(acquire_timeout_));
      lk.lock();
      continue;
    }
    reaper_cv_.wait_until(lk, next);
  }
}

DbPool::~DbPool() {
  stop();
}

void DbPool::check_connect() {
  Client::connect(options_)->require_current_schema();
}

void DbPool::submit(Task task, Done done, bool may_lock) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back({std::move(task), std::move(done), may_lock, Clock::now()});
  }
  cv_.notify_one();
}

void DbPool::submit_enqueue(EnqueueParams job, Done done) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    enqueues_.push_back({std::move(job), std::move(done), Clock::now()});
    wake = groups_running_ < max_groups_at_once;
  }
  if (wake) cv_.notify_one();
}

void DbPool::submit_get(JobId id, Done done) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    gets_.push_back({id, std::move(done), Clock::now()});
    // While a read group runs, the next one starts when it ends; waking a thread now would
    // only have it find the slot taken.
    wake = reads_running_ < max_reads_at_once;
  }
  if (wake) cv_.notify_one();
}

void DbPool::run_group(Client& client, std::vector<EnqueueItem>& group, bool& lost) {
  if (group.size() > 1) {
    std::vector<EnqueueParams> jobs;
    jobs.reserve(group.size());
    for (auto& g : group) jobs.push_back(g.job);
    try {
      const auto results = client.enqueue_validated(jobs);
      for (std::size_t i = 0; i < group.size(); ++i) group[i].done(answer_(results[i]));
      return;
    } catch (const Error& e) {
      if (e.code() == Errc::unavailable) {
        lost = true;
        for (auto& g : group) g.done(from_error(e));
        return;
      }
      // Something in the group failed: fall through to one transaction per job.
    }
  }
  for (auto& g : group) {
    if (lost) {
      g.done(unavailable());
      continue;
    }
    try {
      g.done(answer_(client.enqueue_validated(g.job)));
    } catch (const Error& e) {
      if (e.code() == Errc::unavailable) lost = true;
      g.done(from_error(e));
    }
  }
}

void DbPool::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  for (auto& t : threads_) t.join();
}

Response DbPool::unavailable() {
  return retry_after(error_response(503, "unavailable", "PostgreSQL is unreachable; try again"), 1);
}

void DbPool::run(int index) {
  Connection conn;
  conn.index = index;
  conn.options = options_;
  conn.options.store.application_name = (options_.store.application_name + " db" + std::to_string(index)).substr(0, 63);
  for (;;) {
    Work work;
    if (!take_work(work)) return;  // stopping, and all is done
    connect(conn);
    if (!work.reads.empty())
      run_reads(conn, work.reads);
    else if (!work.group.empty())
      run_enqueues(conn, work.group);
    else
      run_task(conn, work.item);
  }
}

bool DbPool::take_work(Work& work) {
  std::unique_lock lk(mu_);
  auto group_ready = [&] { return !enqueues_.empty() && groups_running_ < max_groups_at_once; };
  auto reads_ready = [&] { return !gets_.empty() && reads_running_ < max_reads_at_once; };
  auto task_ready = [&] { return next_task() != queue_.end(); };
  cv_.wait(lk, [&] {
    return task_ready() || reads_ready() || group_ready() ||
           (stopping_ && queue_.empty() && enqueues_.empty() && gets_.empty());
  });
  if (!task_ready() && !reads_ready() && !group_ready()) return false;
  took();
  if (reads_ready()) {
    ++reads_running_;
    while (!gets_.empty() && work.reads.size() < max_group) {
      work.reads.push_back(std::move(gets_.front()));
      gets_.pop_front();
    }
  } else if (group_ready()) {
    ++groups_running_;
    while (!enqueues_.empty() && work.group.size() < max_group) {
      work.group.push_back(std::move(enqueues_.front()));
      enqueues_.pop_front();
    }
  } else {
    const auto it = next_task();
    work.item = std::move(*it);
    queue_.erase(it);
    if (work.item.may_lock) ++lockers_running_;
  }
  return true;
}

void DbPool::connect(Connection& conn) {
  if (conn.client || std::chrono::steady_clock::now() < conn.next_attempt) return;
  try {
    conn.client = Client::connect(conn.options);
    if (conn.down_logged) spdlog::info("db{}: connected to PostgreSQL again", conn.index);
    conn.down_logged = false;
    conn.backoff = std::chrono::milliseconds{0};
  } catch (const std::exception& e) {
    conn.backoff = std::min(std::chrono::milliseconds{5000},
                            conn.backoff.count() == 0 ? std::chrono::milliseconds{100} : conn.backoff * 2);
    conn.next_attempt = std::chrono::steady_clock::now() + conn.backoff;
    if (!conn.down_logged) spdlog::warn("db{}: PostgreSQL unreachable ({}); retrying", conn.index, e.what());
    conn.down_logged = true;
  }
}

void DbPool::run_reads(Connection& conn, std::vector<GetItem>& reads) {
  if (!conn.client) {
    for (auto& g : reads) g.done(unavailable());
  } else {
    try {
      std::vector<JobId> ids;
      ids.reserve(reads.size());
      for (const auto& g : reads) ids.push_back(g.id);
      std::map<JobId, Job> found;
      for (auto& j : conn.client->get_many(ids)) found.emplace(j.id, std::move(j));
      for (auto& g : reads) {
        const auto it = found.find(g.id);
        g.done(get_answer_(g.id, it == found.end() ? nullptr : &it->second));
      }
    } catch (const Error& e) {
      if (e.code() == Errc::unavailable) conn.client.reset();
      for (auto& g : reads) g.done(from_error(e));
    }
  }
  {
    std::lock_guard lk(mu_);
    --reads_running_;
    finished();
  }
  cv_.notify_one();  // the next read group, or other work, if any waits
}

void DbPool::run_enqueues(Connection& conn, std::vector<EnqueueItem>& group) {
  if (!conn.client) {
    for (auto& g : group) g.done(unavailable());
  } else {
    bool lost = false;
    run_group(*conn.client, group, lost);
    if (lost) conn.client.reset();
  }
  {
    std::lock_guard lk(mu_);
    --groups_running_;
    finished();
  }
  cv_.notify_one();  // the next group, or other work, if any waits
}

void DbPool::run_task(Connection& conn, Item& item) {
  Response r;
  if (!conn.client) {
    r = unavailable();
  } else {
    try {
      r = item.task(*conn.client);
    } catch (const Error& e) {
      if (e.code() == Errc::unavailable) conn.client.reset();
      r = from_error(e);
    } catch (const std::exception& e) {
      spdlog::error("db{}: {}", conn.index, e.what());
      r = error_response(500, "internal", e.what());
    }
  }
  item.done(std::move(r));
  {
    std::lock_guard lk(mu_);
    if (item.may_lock) --lockers_running_;
    finished();
  }
  cv_.notify_one();  // a locker waiting for its share, if any
}

}  // namespace taskq::api
