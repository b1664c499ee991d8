// taskctl cancel ID... | cancel [filters] ;  taskctl retry ID... | retry --state S [filters]
#include <iostream>

#include "context.hpp"
#include "filter_options.hpp"
#include "output.hpp"
#include "taskq/core/error.hpp"

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
  for (const auto& c : changes)
    out.push_back(boost::json::object{{"id", c.id},
                                      {"queue", c.queue},
                                      {"kind", c.kind},
                                      {"from", to_string(c.from)},
                                      {"to", to_string(c.to)},
                                      {"cancel_requested", c.cancel_requested}});
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

}  // namespace

void add_cancel(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ActionOptions>();
  auto* cmd = app.add_subcommand("cancel", "Cancel waiting jobs; ask running ones to stop");
  cmd->add_option("ids", o->ids, "Job ids (all must exist and be unfinished, or nothing changes)");
  o->filter.add_to(*cmd);
  cmd->add_flag("--dry-run", o->dry_run, "Show what would change, change nothing");
  cmd->footer(
      "Scheduled and available jobs become cancelled at once. Running jobs get a cancel request:\n"
      "their worker stops them and records them as cancelled.\n"
      "Examples:\n  taskctl cancel 42 43\n  taskctl cancel --queue reports --kind report.build --dry-run");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      check_exclusive(*o, "cancel");
      std::vector<JobChange> changes;
      if (!o->ids.empty()) {
        changes = ctx.client().cancel(parse_job_ids(o->ids), o->dry_run);
      } else {
        JobFilter f = o->filter.to_filter();
        changes = ctx.client().cancel_matching(f, o->dry_run);
      }
      print_changes(ctx, changes);
      std::size_t cancelled = 0, requested = 0;
      for (const auto& c : changes) (c.cancel_requested ? requested : cancelled)++;
      ctx.note(std::string(o->dry_run ? "dry run: would cancel " : "cancelled ") + std::to_string(cancelled) +
               " job(s); " + (o->dry_run ? "would request" : "requested") + " cancellation of " +
               std::to_string(requested) + " running job(s)");
      return exit_ok;
    };
  });
}

void add_retry(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ActionOptions>();
  auto* cmd = app.add_subcommand("retry", "Run jobs again now (failed, cancelled, completed or waiting ones)");
  cmd->add_option("ids", o->ids, "Job ids (all must exist and none be running, or nothing changes)");
  o->filter.add_to(*cmd);
  cmd->add_flag("--dry-run", o->dry_run, "Show what would change, change nothing");
  cmd->footer(
      "Jobs become available now; a job that used all its attempts gets one more.\n"
      "With filters, --state is required.\n"
      "Examples:\n  taskctl retry 42\n  taskctl retry --state failed --queue mail --kind email.send");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      check_exclusive(*o, "retry");
      std::vector<JobChange> changes;
      if (!o->ids.empty()) {
        changes = ctx.client().retry(parse_job_ids(o->ids), o->dry_run);
      } else {
        if (o->filter.states.empty())
          throw Error(Errc::invalid_input, "retry: with filters, --state is required (e.g. --state failed)");
        changes = ctx.client().retry_matching(o->filter.to_filter(), o->dry_run);
      }
      print_changes(ctx, changes);
      ctx.note(std::string(o->dry_run ? "dry run: would retry " : "retried ") + std::to_string(changes.size()) +
               " job(s)");
      return exit_ok;
    };
  });
}

}  // namespace taskq::ctl
