#include "taskq/store/store.hpp"

#include <poll.h>
#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <type_traits>
#include <utility>

#include "sql_text.hpp"
#include "taskq/core/backoff.hpp"
#include "taskq/core/error.hpp"
#include "taskq/db/connection.hpp"
#include "taskq/db/migrations.hpp"

namespace taskq {
namespace {

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

// The columns of a full job row, in the order read_job() expects. `p` prefixes each column.
std::string job_columns(std::string_view p) {
  // '%' stands for the prefix. Empty tags, metadata and errors are stored as NULL.
  static constexpr const char* cols[] = {"%id",
                                         "%queue",
                                         "%kind",
                                         "%args::text",
                                         "%state",
                                         "%priority",
                                         "%attempt",
                                         "%max_attempts",
                                         "%run_at",
                                         "%created_at",
                                         "%attempted_at",
                                         "%finished_at",
                                         "%worker_id",
                                         "%timeout_ms",
                                         "%unique_key",
                                         "COALESCE(array_to_json(%tags)::text, '[]')",
                                         "COALESCE(%metadata::text, '{}')",
                                         "COALESCE(%errors::text, '[]')",
                                         "%result::text",
                                         "%progress::text",
                                         "%cancel_requested_at"};
  std::string out;
  for (const char* c : cols) {
    if (!out.empty()) out += ", ";
    for (const char* q = c; *q; ++q) {
      if (*q == '%')
        out += p;
      else
        out += *q;
    }
  }
  return out;
}

// Shared WHERE clause of list / cancel / retry filters: $1 queues, $2 states, $3 kind, $4 tag, $5 after id.
constexpr std::string_view filter_where =
    "($1::text[] IS NULL OR queue = ANY($1::text[])) AND ($2::text[] IS NULL OR state = ANY($2::text[])) "
    "AND ($3::text IS NULL OR kind = $3::text) AND ($4::text IS NULL OR $4::text = ANY(tags)) "
    "AND id > COALESCE($5::bigint, 0)";

// A page of jobs: $6 rows at most and, when $7 is set, no more stored bytes than that (the sizes
// come from pg_column_size, which reads no large value; only the page's rows are read whole).
std::string list_sql() {
  return "WITH page AS (SELECT id, COALESCE(pg_column_size(args), 0) + COALESCE(pg_column_size(result), 0) + "
         "  COALESCE(pg_column_size(progress), 0) + COALESCE(pg_column_size(errors), 0) + "
         "  COALESCE(pg_column_size(metadata), 0) AS bytes FROM {schema}.jobs WHERE " +
         std::string(filter_where) +
         " ORDER BY id LIMIT $6), "
         "kept AS (SELECT id FROM (SELECT id, sum(bytes) OVER (ORDER BY id) AS upto FROM page) p "
         "  WHERE $7::bigint IS NULL OR upto <= $7::bigint OR id = (SELECT min(id) FROM page)) "
         "SELECT " +
         job_columns("") +
         ", (SELECT count(*) FROM kept) < (SELECT count(*) FROM page) "
         "FROM {schema}.jobs WHERE id IN (SELECT id FROM kept) ORDER BY id";
}

constexpr std::string_view unique_live = "unique_key IS NOT NULL AND state NOT IN ('cancelled', 'failed')";

std::string insert_one_sql() {
  return "WITH ins AS (INSERT INTO {schema}.jobs (queue, kind, args, state, priority, max_attempts, run_at, "
         "timeout_ms, unique_key, tags, metadata) "
         "SELECT $1, $2, $3::jsonb, CASE WHEN t.run_at > now() THEN 'scheduled' ELSE 'available' END, $4, $5, "
         "t.run_at, $7, $8, NULLIF($9::text[], '{}'), NULLIF($10::jsonb, '{}') "
         "FROM (SELECT COALESCE($6::timestamptz, now() + COALESCE($11::bigint, 0) * interval '1 microsecond') AS "
         "run_at) t "
         "ON CONFLICT (unique_key) WHERE " +
         std::string(unique_live) +
         " DO NOTHING RETURNING *), "
         "woke AS (SELECT pg_notify('{schema_name}_insert', queue) FROM ins WHERE state = 'available') "
         "SELECT " +
         job_columns("ins.") +
         ", false, (SELECT count(*) FROM woke) FROM ins "
         "UNION ALL SELECT " +
         job_columns("") + ", true, 0 FROM {schema}.jobs WHERE $8::text IS NOT NULL AND unique_key = $8::text AND " +
         std::string(unique_live) + " AND NOT EXISTS (SELECT 1 FROM ins)";
}

// Without a unique key: a plain INSERT. A new backend plans it ~1-2 ms faster than the ON CONFLICT
// form (fewer catalog lookups on a cold cache), which matters for one-shot `taskctl enqueue`.
std::string insert_plain_sql() {
  return "WITH ins AS (INSERT INTO {schema}.jobs (queue, kind, args, state, priority, max_attempts, run_at, "
         "timeout_ms, tags, metadata) "
         "SELECT $1, $2, $3::jsonb, CASE WHEN t.run_at > now() THEN 'scheduled' ELSE 'available' END, $4, $5, "
         "t.run_at, $7, NULLIF($8::text[], '{}'), NULLIF($9::jsonb, '{}') "
         "FROM (SELECT COALESCE($6::timestamptz, now() + COALESCE($10::bigint, 0) * interval '1 microsecond') AS "
         "run_at) t RETURNING *), "
         "woke AS (SELECT pg_notify('{schema_name}_insert', queue) FROM ins WHERE state = 'available') "
         "SELECT " +
         job_columns("ins.") + ", false, (SELECT count(*) FROM woke) FROM ins";
}

constexpr std::string_view claim_sql =
    "WITH picked AS (SELECT id FROM {schema}.jobs WHERE state = 'available' AND queue = $1 "
    "AND NOT EXISTS (SELECT 1 FROM {schema}.queues q WHERE q.name = $1 AND q.paused_at IS NOT NULL) "
    "ORDER BY priority, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "UPDATE {schema}.jobs j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(), worker_id = $3 "
    "FROM picked WHERE j.id = picked.id "
    "RETURNING j.id, j.queue, j.kind, j.args::text, j.priority, j.attempt, j.max_attempts, j.timeout_ms, "
    "COALESCE(j.metadata::text, '{}')";

// Outcomes apply only to jobs still running for the reporting worker on the reported attempt (0:
// any), so an outcome delivered twice, or after a rescue handed the job to another run, is a no-op.
// Multi-row writes lock their rows in id order (the `locked` CTEs: SELECT ... ORDER BY id FOR
// UPDATE), like cancel and retry do, so two of them never wait on each other in a cycle: a
// `taskctl cancel --queue` racing a worker's outcome batch cannot deadlock.
constexpr std::string_view complete_ok_sql =
    "WITH locked AS MATERIALIZED (SELECT j.id FROM {schema}.jobs j JOIN unnest($1::bigint[], $3::int[]) AS u(id, "
    "attempt) "
    "  ON j.id = u.id WHERE j.state = 'running' AND j.worker_id = $2 AND (u.attempt = 0 OR j.attempt = u.attempt) "
    "  ORDER BY j.id FOR UPDATE OF j) "
    "UPDATE {schema}.jobs j SET state = 'completed', finished_at = now() FROM locked l WHERE j.id = l.id";

constexpr std::string_view complete_delete_sql =
    "WITH locked AS MATERIALIZED (SELECT j.id FROM {schema}.jobs j JOIN unnest($1::bigint[], $3::int[]) AS u(id, "
    "attempt) "
    "  ON j.id = u.id WHERE j.state = 'running' AND j.worker_id = $2 AND (u.attempt = 0 OR j.attempt = u.attempt) "
    "  ORDER BY j.id FOR UPDATE OF j) "
    "DELETE FROM {schema}.jobs j USING locked l WHERE j.id = l.id";

// `errors` with `entry` appended, keeping at most the first entry and the last 10: the others
// are replaced by one {"dropped": N, "message": ...} entry after the first, whose count grows as
// more go. Computed from the row's errors in the UPDATE itself, so concurrent appends all count.
// Every statement that records a failed attempt (outcomes, rescue, stuck jobs) appends through
// it: no path grows a job's history without bound.
std::string append_error_sql(std::string_view errors, std::string_view entry) {
  return "(SELECT CASE WHEN c.n - c.m <= 11 THEN c.e "
         "ELSE jsonb_build_array(c.e -> 0, jsonb_build_object('dropped', c.dropped + c.n - c.m - 11, 'message', "
         "format('%s error entries dropped: the first and the last 10 are kept', c.dropped + c.n - c.m - 11))) "
         "|| (SELECT jsonb_agg(t.x ORDER BY t.i) FROM jsonb_array_elements(c.e) WITH ORDINALITY t(x, i) "
         "WHERE t.i > c.n - 10) END "
         "FROM (SELECT b.e, jsonb_array_length(b.e) AS n, CASE WHEN (b.e -> 1) ? 'dropped' THEN 1 ELSE 0 END AS m, "
         "COALESCE((b.e -> 1 ->> 'dropped')::bigint, 0) AS dropped "
         "FROM (SELECT COALESCE(" +
         std::string(errors) + ", '[]') || jsonb_build_array(" + std::string(entry) + ") AS e) b) c)";
}

const std::string& complete_general_sql() {
  static const std::string text =
      "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::jsonb[], "
      "  $7::int[], $8::int[]) AS u(id, outcome, run_at, error, result, attempt, max_attempts)), "
      "decided AS MATERIALIZED (SELECT j.id, u.outcome, COALESCE(u.run_at, now()) AS run_at, u.error, u.result, "
      "  COALESCE(u.max_attempts, j.max_attempts) AS max_attempts, "
      "  CASE WHEN u.outcome IN ('completed', 'failed', 'cancelled') THEN u.outcome "
      "       WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled' "
      "       WHEN u.outcome = 'retry' AND j.attempt >= COALESCE(u.max_attempts, j.max_attempts) THEN 'failed' "
      "       WHEN COALESCE(u.run_at, now()) <= now() THEN 'available' "
      "       ELSE 'scheduled' END AS new_state "
      "  FROM {schema}.jobs j JOIN u ON u.id = j.id WHERE j.state = 'running' AND j.worker_id = $6 "
      "  AND (u.attempt = 0 OR j.attempt = u.attempt) ORDER BY j.id FOR UPDATE OF j), "
      "done AS (UPDATE {schema}.jobs j SET state = d.new_state, "
      "  finished_at = CASE WHEN d.new_state IN ('completed', 'failed', 'cancelled') THEN now() END, "
      "  run_at = CASE WHEN d.new_state IN ('available', 'scheduled') THEN d.run_at ELSE j.run_at END, "
      "  attempt = CASE WHEN d.outcome IN ('snoozed', 'returned') THEN GREATEST(j.attempt - 1, 0) ELSE j.attempt END, "
      "  max_attempts = d.max_attempts, "
      "  errors = CASE WHEN d.error IS NULL THEN j.errors ELSE " +
      append_error_sql("j.errors", "d.error") +
      " END, "
      "  result = COALESCE(d.result, j.result) "
      "  FROM decided d WHERE j.id = d.id AND j.state = 'running' AND j.worker_id = $6 "
      "  RETURNING j.queue, j.state) "
      "SELECT (SELECT count(*) FROM done), "
      "  (SELECT count(*) FROM (SELECT pg_notify('{schema_name}_insert', q.queue) "
      "     FROM (SELECT DISTINCT queue FROM done WHERE state = 'available') q) n)";
  return text;
}

constexpr std::string_view progress_sql =
    "WITH locked AS MATERIALIZED (SELECT j.id, u.progress FROM {schema}.jobs j "
    "  JOIN unnest($1::bigint[], $2::int[], $3::jsonb[]) AS u(id, attempt, progress) ON j.id = u.id "
    "  WHERE j.state = 'running' AND j.worker_id = $4 AND (u.attempt = 0 OR j.attempt = u.attempt) "
    "  ORDER BY j.id FOR UPDATE OF j) "
    "UPDATE {schema}.jobs j SET progress = l.progress FROM locked l WHERE j.id = l.id";

double backoff_cap_s() {
  return std::chrono::duration<double>(backoff::cap).count();
}

// The next run time after a failed attempt on the default retry curve (taskq/core/backoff.hpp),
// for the attempt in `attempt`; the curve's constants are parameters $p (exponent), $p+1 (cap in
// seconds) and $p+2 (jitter fraction), bound by bind_backoff().
std::string retry_at_sql(std::string_view attempt, int p) {
  const auto n = [p](int k) { return "$" + std::to_string(p + k) + "::float8"; };
  const std::string a(attempt);
  return "now() + LEAST(LEAST(power(GREATEST(" + a + ", 1), " + n(0) + "), " + n(1) + ") * (1 + (2 * random() - 1) * " +
         n(2) + "), " + n(1) + ") * interval '1 second'";
}

// Jobs of workers whose heartbeat stopped: a failed attempt ("worker lost"), then the default
// backoff, failed when out of attempts, or cancelled when a cancel was requested. $1 grace (us),
// $2 limit, $3 dry run, $4.. the retry curve. A worker row with host '' and pid 0 is the
// placeholder rescue() puts in for a worker whose row vanished while jobs still name it.
const std::string& rescue_sql() {
  static const std::string text =
      "WITH lost AS (SELECT j.id, j.worker_id AS wid, w.host, w.pid, w.heartbeat_at FROM {schema}.jobs j "
      "  JOIN {schema}.workers w ON w.id = j.worker_id "
      "  WHERE j.state = 'running' AND w.heartbeat_at < now() - $1::bigint * interval '1 microsecond' "
      "  ORDER BY j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED), "
      "decided AS (SELECT j.id, l.wid, l.host, l.pid, l.heartbeat_at, "
      "  CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled' WHEN j.attempt >= j.max_attempts THEN 'failed' "
      "       ELSE 'scheduled' END AS new_state "
      "  FROM {schema}.jobs j JOIN lost l ON l.id = j.id), "
      "done AS (UPDATE {schema}.jobs j SET state = d.new_state, "
      "  finished_at = CASE WHEN d.new_state = 'scheduled' THEN NULL ELSE now() END, "
      "  run_at = CASE WHEN d.new_state = 'scheduled' THEN " +
      retry_at_sql("j.attempt", 4) +
      " ELSE j.run_at END, "
      "  errors = " +
      append_error_sql(
          "j.errors",
          "jsonb_build_object('at', now(), 'attempt', j.attempt, "
          "'message', CASE WHEN d.host = '' AND d.pid = 0 THEN format('worker lost: worker %s is no longer "
          "registered (its row vanished and it did not heartbeat again within the grace)', d.wid) "
          "ELSE format('worker lost: worker %s (%s pid %s) last heartbeat at %s', d.wid, d.host, d.pid, "
          "to_char(d.heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) END)") +
      " "
      "  FROM decided d WHERE j.id = d.id AND $3::bool = false "
      "  RETURNING j.id, j.queue, j.kind, j.state) "
      "SELECT id, queue, kind, state FROM done "
      "UNION ALL SELECT d.id, j.queue, j.kind, d.new_state FROM decided d JOIN {schema}.jobs j ON j.id = d.id "
      "  WHERE $3::bool "
      "ORDER BY 1";
  return text;
}

constexpr std::string_view promote_sql =
    "WITH due AS (SELECT id FROM {schema}.jobs WHERE state = 'scheduled' AND run_at <= now() "
    "  AND ($1::text[] IS NULL OR queue = ANY($1::text[])) ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
    "up AS (UPDATE {schema}.jobs j SET state = 'available' FROM due WHERE j.id = due.id RETURNING j.queue), "
    "per_queue AS (SELECT queue, count(*) AS n FROM up GROUP BY queue) "
    "SELECT COALESCE(sum(n), 0)::bigint, count(pg_notify('{schema_name}_insert', queue)) FROM per_queue";

// Counts by queue and state from queue_counts and its unfolded deltas (migration 4): O(queues),
// whatever the number of jobs. The oldest available job: one index probe per priority (0 to 9)
// of jobs_fetch_idx. Finished in the last minute: the last minute's entries of jobs_finished_idx.
constexpr std::string_view stats_sql =
    "WITH c AS (SELECT queue, state, sum(n)::bigint AS n FROM ("
    "    SELECT queue, state, n FROM {schema}.queue_counts WHERE $1::text IS NULL OR queue = $1::text "
    "    UNION ALL SELECT queue, state, n FROM {schema}.queue_count_deltas WHERE $1::text IS NULL OR queue = $1::text"
    "  ) u GROUP BY queue, state), "
    "j AS (SELECT queue, "
    "  COALESCE(sum(n) FILTER (WHERE state = 'scheduled'), 0) AS scheduled, "
    "  COALESCE(sum(n) FILTER (WHERE state = 'available'), 0) AS available, "
    "  COALESCE(sum(n) FILTER (WHERE state = 'running'), 0) AS running, "
    "  COALESCE(sum(n) FILTER (WHERE state = 'completed'), 0) AS completed, "
    "  COALESCE(sum(n) FILTER (WHERE state = 'failed'), 0) AS failed, "
    "  COALESCE(sum(n) FILTER (WHERE state = 'cancelled'), 0) AS cancelled "
    "  FROM c GROUP BY queue HAVING bool_or(n <> 0)), "
    "f AS (SELECT queue, count(*) AS n FROM {schema}.jobs WHERE state IN ('completed', 'failed', 'cancelled') "
    "  AND finished_at > now() - interval '1 minute' AND ($1::text IS NULL OR queue = $1::text) GROUP BY queue) "
    "SELECT COALESCE(j.queue, q.name), q.paused_at, COALESCE(j.scheduled, 0), COALESCE(j.available, 0), "
    "  COALESCE(j.running, 0), COALESCE(j.completed, 0), COALESCE(j.failed, 0), COALESCE(j.cancelled, 0), "
    "  CASE WHEN COALESCE(j.available, 0) = 0 THEN NULL ELSE (SELECT "
    "    GREATEST(0, (extract(epoch FROM now() - min(o.run_at)) * 1000000)::bigint) "
    "    FROM generate_series(0, 9) p CROSS JOIN LATERAL (SELECT a.run_at FROM {schema}.jobs a "
    "      WHERE a.queue = j.queue AND a.state = 'available' AND a.priority = p ORDER BY a.run_at LIMIT 1) o) END, "
    "  COALESCE(f.n, 0) "
    "FROM j FULL JOIN {schema}.queues q ON q.name = j.queue LEFT JOIN f ON f.queue = j.queue "
    "WHERE $1::text IS NULL OR COALESCE(j.queue, q.name) = $1::text ORDER BY 1";

// ---------------------------------------------------------------------------------------------
// Row reading.

template <typename T>
std::optional<T> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<T>();
}

std::optional<Timestamp> opt_time(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return parse_pg_timestamp(f.c_str());
}

std::vector<std::string> json_string_array(const char* text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& item : v.get_array())
    if (item.is_string()) out.emplace_back(item.get_string());
  return out;
}

