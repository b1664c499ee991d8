// Enqueueing: one job, a batch of jobs, and a stream of jobs through COPY.
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "rows.hpp"
#include "sql_text.hpp"
#include "store_impl.hpp"
#include "taskq/core/error.hpp"
#include "taskq/db/connection.hpp"

namespace taskq::store {
namespace {

using rows::job_columns;
using rows::read_job;
using rows::timeout_ms;

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

constexpr std::string_view unique_live = "unique_key IS NOT NULL AND state NOT IN ('cancelled', 'failed')";

std::string insert_one_sql() {
  return "WITH ins AS (INSERT INTO {schema}.jobs (queue, kind, args, state, priority, max_attempts, run_at, "
         "timeout_ms, unique_key, tags, metadata, traceparent, tracestate) "
         "SELECT $1, $2, $3::jsonb, CASE WHEN t.run_at > now() THEN 'scheduled' ELSE 'available' END, $4, $5, "
         "t.run_at, $7, $8, NULLIF($9::text[], '{}'), NULLIF($10::jsonb, '{}'), $12, $13 "
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
         "timeout_ms, tags, metadata, traceparent, tracestate) "
         "SELECT $1, $2, $3::jsonb, CASE WHEN t.run_at > now() THEN 'scheduled' ELSE 'available' END, $4, $5, "
         "t.run_at, $7, NULLIF($8::text[], '{}'), NULLIF($9::jsonb, '{}'), $11, $12 "
         "FROM (SELECT COALESCE($6::timestamptz, now() + COALESCE($10::bigint, 0) * interval '1 microsecond') AS "
         "run_at) t RETURNING *), "
         "woke AS (SELECT pg_notify('{schema_name}_insert', queue) FROM ins WHERE state = 'available') "
         "SELECT " +
         job_columns("ins.") + ", false, (SELECT count(*) FROM woke) FROM ins";
}

// Jobs without a unique key go in with one INSERT ... SELECT FROM unnest; each row takes its id
// from the identity's sequence in a CTE that also keeps the row's position, so results come back
// in input order. Prepared as "taskq_insert_batch".
const std::string& insert_batch_sql() {
  static const std::string text =
      "WITH input AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence('{schema_name}.jobs', 'id')) AS id, t.* "
      "  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int[], $5::int[], $6::timestamptz[], $7::bigint[], "
      "  $8::jsonb[], $9::jsonb[], $10::bigint[], $11::text[], $12::text[]) WITH ORDINALITY "
      "  AS t(queue, kind, args, priority, max_attempts, run_at, timeout_ms, tags, metadata, delay_us, traceparent, "
      "  tracestate, ord)), "
      "timed AS (SELECT input.*, COALESCE(input.run_at, now() + COALESCE(delay_us, 0) * interval "
      "  '1 microsecond') AS at FROM input), "
      "ins AS (INSERT INTO {schema}.jobs (id, queue, kind, args, state, priority, max_attempts, run_at, "
      "  timeout_ms, tags, metadata, traceparent, tracestate) OVERRIDING SYSTEM VALUE "
      "  SELECT id, queue, kind, args, CASE WHEN at > now() THEN 'scheduled' ELSE 'available' END, priority, "
      "  max_attempts, at, timeout_ms, NULLIF(ARRAY(SELECT jsonb_array_elements_text(tags)), '{}'), "
      "  NULLIF(metadata, '{}'), traceparent, tracestate FROM timed RETURNING *), "
      "woke AS (SELECT pg_notify('{schema_name}_insert', q.queue) FROM (SELECT DISTINCT queue FROM ins "
      "  WHERE state = 'available') q) "
      "SELECT " +
      job_columns("ins.") + ", (SELECT count(*) FROM woke), input.ord FROM ins JOIN input ON input.id = ins.id";
  return text;
}

// The stream: the transaction's time, then COPY into the bare table name with the schema as the
// search path, then one NOTIFY per queue that got available jobs.
constexpr std::string_view stream_now_sql = "SELECT now()";
std::string stream_search_path_sql(const std::string& schema) {
  return "SET LOCAL search_path TO " + db::quote_ident(schema);
}
constexpr std::string_view stream_default_search_path_sql = "SET LOCAL search_path TO DEFAULT";
constexpr std::string_view stream_notify_sql =
    "SELECT count(pg_notify('{schema_name}_insert', q)) FROM unnest($1::text[]) q";

// A row that needs no column besides queue, kind and args: the table's defaults give the rest
// (run_at DEFAULT now() is the transaction time the stream reads up front; traceparent's default
// is a new trace).
bool uses_defaults(const EnqueueParams& p) {
  return p.priority == default_priority && p.max_attempts == default_max_attempts && !p.run_at && !p.delay &&
         !p.timeout && p.tags.empty() && p.metadata == "{}" && !p.traceparent && !p.tracestate;
}

// ---------------------------------------------------------------------------------------------
// The stream's COPY.

// Rows go out in COPY segments: a short column list while rows use the defaults (the server
// parses fewer fields: measured ~20% less server time per row), the full list otherwise.
// Switching closes one COPY and opens the next in the same transaction, keeping row order.
// tablewriter takes pre-formatted COPY lines; rows are joined with '\n' and sent in ~64 KiB
// chunks, so the client stays well ahead of the server.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
class CopySegments {
 public:
  explicit CopySegments(pqxx::transaction_base& tx) : tx_(tx) { chunk_.reserve(80 * 1024); }

