// The Store core: opening the connection, the schema and its migrations, the database's clock.
#include "taskq/store/store.hpp"

#include <string_view>

#include "store_impl.hpp"
#include "taskq/core/error.hpp"
#include "taskq/db/connection.hpp"
#include "taskq/db/migrations.hpp"

namespace taskq::store {
namespace {

constexpr std::string_view now_sql = "SELECT now()";

}  // namespace

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

Timestamp Store::now() {
  return impl_->guard("read the database clock", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    return parse_pg_timestamp(tx.exec1(std::string(now_sql))[0].c_str());
  });
}

}  // namespace taskq::store
