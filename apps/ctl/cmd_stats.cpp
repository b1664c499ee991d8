// taskctl stats [--queue Q] [--watch SECONDS]
#include <unistd.h>

#include <iostream>
#include <thread>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"
#include "taskq/queue/json_shapes.hpp"

using taskq::store::QueueStats;

using taskq::queue::queue_stats_json;

namespace taskq::ctl {
namespace {

void print_stats(Context& ctx, const std::vector<QueueStats>& stats, const std::optional<std::string>& only_queue) {
  if (ctx.output() == OutputFormat::table) {
    Table t({"QUEUE", "PAUSED", "SCHEDULED", "AVAILABLE", "RUNNING", "COMPLETED", "FAILED", "CANCELLED",
             "OLDEST_AVAILABLE", "FINISHED_1M"});
    for (const auto& s : stats)
      t.add({s.queue, s.paused_at ? "yes" : "no", std::to_string(s.scheduled), std::to_string(s.available),
             std::to_string(s.running), std::to_string(s.completed), std::to_string(s.failed),
             std::to_string(s.cancelled),
             s.oldest_available_age
                 ? format_duration(std::chrono::duration_cast<std::chrono::seconds>(*s.oldest_available_age))
                 : "-",
             std::to_string(s.finished_last_minute)});
    if (stats.empty())
      ctx.note(only_queue ? "queue '" + *only_queue + "' has no jobs and no settings" : "no queues yet");
    else
      t.print();
    return;
  }
  std::vector<boost::json::value> out;
  for (const auto& s : stats) out.emplace_back(queue_stats_json(s));
  print_json_values(ctx.output(), out);
}

}  // namespace

void add_stats(CLI::App& app, Context& ctx) {
  struct Options {
    std::string queue;
    double watch = 0;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("stats", "Per queue: jobs by state, paused or not, backlog age, throughput");
  cmd->add_option("--queue", o->queue, "Only this queue");
  cmd->add_option("--watch", o->watch, "Refresh every SECONDS until interrupted");
  cmd->footer("Examples:\n  taskctl stats\n  taskctl stats --queue mail --watch 2\n  taskctl -o json stats");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      if (o->watch < 0 || o->watch > 86400)
        throw Error(Errc::invalid_input, "--watch: seconds must be between 0 and 86400");
      std::optional<std::string> queue;
      if (!o->queue.empty()) queue = o->queue;
      if (o->watch == 0) {
        print_stats(ctx, ctx.client().stats(queue), queue);
        return exit_ok;
      }
      const bool tty = ::isatty(STDOUT_FILENO) == 1;
      for (;;) {
        const auto stats = ctx.client().stats(queue);
        if (tty && ctx.output() == OutputFormat::table) std::cout << "\033[H\033[2J";
        if (ctx.output() == OutputFormat::table)
          std::cout << format_rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(SystemClock::instance().now()))
                    << "  (every " << o->watch << "s, Ctrl-C to stop)\n";
        print_stats(ctx, stats, queue);
        std::this_thread::sleep_for(std::chrono::duration<double>(o->watch));
      }
    };
  });
}

}  // namespace taskq::ctl