// Reads a full row laid out by job_columns(), starting at column `c`.
Job read_job(const pqxx::row& r, int c = 0) {
  Job j;
  j.id = r[c + 0].as<JobId>();
  j.queue = r[c + 1].c_str();
  j.kind = r[c + 2].c_str();
  j.args = r[c + 3].c_str();
  j.state = parse_job_state(r[c + 4].c_str());
  j.priority = r[c + 5].as<int>();
  j.attempt = r[c + 6].as<int>();
  j.max_attempts = r[c + 7].as<int>();
  j.run_at = parse_pg_timestamp(r[c + 8].c_str());
  j.created_at = parse_pg_timestamp(r[c + 9].c_str());
  j.attempted_at = opt_time(r[c + 10]);
  j.finished_at = opt_time(r[c + 11]);
  j.worker_id = opt<std::int64_t>(r[c + 12]);
  if (auto ms = opt<std::int64_t>(r[c + 13])) j.timeout = std::chrono::milliseconds{*ms};
  j.unique_key = opt<std::string>(r[c + 14]);
  j.tags = json_string_array(r[c + 15].c_str());
  j.metadata = r[c + 16].c_str();
  j.errors = r[c + 17].c_str();
  j.result = opt<std::string>(r[c + 18]);
  j.progress = opt<std::string>(r[c + 19]);
  j.cancel_requested_at = opt_time(r[c + 20]);
  return j;
}

