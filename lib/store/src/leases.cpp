// Leader leases: taking, renewing, resigning and reading them, and the fence that lets an action
// happen only while its lease holds.
#include <pqxx/pqxx>

#include <optional>
#include <string>
#include <string_view>

#include "store_impl.hpp"
#include "taskq/core/error.hpp"

namespace taskq::store {
namespace {

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).
// All times are the database's (now()), so holders' clocks never matter.

// The fence: $1 lease, $2 holder, $3 term. Locks the lease row (shared) until the transaction ends.
constexpr std::string_view fence_sql =
    "SELECT 1 FROM {schema}.leases WHERE name = $1 AND holder = $2 AND term = $3 "
    "AND expires_at > now() FOR SHARE";

// What read_lease() reads.
constexpr std::string_view lease_columns =
    "name, holder, term, acquired_at, renewed_at, expires_at, (holder <> '' AND expires_at > now()), host, pid, "
    "GREATEST(0, (extract(epoch FROM expires_at - now()) * 1000000)::bigint)";

// One statement: insert, take over an expired or resigned lease (new term), or extend our own.
// $1 name, $2 holder, $3 ttl (us), $4 host, $5 pid.
const std::string& acquire_lease_sql() {
  static const std::string text =
      "INSERT INTO {schema}.leases AS l (name, holder, term, acquired_at, renewed_at, expires_at, "
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
      std::string(lease_columns);
  return text;
}

// $1 name, $2 holder, $3 term, $4 ttl (us).
constexpr std::string_view renew_lease_sql =
    "UPDATE {schema}.leases SET renewed_at = now(), "
    "expires_at = now() + $4::bigint * interval '1 microsecond' "
    "WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at > now() RETURNING expires_at";

// $1 name, $2 holder, $3 term.
constexpr std::string_view resign_lease_sql =
    "WITH r AS (UPDATE {schema}.leases SET holder = '', expires_at = now() "
    "  WHERE name = $1 AND holder = $2 AND term = $3 RETURNING name) "
    "SELECT count(*), count(pg_notify('{schema_name}_leader', name)) FROM r";

const std::string& lease_sql() {
  static const std::string text = "SELECT " + std::string(lease_columns) + " FROM {schema}.leases WHERE name = $1";
  return text;
}

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

bool Store::Impl::fence_holds(pqxx::transaction_base& tx, const LeaseFence* fence) {
  if (!fence) return true;
  return !tx.exec_params(sql(fence_sql), fence->lease, fence->holder, fence->term).empty();
}

std::optional<Lease> Store::acquire_lease(const std::string& name, const std::string& holder, Duration ttl,
                                          const std::string& host, int pid) {
  if (holder.empty()) throw Error(Errc::invalid_input, "lease holder must not be empty");
  const auto context = [&] { return "acquire lease " + name; };
  return impl_->guard(context, [&]() -> std::optional<Lease> {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(acquire_lease_sql()), name, holder, ttl.count(), host, pid);
    if (rows.empty()) return std::nullopt;
    return read_lease(rows[0]);
  });
}

std::optional<Timestamp> Store::renew_lease(const std::string& name, const std::string& holder, std::int64_t term,
                                            Duration ttl) {
  const auto context = [&] { return "renew lease " + name; };
  return impl_->guard(context, [&]() -> std::optional<Timestamp> {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(renew_lease_sql), name, holder, term, ttl.count());
    if (rows.empty()) return std::nullopt;
    return parse_pg_timestamp(rows[0][0].c_str());
  });
}

bool Store::resign_lease(const std::string& name, const std::string& holder, std::int64_t term) {
  const auto context = [&] { return "resign lease " + name; };
  return impl_->guard(context, [&] {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(resign_lease_sql), name, holder, term);
    return rows[0][0].as<std::int64_t>() > 0;
  });
}

std::optional<Lease> Store::lease(const std::string& name) {
  const auto context = [&] { return "read lease " + name; };
  return impl_->guard(context, [&]() -> std::optional<Lease> {
    pqxx::nontransaction tx(*impl_->conn);
    auto rows = tx.exec_params(impl_->sql(lease_sql()), name);
    if (rows.empty()) return std::nullopt;
    return read_lease(rows[0]);
  });
}

}  // namespace taskq::store
