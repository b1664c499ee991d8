#include "taskq/queue/client.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <thread>

#include "taskq/core/error.hpp"
#include "taskq/core/json.hpp"

using taskq::store::BulkInsertResult;
using taskq::store::JobChange;
using taskq::store::JobFilter;
using taskq::store::JobPage;
using taskq::store::QueueChange;
using taskq::store::RescueResult;
using taskq::store::Store;
using taskq::store::Throughput;

namespace taskq::queue {
namespace {

void validate_filter(const JobFilter& f) {
  for (const auto& q : f.queues) validate_name("queue", q);
  if (f.kind) validate_name("kind", *f.kind);
  if (f.tag) validate_name("tag", *f.tag);
  if (f.limit < 1 || f.limit > 100000)
    throw Error(Errc::invalid_input, "limit: " + std::to_string(f.limit) + " is out of range 1..100000");
}

void validate_queue_names(const std::vector<std::string>& queues) {
  if (queues.empty()) throw Error(Errc::invalid_input, "no queue named");
  for (const auto& q : queues) validate_name("queue", q);
}

}  // namespace

std::unique_ptr<Client> Client::connect(const ClientOptions& options) {
  return std::make_unique<Client>(Store::open(options.store), options.limits);
}

Client::Client(std::unique_ptr<Store> store, EnqueueLimits limits)
    : owned_(std::move(store)), store_(owned_.get()), limits_(limits) {}

Client::Client(Store& borrowed, EnqueueLimits limits) : store_(&borrowed), limits_(limits) {}

EnqueueResult Client::enqueue(const EnqueueParams& params) {
  validate_enqueue(params, limits_);
  return store_->insert(params);
}

std::vector<EnqueueResult> Client::enqueue_batch(const std::vector<EnqueueParams>& jobs) {
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    try {
      validate_enqueue(jobs[i], limits_, JsonCheck::already_parsed);
    } catch (const Error& e) {
      throw Error(e.code(), "jobs[" + std::to_string(i) + "]." + e.what() + "; nothing was enqueued");
    }
  }
  return store_->insert_batch(jobs);
}

BulkInsertResult Client::enqueue_many(const std::function<bool(EnqueueParams&)>& next) {
  std::int64_t n = 0;
  return store_->insert_stream([&](EnqueueParams& p) {
    if (!next(p)) return false;
    ++n;
    try {
      validate_enqueue(p, limits_);
    } catch (const Error& e) {
      throw Error(e.code(), "job " + std::to_string(n) + ": " + e.what() + "; nothing was enqueued");
    }
    return true;
  });
}

BulkInsertResult Client::enqueue_jsonl(std::istream& in, const std::string& source_name) {
  std::string line;
  std::int64_t line_no = 0;
  unsigned char buffer[16384];
  return store_->insert_stream([&](EnqueueParams& p) {
    for (;;) {
      if (!std::getline(in, line)) {
        if (in.bad()) throw Error(Errc::invalid_input, source_name + ": read error; nothing was enqueued");
        return false;
      }
      ++line_no;
      std::size_t first = line.find_first_not_of(" \t\r");
      if (first == std::string::npos) continue;  // blank line
      try {
        boost::json::monotonic_resource mr(buffer, sizeof buffer);
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(line, ec, &mr);
        if (ec) {
          parse_json("line", line);  // error path only: re-parse for a message with the position
          throw Error(Errc::invalid_input, "invalid JSON: " + ec.message());
        }
        p = enqueue_params_from_json(v);
        validate_enqueue(p, limits_, JsonCheck::already_parsed);
      } catch (const Error& e) {
        throw Error(e.code(), source_name + ":" + std::to_string(line_no) + ": " + e.what() + "; nothing was enqueued");
      }
      return true;
    }
  });
}

Job Client::get_existing(JobId id) {
  auto job = store_->get(id);
  if (!job) throw Error(Errc::not_found, "no job with id " + std::to_string(id));
  return *job;
}

std::vector<Job> Client::list(const JobFilter& filter) {
  validate_filter(filter);
  return store_->list(filter);
}

JobPage Client::list_page(const JobFilter& filter) {
  validate_filter(filter);
  return store_->list_page(filter);
}

std::vector<JobChange> Client::cancel(const std::vector<JobId>& ids, bool dry_run) {
  if (ids.empty()) throw Error(Errc::invalid_input, "no job id given");
  return store_->cancel(ids, dry_run);
}

