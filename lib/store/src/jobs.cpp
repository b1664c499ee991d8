// Jobs: reading them (one, several, a page), cancelling and retrying them, pruning finished ones.
#include <pqxx/pqxx>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "rows.hpp"
#include "sql_text.hpp"
#include "store_impl.hpp"
#include "taskq/core/error.hpp"

namespace taskq::store {
namespace {

using rows::id_list;
using rows::job_columns;
using rows::opt_state_array;
using rows::opt_text_array;
using rows::read_job;

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

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

// Prepared as "taskq_get" and "taskq_get_many".
const std::string& get_sql() {
  static const std::string text = "SELECT " + job_columns("") + " FROM {schema}.jobs WHERE id = $1";
  return text;
}
const std::string& get_many_sql() {
  static const std::string text = "SELECT " + job_columns("") + " FROM {schema}.jobs WHERE id = ANY($1::bigint[])";
  return text;
}

// Cancel and retry lock the jobs first (id, queue, kind, state, in id order).
constexpr std::string_view lock_ids_sql =
    "SELECT id, queue, kind, state FROM {schema}.jobs WHERE id = ANY($1::bigint[]) "
    "ORDER BY id FOR UPDATE";
// The jobs matching a filter, and `extra` (the states cancel or retry take).
std::string lock_matching_sql(std::string_view extra) {
  return "SELECT id, queue, kind, state FROM {schema}.jobs WHERE " + std::string(filter_where) + std::string(extra) +
         " ORDER BY id FOR UPDATE";
}
constexpr std::string_view cancellable = " AND state IN ('scheduled', 'available', 'running')";
constexpr std::string_view retryable = " AND state <> 'running'";

constexpr std::string_view cancel_waiting_sql =
    "UPDATE {schema}.jobs SET state = 'cancelled', finished_at = now() "
    "WHERE id = ANY($1::bigint[])";
constexpr std::string_view cancel_running_sql =
    "WITH r AS (UPDATE {schema}.jobs SET cancel_requested_at = COALESCE(cancel_requested_at, now()) "
    "WHERE id = ANY($1::bigint[]) RETURNING id) "
    "SELECT count(pg_notify('{schema_name}_cancel', id::text)) FROM r";
constexpr std::string_view retry_sql =
    "WITH r AS (UPDATE {schema}.jobs SET state = 'available', run_at = now(), finished_at = NULL, "
    "cancel_requested_at = NULL, max_attempts = GREATEST(max_attempts, attempt + 1) "
    "WHERE id = ANY($1::bigint[]) RETURNING queue) "
    "SELECT count(pg_notify('{schema_name}_insert', q.queue)) FROM (SELECT DISTINCT queue FROM r) q";

// $1 states, $2 age (us), $3 batch.
constexpr std::string_view prune_count_sql =
    "SELECT count(*) FROM {schema}.jobs WHERE state = ANY($1::text[]) "
    "AND state IN ('completed', 'failed', 'cancelled') "
    "AND finished_at < now() - $2::bigint * interval '1 microsecond'";
constexpr std::string_view prune_sql =
    "WITH victims AS (SELECT id FROM {schema}.jobs WHERE state = ANY($1::text[]) "
    "AND state IN ('completed', 'failed', 'cancelled') "
    "AND finished_at < now() - $2::bigint * interval '1 microsecond' "
    "ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED), "
    "gone AS (DELETE FROM {schema}.jobs j USING victims v WHERE j.id = v.id RETURNING 1) "
    "SELECT count(*) FROM gone";

// ---------------------------------------------------------------------------------------------

std::vector<JobChange> read_changes(const pqxx::result& rows) {
  std::vector<JobChange> out;
  out.reserve(rows.size());
  for (const auto& r : rows)
    out.push_back({r[0].as<JobId>(), r[1].c_str(), r[2].c_str(), parse_job_state(r[3].c_str()),
                   parse_job_state(r[3].c_str()), false});
  return out;
}

void check_all_found(const std::vector<JobId>& ids, const std::vector<JobChange>& found) {
  std::vector<JobId> missing;
  for (JobId id : ids) {
    const bool ok = std::any_of(found.begin(), found.end(), [&](const JobChange& c) { return c.id == id; });
    if (!ok) missing.push_back(id);
  }
  if (!missing.empty())
    throw Error(Errc::not_found, (missing.size() == 1 ? "no job with id " : "no jobs with ids ") + id_list(missing) +
                                     "; nothing was changed");
}

}  // namespace

pqxx::result Store::Impl::lock_ids(pqxx::work& tx, const std::vector<JobId>& ids) {
  return tx.exec_params(sql(lock_ids_sql), sql::int_array(ids));
}

pqxx::result Store::Impl::lock_matching(pqxx::work& tx, const JobFilter& f, std::string_view extra) {
  return tx.exec_params(sql(lock_matching_sql(extra)), opt_text_array(f.queues), opt_state_array(f.states), f.kind,
                        f.tag, f.after_id);
}

void Store::Impl::apply_cancel(pqxx::work& tx, std::vector<JobChange>& changes, bool dry_run) {
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
  if (!waiting.empty()) tx.exec_params(sql(cancel_waiting_sql), sql::int_array(waiting));
  if (!running.empty()) tx.exec_params(sql(cancel_running_sql), sql::int_array(running));
}

void Store::Impl::apply_retry(pqxx::work& tx, std::vector<JobChange>& changes, bool dry_run) {
  std::vector<JobId> ids;
  for (auto& c : changes) {
    c.to = JobState::available;
    ids.push_back(c.id);
  }
  if (dry_run || ids.empty()) return;
  tx.exec_params(sql(retry_sql), sql::int_array(ids));
}

std::optional<Job> Store::get(JobId id) {
  const auto context = [&] { return "show job " + std::to_string(id); };
  return impl_->guard(context, [&]() -> std::optional<Job> {
    // One autocommit statement, prepared once per connection (the API's hot read path).
    const auto& stmt = impl_->prepare("taskq_get", get_sql());
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_prepared(stmt, id);
    if (rows.empty()) return std::nullopt;
    return read_job(rows[0]);
  });
}

std::vector<Job> Store::get_many(const std::vector<JobId>& ids) {
  return impl_->guard("show jobs", [&] {
    const auto& stmt = impl_->prepare("taskq_get_many", get_many_sql());
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
    auto changes = read_changes(impl_->lock_ids(tx, ids));
    check_all_found(ids, changes);
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
    auto changes = read_changes(impl_->lock_matching(tx, f, cancellable));
    impl_->apply_cancel(tx, changes, dry_run);
    tx.commit();
    return changes;
  });
}

std::vector<JobChange> Store::retry(const std::vector<JobId>& ids, bool dry_run) {
  const auto context = [&] { return (ids.size() == 1 ? "retry job " : "retry jobs ") + id_list(ids); };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    auto changes = read_changes(impl_->lock_ids(tx, ids));
    check_all_found(ids, changes);
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
    auto changes = read_changes(impl_->lock_matching(tx, f, retryable));
    impl_->apply_retry(tx, changes, dry_run);
    tx.commit();
    return changes;
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
      r = tx.exec_params(impl_->sql(prune_count_sql), states_text, older_than.count());
    else
      r = tx.exec_params(impl_->sql(prune_sql), states_text, older_than.count(), batch);
    tx.commit();
    return r[0][0].as<std::int64_t>();
  });
}

}  // namespace taskq::store
