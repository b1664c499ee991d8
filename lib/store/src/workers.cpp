// Workers and rescue: registering workers and their heartbeats, what they still own, listing
// them, and giving back the jobs of dead workers (rescue) and of stuck runs (fail_stuck) on the
// default retry curve.
#include <pqxx/pqxx>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rows.hpp"
#include "sql_text.hpp"
#include "store_impl.hpp"
#include "taskq/core/backoff.hpp"

namespace taskq::store {
namespace {

using rows::json_string_array;

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

constexpr std::string_view register_worker_sql =
    "INSERT INTO {schema}.workers (host, pid, queues, concurrency, version) "
    "VALUES ($1, $2, $3::text[], $4, $5) RETURNING id";

// One statement: renew the row, or put it back under the same id when it vanished (deleted,
// or replaced by rescue()'s placeholder), so the jobs that name this worker stay its own.
// `prev` reads the row as it was before this statement.
constexpr std::string_view heartbeat_sql =
    "WITH prev AS (SELECT host, pid FROM {schema}.workers WHERE id = $1), "
    "up AS (INSERT INTO {schema}.workers AS w (id, host, pid, queues, concurrency, version) "
    "  OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4::text[], $5, $6) "
    "  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), host = excluded.host, pid = excluded.pid, "
    "  queues = excluded.queues, concurrency = excluded.concurrency, version = excluded.version RETURNING 1) "
    "SELECT (SELECT count(*) FROM up), NOT EXISTS (SELECT 1 FROM prev WHERE host = $2 AND pid = $3)";

// Of the runs $1 (ids), $2 (attempts), those no longer running for worker $3 on that attempt.
constexpr std::string_view not_owned_sql =
    "SELECT u.id, u.attempt FROM unnest($1::bigint[], $2::int[]) AS u(id, attempt) "
    "WHERE NOT EXISTS (SELECT 1 FROM {schema}.jobs j WHERE j.id = u.id AND j.state = 'running' "
    "AND j.worker_id = $3 AND j.attempt = u.attempt) ORDER BY 1, 2";

constexpr std::string_view unregister_worker_sql = "DELETE FROM {schema}.workers WHERE id = $1";

constexpr std::string_view workers_sql =
    "WITH k AS (SELECT worker_id, kind, count(*) AS n FROM {schema}.jobs "
    "  WHERE state = 'running' AND worker_id IS NOT NULL GROUP BY worker_id, kind) "
    "SELECT w.id, w.host, w.pid, array_to_json(w.queues)::text, w.concurrency, w.version, w.started_at, "
    "  w.heartbeat_at, (extract(epoch FROM now() - w.heartbeat_at) * 1000000)::bigint, "
    "  COALESCE((SELECT sum(n) FROM k WHERE k.worker_id = w.id), 0)::bigint, "
    "  COALESCE((SELECT json_agg(json_build_array(kind, n) ORDER BY n DESC, kind) FROM k "
    "            WHERE k.worker_id = w.id), '[]')::text "
    "FROM {schema}.workers w ORDER BY w.id";

// A placeholder row (host '', pid 0) for each worker whose row vanished while jobs name it.
constexpr std::string_view placeholder_workers_sql =
    "INSERT INTO {schema}.workers (id, host, pid) OVERRIDING SYSTEM VALUE "
    "SELECT DISTINCT j.worker_id, '', 0 FROM {schema}.jobs j WHERE j.state = 'running' "
    "AND j.worker_id IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM {schema}.workers w WHERE w.id = j.worker_id) "
    "ORDER BY 1 ON CONFLICT (id) DO NOTHING RETURNING id";

// $1 grace (us).
constexpr std::string_view dead_workers_sql =
    "SELECT id FROM {schema}.workers WHERE heartbeat_at < now() - $1::bigint * interval '1 microsecond' "
    "ORDER BY 1";

// Rows of workers dead for a day (placeholders: for the grace, $1 us) and holding no job.
constexpr std::string_view forget_workers_sql =
    "DELETE FROM {schema}.workers w WHERE (heartbeat_at < now() - interval '1 day' "
    "OR (host = '' AND pid = 0 AND heartbeat_at < now() - $1::bigint * interval "
    "'1 microsecond')) AND NOT EXISTS (SELECT 1 FROM {schema}.jobs j "
    "WHERE j.worker_id = w.id AND j.state = 'running')";

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
      "  RETURNING j.id, j.queue, j.kind, j.state, j.traceparent) "
      "SELECT id, queue, kind, state, COALESCE(substr(traceparent, 4, 32), '') FROM done "
      "UNION ALL SELECT d.id, j.queue, j.kind, d.new_state, COALESCE(substr(j.traceparent, 4, 32), '') "
      "  FROM decided d JOIN {schema}.jobs j ON j.id = d.id "
      "  WHERE $3::bool "
      "ORDER BY 1";
  return text;
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
      "  FROM stuck WHERE j.id = stuck.id RETURNING j.id, j.queue, j.kind, j.state, j.traceparent) "
      "SELECT id, queue, kind, state, COALESCE(substr(traceparent, 4, 32), '') FROM done ORDER BY id";
  return text;
}

}  // namespace

