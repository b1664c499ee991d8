#include "taskq/db/migrations.hpp"

#include <algorithm>
#include <pqxx/pqxx>

#include "taskq/db/connection.hpp"

namespace taskq::db {
namespace {

constexpr std::string_view create_bookkeeping = R"sql(
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))sql";

// The lock key is derived from the schema so that deployments in other schemas don't wait.
constexpr std::string_view lock_sql = "SELECT pg_advisory_xact_lock(7346571, hashtext($1))";

}  // namespace

int latest_migration_version() {
  int v = 0;
  for (const auto& m : migrations()) v = std::max(v, m.version);
  return v;
}

std::vector<MigrationState> migration_status(pqxx::connection& conn, std::string_view schema) {
  std::vector<MigrationState> out;
  for (const auto& m : migrations()) out.push_back({m.version, std::string(m.name), std::nullopt});
  try {
    pqxx::read_transaction tx(conn);
    auto exists = tx.exec_params1("SELECT to_regclass($1) IS NOT NULL", quote_ident(schema) + ".schema_migrations");
    if (!exists[0].as<bool>()) return out;
    auto rows =
        tx.exec(with_schema("SELECT version, applied_at FROM {schema}.schema_migrations ORDER BY version", schema));
    for (const auto& row : rows) {
      const int version = row[0].as<int>();
      for (auto& s : out)
        if (s.version == version) s.applied_at = parse_pg_timestamp(row[1].c_str());
    }
  } catch (...) {
    rethrow_as_error("migrate status", schema);
  }
  return out;
}

std::vector<int> migrate(pqxx::connection& conn, std::string_view schema) {
  std::vector<int> applied;
  try {
    pqxx::work tx(conn);
    // Migrators wait for each other (the advisory lock) and may rewrite large tables: the
    // session's statement and lock timeouts do not apply to them.
    tx.exec("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0");
    tx.exec_params(std::string(lock_sql), std::string(schema));
    tx.exec(with_schema(create_bookkeeping, schema));
    std::vector<int> done;
    for (const auto& row : tx.exec(with_schema("SELECT version FROM {schema}.schema_migrations", schema)))
      done.push_back(row[0].as<int>());
    for (const auto& m : migrations()) {
      if (std::find(done.begin(), done.end(), m.version) != done.end()) continue;
      tx.exec(with_schema(m.sql, schema));
      tx.exec_params(with_schema("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)", schema),
                     m.version, std::string(m.name));
      applied.push_back(m.version);
    }
    tx.commit();
  } catch (...) {
    rethrow_as_error("migrate", schema);
  }
  return applied;
}

}  // namespace taskq::db
