// taskq-apid: the HTTP/JSON API: a Server built from the config, run by the daemon skeleton
// (taskq/daemon/run.hpp); SIGHUP reloads [log]. See man taskq-apid(8).
#include <spdlog/spdlog.h>

#include "taskq/api/rlimits.hpp"
#include "taskq/api/server.hpp"
#include "taskq/api/tls_files.hpp"
#include "taskq/daemon/run.hpp"

using taskq::config::Config, taskq::config::Program;
using namespace taskq;
using namespace taskq::daemon;

static void server(const Config& config, Service& svc) {
  if (const auto warning = api::open_files_warning(api::raise_open_files())) spdlog::warn("{}", *warning);
  const auto s = std::make_shared<api::Server>(api::ApiOptions{.store = store_options(config, Program::apid),
                                                               .config = config.api,
                                                               .limits = {.max_args_bytes = config.jobs.max_args_bytes},
                                                               .version = TASKQ_VERSION,
                                                               .worker_grace = config.scheduler.worker_grace});
  svc.start = [s, https = config.api.tls.has_value(), open = config.api.tokens.empty()] {
    s->start();
    for (const auto& e : s->endpoints()) spdlog::info("listening on {}://{}", https ? "https" : "http", e);
    if (open) spdlog::warn("serving WITHOUT authentication (api.insecure_no_auth = true)");
  };
  svc.invalid_input_at_start_is_config = true;  // a TLS key that does not match its certificate
  svc.status = [d = describe_api(config)] { return d; };
  // Fed while the I/O loop turns and database work moves (every statement has a statement_timeout).
  svc.healthy = [s](Duration watchdog) { return s->healthy(std::chrono::seconds{30}) && s->db_moving(watchdog); };
  svc.reload = [](const Config& c) { return "reloaded [log] from " + c.source + " (the other keys apply at restart)"; };
  svc.stopping_graceful =
      " (in-flight requests may finish within " + format_duration(config.api.shutdown_timeout) + ")";
  svc.stopping_now = " now";
  svc.stop = [s, grace = config.api.shutdown_timeout](bool graceful) { s->stop(graceful ? grace : Duration{}); };
}

int main(int argc, char** argv) {
  return run(argc, argv,
             {"taskq-apid", TASKQ_VERSION, "the HTTP/JSON API of taskq", api::check_config, describe_api, server});
}
