#pragma once
// Versioned schema migrations, embedded in the library from lib/db/migrations/NNNN_name.sql.
// A released migration is never edited; changes come as new files. migrate() takes a
// transaction-level advisory lock keyed on the schema, so concurrent migrators serialize and the
// second finds nothing left to do; all pending migrations apply in one transaction.
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <vector>

#include "taskq/core/time.hpp"

namespace taskq::db {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;  // uses {schema} for the quoted schema name
};

const std::vector<Migration>& migrations();
int latest_migration_version();

struct MigrationState {
  int version;
  std::string name;
  std::optional<Timestamp> applied_at;  // empty: pending
};

std::vector<MigrationState> migration_status(pqxx::connection& conn, std::string_view schema);
/// Applies pending migrations; returns the versions applied now (empty when up to date).
std::vector<int> migrate(pqxx::connection& conn, std::string_view schema);

}  // namespace taskq::db