std::optional<std::string> opt_text_array(const std::vector<std::string>& v) {
  if (v.empty()) return std::nullopt;
  return sql::text_array(v);
}

std::optional<std::string> opt_state_array(const std::vector<JobState>& v) {
  if (v.empty()) return std::nullopt;
  std::vector<std::string> names;
  for (JobState s : v) names.emplace_back(to_string(s));
  return sql::text_array(names);
}

std::optional<std::int64_t> timeout_ms(const std::optional<Duration>& d) {
  if (!d) return std::nullopt;
  return std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
}

std::string id_list(const std::vector<JobId>& ids, std::size_t max = 10) {
  std::string out;
  for (std::size_t i = 0; i < ids.size() && i < max; ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  if (ids.size() > max) out += ", ... (" + std::to_string(ids.size()) + " in all)";
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// Collects notifications of one channel into the store's pending list.
class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, const std::string& channel, std::string event, std::vector<Notification>& sink)
      : pqxx::notification_receiver(c, channel), event_(std::move(event)), sink_(sink) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override { sink_.push_back({event_, payload}); }

 private:
  std::string event_;
  std::vector<Notification>& sink_;
};

struct Store::Impl {
  StoreOptions options;
  std::unique_ptr<pqxx::connection> conn;
  std::set<std::string> prepared;
  std::vector<Notification> pending;
  std::vector<std::unique_ptr<Receiver>> receivers;  // after conn: destroyed first

  std::string sql(std::string_view text) const { return db::with_schema(text, options.schema); }

  // Prepares a statement on first use; returns its name.
  const std::string& prepare(const std::string& name, std::string_view text) {
    auto it = prepared.find(name);
    if (it == prepared.end()) {
      conn->prepare(name, sql(text));
      it = prepared.insert(name).first;
    }
    return *it;
  }

  [[noreturn]] void fail(std::string_view context) const { db::rethrow_as_error(context, options.schema); }

  // Runs `f` and returns what it returns; whatever it throws leaves as taskq::Error through
  // fail() (an Error unchanged, a database exception mapped by db::rethrow_as_error). `context`
  // says what was being done: a string, or a callable that builds it, called only on failure so
  // that hot paths do not build messages they never use.
  template <class Context, class F>
  decltype(auto) guard(const Context& context, F&& f) const {
    try {
      return std::forward<F>(f)();
    } catch (...) {
      if constexpr (std::is_invocable_v<const Context&>)
        fail(context());
      else
        fail(context);
    }
  }

  // True when there is no fence or it holds. The lease row is then locked (shared) until the
  // caller's transaction ends, so the lease cannot change hands before its commit.
  bool fence_holds(pqxx::transaction_base& tx, const LeaseFence* fence) {
    if (!fence) return true;
    return !tx.exec_params(sql("SELECT 1 FROM {schema}.leases WHERE name = $1 AND holder = $2 AND term = $3 "
                               "AND expires_at > now() FOR SHARE"),
                           fence->lease, fence->holder, fence->term)
                .empty();
  }

  // Inserts one job (or finds the live job holding its unique key) in the caller's transaction.
  EnqueueResult insert_one(pqxx::transaction_base& tx, const EnqueueParams& p) {
    std::optional<std::string> run_at;
    if (p.run_at) run_at = format_pg_timestamp(*p.run_at);
    std::optional<std::int64_t> delay_us;
    if (p.delay) delay_us = p.delay->count();
    if (!p.unique_key) {
      static const std::string plain_text = insert_plain_sql();
      auto rows = tx.exec_params(sql(plain_text), p.queue, p.kind, p.args, p.priority, p.max_attempts, run_at,
                                 timeout_ms(p.timeout), sql::text_array(p.tags), p.metadata, delay_us);
      return {read_job(rows.at(0)), false};
    }
    // Retried: a concurrent insert of the same unique key that commits between our snapshot and
    // the conflict check leaves neither branch of the statement with a row.
    for (int attempt = 0; attempt < 3; ++attempt) {
      static const std::string unique_text = insert_one_sql();
      auto rows = tx.exec_params(sql(unique_text), p.queue, p.kind, p.args, p.priority, p.max_attempts, run_at,
                                 timeout_ms(p.timeout), p.unique_key, sql::text_array(p.tags), p.metadata, delay_us);
      if (!rows.empty()) return {read_job(rows[0]), rows[0][21].as<bool>()};
    }
    throw Error(Errc::conflict, "enqueue: unique key '" + p.unique_key.value_or("") +
                                    "' is contended by concurrent inserts; try again");
  }

  std::vector<JobChange> read_changes(const pqxx::result& rows) const {
    std::vector<JobChange> out;
    out.reserve(rows.size());
    for (const auto& r : rows)
      out.push_back({r[0].as<JobId>(), r[1].c_str(), r[2].c_str(), parse_job_state(r[3].c_str()),
                     parse_job_state(r[3].c_str()), false});
    return out;
  }

  // Locks the jobs and returns id, queue, kind, state, in id order.
  pqxx::result lock_ids(pqxx::work& tx, const std::vector<JobId>& ids) {
    return tx.exec_params(sql("SELECT id, queue, kind, state FROM {schema}.jobs WHERE id = ANY($1::bigint[]) "
                              "ORDER BY id FOR UPDATE"),
                          sql::int_array(ids));
  }

  pqxx::result lock_matching(pqxx::work& tx, const JobFilter& f, std::string_view extra) {
    return tx.exec_params(sql("SELECT id, queue, kind, state FROM {schema}.jobs WHERE " + std::string(filter_where) +
                              std::string(extra) + " ORDER BY id FOR UPDATE"),
                          opt_text_array(f.queues), opt_state_array(f.states), f.kind, f.tag, f.after_id);
  }

  static void check_all_found(const std::vector<JobId>& ids, const std::vector<JobChange>& found) {
    std::vector<JobId> missing;
    for (JobId id : ids) {
      const bool ok = std::any_of(found.begin(), found.end(), [&](const JobChange& c) { return c.id == id; });
      if (!ok) missing.push_back(id);
    }
    if (!missing.empty())
      throw Error(Errc::not_found, (missing.size() == 1 ? "no job with id " : "no jobs with ids ") + id_list(missing) +
                                       "; nothing was changed");
  }

  // Applies cancellation to locked jobs; fills in each change's target state.
  void apply_cancel(pqxx::work& tx, std::vector<JobChange>& changes, bool dry_run) {
    std::vector<JobId> waiting, running;
    for (auto& c : changes) {
      if (c.from == JobState::running) {
        c.to = JobState::running;
        c.cancel_requested = true;
        running.push_back(c.id);
      } else {
        c.to = JobState::cancelled;
        waiting.push_back(c.id);
      }
    }
    if (dry_run) return;
    if (!waiting.empty())
      tx.exec_params(sql("UPDATE {schema}.jobs SET state = 'cancelled', finished_at = now() "
                         "WHERE id = ANY($1::bigint[])"),
                     sql::int_array(waiting));
    if (!running.empty())
      tx.exec_params(
          sql("WITH r AS (UPDATE {schema}.jobs SET cancel_requested_at = COALESCE(cancel_requested_at, now()) "
              "WHERE id = ANY($1::bigint[]) RETURNING id) "
              "SELECT count(pg_notify('{schema_name}_cancel', id::text)) FROM r"),
          sql::int_array(running));
  }

