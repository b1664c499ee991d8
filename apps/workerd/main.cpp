// taskq-workerd: claims jobs of its queues and runs them: a Worker built from the config, run by the
// daemon skeleton (taskq/daemon/run.hpp); SIGHUP reloads the kinds. See man taskq-workerd(8).
#include "taskq/daemon/run.hpp"
#include "taskq/worker/worker.hpp"

using taskq::config::Config, taskq::config::Program, taskq::config::validate_worker_config;
using taskq::worker::Worker, taskq::worker::WorkerOptions;
using namespace taskq;
using namespace taskq::daemon;

static void run_jobs(const Config& config, Service& svc) {
  WorkerOptions options;
  options.store = store_options(config, Program::workerd);
  options.worker = config.worker;
  options.kinds = config.kinds;
  options.version = TASKQ_VERSION;
  options.config_source =
      config.source == "(defaults)" ? "a configuration file (none was read: pass --config FILE)" : config.source;
  options.metrics = svc.metrics;
  const auto w = std::make_shared<Worker>(options);
  svc.start = [w] { w->start(); };
  svc.status = [w, d = describe_worker(config)] { return "worker " + std::to_string(w->worker_id()) + ": " + d; };
  // A round at least every poll or heartbeat interval (database calls are bounded): stuck after a minute without one.
  const auto stall = std::max<Duration>(std::chrono::minutes{1}, 3 * config.worker.poll_interval);
  svc.healthy = [w, stall](Duration) { return w->healthy(stall); };
  svc.reload = [w](const Config& c) {
    w->reload_kinds(c.kinds);
    return "reloaded " + c.source + ": " + describe_worker(c) + " (queues and database settings apply at restart)";
  };
  svc.stopping_graceful = " (running jobs may finish within " + format_duration(config.worker.shutdown_timeout) + ")";
  svc.stopping_now = " now (running jobs return to the queue)";
  svc.stop = [w, grace = config.worker.shutdown_timeout](bool graceful) { w->stop(graceful ? grace : Duration{}); };
}

int main(int argc, char** argv) {
  return run(argc, argv,
             {"taskq-workerd", TASKQ_VERSION, "claims jobs from PostgreSQL and runs them", validate_worker_config,
              describe_worker, run_jobs, worker_metrics_endpoint});
}
