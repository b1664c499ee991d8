// taskctl workers [--grace D]      registered workers, live and dead, and what they run
// taskctl rescue [--grace D] [--dry-run]   put the jobs of dead workers back
#include <iostream>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"
#include "taskq/queue/json_shapes.hpp"

using taskq::store::WorkerInfo;

using taskq::queue::change_json;
using taskq::queue::worker_json;

namespace taskq::ctl {
namespace {

// Same default as taskq-schedulerd's worker_grace: 15 missed heartbeats at the default 2s.
constexpr const char* default_grace = "30s";

std::string running_text(const WorkerInfo& w) {
  if (w.running == 0) return "0";
  std::string kinds;
  for (const auto& [kind, n] : w.running_by_kind) kinds += (kinds.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  return std::to_string(w.running) + " (" + kinds + ")";
}

}  // namespace

void add_workers(CLI::App& app, Context& ctx) {
  struct Options {
    std::string grace = default_grace;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("workers", "List registered workers, live and dead, and what they run");
  cmd->add_option("--grace", o->grace, "Heartbeat age after which a worker counts as dead (default 30s)");
  cmd->footer("Examples:\n  taskctl workers\n  taskctl -o json workers");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      const Duration grace = parse_duration(o->grace);
      if (grace <= Duration{}) throw Error(Errc::invalid_input, "--grace: must be greater than 0");
      auto& client = ctx.client();
      const auto workers = client.workers();
      const auto now = client.now();
      if (ctx.output() == OutputFormat::table) {
        if (workers.empty()) {
          ctx.note("no workers registered (start taskq-workerd)");
          return exit_ok;
        }
        Table t({"ID", "HOST", "PID", "STATUS", "QUEUES", "RUNNING", "HEARTBEAT", "STARTED", "VERSION"});
        for (const auto& w : workers)
          t.add({std::to_string(w.id), w.host, std::to_string(w.pid), w.heartbeat_age > grace ? "dead" : "live",
                 join(w.queues), running_text(w), relative_time(now - w.heartbeat_age, now),
                 relative_time(w.started_at, now), w.version.empty() ? "-" : w.version});
        t.print();
        return exit_ok;
      }
      std::vector<boost::json::value> out;
      for (const auto& w : workers) out.emplace_back(worker_json(w, grace));
      print_json_values(ctx.output(), out);
      return exit_ok;
    };
  });
}

void add_rescue(CLI::App& app, Context& ctx) {
  struct Options {
    std::string grace = default_grace;
    bool dry_run = false;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "rescue", "Put the running jobs of dead workers (heartbeat older than the grace) back to be retried");
  cmd->add_option("--grace", o->grace, "Heartbeat age after which a worker counts as dead (default 30s)");
  cmd->add_flag("--dry-run", o->dry_run, "Show what would be rescued, change nothing");
  cmd->footer(
      "Each rescued job gets a \"worker lost\" entry in its errors and is retried after the default\n"
      "backoff, or fails when out of attempts, or is cancelled when a cancel was requested.\n"
      "Examples:\n  taskctl rescue\n  taskctl rescue --grace 10s --dry-run");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      const Duration grace = parse_duration(o->grace);
      const auto r = ctx.client().rescue(grace, o->dry_run);
      std::int64_t retry = 0, failed = 0, cancelled = 0;
      for (const auto& j : r.jobs) {
        if (j.to == JobState::failed)
          ++failed;
        else if (j.to == JobState::cancelled)
          ++cancelled;
        else
          ++retry;
      }
      if (ctx.output() == OutputFormat::table) {
        if (!r.jobs.empty()) {
          Table t({"ID", "QUEUE", "KIND", "FROM", "TO"});
          for (const auto& j : r.jobs) t.add({std::to_string(j.id), j.queue, j.kind, "running", to_string(j.to)});
          t.print();
        }
        const std::string verb = o->dry_run ? "would rescue " : "rescued ";
        if (!r.vanished_workers.empty())
          std::cout << r.vanished_workers.size()
                    << " worker(s) with running jobs but no row in workers: their jobs are rescued unless they "
                       "heartbeat within the grace\n";
        if (r.dead_workers.empty())
          std::cout << "no dead workers (grace " << format_duration(grace) << ")\n";
        else if (r.jobs.empty())
          std::cout << "nothing to rescue: " << r.dead_workers.size() << " dead worker(s) hold no running job\n";
        else
          std::cout << verb << r.jobs.size() << " job(s) of " << r.dead_workers.size() << " dead worker(s): " << retry
                    << " to retry, " << failed << " failed, " << cancelled << " cancelled\n";
        return exit_ok;
      }
      boost::json::array jobs;
      for (const auto& j : r.jobs) jobs.emplace_back(change_json(j));
      boost::json::array dead;
      for (auto id : r.dead_workers) dead.emplace_back(id);
      boost::json::array vanished;
      for (auto id : r.vanished_workers) vanished.emplace_back(id);
      print_json(boost::json::object{{"dry_run", o->dry_run},
                                     {"dead_workers", std::move(dead)},
                                     {"vanished_workers", std::move(vanished)},
                                     {"jobs", std::move(jobs)},
                                     {"retry", retry},
                                     {"failed", failed},
                                     {"cancelled", cancelled}});
      return exit_ok;
    };
  });
}

}  // namespace taskq::ctl