  void apply_retry(pqxx::work& tx, std::vector<JobChange>& changes, bool dry_run) {
    std::vector<JobId> ids;
    for (auto& c : changes) {
      c.to = JobState::available;
      ids.push_back(c.id);
    }
    if (dry_run || ids.empty()) return;
    tx.exec_params(
        sql("WITH r AS (UPDATE {schema}.jobs SET state = 'available', run_at = now(), finished_at = NULL, "
            "cancel_requested_at = NULL, max_attempts = GREATEST(max_attempts, attempt + 1) "
            "WHERE id = ANY($1::bigint[]) RETURNING queue) "
            "SELECT count(pg_notify('{schema_name}_insert', q.queue)) FROM (SELECT DISTINCT queue FROM r) q"),
        sql::int_array(ids));
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

std::unique_ptr<Store> Store::open(const StoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->conn = db::connect({options.url, options.schema, options.connect_timeout, options.application_name,
                            options.session, options.synchronous_commit});
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

const std::string& Store::schema() const {
  return impl_->options.schema;
}

std::vector<int> Store::migrate() {
  return db::migrate(*impl_->conn, impl_->options.schema);
}

std::vector<MigrationInfo> Store::migration_status() {
  std::vector<MigrationInfo> out;
  for (auto& s : db::migration_status(*impl_->conn, impl_->options.schema))
    out.push_back({s.version, s.name, s.applied_at});
  return out;
}

void Store::require_current_schema() {
  for (const auto& m : migration_status())
    if (!m.applied_at)
      throw Error(Errc::not_migrated, "schema '" + impl_->options.schema + "' lacks migration " +
                                          std::to_string(m.version) + " (" + m.name + "): run taskctl migrate");
}

EnqueueResult Store::insert(const EnqueueParams& p) {
  const auto context = [&] { return "enqueue " + p.kind + " on queue " + p.queue; };
  return impl_->guard(context, [&] {
    // One autocommit statement: no BEGIN/COMMIT round trips on the single-enqueue path.
    pqxx::nontransaction tx(*impl_->conn);
    return impl_->insert_one(tx, p);
  });
}

namespace {

// A row that needs no column besides queue, kind and args: the table's defaults give the rest
// (run_at DEFAULT now() is the transaction time the stream reads up front).
bool uses_defaults(const EnqueueParams& p) {
  return p.priority == default_priority && p.max_attempts == default_max_attempts && !p.run_at && !p.delay &&
         !p.timeout && p.tags.empty() && p.metadata == "{}";
}

}  // namespace

std::vector<EnqueueResult> Store::insert_batch(const std::vector<EnqueueParams>& jobs) {
  if (jobs.empty()) return {};
  return impl_->guard("enqueue a batch of jobs", [&] {
    std::vector<EnqueueResult> out(jobs.size());
    std::vector<std::size_t> plain;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      if (!jobs[i].unique_key) plain.push_back(i);
    // Jobs without a unique key go in with one INSERT ... SELECT FROM unnest; each row takes its
    // id from the identity's sequence in a CTE that also keeps the row's position, so results
    // come back in input order. Without unique keys it is one autocommit statement (one round
    // trip, atomic); with them, one transaction with an insert per unique job.
    static const std::string batch_text =
        "WITH input AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence('{schema_name}.jobs', 'id')) AS id, t.* "
        "  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int[], $5::int[], $6::timestamptz[], $7::bigint[], "
        "  $8::jsonb[], $9::jsonb[], $10::bigint[]) WITH ORDINALITY "
        "  AS t(queue, kind, args, priority, max_attempts, run_at, timeout_ms, tags, metadata, delay_us, ord)), "
        "timed AS (SELECT input.*, COALESCE(input.run_at, now() + COALESCE(delay_us, 0) * interval "
        "  '1 microsecond') AS at FROM input), "
        "ins AS (INSERT INTO {schema}.jobs (id, queue, kind, args, state, priority, max_attempts, run_at, "
        "  timeout_ms, tags, metadata) OVERRIDING SYSTEM VALUE "
        "  SELECT id, queue, kind, args, CASE WHEN at > now() THEN 'scheduled' ELSE 'available' END, priority, "
        "  max_attempts, at, timeout_ms, NULLIF(ARRAY(SELECT jsonb_array_elements_text(tags)), '{}'), "
        "  NULLIF(metadata, '{}') FROM timed RETURNING *), "
        "woke AS (SELECT pg_notify('{schema_name}_insert', q.queue) FROM (SELECT DISTINCT queue FROM ins "
        "  WHERE state = 'available') q) "
        "SELECT " +
        job_columns("ins.") + ", (SELECT count(*) FROM woke), input.ord FROM ins JOIN input ON input.id = ins.id";
    auto run_plain = [&](pqxx::transaction_base& tx) {
      std::vector<std::int64_t> priorities, max_attempts;
      std::vector<std::string> queues, kinds, args, tags, metadata;
      std::vector<std::optional<std::string>> run_ats, timeouts, delays;
      for (const auto i : plain) {
        const auto& p = jobs[i];
        queues.push_back(p.queue);
        kinds.push_back(p.kind);
        args.push_back(p.args);
        priorities.push_back(p.priority);
        max_attempts.push_back(p.max_attempts);
        run_ats.push_back(p.run_at ? std::optional(format_pg_timestamp(*p.run_at)) : std::nullopt);
        const auto t = timeout_ms(p.timeout);
        timeouts.push_back(t ? std::optional(std::to_string(*t)) : std::nullopt);
        delays.push_back(p.delay ? std::optional(std::to_string(p.delay->count())) : std::nullopt);
        boost::json::array tag_json;
        for (const auto& tag : p.tags) tag_json.emplace_back(tag);
        tags.push_back(boost::json::serialize(tag_json));
        metadata.push_back(p.metadata);
      }
      const auto& stmt = impl_->prepare("taskq_insert_batch", batch_text);
      const auto rows = tx.exec_prepared(stmt, sql::text_array(queues), sql::text_array(kinds), sql::text_array(args),
                                         sql::int_array(priorities), sql::int_array(max_attempts),
                                         sql::text_array(run_ats), sql::text_array(timeouts), sql::text_array(tags),
                                         sql::text_array(metadata), sql::text_array(delays));
      for (const auto& r : rows) {
        const auto ord = r[r.size() - 1].as<std::size_t>();
        out[plain.at(ord - 1)] = {read_job(r), false};
      }
    };
    if (plain.size() == jobs.size()) {
      pqxx::nontransaction tx(*impl_->conn);
      run_plain(tx);
      return out;
    }
    pqxx::work tx(*impl_->conn);
    if (!plain.empty()) run_plain(tx);
    // Unique jobs go in in key order (input order among equal keys): two batches sharing keys
    // then wait on each other's keys in one order, never in a cycle.
    std::vector<std::size_t> unique;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      if (jobs[i].unique_key) unique.push_back(i);
    std::stable_sort(unique.begin(), unique.end(),
                     [&](std::size_t a, std::size_t b) { return *jobs[a].unique_key < *jobs[b].unique_key; });
    for (const auto i : unique) out[i] = impl_->insert_one(tx, jobs[i]);
    tx.commit();
    return out;
  });
}

BulkInsertResult Store::insert_stream(const std::function<bool(EnqueueParams&)>& next) {
  BulkInsertResult out;
  impl_->guard("enqueue batch", [&] {
    pqxx::work tx(*impl_->conn);
    const Timestamp now = parse_pg_timestamp(tx.exec1("SELECT now()")[0].c_str());
    std::vector<EnqueueParams> unique_jobs;
    std::set<std::string> woken_queues;
    tx.exec("SET LOCAL search_path TO " + db::quote_ident(impl_->options.schema));
    // Rows go out in COPY segments: a short column list while rows use the defaults (the server
    // parses fewer fields: measured ~20% less server time per row), the full list otherwise.
    // Switching closes one COPY and opens the next in the same transaction, keeping row order.
    static const std::vector<std::string> short_columns = {"queue", "kind", "args"};
    static const std::vector<std::string> full_columns = {"queue",        "kind",   "args",       "state", "priority",
                                                          "max_attempts", "run_at", "timeout_ms", "tags",  "metadata"};
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    // tablewriter takes pre-formatted COPY lines; rows are joined with '\n' and sent in ~64 KiB
    // chunks, so the client stays well ahead of the server.
    std::optional<pqxx::tablewriter> writer;
    bool writer_is_short = false;
    std::string chunk;
    chunk.reserve(80 * 1024);
    auto flush = [&] {
      if (!chunk.empty()) writer->write_raw_line(chunk);
      chunk.clear();
    };
    auto use_writer = [&](bool short_form) {
      if (writer && writer_is_short == short_form) return;
      if (writer) {
        flush();
        writer->complete();
        writer.reset();
      }
      const auto& cols = short_form ? short_columns : full_columns;
      writer.emplace(tx, "jobs", cols.begin(), cols.end());
      writer_is_short = short_form;
    };
#pragma GCC diagnostic pop
    EnqueueParams p;
    std::string last_queue;
    for (;;) {
      p = EnqueueParams{};
      if (!next(p)) break;
      if (p.unique_key) {
        unique_jobs.push_back(std::move(p));
        continue;
      }
      Timestamp run_at = now;
      if (p.run_at)
        run_at = *p.run_at;
      else if (p.delay)
        run_at = now + *p.delay;
      const bool available = run_at <= now;
      if (available && p.queue != last_queue) {
        woken_queues.insert(p.queue);
        last_queue = p.queue;
      }
      const bool short_form = uses_defaults(p);
      use_writer(short_form);
      if (!chunk.empty()) chunk += '\n';
      sql::append_copy_field(chunk, p.queue);
      chunk += '\t';
      sql::append_copy_field(chunk, p.kind);
      chunk += '\t';
      sql::append_copy_field(chunk, p.args);
      if (!short_form) {
        chunk += available ? "\tavailable\t" : "\tscheduled\t";
        chunk += std::to_string(p.priority);
        chunk += '\t';
        chunk += std::to_string(p.max_attempts);
        chunk += '\t';
        chunk += format_pg_timestamp(run_at);
        chunk += '\t';
        if (auto ms = timeout_ms(p.timeout))
          chunk += std::to_string(*ms);
        else
          chunk += "\\N";
        chunk += '\t';
        if (p.tags.empty())
          chunk += "\\N";
        else
          sql::append_copy_field(chunk, sql::text_array(p.tags));
        chunk += '\t';
        if (p.metadata == "{}")
          chunk += "\\N";
        else
          sql::append_copy_field(chunk, p.metadata);
      }
      ++out.inserted;
      if (chunk.size() >= 64 * 1024) flush();
    }
    if (writer) {
      flush();
      writer->complete();
      writer.reset();
    }
    tx.exec("SET LOCAL search_path TO DEFAULT");
    // In key order, like insert_batch(), so concurrent streams sharing keys cannot deadlock.
    std::stable_sort(unique_jobs.begin(), unique_jobs.end(),
                     [](const EnqueueParams& a, const EnqueueParams& b) { return *a.unique_key < *b.unique_key; });
    for (const auto& u : unique_jobs) {
      if (impl_->insert_one(tx, u).duplicate)
        ++out.duplicates;
      else
        ++out.inserted;
    }
    if (!woken_queues.empty())
      tx.exec_params(impl_->sql("SELECT count(pg_notify('{schema_name}_insert', q)) FROM unnest($1::text[]) q"),
                     sql::text_array(std::vector<std::string>(woken_queues.begin(), woken_queues.end())));
    tx.commit();
  });
  return out;
}

std::optional<Job> Store::get(JobId id) {
  const auto context = [&] { return "show job " + std::to_string(id); };
  return impl_->guard(context, [&]() -> std::optional<Job> {
    // One autocommit statement, prepared once per connection (the API's hot read path).
    static const std::string text = "SELECT " + job_columns("") + " FROM {schema}.jobs WHERE id = $1";
    const auto& stmt = impl_->prepare("taskq_get", text);
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_prepared(stmt, id);
    if (rows.empty()) return std::nullopt;
    return read_job(rows[0]);
  });
}

std::vector<Job> Store::get_many(const std::vector<JobId>& ids) {
  return impl_->guard("show jobs", [&] {
    static const std::string text = "SELECT " + job_columns("") + " FROM {schema}.jobs WHERE id = ANY($1::bigint[])";
    const auto& stmt = impl_->prepare("taskq_get_many", text);
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<std::int64_t> list(ids.begin(), ids.end());
    auto rows = tx.exec_prepared(stmt, sql::int_array(list));
    std::vector<Job> out;
    out.reserve(rows.size());
    for (const auto& r : rows) out.push_back(read_job(r));
    return out;
  });
}

std::vector<Job> Store::list(const JobFilter& f) {
  return list_page(f).jobs;
}

JobPage Store::list_page(const JobFilter& f) {
  return impl_->guard("list jobs", [&] {
    pqxx::read_transaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(list_sql()), opt_text_array(f.queues), opt_state_array(f.states), f.kind,
                               f.tag, f.after_id, f.limit, f.max_bytes);
    JobPage out;
    out.jobs.reserve(rows.size());
    for (const auto& r : rows) {
      out.jobs.push_back(read_job(r));
      out.cut = r[r.size() - 1].as<bool>();
    }
    return out;
  });
}

std::vector<JobChange> Store::cancel(const std::vector<JobId>& ids, bool dry_run) {
  const auto context = [&] { return (ids.size() == 1 ? "cancel job " : "cancel jobs ") + id_list(ids); };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    auto changes = impl_->read_changes(impl_->lock_ids(tx, ids));
    Impl::check_all_found(ids, changes);
    for (const auto& c : changes)
      if (is_final(c.from))
        throw Error(Errc::conflict, "job " + std::to_string(c.id) + " (queue " + c.queue + ", kind " + c.kind +
                                        ") is already " + to_string(c.from) +
                                        " and cannot be cancelled; nothing was "
                                        "changed");
    impl_->apply_cancel(tx, changes, dry_run);
    tx.commit();
    return changes;
  });
}

