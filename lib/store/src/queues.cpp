// Queues: pausing and resuming them, their counts by state, their running jobs (for drain), and
// promoting their due scheduled jobs to available.
#include <pqxx/pqxx>

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "rows.hpp"
#include "sql_text.hpp"
#include "store_impl.hpp"

namespace taskq::store {
namespace {

using rows::job_columns;
using rows::opt;
using rows::opt_text_array;
using rows::opt_time;
using rows::read_job;

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

// Pause and resume: the paused rows are locked first, so "changed" is exact. $1 queue names.
constexpr std::string_view lock_paused_sql =
    "SELECT name FROM {schema}.queues WHERE name = ANY($1::text[]) "
    "AND paused_at IS NOT NULL ORDER BY name FOR UPDATE";
constexpr std::string_view pause_sql =
    "INSERT INTO {schema}.queues (name, paused_at) SELECT n, now() FROM unnest($1::text[]) n "
    "ON CONFLICT (name) DO UPDATE SET paused_at = COALESCE({schema}.queues.paused_at, now()), "
    "updated_at = now()";
constexpr std::string_view resume_sql =
    "WITH up AS (UPDATE {schema}.queues SET paused_at = NULL, updated_at = now() "
    "WHERE name = ANY($1::text[]) AND paused_at IS NOT NULL RETURNING name) "
    "SELECT count(pg_notify('{schema_name}_insert', name)) FROM up";

constexpr std::string_view known_queues_sql =
    "SELECT name FROM {schema}.queues UNION SELECT DISTINCT queue FROM {schema}.jobs "
    "ORDER BY 1";

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

// Finished jobs per queue and minute since the start of the minute $1 - 1 minutes ago: a range
// of jobs_finished_idx (finished_at, partial on the finished states), the current minute last.
constexpr std::string_view throughput_sql =
    "SELECT queue, date_trunc('minute', finished_at) AS m, "
    "  count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'failed'), "
    "  count(*) FILTER (WHERE state = 'cancelled') "
    "FROM {schema}.jobs WHERE state IN ('completed', 'failed', 'cancelled') "
    "  AND finished_at >= date_trunc('minute', now()) - make_interval(mins => $1::int - 1) "
    "GROUP BY 1, 2 ORDER BY 1, 2";
constexpr std::string_view current_minute_sql = "SELECT date_trunc('minute', now())";

// $1 queue names.
std::string running_jobs_sql() {
  return "SELECT " + job_columns("") +
         " FROM {schema}.jobs WHERE state = 'running' AND queue = ANY($1::text[]) "
         "ORDER BY id";
}

constexpr std::string_view promote_sql =
    "WITH due AS (SELECT id FROM {schema}.jobs WHERE state = 'scheduled' AND run_at <= now() "
    "  AND ($1::text[] IS NULL OR queue = ANY($1::text[])) ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
    "up AS (UPDATE {schema}.jobs j SET state = 'available' FROM due WHERE j.id = due.id RETURNING j.queue), "
    "per_queue AS (SELECT queue, count(*) AS n FROM up GROUP BY queue) "
    "SELECT COALESCE(sum(n), 0)::bigint, count(pg_notify('{schema_name}_insert', queue)) FROM per_queue";

}  // namespace

std::vector<QueueChange> Store::set_paused(const std::vector<std::string>& queues, bool paused) {
  return impl_->guard(paused ? "pause" : "resume", [&] {
    pqxx::work tx(*impl_->conn);
    std::vector<std::string> names = queues;
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    const std::string array = sql::text_array(names);
    // Lock the existing rows first, so "changed" is exact under concurrent pause/resume.
    std::set<std::string> was_paused;
    for (const auto& r : tx.exec_params(impl_->sql(lock_paused_sql), array)) was_paused.insert(r[0].c_str());
    if (paused)
      tx.exec_params(impl_->sql(pause_sql), array);
    else
      tx.exec_params(impl_->sql(resume_sql), array);
    tx.commit();
    std::vector<QueueChange> out;
    for (const auto& n : names) out.push_back({n, paused != (was_paused.count(n) > 0)});
    return out;
  });
}

std::vector<std::string> Store::known_queues() {
  return impl_->guard("list queues", [&] {
    pqxx::read_transaction tx(*impl_->conn);
    auto rows = tx.exec(impl_->sql(known_queues_sql));
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

Throughput Store::throughput(int minutes) {
  return impl_->guard("throughput", [&] {
    pqxx::read_transaction tx(*impl_->conn);
    Throughput out;
    out.minutes = minutes;
    out.as_of = parse_pg_timestamp(tx.exec1(impl_->sql(current_minute_sql))[0].c_str());
    for (const auto& r : tx.exec_params(impl_->sql(throughput_sql), minutes)) {
      ThroughputBucket b;
      b.queue = r[0].c_str();
      b.minute = parse_pg_timestamp(r[1].c_str());
      b.completed = r[2].as<std::int64_t>();
      b.failed = r[3].as<std::int64_t>();
      b.cancelled = r[4].as<std::int64_t>();
      out.buckets.push_back(std::move(b));
    }
    return out;
  });
}

std::vector<Job> Store::running_jobs(const std::vector<std::string>& queues) {
  return impl_->guard("drain", [&] {
    pqxx::read_transaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(running_jobs_sql()), sql::text_array(queues));
    std::vector<Job> out;
    for (const auto& r : rows) out.push_back(read_job(r));
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

}  // namespace taskq::store
