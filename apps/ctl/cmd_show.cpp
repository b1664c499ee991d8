// taskctl show ID
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/json.hpp"
#include "taskq/core/printable.hpp"

namespace taskq::ctl {
namespace {

std::string opt_time(const std::optional<Timestamp>& t) {
  return t ? format_rfc3339(*t) : "-";
}

void print_job(const Job& j) {
  std::string out;
  auto field = [&](const char* name, const std::string& value) {
    out += name;
    out.append(21 - std::string_view(name).size(), ' ');
    out += printable(value);  // handler-supplied text: terminal escapes shown, never acted on
    out += '\n';
  };
  field("id:", std::to_string(j.id));
  field("queue:", j.queue);
  field("kind:", j.kind);
  field("state:", to_string(j.state));
  field("priority:", std::to_string(j.priority));
  field("attempt:", std::to_string(j.attempt) + " of " + std::to_string(j.max_attempts));
  field("args:", j.args);
  field("run_at:", format_rfc3339(j.run_at));
  field("created_at:", format_rfc3339(j.created_at));
  field("attempted_at:", opt_time(j.attempted_at));
  field("finished_at:", opt_time(j.finished_at));
  field("worker_id:", j.worker_id ? std::to_string(*j.worker_id) : "-");
  field("timeout:", j.timeout ? format_duration(*j.timeout) : "-");
  field("unique_key:", j.unique_key.value_or("-"));
  field("tags:", join(j.tags));
  field("metadata:", j.metadata);
  field("result:", j.result.value_or("-"));
  field("progress:", j.progress.value_or("-"));
  field("cancel_requested_at:", opt_time(j.cancel_requested_at));
  field("traceparent:", j.traceparent.value_or("-"));
  field("tracestate:", j.tracestate.value_or("-"));
  const auto errors = parse_json("errors", j.errors);
  if (!errors.is_array() || errors.get_array().empty()) {
    field("errors:", "none");
  } else {
    field("errors:", std::to_string(errors.get_array().size()));
    for (const auto& e : errors.get_array()) {
      out += "  - ";
      if (e.is_object()) {
        const auto& o = e.get_object();
        bool first = true;
        for (const char* key : {"at", "attempt", "span_id", "exit_status", "message"}) {
          if (const auto* v = o.if_contains(key)) {
            out += (first ? "" : "  ") + std::string(key) + "=" +
                   printable(v->is_string() ? std::string(v->get_string()) : boost::json::serialize(*v));
            first = false;
          }
        }
        out += '\n';
        if (const auto* tail = o.if_contains("stderr_tail"); tail && tail->is_string() && !tail->get_string().empty()) {
          std::string text(tail->get_string());
          std::size_t pos = 0;
          while (pos < text.size()) {
            auto nl = text.find('\n', pos);
            out +=
                "      | " + printable(text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos)) + '\n';
            if (nl == std::string::npos) break;
            pos = nl + 1;
          }
        }
      } else {
        out += printable(boost::json::serialize(e)) + '\n';
      }
    }
  }
  std::cout << out << std::flush;
}

}  // namespace

void add_show(CLI::App& app, Context& ctx) {
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("show", "Show every field of a job, including its error history and result");
  cmd->add_option("id", *id, "Job id")->required();
  cmd->footer("Examples:\n  taskctl show 42\n  taskctl -o json show 42 | jq .errors");
  cmd->callback([&ctx, id] {
    ctx.action = [&ctx, id] {
      const Job job = ctx.client().get_existing(parse_job_id(*id));
      if (ctx.output() == OutputFormat::table)
        print_job(job);
      else
        print_json(job_to_json(job));
      return exit_ok;
    };
  });
}

}  // namespace taskq::ctl