std::vector<JobChange> Store::cancel_matching(const JobFilter& f, bool dry_run) {
  return impl_->guard("cancel", [&] {
    pqxx::work tx(*impl_->conn);
    auto changes =
        impl_->read_changes(impl_->lock_matching(tx, f, " AND state IN ('scheduled', 'available', 'running')"));
    impl_->apply_cancel(tx, changes, dry_run);
    tx.commit();
    return changes;
  });
}

std::vector<JobChange> Store::retry(const std::vector<JobId>& ids, bool dry_run) {
  const auto context = [&] { return (ids.size() == 1 ? "retry job " : "retry jobs ") + id_list(ids); };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    auto changes = impl_->read_changes(impl_->lock_ids(tx, ids));
    Impl::check_all_found(ids, changes);
    for (const auto& c : changes)
      if (c.from == JobState::running)
        throw Error(Errc::conflict, "job " + std::to_string(c.id) + " (queue " + c.queue + ", kind " + c.kind +
                                        ") is running and cannot be retried; cancel it first. Nothing was changed");
    impl_->apply_retry(tx, changes, dry_run);
    tx.commit();
    return changes;
  });
}

std::vector<JobChange> Store::retry_matching(const JobFilter& f, bool dry_run) {
  return impl_->guard("retry", [&] {
    pqxx::work tx(*impl_->conn);
    auto changes = impl_->read_changes(impl_->lock_matching(tx, f, " AND state <> 'running'"));
    impl_->apply_retry(tx, changes, dry_run);
    tx.commit();
    return changes;
  });
}

std::vector<QueueChange> Store::set_paused(const std::vector<std::string>& queues, bool paused) {
  return impl_->guard(paused ? "pause" : "resume", [&] {
    pqxx::work tx(*impl_->conn);
    std::vector<std::string> names = queues;
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    const std::string array = sql::text_array(names);
    // Lock the existing rows first, so "changed" is exact under concurrent pause/resume.
    std::set<std::string> was_paused;
    for (const auto& r : tx.exec_params(impl_->sql("SELECT name FROM {schema}.queues WHERE name = ANY($1::text[]) "
                                                   "AND paused_at IS NOT NULL ORDER BY name FOR UPDATE"),
                                        array))
      was_paused.insert(r[0].c_str());
    if (paused)
      tx.exec_params(
          impl_->sql("INSERT INTO {schema}.queues (name, paused_at) SELECT n, now() FROM unnest($1::text[]) n "
                     "ON CONFLICT (name) DO UPDATE SET paused_at = COALESCE({schema}.queues.paused_at, now()), "
                     "updated_at = now()"),
          array);
    else
      tx.exec_params(impl_->sql("WITH up AS (UPDATE {schema}.queues SET paused_at = NULL, updated_at = now() "
                                "WHERE name = ANY($1::text[]) AND paused_at IS NOT NULL RETURNING name) "
                                "SELECT count(pg_notify('{schema_name}_insert', name)) FROM up"),
                     array);
    tx.commit();
    std::vector<QueueChange> out;
    for (const auto& n : names) out.push_back({n, paused != (was_paused.count(n) > 0)});
    return out;
  });
}

std::vector<std::string> Store::known_queues() {
  return impl_->guard("list queues", [&] {
    pqxx::read_transaction tx(*impl_->conn);
    auto rows =
        tx.exec(impl_->sql("SELECT name FROM {schema}.queues UNION SELECT DISTINCT queue FROM {schema}.jobs "
                           "ORDER BY 1"));
    std::vector<std::string> out;
    for (const auto& r : rows) out.emplace_back(r[0].c_str());
    return out;
  });
}

std::vector<QueueStats> Store::stats(const std::optional<std::string>& queue) {
  return impl_->guard("stats", [&] {
    pqxx::read_transaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(stats_sql), queue);
    std::vector<QueueStats> out;
    for (const auto& r : rows) {
      QueueStats s;
      s.queue = r[0].c_str();
      s.paused_at = opt_time(r[1]);
      s.scheduled = r[2].as<std::int64_t>();
      s.available = r[3].as<std::int64_t>();
      s.running = r[4].as<std::int64_t>();
      s.completed = r[5].as<std::int64_t>();
      s.failed = r[6].as<std::int64_t>();
      s.cancelled = r[7].as<std::int64_t>();
      if (auto us = opt<std::int64_t>(r[8])) s.oldest_available_age = Duration{*us};
      s.finished_last_minute = r[9].as<std::int64_t>();
      out.push_back(std::move(s));
    }
    return out;
  });
}

std::vector<Job> Store::running_jobs(const std::vector<std::string>& queues) {
  return impl_->guard("drain", [&] {
    pqxx::read_transaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql("SELECT " + job_columns("") +
                                          " FROM {schema}.jobs WHERE state = 'running' AND queue = ANY($1::text[]) "
                                          "ORDER BY id"),
                               sql::text_array(queues));
    std::vector<Job> out;
    for (const auto& r : rows) out.push_back(read_job(r));
    return out;
  });
}

std::int64_t Store::prune_batch(Duration older_than, const std::vector<JobState>& states, int batch, bool dry_run,
                                const LeaseFence* fence) {
  return impl_->guard("prune", [&]() -> std::int64_t {
    pqxx::work tx(*impl_->conn);
    if (!impl_->fence_holds(tx, fence)) return 0;
    const auto states_text = opt_state_array(states);
    pqxx::result r;
    if (dry_run)
      r = tx.exec_params(impl_->sql("SELECT count(*) FROM {schema}.jobs WHERE state = ANY($1::text[]) "
                                    "AND state IN ('completed', 'failed', 'cancelled') "
                                    "AND finished_at < now() - $2::bigint * interval '1 microsecond'"),
                         states_text, older_than.count());
    else
      r = tx.exec_params(
          impl_->sql("WITH victims AS (SELECT id FROM {schema}.jobs WHERE state = ANY($1::text[]) "
                     "AND state IN ('completed', 'failed', 'cancelled') "
                     "AND finished_at < now() - $2::bigint * interval '1 microsecond' "
                     "ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED), "
                     "gone AS (DELETE FROM {schema}.jobs j USING victims v WHERE j.id = v.id RETURNING 1) "
                     "SELECT count(*) FROM gone"),
          states_text, older_than.count(), batch);
    tx.commit();
    return r[0][0].as<std::int64_t>();
  });
}

std::int64_t Store::register_worker(const WorkerRegistration& w) {
  return impl_->guard("register worker", [&] {
    pqxx::work tx(*impl_->conn);
    auto r = tx.exec_params1(impl_->sql("INSERT INTO {schema}.workers (host, pid, queues, concurrency, version) "
                                        "VALUES ($1, $2, $3::text[], $4, $5) RETURNING id"),
                             w.host, w.pid, sql::text_array(w.queues), w.concurrency, w.version);
    tx.commit();
    return r[0].as<std::int64_t>();
  });
}

bool Store::heartbeat(std::int64_t worker_id, const WorkerRegistration& w) {
  return impl_->guard("heartbeat", [&] {
    // One statement: renew the row, or put it back under the same id when it vanished (deleted,
    // or replaced by rescue()'s placeholder), so the jobs that name this worker stay its own.
    // `prev` reads the row as it was before this statement.
    static const std::string text =
        "WITH prev AS (SELECT host, pid FROM {schema}.workers WHERE id = $1), "
        "up AS (INSERT INTO {schema}.workers AS w (id, host, pid, queues, concurrency, version) "
        "  OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4::text[], $5, $6) "
        "  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), host = excluded.host, pid = excluded.pid, "
        "  queues = excluded.queues, concurrency = excluded.concurrency, version = excluded.version RETURNING 1) "
        "SELECT (SELECT count(*) FROM up), NOT EXISTS (SELECT 1 FROM prev WHERE host = $2 AND pid = $3)";
    pqxx::nontransaction tx(*impl_->conn);
    const auto r = tx.exec_params1(impl_->sql(text), worker_id, w.host, w.pid, sql::text_array(w.queues), w.concurrency,
                                   w.version);
    return r[1].as<bool>();
  });
}