std::vector<JobChange> Client::cancel_matching(const JobFilter& filter, bool dry_run) {
  validate_filter(filter);
  return store_->cancel_matching(filter, dry_run);
}

std::vector<JobChange> Client::retry(const std::vector<JobId>& ids, bool dry_run) {
  if (ids.empty()) throw Error(Errc::invalid_input, "no job id given");
  return store_->retry(ids, dry_run);
}

std::vector<JobChange> Client::retry_matching(const JobFilter& filter, bool dry_run) {
  validate_filter(filter);
  for (JobState s : filter.states)
    if (s == JobState::running)
      throw Error(Errc::invalid_input, "state: running jobs cannot be retried (cancel them first)");
  return store_->retry_matching(filter, dry_run);
}

Throughput Client::throughput(int minutes) {
  if (minutes < 1 || minutes > max_throughput_minutes)
    throw Error(Errc::invalid_input, "minutes: must be an integer from 1 to " + std::to_string(max_throughput_minutes));
  return store_->throughput(minutes);
}

std::vector<QueueChange> Client::pause(const std::vector<std::string>& queues) {
  validate_queue_names(queues);
  return store_->set_paused(queues, true);
}

std::vector<QueueChange> Client::resume(const std::vector<std::string>& queues) {
  validate_queue_names(queues);
  return store_->set_paused(queues, false);
}

DrainReport Client::drain(const std::vector<std::string>& queues, Duration timeout, const Clock& clock,
                          const std::function<void(const std::vector<Job>&)>& on_wait) {
  validate_queue_names(queues);
  store_->set_paused(queues, true);
  const auto start = clock.steady_now();
  const auto deadline = start + timeout;
  DrainReport report;
  bool first = true;
  for (;;) {
    auto running = store_->running_jobs(queues);
    if (first) report.waited_for = running;
    first = false;
    if (running.empty()) break;
    if (on_wait) on_wait(running);
    if (clock.steady_now() >= deadline) {
      std::string names, ids;
      for (const auto& q : queues) names += (names.empty() ? "" : " ") + q;
      for (std::size_t i = 0; i < running.size() && i < 10; ++i)
        ids += (i ? ", " : "") + std::to_string(running[i].id) + " (" + running[i].queue + "/" + running[i].kind + ")";
      if (running.size() > 10) ids += ", ...";
      throw Error(Errc::timeout, "drain timed out after " + format_duration(timeout) + ": " +
                                     std::to_string(running.size()) + " job(s) still running: " + ids +
                                     ". The queues stay paused; resume them with: taskctl resume " + names);
    }
    const auto left = deadline - clock.steady_now();
    clock.sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(100)));
  }
  report.waited = std::chrono::duration_cast<Duration>(clock.steady_now() - start);
  return report;
}

PruneReport Client::prune(Duration older_than, const std::vector<JobState>& states, int batch_size, bool dry_run) {
  if (batch_size < 1 || batch_size > 100000)
    throw Error(Errc::invalid_input, "batch size: " + std::to_string(batch_size) + " is out of range 1..100000");
  if (states.empty()) throw Error(Errc::invalid_input, "state: give at least one of completed, cancelled, failed");
  for (JobState s : states)
    if (!is_final(s))
      throw Error(Errc::invalid_input, std::string("state: ") + to_string(s) +
                                           " jobs are not finished and cannot be pruned (use completed, cancelled, "
                                           "failed)");
  PruneReport report;
  if (dry_run) {
    report.deleted = store_->prune_batch(older_than, states, batch_size, true);
    return report;
  }
  for (;;) {
    const auto n = store_->prune_batch(older_than, states, batch_size, false);
    report.deleted += n;
    ++report.batches;
    if (n < batch_size) break;
  }
  return report;
}

RescueResult Client::rescue(Duration grace, bool dry_run) {
  if (grace <= Duration{}) throw Error(Errc::invalid_input, "--grace: must be greater than 0");
  constexpr int batch = 1000;
  RescueResult total = store_->rescue(grace, dry_run ? 100000 : batch, dry_run);
  if (dry_run) return total;
  auto last = total.jobs.size();
  while (last == static_cast<std::size_t>(batch)) {
    auto more = store_->rescue(grace, batch, false);
    last = more.jobs.size();
    total.jobs.insert(total.jobs.end(), more.jobs.begin(), more.jobs.end());
    total.forgotten_workers += more.forgotten_workers;
  }
  return total;
}

}  // namespace taskq::queue
