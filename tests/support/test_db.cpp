#include "test_db.hpp"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <pqxx/pqxx>
#include <random>

using taskq::store::Store;
using taskq::store::StoreOptions;

namespace taskq::test {

std::string database_url() {
  const char* url = std::getenv("TASKQ_TEST_DATABASE_URL");
  if (!url || !*url)
    FAIL(
        "TASKQ_TEST_DATABASE_URL is not set: run the tests with ./scripts/test, which starts a throwaway "
        "PostgreSQL");
  return url;
}

TestSchema::TestSchema(bool migrate) : url_(database_url()) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  name_ = "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  tx.exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
  if (migrate) Store::open(options())->migrate();
}

TestSchema::~TestSchema() {
  try {
    pqxx::connection c(url_);
    pqxx::nontransaction tx(c);
    tx.exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
  } catch (...) {
  }
}

StoreOptions TestSchema::options() const {
  StoreOptions o;
  o.url = url_;
  o.schema = name_;
  o.application_name = "taskq-test";
  return o;
}

std::string TestSchema::scalar(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::work tx(c);
  tx.exec("SET LOCAL search_path TO " + name_);
  auto r = tx.exec(sql);
  tx.commit();
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].c_str();
}

void TestSchema::exec(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::work tx(c);
  tx.exec("SET LOCAL search_path TO " + name_);
  tx.exec(sql);
  tx.commit();
}

struct HeldLock::Impl {
  pqxx::connection conn;
  std::optional<pqxx::work> tx;
  explicit Impl(const std::string& url) : conn(url) {}
};

HeldLock::HeldLock(const TestSchema& db, const std::string& sql) : impl_(std::make_unique<Impl>(db.url())) {
  impl_->tx.emplace(impl_->conn);
  impl_->tx->exec("SET LOCAL search_path TO " + db.name());
  impl_->tx->exec(sql);
}

HeldLock::~HeldLock() {
  release();
}

void HeldLock::release() {
  if (!impl_->tx) return;
  try {
    impl_->tx->abort();
  } catch (...) {
  }
  impl_->tx.reset();
}

}  // namespace taskq::test
