// Periodic schedules: firing a tick exactly once under the leader's lease, recording the
// configured schedules, and what `taskctl cron` lists, pauses and triggers.
#include <pqxx/pqxx>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rows.hpp"
#include "sql_text.hpp"
#include "store_impl.hpp"
#include "taskq/core/error.hpp"

namespace taskq::store {
namespace {

using rows::json_string_array;
using rows::opt_time;
using rows::timeout_ms;

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

// $1..$10: name, schedule, timezone, kind, queue, args, priority, max_attempts, timeout_ms, tags.
constexpr std::string_view periodic_upsert_sql =
    "INSERT INTO {schema}.periodic AS p (name, schedule, timezone, kind, queue, args, priority, max_attempts, "
    "  timeout_ms, tags) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, NULLIF($10::text[], '{}')) "
    "ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, timezone = excluded.timezone, "
    "  kind = excluded.kind, queue = excluded.queue, args = excluded.args, priority = excluded.priority, "
    "  max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms, tags = excluded.tags, "
    "  updated_at = now()";

// The upsert, then whether tick $11 has fired already and whether the schedule is paused.
const std::string& fire_upsert_sql() {
  static const std::string text =
      std::string(periodic_upsert_sql) + " RETURNING p.last_fire_at >= $11::timestamptz, p.paused_at IS NOT NULL";
  return text;
}

// $1 name, $2 tick, $3 next fire time.
constexpr std::string_view record_fire_sql =
    "UPDATE {schema}.periodic SET last_fire_at = $2::timestamptz, "
    "next_fire_at = $3::timestamptz, updated_at = now() WHERE name = $1";

constexpr std::string_view periodic_state_sql =
    "SELECT name, last_fire_at, next_fire_at FROM {schema}.periodic WHERE name = $1";

constexpr std::string_view set_next_fire_sql =
    "UPDATE {schema}.periodic SET next_fire_at = $2::timestamptz WHERE name = $1";

// $1 the names of the configured schedules.
constexpr std::string_view delete_unconfigured_sql = "DELETE FROM {schema}.periodic WHERE NOT (name = ANY($1::text[]))";

// What read_periodic() reads.
constexpr std::string_view periodic_columns =
    "name, schedule, timezone, kind, queue, last_fire_at, next_fire_at, paused_at";

const std::string& list_periodic_sql() {
  static const std::string text = "SELECT " + std::string(periodic_columns) + " FROM {schema}.periodic ORDER BY name";
  return text;
}

constexpr std::string_view lock_periodic_paused_sql =
    "SELECT paused_at IS NOT NULL FROM {schema}.periodic WHERE name = $1 "
    "FOR UPDATE";

// $1 name, $2 paused.
constexpr std::string_view set_periodic_paused_sql =
    "UPDATE {schema}.periodic SET paused_at = CASE WHEN $2 THEN now() END, "
    "updated_at = now() WHERE name = $1";

// The schedule's job template, for a manual trigger.
constexpr std::string_view periodic_job_sql =
    "SELECT kind, queue, args::text, priority, max_attempts, timeout_ms, "
    "COALESCE(array_to_json(tags)::text, '[]') FROM {schema}.periodic "
    "WHERE name = $1";

// ---------------------------------------------------------------------------------------------

PeriodicInfo read_periodic(const pqxx::row& r) {
  return PeriodicInfo{r[0].c_str(), r[1].c_str(),   r[2].c_str(),   r[3].c_str(),
                      r[4].c_str(), opt_time(r[5]), opt_time(r[6]), opt_time(r[7])};
}

Error unknown_schedule(const std::string& name) {
  return Error(Errc::not_found,
               "schedule '" + name + "' is not known (a schedule is recorded once a taskq-schedulerd leads with it)");
}

}  // namespace

FireResult Store::fire_periodic(const PeriodicFire& fire, const LeaseFence& fence) {
  const auto context = [&] { return "enqueue periodic job " + fire.name; };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    FireResult out;
    // The fence: the lease row is locked (shared) for the whole transaction, so it cannot change
    // hands between this check and the commit.
    if (!impl_->fence_holds(tx, &fence)) return out;  // fenced; the transaction rolls back
    const auto tick = format_pg_timestamp(fire.tick);
    const auto last =
        tx.exec_params(impl_->sql(fire_upsert_sql()), fire.name, fire.schedule, fire.timezone, fire.job.kind,
                       fire.job.queue, fire.job.args, fire.job.priority, fire.job.max_attempts,
                       timeout_ms(fire.job.timeout), sql::text_array(fire.job.tags), tick);
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
    if (r.job.traceparent && r.job.traceparent->size() >= 35) out.trace_id = r.job.traceparent->substr(3, 32);
    std::optional<std::string> next;
    if (fire.next_fire) next = format_pg_timestamp(*fire.next_fire);
    tx.exec_params(impl_->sql(record_fire_sql), fire.name, tick, next);
    tx.commit();
    return out;
  });
}

std::optional<PeriodicState> Store::periodic_state(const std::string& name) {
  const auto context = [&] { return "read periodic schedule " + name; };
  return impl_->guard(context, [&]() -> std::optional<PeriodicState> {
    pqxx::nontransaction tx(*impl_->conn);
    const auto rows = tx.exec_params(impl_->sql(periodic_state_sql), name);
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
      if (d.next_fire) tx.exec_params(impl_->sql(set_next_fire_sql), d.name, format_pg_timestamp(*d.next_fire));
      names.push_back(d.name);
    }
    tx.exec_params(impl_->sql(delete_unconfigured_sql), sql::text_array(names));
    std::vector<PeriodicInfo> out;
    for (const auto& r : tx.exec(impl_->sql(list_periodic_sql()))) out.push_back(read_periodic(r));
    tx.commit();
    return out;
  });
}

std::vector<PeriodicInfo> Store::list_periodic() {
  return impl_->guard("list periodic schedules", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    std::vector<PeriodicInfo> out;
    for (const auto& r : tx.exec(impl_->sql(list_periodic_sql()))) out.push_back(read_periodic(r));
    return out;
  });
}

bool Store::set_periodic_paused(const std::string& name, bool paused) {
  const auto context = [&] { return "pause schedule " + name; };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(lock_periodic_paused_sql), name);
    if (rows.empty()) throw unknown_schedule(name);
    if (rows[0][0].as<bool>() == paused) return false;
    tx.exec_params(impl_->sql(set_periodic_paused_sql), name, paused);
    tx.commit();
    return true;
  });
}

EnqueueResult Store::trigger_periodic(const std::string& name) {
  const auto context = [&] { return "trigger schedule " + name; };
  return impl_->guard(context, [&] {
    pqxx::work tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(periodic_job_sql), name);
    if (rows.empty()) throw unknown_schedule(name);
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

}  // namespace taskq::store
