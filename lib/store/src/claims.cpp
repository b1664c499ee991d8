// Claims and outcomes, the worker's hot path: claiming available jobs, recording what became of
// them (and their progress), and what a worker still runs or was asked to cancel.
#include <pqxx/pqxx>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rows.hpp"
#include "sql_text.hpp"
#include "store_impl.hpp"

namespace taskq::store {

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

namespace {

using rows::id_list;
using rows::opt;

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

constexpr std::string_view claim_sql =
    "WITH picked AS (SELECT id FROM {schema}.jobs WHERE state = 'available' AND queue = $1 "
    "AND NOT EXISTS (SELECT 1 FROM {schema}.queues q WHERE q.name = $1 AND q.paused_at IS NOT NULL) "
    "ORDER BY priority, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "UPDATE {schema}.jobs j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(), worker_id = $3 "
    "FROM picked WHERE j.id = picked.id "
    "RETURNING j.id, j.queue, j.kind, j.args::text, j.priority, j.attempt, j.max_attempts, j.timeout_ms, "
    "COALESCE(j.metadata::text, '{}'), j.traceparent, j.tracestate, "
    "(extract(epoch FROM j.run_at) * 1000000)::bigint, (extract(epoch FROM j.attempted_at) * 1000000)::bigint";

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

constexpr std::string_view running_of_worker_sql =
    "SELECT id, attempt FROM {schema}.jobs WHERE state = 'running' AND worker_id = $1 ORDER BY id";

constexpr std::string_view cancel_requested_sql =
    "SELECT id FROM {schema}.jobs WHERE state = 'running' AND worker_id = $1 "
    "AND cancel_requested_at IS NOT NULL ORDER BY id";

}  // namespace

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
      j.traceparent = opt<std::string>(r[9]);
      j.tracestate = opt<std::string>(r[10]);
      // As microseconds since the epoch: cheaper to read than timestamp text (the worker's wait metric).
      j.run_at = Timestamp{Duration{r[11].as<std::int64_t>()}};
      j.attempted_at = Timestamp{Duration{r[12].as<std::int64_t>()}};
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
    auto rows = tx.exec_params(impl_->sql(running_of_worker_sql), worker_id);
    std::vector<std::pair<JobId, int>> out;
    for (const auto& r : rows) out.emplace_back(r[0].as<JobId>(), r[1].as<int>());
    return out;
  });
}

std::vector<JobId> Store::cancel_requested_of_worker(std::int64_t worker_id) {
  return impl_->guard("read cancel requests", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(cancel_requested_sql), worker_id);
    std::vector<JobId> out;
    for (const auto& r : rows) out.push_back(r[0].as<JobId>());
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

}  // namespace taskq::store
