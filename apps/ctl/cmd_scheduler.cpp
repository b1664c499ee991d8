// taskctl leader                       which taskq-schedulerd leads, and until when
// taskctl cron list                    periodic schedules: expression, zone, last and next fire
// taskctl cron trigger NAME            enqueue one job of a schedule now
// taskctl cron pause|resume NAME       stop / restart a schedule's ticks
#include <iostream>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/json.hpp"
#include "taskq/core/printable.hpp"
#include "taskq/queue/json_shapes.hpp"

using taskq::queue::lease_json;
using taskq::queue::periodic_change_json;
using taskq::queue::periodic_json;

namespace taskq::ctl {
namespace {}  // namespace

void add_leader(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("leader", "Show which taskq-schedulerd holds the scheduler lease");
  cmd->footer(
      "Exit status 0 when a scheduler leads, 3 when none does (never started, resigned or expired).\n"
      "Examples:\n  taskctl leader\n  taskctl -o json leader");
  cmd->callback([&ctx] {
    ctx.action = [&ctx] {
      auto& client = ctx.client();
      const auto lease = client.scheduler_lease();
      const auto now = client.now();
      if (ctx.output() != OutputFormat::table) {
        print_json(lease_json(lease));
        return lease && lease->valid ? exit_ok : exit_not_found;
      }
      if (!lease) {
        std::cout << "no leader: no taskq-schedulerd has run on this schema\n";
        return exit_not_found;
      }
      if (!lease->valid) {
        std::cout << "no leader: the last one (" << (lease->holder.empty() ? "resigned" : printable(lease->holder))
                  << ", term " << lease->term << ") " << (lease->holder.empty() ? "resigned " : "expired ")
                  << relative_time(lease->expires_at, now) << "\n";
        return exit_not_found;
      }
      Table t({"HOLDER", "HOST", "PID", "TERM", "SINCE", "EXPIRES"});
      t.add({lease->holder, lease->host, std::to_string(lease->pid), std::to_string(lease->term),
             relative_time(lease->acquired_at, now), relative_time(lease->expires_at, now)});
      t.print();
      return exit_ok;
    };
  });
}

void add_cron(CLI::App& app, Context& ctx) {
  auto* cron = app.add_subcommand("cron", "Periodic schedules of taskq-schedulerd: list, trigger, pause, resume");
  cron->require_subcommand(1);
  cron->footer(
      "Schedules are configured in [[scheduler.periodic]] (man taskq.toml) and recorded in the\n"
      "database by the leading taskq-schedulerd.\n"
      "Examples:\n  taskctl cron list\n  taskctl cron trigger nightly-report\n  taskctl cron pause nightly-report");

  auto* list = cron->add_subcommand("list", "Schedules with their expression, zone, last and next fire");
  list->callback([&ctx] {
    ctx.action = [&ctx] {
      const auto rows = ctx.client().periodic_schedules();
      if (ctx.output() == OutputFormat::table) {
        if (rows.empty()) {
          ctx.note("no schedules recorded (configure [[scheduler.periodic]] and start taskq-schedulerd)");
          return exit_ok;
        }
        Table t({"NAME", "CRON", "ZONE", "KIND", "QUEUE", "LAST", "NEXT", "STATUS"});
        for (const auto& p : rows)
          t.add({p.name, p.schedule, p.timezone, p.kind, p.queue,
                 p.last_fire_at ? format_rfc3339(*p.last_fire_at) : "-",
                 p.paused_at || !p.next_fire_at ? "-" : format_rfc3339(*p.next_fire_at),
                 p.paused_at ? "paused" : "active"});
        t.print();
        return exit_ok;
      }
      std::vector<boost::json::value> out;
      for (const auto& p : rows) out.emplace_back(periodic_json(p));
      print_json_values(ctx.output(), out);
      return exit_ok;
    };
  });

  auto name = std::make_shared<std::string>();
  auto* trigger =
      cron->add_subcommand("trigger", "Enqueue one job of a schedule now (its fire times stay as they are)");
  trigger->add_option("NAME", *name, "Schedule name")->required();
  trigger->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      const auto r = ctx.client().trigger_periodic(*name);
      if (ctx.output() == OutputFormat::table)
        std::cout << r.job.id << '\n';
      else
        print_json(job_to_json(r.job));
      ctx.note("enqueued job " + std::to_string(r.job.id) + " (queue " + r.job.queue + ", kind " + r.job.kind +
               ") of schedule " + *name);
      return exit_ok;
    };
  });

  for (const bool pause : {true, false}) {
    auto* cmd = cron->add_subcommand(pause ? "pause" : "resume",
                                     pause ? "Pause a schedule: its ticks are not enqueued until it is resumed"
                                           : "Resume a paused schedule from its next tick (missed ticks are skipped)");
    cmd->add_option("NAME", *name, "Schedule name")->required();
    cmd->callback([&ctx, name, pause] {
      ctx.action = [&ctx, name, pause] {
        const bool changed = ctx.client().set_periodic_paused(*name, pause);
        const std::string state = pause ? "paused" : "active";
        if (ctx.output() == OutputFormat::table)
          std::cout << "schedule " << *name << ": " << (changed ? "" : "already ") << state << '\n';
        else
          print_json(periodic_change_json(*name, pause, changed));
        return exit_ok;
      };
    });
  }
}

}  // namespace taskq::ctl
