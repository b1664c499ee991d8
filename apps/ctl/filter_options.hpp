#pragma once
// The job filter flags shared by list, cancel and retry.
#include <CLI/CLI.hpp>
#include <memory>

#include "taskq/core/job.hpp"
#include "taskq/queue/client.hpp"

namespace taskq::ctl {

struct FilterOptions {
  std::vector<std::string> queues;
  std::string states;
  std::optional<std::string> kind;  // given, even empty: validated (an empty kind must not widen a cancel)
  std::optional<std::string> tag;

  void add_to(CLI::App& cmd) {
    cmd.add_option("--queue", queues, "Only jobs of this queue (repeatable)")->allow_extra_args(false);
    cmd.add_option("--state", states,
                   "Only jobs in these states, comma-separated: scheduled, available, running, "
                   "completed, failed, cancelled");
    cmd.add_option("--kind", kind, "Only jobs of this kind");
    cmd.add_option("--tag", tag, "Only jobs with this tag");
  }
  [[nodiscard]] bool any() const { return !queues.empty() || !states.empty() || kind.has_value() || tag.has_value(); }
  [[nodiscard]] store::JobFilter to_filter() const {
    store::JobFilter f;
    f.queues = queues;
    if (!states.empty()) f.states = parse_job_states(states);
    f.kind = kind;
    f.tag = tag;
    return f;
  }
};

}  // namespace taskq::ctl
