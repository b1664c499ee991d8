#pragma once
// The shared configuration file (/etc/taskq/taskq.toml). One table of keys (config_keys()) is the
// single source of truth: it drives parsing, unknown-key errors, and the test that checks
// config/taskq.example.toml and man/taskq.toml.5 document every key with its default.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskq/core/job.hpp"
#include "taskq/core/session.hpp"
#include "taskq/core/time.hpp"

namespace taskq::config {

/// The programs sharing the config, for settings whose right value depends on what a program does.
enum class Program { apid, workerd, schedulerd, taskctl };

/// One duration per program ([database] statement_timeout, lock_timeout, ...). Zero: off.
struct PerProgram {
  Duration apid{}, workerd{}, schedulerd{}, taskctl{};
  [[nodiscard]] Duration of(Program p) const;
};

struct DatabaseConfig {
  std::string url;  // libpq URL or key=value string; empty = libpq defaults (PGHOST, ...)
  std::string schema = "taskq";
  Duration connect_timeout = std::chrono::seconds{5};
  // Session limits (see man taskq.toml for why each program gets its value).
  PerProgram statement_timeout{std::chrono::seconds{10}, std::chrono::seconds{30}, std::chrono::minutes{1}, Duration{}};
  PerProgram lock_timeout{std::chrono::seconds{2}, std::chrono::seconds{2}, std::chrono::seconds{5},
                          std::chrono::seconds{5}};
  PerProgram idle_in_transaction_timeout{std::chrono::minutes{1}, std::chrono::minutes{1}, std::chrono::minutes{1},
                                         Duration{}};
  bool keepalives = true;
  Duration keepalives_idle = std::chrono::seconds{30};
  Duration keepalives_interval = std::chrono::seconds{10};
  int keepalives_count = 3;
  Duration tcp_user_timeout = std::chrono::seconds{30};

