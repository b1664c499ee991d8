// taskctl cancel ID... | cancel [filters] ;  taskctl retry ID... | retry --state S [filters]
#include <functional>
#include <iostream>

#include "context.hpp"
#include "filter_options.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"
#include "taskq/queue/json_shapes.hpp"

using taskq::store::JobChange;

using taskq::queue::change_json;

namespace taskq::ctl {
namespace {

struct ActionOptions {
  std::vector<std::string> ids;
  FilterOptions filter;
  bool dry_run = false;
};

void print_changes(Context& ctx, const std::vector<JobChange>& changes) {
  if (ctx.output() == OutputFormat::table) {
    Table t({"ID", "QUEUE", "KIND", "FROM", "TO"});
    for (const auto& c : changes)
      t.add({std::to_string(c.id), c.queue, c.kind, to_string(c.from),
             c.cancel_requested ? "cancel requested" : to_string(c.to)});
    if (!t.empty()) t.print();
    return;
  }
  std::vector<boost::json::value> out;
  for (const auto& c : changes) out.push_back(change_json(c));
  print_json_values(ctx.output(), out);
}

void check_exclusive(const ActionOptions& o, const char* command) {
  if (!o.ids.empty() && o.filter.any())
    throw Error(Errc::invalid_input, std::string(command) +
                                         ": give job ids or filters (--queue, --state, --kind, "
                                         "--tag), not both");
  if (o.ids.empty() && !o.filter.any())
    throw Error(Errc::invalid_input, std::string(command) + ": give job ids, or filters such as --queue Q");
}

// Registers cancel or retry: ids or filters, --dry-run, and `run` doing the work for either form.
using ChangeRunner = std::function<std::vector<JobChange>(Context&, const ActionOptions&)>;
CLI::App* add_job_action(CLI::App& app, Context& ctx, const char* name, const char* description, const char* ids_help,
                         const char* footer, ChangeRunner run,
                         std::function<std::string(const ActionOptions&, const std::vector<JobChange>&)> summary) {
  auto o = std::make_shared<ActionOptions>();
  auto* cmd = app.add_subcommand(name, description);
  cmd->add_option("ids", o->ids, ids_help);
  o->filter.add_to(*cmd);
  cmd->add_flag("--dry-run", o->dry_run, "Show what would change, change nothing");
  cmd->footer(footer);
  cmd->callback([&ctx, o, name, run, summary] {
    ctx.action = [&ctx, o, name, run, summary] {
      check_exclusive(*o, name);
      const auto changes = run(ctx, *o);
      print_changes(ctx, changes);
      ctx.note(summary(*o, changes));
      return exit_ok;
    };
  });
  return cmd;
}

}  // namespace

void add_cancel(CLI::App& app, Context& ctx) {
  add_job_action(
      app, ctx, "cancel", "Cancel waiting jobs; ask running ones to stop",
      "Job ids (all must exist and be unfinished, or nothing changes)",
      "Scheduled and available jobs become cancelled at once. Running jobs get a cancel request:\n"
      "their worker stops them and records them as cancelled.\n"
      "Examples:\n  taskctl cancel 42 43\n  taskctl cancel --queue reports --kind report.build --dry-run",
      [](Context& c, const ActionOptions& o) {
        if (!o.ids.empty()) return c.client().cancel(parse_job_ids(o.ids), o.dry_run);
        return c.client().cancel_matching(o.filter.to_filter(), o.dry_run);
      },
      [](const ActionOptions& o, const std::vector<JobChange>& changes) {
        std::size_t cancelled = 0, requested = 0;
        for (const auto& c : changes) (c.cancel_requested ? requested : cancelled)++;
        return std::string(o.dry_run ? "dry run: would cancel " : "cancelled ") + std::to_string(cancelled) +
               " job(s); " + (o.dry_run ? "would request" : "requested") + " cancellation of " +
               std::to_string(requested) + " running job(s)";
      });
}

void add_retry(CLI::App& app, Context& ctx) {
  add_job_action(
      app, ctx, "retry", "Run jobs again now (failed, cancelled, completed or waiting ones)",
      "Job ids (all must exist and none be running, or nothing changes)",
      "Jobs become available now; a job that used all its attempts gets one more.\n"
      "With filters, --state is required.\n"
      "Examples:\n  taskctl retry 42\n  taskctl retry --state failed --queue mail --kind email.send",
      [](Context& c, const ActionOptions& o) {
        if (!o.ids.empty()) return c.client().retry(parse_job_ids(o.ids), o.dry_run);
        if (o.filter.states.empty())
          throw Error(Errc::invalid_input, "retry: with filters, --state is required (e.g. --state failed)");
        return c.client().retry_matching(o.filter.to_filter(), o.dry_run);
      },
      [](const ActionOptions& o, const std::vector<JobChange>& changes) {
        return std::string(o.dry_run ? "dry run: would retry " : "retried ") + std::to_string(changes.size()) +
               " job(s)";
      });
}

}  // namespace taskq::ctl