std::vector<std::pair<JobId, int>> Store::not_owned(std::int64_t worker_id,
                                                    const std::vector<std::pair<JobId, int>>& runs) {
  if (runs.empty()) return {};
  return impl_->guard("check the worker's running jobs", [&] {
    std::vector<std::int64_t> ids, attempts;
    for (const auto& [id, attempt] : runs) {
      ids.push_back(id);
      attempts.push_back(attempt);
    }
    pqxx::nontransaction tx(*impl_->conn);
    const auto rows = tx.exec_params(
        impl_->sql("SELECT u.id, u.attempt FROM unnest($1::bigint[], $2::int[]) AS u(id, attempt) "
                   "WHERE NOT EXISTS (SELECT 1 FROM {schema}.jobs j WHERE j.id = u.id AND j.state = 'running' "
                   "AND j.worker_id = $3 AND j.attempt = u.attempt) ORDER BY 1, 2"),
        sql::int_array(ids), sql::int_array(attempts), worker_id);
    std::vector<std::pair<JobId, int>> out;
    for (const auto& r : rows) out.emplace_back(r[0].as<JobId>(), r[1].as<int>());
    return out;
  });
}

void Store::unregister_worker(std::int64_t worker_id) {
  impl_->guard("unregister worker", [&] {
    pqxx::work tx(*impl_->conn);
    tx.exec_params(impl_->sql("DELETE FROM {schema}.workers WHERE id = $1"), worker_id);
    tx.commit();
  });
}

std::vector<Job> Store::claim(std::int64_t worker_id, const std::string& queue, int n) {
  const auto context = [&] { return "claim on queue " + queue; };
  return impl_->guard(context, [&] {
    const auto& stmt = impl_->prepare("taskq_claim", claim_sql);
    // One statement, atomic on its own: autocommit saves the BEGIN and COMMIT round trips.
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_prepared(stmt, queue, n, worker_id);
    std::vector<Job> out;
    out.reserve(rows.size());
    for (const auto& r : rows) {
      Job j;
      j.id = r[0].as<JobId>();
      j.queue = r[1].c_str();
      j.kind = r[2].c_str();
      j.args = r[3].c_str();
      j.state = JobState::running;
      j.priority = r[4].as<int>();
      j.attempt = r[5].as<int>();
      j.max_attempts = r[6].as<int>();
      if (auto ms = opt<std::int64_t>(r[7])) j.timeout = std::chrono::milliseconds{*ms};
      j.metadata = r[8].c_str();
      j.worker_id = worker_id;
      out.push_back(std::move(j));
    }
    return out;
  });
}

std::size_t Store::complete(std::int64_t worker_id, const std::vector<Outcome>& outcomes, bool delete_completed) {
  if (outcomes.empty()) return 0;
  const auto context = [&] {
    std::vector<JobId> ids;
    ids.reserve(outcomes.size());
    for (const auto& o : outcomes) ids.push_back(o.id);
    return (ids.size() == 1 ? "record the outcome of job " : "record the outcomes of jobs ") + id_list(ids);
  };
  return impl_->guard(context, [&] {
    std::vector<JobId> plain_ids;
    std::vector<std::int64_t> plain_attempts;
    std::vector<const Outcome*> general;
    for (const auto& o : outcomes) {
      if (o.kind == Outcome::Kind::completed && (delete_completed || (!o.result && !o.error))) {
        plain_ids.push_back(o.id);
        plain_attempts.push_back(o.attempt);
      } else {
        general.push_back(&o);
      }
    }
    std::size_t applied = 0;
    // Each statement is atomic on its own and outcomes of different jobs need no common
    // transaction: autocommit saves the BEGIN and COMMIT round trips on the hot path.
    pqxx::nontransaction tx(*impl_->conn);
    if (!plain_ids.empty()) {
      const auto& stmt = delete_completed ? impl_->prepare("taskq_complete_delete", complete_delete_sql)
                                          : impl_->prepare("taskq_complete_ok", complete_ok_sql);
      applied +=
          tx.exec_prepared(stmt, sql::int_array(plain_ids), worker_id, sql::int_array(plain_attempts)).affected_rows();
    }
    if (!general.empty()) {
      std::vector<JobId> ids;
      std::vector<std::int64_t> attempts;
      std::vector<std::string> kinds;
      std::vector<std::optional<std::string>> run_ats, errors, results, max_attempts;
      for (const auto* o : general) {
        ids.push_back(o->id);
        attempts.push_back(o->attempt);
        kinds.emplace_back(outcome_name(o->kind));
        run_ats.push_back(o->run_at ? std::optional(format_pg_timestamp(*o->run_at)) : std::nullopt);
        errors.push_back(o->error);
        results.push_back(o->result);
        max_attempts.push_back(o->max_attempts ? std::optional(std::to_string(*o->max_attempts)) : std::nullopt);
      }
      const auto& stmt = impl_->prepare("taskq_complete_general", complete_general_sql());
      auto r = tx.exec_prepared1(stmt, sql::int_array(ids), sql::text_array(kinds), sql::text_array(run_ats),
                                 sql::text_array(errors), sql::text_array(results), worker_id, sql::int_array(attempts),
                                 sql::text_array(max_attempts));
      applied += r[0].as<std::size_t>();
    }
    return applied;
  });
}

void Store::set_progress(std::int64_t worker_id, const std::vector<ProgressUpdate>& updates) {
  if (updates.empty()) return;
  impl_->guard("record progress", [&] {
    std::vector<JobId> ids;
    std::vector<std::int64_t> attempts;
    std::vector<std::string> values;
    for (const auto& u : updates) {
      ids.push_back(u.id);
      attempts.push_back(u.attempt);
      values.push_back(u.progress);
    }
    const auto& stmt = impl_->prepare("taskq_progress", progress_sql);
    pqxx::nontransaction tx(*impl_->conn);
    tx.exec_prepared(stmt, sql::int_array(ids), sql::int_array(attempts), sql::text_array(values), worker_id);
  });
}

std::vector<std::pair<JobId, int>> Store::running_of_worker(std::int64_t worker_id) {
  return impl_->guard("read the worker's running jobs", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(
        impl_->sql("SELECT id, attempt FROM {schema}.jobs WHERE state = 'running' AND worker_id = $1 ORDER BY id"),
        worker_id);
    std::vector<std::pair<JobId, int>> out;
    for (const auto& r : rows) out.emplace_back(r[0].as<JobId>(), r[1].as<int>());
    return out;
  });
}

std::vector<JobId> Store::cancel_requested_of_worker(std::int64_t worker_id) {
  return impl_->guard("read cancel requests", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql("SELECT id FROM {schema}.jobs WHERE state = 'running' AND worker_id = $1 "
                                          "AND cancel_requested_at IS NOT NULL ORDER BY id"),
                               worker_id);
    std::vector<JobId> out;
    for (const auto& r : rows) out.push_back(r[0].as<JobId>());
    return out;
  });
}

std::vector<WorkerInfo> Store::workers() {
  return impl_->guard("list workers", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec(
        impl_->sql("WITH k AS (SELECT worker_id, kind, count(*) AS n FROM {schema}.jobs "
                   "  WHERE state = 'running' AND worker_id IS NOT NULL GROUP BY worker_id, kind) "
                   "SELECT w.id, w.host, w.pid, array_to_json(w.queues)::text, w.concurrency, w.version, w.started_at, "
                   "  w.heartbeat_at, (extract(epoch FROM now() - w.heartbeat_at) * 1000000)::bigint, "
                   "  COALESCE((SELECT sum(n) FROM k WHERE k.worker_id = w.id), 0)::bigint, "
                   "  COALESCE((SELECT json_agg(json_build_array(kind, n) ORDER BY n DESC, kind) FROM k "
                   "            WHERE k.worker_id = w.id), '[]')::text "
                   "FROM {schema}.workers w ORDER BY w.id"));
    std::vector<WorkerInfo> out;
    for (const auto& r : rows) {
      WorkerInfo w;
      w.id = r[0].as<std::int64_t>();
      w.host = r[1].c_str();
      w.pid = r[2].as<int>();
      w.queues = json_string_array(r[3].c_str());
      w.concurrency = r[4].as<int>();
      w.version = r[5].c_str();
      w.started_at = parse_pg_timestamp(r[6].c_str());
      w.heartbeat_at = parse_pg_timestamp(r[7].c_str());
      w.heartbeat_age = Duration{r[8].as<std::int64_t>()};
      w.running = r[9].as<std::int64_t>();
      const auto kinds = boost::json::parse(r[10].c_str());
      for (const auto& item : kinds.as_array()) {
        const auto& pair = item.as_array();
        w.running_by_kind.emplace_back(std::string(pair.at(0).as_string()), pair.at(1).to_number<std::int64_t>());
      }
      out.push_back(std::move(w));
    }
    return out;
  });
}

RescueResult Store::rescue(Duration grace, int limit, bool dry_run, const LeaseFence* fence) {
  return impl_->guard("rescue jobs of dead workers", [&] {
    RescueResult out;
    pqxx::work tx(*impl_->conn);
    if (!impl_->fence_holds(tx, fence)) return out;
    // A worker whose row vanished while jobs still name it (deleted by hand, say) may be alive:
    // it gets a placeholder row (host '', pid 0) heartbeating now. If it lives, its next
    // heartbeat takes the row back (Store::heartbeat); if not, its jobs are rescued one grace
    // later, like any dead worker's. A dry run looks only at the rows there are.
    if (!dry_run)
      for (const auto& r :
           tx.exec(impl_->sql("INSERT INTO {schema}.workers (id, host, pid) OVERRIDING SYSTEM VALUE "
                              "SELECT DISTINCT j.worker_id, '', 0 FROM {schema}.jobs j WHERE j.state = 'running' "
                              "AND j.worker_id IS NOT NULL "
                              "AND NOT EXISTS (SELECT 1 FROM {schema}.workers w WHERE w.id = j.worker_id) "
                              "ORDER BY 1 ON CONFLICT (id) DO NOTHING RETURNING id")))
        out.vanished_workers.push_back(r[0].as<std::int64_t>());
    std::sort(out.vanished_workers.begin(), out.vanished_workers.end());
    auto dead = tx.exec_params(
        impl_->sql("SELECT id FROM {schema}.workers WHERE heartbeat_at < now() - $1::bigint * interval '1 microsecond' "
                   "ORDER BY 1"),
        grace.count());
    for (const auto& r : dead) out.dead_workers.push_back(r[0].as<std::int64_t>());
    if (!out.dead_workers.empty()) {
      auto rows = tx.exec_params(impl_->sql(rescue_sql()), grace.count(), limit, dry_run, backoff::exponent,
                                 backoff_cap_s(), backoff::jitter);
      for (const auto& r : rows)
        out.jobs.push_back(
            {r[0].as<JobId>(), r[1].c_str(), r[2].c_str(), JobState::running, parse_job_state(r[3].c_str()), false});
      if (!dry_run) {
        // Rows of workers dead for a day (placeholders: for a grace) and holding no job are
        // forgotten; until then `taskctl workers` shows them as dead.
        out.forgotten_workers =
            tx.exec_params(impl_->sql("DELETE FROM {schema}.workers w WHERE (heartbeat_at < now() - interval '1 day' "
                                      "OR (host = '' AND pid = 0 AND heartbeat_at < now() - $1::bigint * interval "
                                      "'1 microsecond')) AND NOT EXISTS (SELECT 1 FROM {schema}.jobs j "
                                      "WHERE j.worker_id = w.id AND j.state = 'running')"),
                           grace.count())
                .affected_rows();
      }
    }
    tx.commit();
    return out;
  });
}