  /// What `program`'s connections are told at connect time.
  [[nodiscard]] SessionSettings session(Program program) const;
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error, off
  std::string format = "text";  // text, json
};

struct JobsConfig {
  std::size_t max_args_bytes = 1024 * 1024;
};

/// [worker]: what taskq-workerd serves and how it paces itself.
struct WorkerConfig {
  std::map<std::string, int> queues{{"default", 16}};  // queue -> max jobs running at once
  Duration shutdown_timeout = std::chrono::seconds{30};
  Duration heartbeat_interval = std::chrono::seconds{2};
  Duration poll_interval = std::chrono::seconds{1};
  bool delete_completed = false;  // delete a job's row when it completes instead of keeping it
  // Variables of the worker's environment exec handlers also get, by name (never PG*, TASKQ_*).
  std::vector<std::string> pass_env;
  std::string metrics_listen;  // HOST:PORT of GET /metrics; empty: no metrics
};

/// PG* and TASKQ_* variables: the worker's own database settings and credentials. No exec handler
/// gets them from the worker's environment; worker.pass_env refuses to list them (a handler that
/// needs a database gets its own settings in kinds.NAME.env).
bool never_passed_to_handlers(std::string_view name);

/// Retry delay after a failed attempt: exponential (attempt^4 s + jitter, capped) or fixed.
struct BackoffConfig {
  bool exponential = true;
  Duration fixed{};  // when !exponential
};

struct ResourceLimits {
  std::optional<std::uint64_t> memory_bytes;  // RLIMIT_AS
  std::optional<std::uint64_t> cpu_seconds;   // RLIMIT_CPU
  std::optional<std::uint64_t> open_files;    // RLIMIT_NOFILE
};

struct HttpHandlerConfig {
  std::string url;  // http://host[:port]/path
  Duration timeout = std::chrono::seconds{30};
  std::vector<std::pair<std::string, std::string>> headers;
};

/// [kinds.NAME]: how jobs of one kind run. Exactly one of exec and http is set.
struct KindConfig {
  std::string name;
  std::vector<std::string> exec;  // argv; empty when http
  std::optional<HttpHandlerConfig> http;
  std::optional<Duration> timeout;  // a job's own timeout wins
  std::optional<int> max_attempts;  // applies to jobs enqueued with the default max_attempts
  BackoffConfig backoff;
  Duration kill_grace = std::chrono::seconds{10};
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<std::string> working_dir;
  ResourceLimits limits;
  int line = 0;  // where it was defined, for messages
};

/// How long finished jobs are kept before the scheduler prunes them, by final state.
struct RetentionConfig {
  Duration completed = std::chrono::hours{24};
  Duration cancelled = std::chrono::hours{24 * 7};
  Duration failed = std::chrono::hours{24 * 30};
};

/// One [[scheduler.periodic]] entry. The cron text and zone are checked by taskq-schedulerd
/// (scheduler::validate_config), not here, so other programs do not load the tz database.
struct PeriodicConfig {
  std::string name;
  std::string cron;
  std::string timezone = "UTC";
  EnqueueParams job;  // kind, args, queue, priority, max_attempts, timeout, tags
  int line = 0;
};

/// [scheduler]: taskq-schedulerd's leader lease, maintenance and periodic jobs.
struct SchedulerConfig {
  Duration lease_ttl = std::chrono::seconds{15};
  Duration rescue_interval = std::chrono::seconds{5};
  Duration worker_grace = std::chrono::seconds{30};
  Duration prune_interval = std::chrono::minutes{1};
  int prune_batch = 10000;
  RetentionConfig retention;
  bool missed_run_once = false;  // missed_ticks = "run_once" (else "skip")
  Duration stuck_grace = std::chrono::minutes{5};
  std::vector<PeriodicConfig> periodic;
  std::string metrics_listen;  // HOST:PORT of GET /metrics; empty: no metrics
};

/// One [[api.tokens]] entry: a bearer token known by its SHA-256 (the token itself is never in
/// the config) and what it may do.
struct ApiToken {
  std::string name;
  std::string sha256;               // 64 lower-case hex digits
  std::vector<std::string> scopes;  // enqueue, read, admin
  int line = 0;
};

struct ApiTls {
  std::string cert;  // PEM files
  std::string key;
};

/// [api]: taskq-apid, the HTTP/JSON API.
struct ApiConfig {
  std::vector<std::string> listen{"127.0.0.1:8080"};      // host:port, [v6]:port
  int threads = 2;                                        // I/O threads
  int db_pool = 8;                                        // database connections (and their threads)
  Duration db_acquire_timeout = std::chrono::seconds{1};  // longest a request waits for a connection: then 503
  std::uint64_t max_body = 1024 * 1024;
  Duration request_timeout = std::chrono::seconds{30};
  Duration shutdown_timeout = std::chrono::seconds{10};
  int max_connections = 10000;                               // open connections; more are accepted and closed at once
  int max_event_streams = 5000;                              // event streams in all; more get 503
  int max_event_streams_per_token = 1000;                    // per token; more get 429
  Duration stream_write_timeout = std::chrono::seconds{30};  // a stream write pending longer is cut
  std::optional<ApiTls> tls;
  std::vector<ApiToken> tokens;
  bool insecure_no_auth = false;
  bool metrics_auth = false;  // /metrics needs a token with the read scope
  bool ui = true;             // serve the web dashboard under /ui
};

struct Config {
  DatabaseConfig database;
  LogConfig log;
  JobsConfig jobs;
  WorkerConfig worker;
  std::map<std::string, KindConfig> kinds;
  std::string source = "(defaults)";       // where it came from, for messages
  std::string log_level_source;            // set when an environment variable overrides log.level
  std::vector<std::string> worker_errors;  // problems in [worker] and [kinds.*], for validate_worker_config
  SchedulerConfig scheduler;
  std::vector<std::string> scheduler_errors;  // problems in [scheduler], for taskq-schedulerd
  ApiConfig api;
  std::vector<std::string> api_errors;  // problems in [api], for taskq-apid (validate_api_config)
};

struct ConfigKey {
  std::string_view name;           // "database.url"
  std::string_view type;           // "string", "duration", "integer"
  std::string_view default_value;  // as written in TOML
  std::string_view description;
};

/// Fixed keys: [database], [log], [jobs], [worker], [scheduler], [api].
const std::vector<ConfigKey>& config_keys();
/// The keys of every [kinds.NAME] table (names written with NAME), documented in the man page.
const std::vector<ConfigKey>& kind_keys();
/// The keys of every [[scheduler.periodic]] entry, documented in the man page.
const std::vector<ConfigKey>& periodic_keys();
/// api.tls and the keys of every [[api.tokens]] entry, documented in the man page.
const std::vector<ConfigKey>& api_table_keys();

/// Parses TOML text. Unknown keys, wrong types and bad values throw Error(invalid_input) naming
/// the source, the line and the key.
Config parse_config(std::string_view toml_text, std::string_view source_name);
/// Reads a file. A missing file throws Error(invalid_input) naming the path.
Config load_config_file(const std::string& path);

/// The default config path (/etc/taskq/taskq.toml) when it exists, else nothing.
std::optional<std::string> default_config_path();

/// Applies environment overrides: TASKQ_DATABASE_URL, TASKQ_SCHEMA, TASKQ_LOG_LEVEL, and the
/// daemons' TASKQ_WORKER_METRICS_LISTEN and TASKQ_SCHEDULER_METRICS_LISTEN (a bad value is kept in
/// worker_errors or scheduler_errors).
void apply_env_overrides(Config& config);

/// Checks the values that have a fixed set or shape (schema name, log level/format).
void validate_config(const Config& config);
/// Checks [worker] and [kinds.*] (taskq-workerd calls it; other programs ignore those sections).
void validate_worker_config(const Config& config);
/// Checks [api] for taskq-apid: parse errors, and that tokens exist unless insecure_no_auth.
void validate_api_config(const Config& config);
/// Schema names: lower-case letters, digits and '_', not starting with a digit, at most 48 bytes.
void validate_schema_name(std::string_view schema);

}  // namespace taskq::config
