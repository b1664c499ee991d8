// taskctl list [filters] [--limit N] [--after ID]
#include <iostream>

#include "context.hpp"
#include "filter_options.hpp"
#include "output.hpp"
#include "taskq/core/json.hpp"

using taskq::store::JobFilter;

namespace taskq::ctl {

void add_list(CLI::App& app, Context& ctx) {
  struct Options {
    FilterOptions filter;
    int limit = 50;
    std::string after;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("list", "List jobs, oldest first, a page at a time");
  o->filter.add_to(*cmd);
  cmd->add_option("--limit", o->limit, "Jobs per page, 1..100000 (default 50)");
  cmd->add_option("--after", o->after, "Start after this job id (the next page: pass the last id shown)");
  cmd->footer(
      "Examples:\n  taskctl list --state failed --queue mail\n  taskctl list --kind email.send --limit 100 "
      "--after 4200\n  taskctl -o jsonl list --tag nightly | jq .id");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      JobFilter f = o->filter.to_filter();
      f.limit = o->limit;
      if (!o->after.empty()) f.after_id = parse_job_id(o->after);
      const auto jobs = ctx.client().list(f);
      if (ctx.output() == OutputFormat::table) {
        Table t({"ID", "QUEUE", "KIND", "STATE", "PRI", "ATTEMPT", "RUN_AT", "CREATED", "TAGS"});
        const Timestamp now = SystemClock::instance().now();
        for (const auto& j : jobs)
          t.add({std::to_string(j.id), j.queue, j.kind, to_string(j.state), std::to_string(j.priority),
                 std::to_string(j.attempt) + "/" + std::to_string(j.max_attempts),
                 format_rfc3339(std::chrono::floor<std::chrono::seconds>(j.run_at)), relative_time(j.created_at, now),
                 join(j.tags)});
        if (jobs.empty())
          ctx.note("no jobs match");
        else
          t.print();
      } else {
        std::vector<boost::json::value> out;
        for (const auto& j : jobs) out.emplace_back(job_to_json(j));
        print_json_values(ctx.output(), out);
      }
      if (!jobs.empty() && static_cast<int>(jobs.size()) == f.limit)
        ctx.note("more jobs may follow: add --after " + std::to_string(jobs.back().id));
      return exit_ok;
    };
  });
}

}  // namespace taskq::ctl