  // Appends one job's line to the segment of its form (opening that segment first if needed).
  void add(const EnqueueParams& p, Timestamp run_at, bool available) {
    const bool short_form = uses_defaults(p);
    use(short_form);
    if (!chunk_.empty()) chunk_ += '\n';
    append_line(p, run_at, available, short_form);
    if (chunk_.size() >= 64 * 1024) flush();
  }

  // Sends what is left and ends the last segment.
  void finish() {
    if (writer_) {
      flush();
      writer_->complete();
      writer_.reset();
    }
  }

 private:
  void flush() {
    if (!chunk_.empty()) writer_->write_raw_line(chunk_);
    chunk_.clear();
  }

  void use(bool short_form) {
    static const std::vector<std::string> short_columns = {"queue", "kind", "args"};
    static const std::vector<std::string> full_columns = {"queue",    "kind",         "args",        "state",
                                                          "priority", "max_attempts", "run_at",      "timeout_ms",
                                                          "tags",     "metadata",     "traceparent", "tracestate"};
    if (writer_ && writer_is_short_ == short_form) return;
    finish();
    const auto& cols = short_form ? short_columns : full_columns;
    writer_.emplace(tx_, "jobs", cols.begin(), cols.end());
    writer_is_short_ = short_form;
  }

  void append_line(const EnqueueParams& p, Timestamp run_at, bool available, bool short_form) {
    sql::append_copy_field(chunk_, p.queue);
    chunk_ += '\t';
    sql::append_copy_field(chunk_, p.kind);
    chunk_ += '\t';
    sql::append_copy_field(chunk_, p.args);
    if (short_form) return;
    chunk_ += available ? "\tavailable\t" : "\tscheduled\t";
    chunk_ += std::to_string(p.priority);
    chunk_ += '\t';
    chunk_ += std::to_string(p.max_attempts);
    chunk_ += '\t';
    chunk_ += format_pg_timestamp(run_at);
    chunk_ += '\t';
    if (auto ms = timeout_ms(p.timeout))
      chunk_ += std::to_string(*ms);
    else
      chunk_ += "\\N";
    chunk_ += '\t';
    if (p.tags.empty())
      chunk_ += "\\N";
    else
      sql::append_copy_field(chunk_, sql::text_array(p.tags));
    chunk_ += '\t';
    if (p.metadata == "{}")
      chunk_ += "\\N";
    else
      sql::append_copy_field(chunk_, p.metadata);
    chunk_ += '\t';
    sql::append_copy_field(chunk_, rows::traceparent_of(p));
    chunk_ += '\t';
    if (p.tracestate)
      sql::append_copy_field(chunk_, *p.tracestate);
    else
      chunk_ += "\\N";
  }

