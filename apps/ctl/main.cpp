// taskctl: the operator's CLI for taskq. Parse -> run the chosen command -> map errors to the
// documented exit codes (man taskctl).
#include <CLI/CLI.hpp>
#include <iostream>

#include "context.hpp"
#include "taskq/core/error.hpp"

using taskq::config::Config;

namespace {

// CLI11's message, except that an unknown command is named as such.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--database-url" || arg == "--schema" || arg == "--config" || arg == "-o" || arg == "--output") {
      ++i;  // skip the option's value
      continue;
    }
    if (arg.rfind("-", 0) == 0) continue;
    bool known = false;
    for (const auto* sub : app.get_subcommands({})) known = known || sub->get_name() == arg;
    if (!known) return "unknown command '" + arg + "' (see taskctl --help for the commands)";
    break;
  }
  return std::string(e.what()) + " (see taskctl --help)";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace taskq::ctl;
  Context ctx;
  CLI::App app{"taskctl — operate taskq, background jobs on PostgreSQL", "taskctl"};
  app.set_version_flag("--version", std::string("taskctl ") + TASKQ_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--database-url", ctx.globals.database_url,
                 "PostgreSQL URL (default: $TASKQ_DATABASE_URL, else database.url from the config)");
  app.add_option("--schema", ctx.globals.schema, "Schema of taskq's tables (default: database.schema, taskq)");
  app.add_option("--config", ctx.globals.config_path, "Config file (default: /etc/taskq/taskq.toml when it exists)");
  app.add_option("-o,--output", ctx.globals.output, "Output format")
      ->check(CLI::IsMember({"table", "json", "jsonl"}))
      ->default_str("table");
  app.add_flag("-q,--quiet", ctx.globals.quiet, "Print only data: no progress or hints on stderr");
  app.footer(
      "Exit codes: 0 ok, 1 internal error, 2 usage or invalid input, 3 not found,\n"
      "4 conflict or invalid state, 5 timeout, 6 locked by another session (try again),\n"
      "69 database unavailable or not migrated.\n"
      "See man taskctl for every command.");

  add_migrate(app, ctx);
  add_enqueue(app, ctx);
  add_list(app, ctx);
  add_show(app, ctx);
  add_cancel(app, ctx);
  add_retry(app, ctx);
  add_pause_resume(app, ctx);
  add_drain(app, ctx);
  add_stats(app, ctx);
  add_prune(app, ctx);
  add_workers(app, ctx);
  add_rescue(app, ctx);
  add_leader(app, ctx);
  add_cron(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help, --version
    std::cerr << "taskctl: " << usage_message(app, e, argc, argv) << '\n';
    return exit_usage;
  } catch (const taskq::Error& e) {
    std::cerr << "taskctl: " << e.what() << '\n';
    return exit_code_for(e.code());
  }
  try {
    return ctx.action ? ctx.action() : exit_usage;
  } catch (const taskq::Error& e) {
    std::cerr << "taskctl: " << e.what() << '\n';
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "taskctl: internal error: " << e.what() << '\n';
    return exit_internal;
  }
}