std::int64_t Store::register_worker(const WorkerRegistration& w) {
  return impl_->guard("register worker", [&] {
    pqxx::work tx(*impl_->conn);
    auto r = tx.exec_params1(impl_->sql(register_worker_sql), w.host, w.pid, sql::text_array(w.queues), w.concurrency,
                             w.version);
    tx.commit();
    return r[0].as<std::int64_t>();
  });
}

bool Store::heartbeat(std::int64_t worker_id, const WorkerRegistration& w) {
  return impl_->guard("heartbeat", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    const auto r = tx.exec_params1(impl_->sql(heartbeat_sql), worker_id, w.host, w.pid, sql::text_array(w.queues),
                                   w.concurrency, w.version);
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
    const auto rows =
        tx.exec_params(impl_->sql(not_owned_sql), sql::int_array(ids), sql::int_array(attempts), worker_id);
    std::vector<std::pair<JobId, int>> out;
    for (const auto& r : rows) out.emplace_back(r[0].as<JobId>(), r[1].as<int>());
    return out;
  });
}

void Store::unregister_worker(std::int64_t worker_id) {
  impl_->guard("unregister worker", [&] {
    pqxx::work tx(*impl_->conn);
    tx.exec_params(impl_->sql(unregister_worker_sql), worker_id);
    tx.commit();
  });
}

std::vector<WorkerInfo> Store::workers() {
  return impl_->guard("list workers", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec(impl_->sql(workers_sql));
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
      for (const auto& r : tx.exec(impl_->sql(placeholder_workers_sql)))
        out.vanished_workers.push_back(r[0].as<std::int64_t>());
    std::sort(out.vanished_workers.begin(), out.vanished_workers.end());
    auto dead = tx.exec_params(impl_->sql(dead_workers_sql), grace.count());
    for (const auto& r : dead) out.dead_workers.push_back(r[0].as<std::int64_t>());
    if (!out.dead_workers.empty()) {
      auto rows = tx.exec_params(impl_->sql(rescue_sql()), grace.count(), limit, dry_run, backoff::exponent,
                                 backoff_cap_s(), backoff::jitter);
      for (const auto& r : rows)
        out.jobs.push_back({r[0].as<JobId>(), r[1].c_str(), r[2].c_str(), JobState::running,
                            parse_job_state(r[3].c_str()), false, r[4].c_str()});
      if (!dry_run) {
        // Rows of workers dead for a day (placeholders: for a grace) and holding no job are
        // forgotten; until then `taskctl workers` shows them as dead.
        out.forgotten_workers = tx.exec_params(impl_->sql(forget_workers_sql), grace.count()).affected_rows();
      }
    }
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
      out.push_back({r[0].as<JobId>(), r[1].c_str(), r[2].c_str(), JobState::running, parse_job_state(r[3].c_str()),
                     false, r[4].c_str()});
    tx.commit();
    return out;
  });
}

}  // namespace taskq::store
