#pragma once
// What every taskctl command shares: global options, the resolved config, the client (connected
// on first use, so `--help` and usage errors never touch the database), and output settings.
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/job.hpp"
#include "taskq/queue/client.hpp"

namespace taskq::ctl {

enum class OutputFormat { table, json, jsonl };

struct GlobalOptions {
  std::optional<std::string> database_url;  // optional: `--schema ''` is an error, not the default
  std::optional<std::string> schema;
  std::optional<std::string> config_path;
  std::string output = "table";
  bool quiet = false;
};

// Exit codes, documented in man/taskctl.1.
inline constexpr int exit_ok = 0;
inline constexpr int exit_internal = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_not_found = 3;
inline constexpr int exit_conflict = 4;
inline constexpr int exit_timeout = 5;
inline constexpr int exit_locked = 6;  // another session held a lock (database.lock_timeout): try again
inline constexpr int exit_unavailable = 69;

int exit_code_for(Errc code);

class Context {
 public:
  GlobalOptions globals;
  std::function<int()> action;  // set by the chosen subcommand

  [[nodiscard]] const taskq::config::Config& config();
  queue::Client& client();
  [[nodiscard]] OutputFormat output() const;
  /// A message for the operator on stderr, unless -q.
  void note(const std::string& message) const;

 private:
  std::optional<taskq::config::Config> config_;
  std::unique_ptr<queue::Client> client_;
};

// One registration function per command file.
void add_migrate(CLI::App& app, Context& ctx);
void add_enqueue(CLI::App& app, Context& ctx);
void add_list(CLI::App& app, Context& ctx);
void add_show(CLI::App& app, Context& ctx);
void add_cancel(CLI::App& app, Context& ctx);
void add_retry(CLI::App& app, Context& ctx);
void add_pause_resume(CLI::App& app, Context& ctx);
void add_drain(CLI::App& app, Context& ctx);
void add_stats(CLI::App& app, Context& ctx);
void add_prune(CLI::App& app, Context& ctx);
void add_workers(CLI::App& app, Context& ctx);
void add_rescue(CLI::App& app, Context& ctx);
void add_leader(CLI::App& app, Context& ctx);
void add_cron(CLI::App& app, Context& ctx);

/// Parses "123" as a job id or throws Error(invalid_input).
JobId parse_job_id(const std::string& text);
std::vector<JobId> parse_job_ids(const std::vector<std::string>& texts);

}  // namespace taskq::ctl