std::int64_t Store::promote_due(const std::vector<std::string>& queues, int limit, const LeaseFence* fence) {
  return impl_->guard("promote scheduled jobs", [&]() -> std::int64_t {
    pqxx::work tx(*impl_->conn);
    if (!impl_->fence_holds(tx, fence)) return 0;
    auto r = tx.exec_params1(impl_->sql(promote_sql), opt_text_array(queues), limit);
    tx.commit();
    return r[0].as<std::int64_t>();
  });
}

Timestamp Store::now() {
  return impl_->guard("read the database clock", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    return parse_pg_timestamp(tx.exec1("SELECT now()")[0].c_str());
  });
}

void Store::listen(const std::vector<std::string>& events) {
  impl_->guard("listen for notifications", [&] {
    for (const auto& e : events) {
      if (e != "insert" && e != "cancel" && e != "leader" && e != "events")
        throw Error(Errc::invalid_input, "unknown event '" + e + "'");
      impl_->receivers.push_back(
          std::make_unique<Receiver>(*impl_->conn, impl_->options.schema + "_" + e, e, impl_->pending));
    }
    // Receivers issue LISTEN lazily on some paths; make sure it is in effect before returning.
    impl_->conn->get_notifs();
  });
}

std::vector<Notification> Store::wait_notifications(Duration timeout, int wake_fd) {
  return impl_->guard("wait for notifications", [&] {
    impl_->conn->get_notifs();
    if (impl_->pending.empty()) {
      pollfd fds[2] = {{impl_->conn->sock(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
      const int n = ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1 << 30)));
      if (n < 0 && errno != EINTR) throw Error(Errc::internal, std::string("poll: ") + std::strerror(errno));
      if (n > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) impl_->conn->get_notifs();
      if (!impl_->conn->is_open()) throw pqxx::broken_connection("connection to the server was lost");
    }
    return std::exchange(impl_->pending, {});
  });
}

void Store::register_event_listener(const std::string& name, const std::string& host, int pid, const EventWatch& watch,
                                    Duration ttl) {
  const auto context = [&] { return "register event listener " + name; };
  impl_->guard(context, [&] {
    std::vector<std::int64_t> jobs(watch.jobs.begin(), watch.jobs.end());
    // One statement: the listener row, then its followed jobs brought to exactly `jobs`.
    static const std::string text =
        "WITH l AS (INSERT INTO {schema}.event_listeners (name, host, pid, streams, queues, all_queues, expires_at) "
        "  VALUES ($1, $2, $3, $4, $6::text[], $7, now() + $8::bigint * interval '1 microsecond') "
        "  ON CONFLICT (name) DO UPDATE SET streams = EXCLUDED.streams, queues = EXCLUDED.queues, "
        "  all_queues = EXCLUDED.all_queues, updated_at = now(), expires_at = EXCLUDED.expires_at RETURNING name), "
        "gone AS (DELETE FROM {schema}.event_watched_jobs w WHERE w.listener = $1 "
        "  AND w.job_id NOT IN (SELECT unnest($5::bigint[]))), "
        "added AS (INSERT INTO {schema}.event_watched_jobs (job_id, listener) "
        "  SELECT j, l.name FROM l, unnest($5::bigint[]) j ON CONFLICT DO NOTHING) "
        "SELECT count(*) FROM l";
    pqxx::nontransaction tx(*impl_->conn);
    tx.exec_params(impl_->sql(text), name, host, pid, watch.streams, sql::int_array(jobs),
                   sql::text_array(watch.queues), watch.all_queues, ttl.count());
  });
}

void Store::unregister_event_listener(const std::string& name) {
  const auto context = [&] { return "unregister event listener " + name; };
  impl_->guard(context, [&] {
    pqxx::nontransaction tx(*impl_->conn);
    tx.exec_params(impl_->sql("DELETE FROM {schema}.event_listeners WHERE name = $1 OR expires_at < now() - "
                              "interval '1 hour'"),
                   name);
  });
}

bool Store::events_wanted() {
  return impl_->guard("read event listeners", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    return tx.exec(impl_->sql("SELECT {schema}.events_wanted()"))[0][0].as<bool>();
  });
}

namespace {

constexpr std::string_view lease_columns =
    "name, holder, term, acquired_at, renewed_at, expires_at, (holder <> '' AND expires_at > now()), host, pid, "
    "GREATEST(0, (extract(epoch FROM expires_at - now()) * 1000000)::bigint)";

Lease read_lease(const pqxx::row& r) {
  Lease l;
  l.name = r[0].c_str();
  l.holder = r[1].c_str();
  l.term = r[2].as<std::int64_t>();
  l.acquired_at = parse_pg_timestamp(r[3].c_str());
  l.renewed_at = parse_pg_timestamp(r[4].c_str());
  l.expires_at = parse_pg_timestamp(r[5].c_str());
  l.valid = r[6].as<bool>();
  l.host = r[7].c_str();
  l.pid = r[8].as<int>();
  l.expires_in = Duration{r[9].as<std::int64_t>()};
  return l;
}

}  // namespace

std::optional<Lease> Store::acquire_lease(const std::string& name, const std::string& holder, Duration ttl,
                                          const std::string& host, int pid) {
  if (holder.empty()) throw Error(Errc::invalid_input, "lease holder must not be empty");
  const auto context = [&] { return "acquire lease " + name; };
  return impl_->guard(context, [&]() -> std::optional<Lease> {
    pqxx::nontransaction tx(*impl_->conn);
    // One statement: insert, take over an expired or resigned lease (new term), or extend our own.
    auto rows = tx.exec_params(
        impl_->sql("INSERT INTO {schema}.leases AS l (name, holder, term, acquired_at, renewed_at, expires_at, "
                   "host, pid) "
                   "VALUES ($1, $2, 1, now(), now(), now() + $3::bigint * interval '1 microsecond', $4, $5) "
                   "ON CONFLICT (name) DO UPDATE SET "
                   "  holder = excluded.holder, host = excluded.host, pid = excluded.pid, "
                   "  term = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.term "
                   "              ELSE l.term + 1 END, "
                   "  acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() "
                   "                     THEN l.acquired_at ELSE now() END, "
                   "  renewed_at = now(), expires_at = excluded.expires_at "
                   "WHERE l.expires_at <= now() OR l.holder = '' OR l.holder = excluded.holder "
                   "RETURNING " +
                   std::string(lease_columns)),
        name, holder, ttl.count(), host, pid);
    if (rows.empty()) return std::nullopt;
    return read_lease(rows[0]);
  });
}

std::optional<Timestamp> Store::renew_lease(const std::string& name, const std::string& holder, std::int64_t term,
                                            Duration ttl) {
  const auto context = [&] { return "renew lease " + name; };
  return impl_->guard(context, [&]() -> std::optional<Timestamp> {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(
        impl_->sql("UPDATE {schema}.leases SET renewed_at = now(), "
                   "expires_at = now() + $4::bigint * interval '1 microsecond' "
                   "WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at > now() RETURNING expires_at"),
        name, holder, term, ttl.count());
    if (rows.empty()) return std::nullopt;
    return parse_pg_timestamp(rows[0][0].c_str());
  });
}

bool Store::resign_lease(const std::string& name, const std::string& holder, std::int64_t term) {
  const auto context = [&] { return "resign lease " + name; };
  return impl_->guard(context, [&] {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql("WITH r AS (UPDATE {schema}.leases SET holder = '', expires_at = now() "
                                          "  WHERE name = $1 AND holder = $2 AND term = $3 RETURNING name) "
                                          "SELECT count(*), count(pg_notify('{schema_name}_leader', name)) FROM r"),
                               name, holder, term);
    return rows[0][0].as<std::int64_t>() > 0;
  });
}

std::optional<Lease> Store::lease(const std::string& name) {
  const auto context = [&] { return "read lease " + name; };
  return impl_->guard(context, [&]() -> std::optional<Lease> {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(
        impl_->sql("SELECT " + std::string(lease_columns) + " FROM {schema}.leases WHERE name = $1"), name);
    if (rows.empty()) return std::nullopt;
    return read_lease(rows[0]);
  });
}

