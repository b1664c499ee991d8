// taskq-schedulerd: one leads (a lease in PostgreSQL), fires periodic jobs, keeps the queue healthy; others stand by.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "taskq/core/host.hpp"
#include "taskq/daemon/run.hpp"
#include "taskq/scheduler/scheduler.hpp"

using taskq::config::Config, taskq::config::Program;
using namespace taskq;
using namespace taskq::daemon;

static void leader_or_standby(const Config& config, Service& svc) {
  const auto s = std::make_shared<scheduler::Scheduler>(
      scheduler::SchedulerOptions{.store = store_options(config, Program::schedulerd),
                                  .config = config.scheduler,
                                  .limits = {.max_args_bytes = config.jobs.max_args_bytes},
                                  .host = host_name(),
                                  .pid = static_cast<int>(::getpid()),
                                  .metrics = svc.metrics});
  svc.start = [s, d = describe_scheduler(config)] {
    s->start();
    spdlog::info("started as {}: {}", s->holder(), d);
  };
  svc.status = [s] { return describe_term(s->leading_term()); };
  // Both loops go round at least every second (database calls are bounded): a minute without a round is stuck.
  svc.healthy = [s](Duration) { return s->healthy(std::chrono::minutes{1}); };
  svc.reload = [s](const Config& c) {
    s->reload_schedules(c.scheduler.periodic);
    return "reloaded " + c.source + ": " + describe_scheduler(c) +
           " ([database] and the other [scheduler] keys apply at restart)";
  };
  svc.stopping_graceful = svc.stopping_now = " (finishing the current step, then resigning the lease)";
  svc.stop = [s](bool) { s->stop(); };
}

int main(int argc, char** argv) {
  return run(argc, argv,
             {"taskq-schedulerd", TASKQ_VERSION, "periodic jobs and queue maintenance, one leader at a time",
              scheduler::validate_config, describe_scheduler, leader_or_standby, scheduler_metrics_endpoint});
}
