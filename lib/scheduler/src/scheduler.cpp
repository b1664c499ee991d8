// Scheduler: construction, start and stop of the two threads (lease_thread.cpp, work_thread.cpp),
// SIGHUP reloads, and what both threads share.
#include "taskq/scheduler/scheduler.hpp"

#include <cstdio>
#include <random>

#include "scheduler_impl.hpp"
#include "taskq/metrics/links.hpp"

using taskq::config::PeriodicConfig;

using taskq::store::DbLink;
using taskq::store::Store;

namespace taskq::scheduler {
namespace {

std::string random_suffix() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

}  // namespace

void Scheduler::Impl::sample_db_clock(Timestamp before, Timestamp db, Timestamp after) {
  std::lock_guard lk(mu);
  db_clock.sample(before, db, after);
}

void Scheduler::Impl::wake_lease_thread() const {
  wake->notify();
}

Scheduler::Scheduler(SchedulerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& d = *impl_;
  d.holder =
      (d.o.host.empty() ? std::string("host") : d.o.host) + ":" + std::to_string(d.o.pid) + ":" + random_suffix();
  for (const auto& p : d.o.config.periodic)
    d.schedules.push_back({p, cron::Expression::parse(p.cron), std::nullopt, std::nullopt});
  if (d.o.metrics) d.metrics = std::make_unique<SchedulerMetrics>(*d.o.metrics, [&d] { return d.public_term.load(); });
}

Scheduler::~Scheduler() {
  stop();
}

void Scheduler::reload_schedules(const std::vector<PeriodicConfig>& periodic) {
  std::vector<Schedule> fresh;
  for (const auto& p : periodic) fresh.push_back({p, cron::Expression::parse(p.cron), std::nullopt, std::nullopt});
  {
    std::lock_guard lk(impl_->mu);
    impl_->pending_schedules = std::move(fresh);
  }
  impl_->cv.notify_all();
}

const std::string& Scheduler::holder() const {
  return impl_->holder;
}

std::int64_t Scheduler::leading_term() const {
  return impl_->public_term.load();
}

bool Scheduler::healthy(Duration max_stall) const {
  const auto now = steady_ns();
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(max_stall).count();
  return now - impl_->lease_round.load() < limit && now - impl_->work_round.load() < limit;
}

void Scheduler::start() {
  auto& d = *impl_;
  if (d.started) return;
  Store::open(d.o.store)->require_current_schema();
  d.lease_link =
      std::make_unique<DbLink>(d.o.store.schema + " lease", d.o.store, [](Store& s) { s.listen({"leader"}); });
  d.work_link = std::make_unique<DbLink>(d.o.store.schema + " work", d.o.store);
  d.lease_link->connect_or_throw();
  d.work_link->connect_or_throw();
  d.wake.emplace();
  d.lease_round.store(steady_ns());
  d.work_round.store(steady_ns());
  d.lease_thread = std::jthread([&d] { d.lease_loop(); });
  d.work_thread = std::jthread([&d] { d.work_loop(); });
  if (d.o.metrics)
    taskq::metrics::add_link_metrics(*d.o.metrics, "taskq_scheduler", [&d] {
      std::lock_guard lk(d.links_mu);  // stop() closes them
      std::map<std::string, taskq::metrics::LinkState> out;
      if (d.lease_link) out["lease"] = {d.lease_link->reconnects(), d.lease_link->up()};
      if (d.work_link) out["work"] = {d.work_link->reconnects(), d.work_link->up()};
      return out;
    });
  d.started = true;
}

void Scheduler::stop() {
  auto& d = *impl_;
  if (!d.started || d.stopped) return;
  d.stopped = true;
  {
    std::lock_guard lk(d.mu);
    d.stopping = true;
  }
  d.cv.notify_all();
  d.work_thread.join();  // finishes its current step first
  d.wake_lease_thread();
  d.lease_thread.join();  // resigns the lease
  std::lock_guard lk(d.links_mu);
  d.work_link.reset();
  d.lease_link.reset();
  d.wake.reset();
}

}  // namespace taskq::scheduler