namespace {

// $1..$10: name, schedule, timezone, kind, queue, args, priority, max_attempts, timeout_ms, tags.
constexpr std::string_view periodic_upsert_sql =
    "INSERT INTO {schema}.periodic AS p (name, schedule, timezone, kind, queue, args, priority, max_attempts, "
    "  timeout_ms, tags) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, NULLIF($10::text[], '{}')) "
    "ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, timezone = excluded.timezone, "
    "  kind = excluded.kind, queue = excluded.queue, args = excluded.args, priority = excluded.priority, "
    "  max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms, tags = excluded.tags, "
    "  updated_at = now()";

constexpr std::string_view periodic_columns =
    "name, schedule, timezone, kind, queue, last_fire_at, next_fire_at, paused_at";

PeriodicInfo read_periodic(const pqxx::row& r) {
  return PeriodicInfo{r[0].c_str(), r[1].c_str(),   r[2].c_str(),   r[3].c_str(),
                      r[4].c_str(), opt_time(r[5]), opt_time(r[6]), opt_time(r[7])};
}

// Jobs far past their timeout: one failed attempt ("stuck"), then as rescue_sql decides. $1 grace
// (us), $2 limit, $3.. the retry curve.
const std::string& stuck_sql() {
  static const std::string text =
      "WITH stuck AS (SELECT j.id FROM {schema}.jobs j WHERE j.state = 'running' AND j.timeout_ms IS NOT NULL "
      "  AND j.attempted_at < now() - j.timeout_ms * interval '1 millisecond' - $1::bigint * interval '1 microsecond' "
      "  ORDER BY j.id LIMIT $2 FOR UPDATE SKIP LOCKED), "
      "done AS (UPDATE {schema}.jobs j SET "
      "  state = CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled' WHEN j.attempt >= j.max_attempts "
      "    THEN 'failed' ELSE 'scheduled' END, "
      "  finished_at = CASE WHEN j.cancel_requested_at IS NULL AND j.attempt < j.max_attempts THEN NULL ELSE now() "
      "END, "
      "  run_at = CASE WHEN j.cancel_requested_at IS NULL AND j.attempt < j.max_attempts THEN " +
      retry_at_sql("j.attempt", 3) +
      " ELSE j.run_at END, "
      "  errors = " +
      append_error_sql(
          "j.errors",
          "jsonb_build_object('at', now(), 'attempt', j.attempt, "
          "'message', format('stuck: still running %s s after it started, past its timeout of %s s, on "
          "worker %s', round(extract(epoch FROM now() - j.attempted_at)), round(j.timeout_ms / 1000.0, 3), "
          "j.worker_id))") +
      " "
      "  FROM stuck WHERE j.id = stuck.id RETURNING j.id, j.queue, j.kind, j.state) "
      "SELECT id, queue, kind, state FROM done ORDER BY id";
  return text;
}

}  // namespace

FireResult Store::fire_periodic(const PeriodicFire& fire, const LeaseFence& fence) {
  const auto context = [&] { return "enqueue periodic job " + fire.name; };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    FireResult out;
    // The fence: the lease row is locked (shared) for the whole transaction, so it cannot change
    // hands between this check and the commit.
    const auto held =
        tx.exec_params(impl_->sql("SELECT 1 FROM {schema}.leases WHERE name = $1 AND holder = $2 AND term = $3 "
                                  "AND expires_at > now() FOR SHARE"),
                       fence.lease, fence.holder, fence.term);
    if (held.empty()) return out;  // fenced; the transaction rolls back
    const auto tick = format_pg_timestamp(fire.tick);
    const auto last = tx.exec_params(
        impl_->sql(std::string(periodic_upsert_sql) +
                   " RETURNING p.last_fire_at >= $11::timestamptz, p.paused_at IS NOT NULL"),
        fire.name, fire.schedule, fire.timezone, fire.job.kind, fire.job.queue, fire.job.args, fire.job.priority,
        fire.job.max_attempts, timeout_ms(fire.job.timeout), sql::text_array(fire.job.tags), tick);
    if (last[0][1].as<bool>()) {
      out.outcome = FireResult::Outcome::paused;
      return out;
    }
    if (!last[0][0].is_null() && last[0][0].as<bool>()) {
      out.outcome = FireResult::Outcome::already_fired;
      return out;
    }
    EnqueueParams p = fire.job;
    const std::string tick_text = format_rfc3339(fire.tick);
    p.unique_key = "periodic:" + fire.name + ":" + tick_text;
    boost::json::object meta;
    if (!p.metadata.empty() && p.metadata != "{}") meta = boost::json::parse(p.metadata).as_object();
    meta["periodic"] = fire.name;
    meta["tick"] = tick_text;
    p.metadata = boost::json::serialize(meta);
    const auto r = impl_->insert_one(tx, p);
    out.outcome = r.duplicate ? FireResult::Outcome::duplicate : FireResult::Outcome::enqueued;
    out.job = r.job.id;
    std::optional<std::string> next;
    if (fire.next_fire) next = format_pg_timestamp(*fire.next_fire);
    tx.exec_params(impl_->sql("UPDATE {schema}.periodic SET last_fire_at = $2::timestamptz, "
                              "next_fire_at = $3::timestamptz, updated_at = now() WHERE name = $1"),
                   fire.name, tick, next);
    tx.commit();
    return out;
  });
}

std::optional<PeriodicState> Store::periodic_state(const std::string& name) {
  const auto context = [&] { return "read periodic schedule " + name; };
  return impl_->guard(context, [&]() -> std::optional<PeriodicState> {
    pqxx::nontransaction tx(*impl_->conn);
    const auto rows = tx.exec_params(
        impl_->sql("SELECT name, last_fire_at, next_fire_at FROM {schema}.periodic WHERE name = $1"), name);
    if (rows.empty()) return std::nullopt;
    return PeriodicState{rows[0][0].c_str(), opt_time(rows[0][1]), opt_time(rows[0][2])};
  });
}

std::optional<std::vector<PeriodicInfo>> Store::sync_periodic(const std::vector<PeriodicDef>& defs,
                                                              const LeaseFence& fence) {
  return impl_->guard("record periodic schedules", [&]() -> std::optional<std::vector<PeriodicInfo>> {
    pqxx::work tx(*impl_->conn);
    if (!impl_->fence_holds(tx, &fence)) return std::nullopt;
    std::vector<std::string> names;
    for (const auto& d : defs) {
      tx.exec_params(impl_->sql(periodic_upsert_sql), d.name, d.schedule, d.timezone, d.job.kind, d.job.queue,
                     d.job.args, d.job.priority, d.job.max_attempts, timeout_ms(d.job.timeout),
                     sql::text_array(d.job.tags));
      if (d.next_fire)
        tx.exec_params(impl_->sql("UPDATE {schema}.periodic SET next_fire_at = $2::timestamptz WHERE name = $1"),
                       d.name, format_pg_timestamp(*d.next_fire));
      names.push_back(d.name);
    }
    tx.exec_params(impl_->sql("DELETE FROM {schema}.periodic WHERE NOT (name = ANY($1::text[]))"),
                   sql::text_array(names));
    std::vector<PeriodicInfo> out;
    for (const auto& r :
         tx.exec(impl_->sql("SELECT " + std::string(periodic_columns) + " FROM {schema}.periodic ORDER BY name")))
      out.push_back(read_periodic(r));
    tx.commit();
    return out;
  });
}

std::vector<PeriodicInfo> Store::list_periodic() {
  return impl_->guard("list periodic schedules", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<PeriodicInfo> out;
    for (const auto& r :
         tx.exec(impl_->sql("SELECT " + std::string(periodic_columns) + " FROM {schema}.periodic ORDER BY name")))
      out.push_back(read_periodic(r));
    return out;
  });
}

bool Store::set_periodic_paused(const std::string& name, bool paused) {
  const auto context = [&] { return "pause schedule " + name; };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql("SELECT paused_at IS NOT NULL FROM {schema}.periodic WHERE name = $1 "
                                          "FOR UPDATE"),
                               name);
    if (rows.empty())
      throw Error(Errc::not_found, "schedule '" + name +
                                       "' is not known (a schedule is recorded once a taskq-schedulerd leads with it)");
    if (rows[0][0].as<bool>() == paused) return false;
    tx.exec_params(impl_->sql("UPDATE {schema}.periodic SET paused_at = CASE WHEN $2 THEN now() END, "
                              "updated_at = now() WHERE name = $1"),
                   name, paused);
    tx.commit();
    return true;
  });
}

EnqueueResult Store::trigger_periodic(const std::string& name) {
  const auto context = [&] { return "trigger schedule " + name; };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql("SELECT kind, queue, args::text, priority, max_attempts, timeout_ms, "
                                          "COALESCE(array_to_json(tags)::text, '[]') FROM {schema}.periodic "
                                          "WHERE name = $1"),
                               name);
    if (rows.empty())
      throw Error(Errc::not_found, "schedule '" + name +
                                       "' is not known (a schedule is recorded once a taskq-schedulerd leads with it)");
    const auto& r = rows[0];
    EnqueueParams p;
    p.kind = r[0].c_str();
    p.queue = r[1].c_str();
    p.args = r[2].c_str();
    p.priority = r[3].as<int>();
    p.max_attempts = r[4].as<int>();
    if (!r[5].is_null()) p.timeout = std::chrono::milliseconds{r[5].as<std::int64_t>()};
    p.tags = json_string_array(r[6].c_str());
    boost::json::object meta;
    meta["periodic"] = name;
    meta["trigger"] = "manual";
    p.metadata = boost::json::serialize(meta);
    auto out = impl_->insert_one(tx, p);
    tx.commit();
    return out;
  });
}

std::vector<JobChange> Store::fail_stuck(Duration grace, int limit, const LeaseFence* fence) {
  return impl_->guard("fail stuck jobs", [&]() -> std::vector<JobChange> {
    pqxx::work tx(*impl_->conn);
    if (!impl_->fence_holds(tx, fence)) return {};
    auto rows = tx.exec_params(impl_->sql(stuck_sql()), grace.count(), limit, backoff::exponent, backoff_cap_s(),
                               backoff::jitter);
    std::vector<JobChange> out;
    for (const auto& r : rows)
      out.push_back(
          {r[0].as<JobId>(), r[1].c_str(), r[2].c_str(), JobState::running, parse_job_state(r[3].c_str()), false});
    tx.commit();
    return out;
  });
}

const char* outcome_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::completed:
      return "completed";
    case Outcome::Kind::retry:
      return "retry";
    case Outcome::Kind::failed:
      return "failed";
    case Outcome::Kind::snoozed:
      return "snoozed";
    case Outcome::Kind::cancelled:
      return "cancelled";
    case Outcome::Kind::returned:
      return "returned";
  }
  return "failed";
}

}  // namespace taskq
