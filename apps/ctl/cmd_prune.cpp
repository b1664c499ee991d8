// taskctl prune --older-than D [--state completed,cancelled,failed] [--batch N] [--dry-run]
#include <iostream>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"

namespace taskq::ctl {

void add_prune(CLI::App& app, Context& ctx) {
  struct Options {
    std::string older_than;
    std::string states = "completed,cancelled,failed";
    int batch = 5000;
    bool dry_run = false;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("prune", "Delete finished jobs older than a duration, in bounded batches");
  cmd->add_option("--older-than", o->older_than, "Finished longer ago than this, e.g. 7d, 12h")->required();
  cmd->add_option("--state", o->states, "Which finished states (default completed,cancelled,failed)");
  cmd->add_option("--batch", o->batch, "Jobs deleted per transaction (default 5000)");
  cmd->add_flag("--dry-run", o->dry_run, "Count what would be deleted, delete nothing");
  cmd->footer(
      "Examples:\n  taskctl prune --older-than 7d\n  taskctl prune --older-than 1d --state completed --dry-run");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      const Duration older = parse_duration(o->older_than);
      const auto states = parse_job_states(o->states);
      const auto r = ctx.client().prune(older, states, o->batch, o->dry_run);
      if (ctx.output() == OutputFormat::table) {
        if (o->dry_run)
          std::cout << "dry run: would delete " << r.deleted << " job(s)\n";
        else
          std::cout << "deleted " << r.deleted << " job(s) in " << r.batches << " batch(es)\n";
      } else {
        print_json(boost::json::object{{"deleted", r.deleted}, {"batches", r.batches}, {"dry_run", o->dry_run}});
      }
      return exit_ok;
    };
  });
}

}  // namespace taskq::ctl
