// taskctl pause QUEUE...|--all ; resume QUEUE...|--all ; drain QUEUE... [--timeout D]
#include <iostream>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"
#include "taskq/queue/json_shapes.hpp"

using taskq::store::QueueChange;

using taskq::queue::queue_change_json;

namespace taskq::ctl {
namespace {

struct QueueOptions {
  std::vector<std::string> queues;
  bool all = false;
};

std::vector<std::string> chosen_queues(Context& ctx, const QueueOptions& o, const char* command) {
  if (o.all && !o.queues.empty())
    throw Error(Errc::invalid_input, std::string(command) + ": give queue names or --all, not both");
  if (!o.all && o.queues.empty())
    throw Error(Errc::invalid_input, std::string(command) + ": give queue names or --all");
  if (!o.all) return o.queues;
  auto all = ctx.client().queues();
  if (all.empty()) ctx.note(std::string(command) + ": there are no queues yet");
  return all;
}

void print_queue_changes(Context& ctx, const std::vector<QueueChange>& changes, bool paused) {
  if (ctx.output() == OutputFormat::table) {
    for (const auto& c : changes)
      std::cout << c.queue << ": "
                << (paused ? (c.changed ? "paused" : "was already paused") : (c.changed ? "resumed" : "was not paused"))
                << '\n';
    return;
  }
  std::vector<boost::json::value> out;
  for (const auto& c : changes) out.push_back(queue_change_json(c, paused));
  print_json_values(ctx.output(), out);
}

}  // namespace

void add_pause_resume(CLI::App& app, Context& ctx) {
  for (bool pause : {true, false}) {
    auto o = std::make_shared<QueueOptions>();
    auto* cmd = app.add_subcommand(pause ? "pause" : "resume",
                                   pause ? "Stop workers from starting jobs of these queues (running jobs go on)"
                                         : "Let workers start jobs of these queues again");
    cmd->add_option("queues", o->queues, "Queue names");
    cmd->add_flag("--all", o->all, "Every queue that has jobs or was paused before");
    cmd->footer(pause ? "Examples:\n  taskctl pause mail reports\n  taskctl pause --all"
                      : "Examples:\n  taskctl resume mail\n  taskctl resume --all");
    cmd->callback([&ctx, o, pause] {
      ctx.action = [&ctx, o, pause] {
        const auto queues = chosen_queues(ctx, *o, pause ? "pause" : "resume");
        if (queues.empty()) return exit_ok;
        auto changes = pause ? ctx.client().pause(queues) : ctx.client().resume(queues);
        print_queue_changes(ctx, changes, pause);
        return exit_ok;
      };
    });
  }
}

void add_drain(CLI::App& app, Context& ctx) {
  struct Options {
    std::vector<std::string> queues;
    std::string timeout = "5m";
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("drain", "Pause queues and wait until none of their jobs is running");
  cmd->add_option("queues", o->queues, "Queue names")->required();
  cmd->add_option("--timeout", o->timeout, "Give up after this long (exit 5, queues stay paused); default 5m");
  cmd->footer(
      "Use before maintenance or a deploy; resume the queues afterwards.\n"
      "Examples:\n  taskctl drain mail --timeout 2m && deploy && taskctl resume mail");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      const Duration timeout = parse_duration(o->timeout);
      std::size_t last = SIZE_MAX;
      const auto report =
          ctx.client().drain(o->queues, timeout, SystemClock::instance(), [&](const std::vector<Job>& running) {
            if (running.size() != last)
              ctx.note("waiting for " + std::to_string(running.size()) + " running job(s)...");
            last = running.size();
          });
      std::string names = join(o->queues, " ");
      if (ctx.output() == OutputFormat::table) {
        std::cout << "drained " << names << ": paused; waited "
                  << format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(report.waited)) << " for "
                  << report.waited_for.size() << " running job(s)";
        for (std::size_t i = 0; i < report.waited_for.size() && i < 20; ++i)
          std::cout << (i ? ", " : ": ") << report.waited_for[i].id;
        std::cout << '\n';
      } else {
        boost::json::array ids;
        for (const auto& j : report.waited_for) ids.emplace_back(j.id);
        boost::json::array qs(o->queues.begin(), o->queues.end());
        print_json(boost::json::object{
            {"queues", qs},
            {"paused", true},
            {"waited_for", ids},
            {"waited_ms", std::chrono::duration_cast<std::chrono::milliseconds>(report.waited).count()}});
      }
      ctx.note("the queues stay paused; resume them with: taskctl resume " + names);
      return exit_ok;
    };
  });
}

}  // namespace taskq::ctl