  pqxx::transaction_base& tx_;
  std::optional<pqxx::tablewriter> writer_;
  bool writer_is_short_ = false;
  std::string chunk_;
};
#pragma GCC diagnostic pop

// What copy_jobs() read from the stream.
struct StreamedJobs {
  std::int64_t copied = 0;                 // jobs sent through COPY
  std::vector<EnqueueParams> unique_jobs;  // jobs with a unique key, left for insert_one()
  std::set<std::string> woken_queues;      // queues that got available jobs
};

// Reads jobs from `next` until it returns false, sending those without a unique key through
// COPY (into "jobs" of the search path) and keeping the others. `now` is the transaction's time.
StreamedJobs copy_jobs(pqxx::transaction_base& tx, Timestamp now, const std::function<bool(EnqueueParams&)>& next) {
  StreamedJobs out;
  CopySegments copy(tx);
  EnqueueParams p;
  std::string last_queue;
  for (;;) {
    p = EnqueueParams{};
    if (!next(p)) break;
    if (p.unique_key) {
      out.unique_jobs.push_back(std::move(p));
      continue;
    }
    Timestamp run_at = now;
    if (p.run_at)
      run_at = *p.run_at;
    else if (p.delay)
      run_at = now + *p.delay;
    const bool available = run_at <= now;
    if (available && p.queue != last_queue) {
      out.woken_queues.insert(p.queue);
      last_queue = p.queue;
    }
    copy.add(p, run_at, available);
    ++out.copied;
  }
  copy.finish();
  return out;
}

}  // namespace

EnqueueResult Store::Impl::insert_one(pqxx::transaction_base& tx, const EnqueueParams& p) {
  std::optional<std::string> run_at;
  if (p.run_at) run_at = format_pg_timestamp(*p.run_at);
  std::optional<std::int64_t> delay_us;
  if (p.delay) delay_us = p.delay->count();
  const std::string traceparent = rows::traceparent_of(p);
  if (!p.unique_key) {
    static const std::string plain_text = insert_plain_sql();
    auto rows =
        tx.exec_params(sql(plain_text), p.queue, p.kind, p.args, p.priority, p.max_attempts, run_at,
                       timeout_ms(p.timeout), sql::text_array(p.tags), p.metadata, delay_us, traceparent, p.tracestate);
    return {read_job(rows.at(0)), false};
  }
  // Retried: a concurrent insert of the same unique key that commits between our snapshot and
  // the conflict check leaves neither branch of the statement with a row.
  for (int attempt = 0; attempt < 3; ++attempt) {
    static const std::string unique_text = insert_one_sql();
    auto rows = tx.exec_params(sql(unique_text), p.queue, p.kind, p.args, p.priority, p.max_attempts, run_at,
                               timeout_ms(p.timeout), p.unique_key, sql::text_array(p.tags), p.metadata, delay_us,
                               traceparent, p.tracestate);
    if (!rows.empty()) return {read_job(rows[0]), rows[0][23].as<bool>()};
  }
  throw Error(Errc::conflict,
              "enqueue: unique key '" + p.unique_key.value_or("") + "' is contended by concurrent inserts; try again");
}

EnqueueResult Store::insert(const EnqueueParams& p) {
  const auto context = [&] { return "enqueue " + p.kind + " on queue " + p.queue; };
  return impl_->guard(context, [&] {
    // One autocommit statement: no BEGIN/COMMIT round trips on the single-enqueue path.
    pqxx::nontransaction tx(*impl_->conn);
    return impl_->insert_one(tx, p);
  });
}

std::vector<EnqueueResult> Store::insert_batch(const std::vector<EnqueueParams>& jobs) {
  if (jobs.empty()) return {};
  return impl_->guard("enqueue a batch of jobs", [&] {
    std::vector<EnqueueResult> out(jobs.size());
    std::vector<std::size_t> plain;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      if (!jobs[i].unique_key) plain.push_back(i);
    // Without unique keys it is one autocommit statement (one round trip, atomic); with them, one
    // transaction with an insert per unique job.
    auto run_plain = [&](pqxx::transaction_base& tx) {
      std::vector<std::int64_t> priorities, max_attempts;
      std::vector<std::string> queues, kinds, args, tags, metadata;
      std::vector<std::optional<std::string>> run_ats, timeouts, delays, tracestates;
      std::vector<std::string> traceparents;
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
        traceparents.push_back(rows::traceparent_of(p));
        tracestates.push_back(p.tracestate);
      }
      const auto& stmt = impl_->prepare("taskq_insert_batch", insert_batch_sql());
      const auto rows =
          tx.exec_prepared(stmt, sql::text_array(queues), sql::text_array(kinds), sql::text_array(args),
                           sql::int_array(priorities), sql::int_array(max_attempts), sql::text_array(run_ats),
                           sql::text_array(timeouts), sql::text_array(tags), sql::text_array(metadata),
                           sql::text_array(delays), sql::text_array(traceparents), sql::text_array(tracestates));
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
  return impl_->guard("enqueue batch", [&] {
    pqxx::work tx(*impl_->conn);
    const Timestamp now = parse_pg_timestamp(tx.exec1(std::string(stream_now_sql))[0].c_str());
    tx.exec(stream_search_path_sql(impl_->options.schema));
    StreamedJobs streamed = copy_jobs(tx, now, next);
    tx.exec(std::string(stream_default_search_path_sql));
    BulkInsertResult out;
    out.inserted = streamed.copied;
    // In key order, like insert_batch(), so concurrent streams sharing keys cannot deadlock.
    auto& unique_jobs = streamed.unique_jobs;
    std::stable_sort(unique_jobs.begin(), unique_jobs.end(),
                     [](const EnqueueParams& a, const EnqueueParams& b) { return *a.unique_key < *b.unique_key; });
    for (const auto& u : unique_jobs) {
      if (impl_->insert_one(tx, u).duplicate)
        ++out.duplicates;
      else
        ++out.inserted;
    }
    const auto& woken = streamed.woken_queues;
    if (!woken.empty())
      tx.exec_params(impl_->sql(stream_notify_sql),
                     sql::text_array(std::vector<std::string>(woken.begin(), woken.end())));
    tx.commit();
    return out;
  });
}

}  // namespace taskq::store
