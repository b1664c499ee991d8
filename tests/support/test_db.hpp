#pragma once
// A throwaway, migrated schema per test in the PostgreSQL named by TASKQ_TEST_DATABASE_URL
// (started by scripts/test). Tests in parallel never see each other's jobs.
#include <memory>
#include <string>

#include "taskq/store/store.hpp"

namespace taskq::test {

/// TASKQ_TEST_DATABASE_URL, or a failed test explaining how to run the suite.
std::string database_url();

class TestSchema {
 public:
  /// Creates a uniquely named schema; migrates it unless `migrate` is false.
  explicit TestSchema(bool migrate = true);
  ~TestSchema();
  TestSchema(const TestSchema&) = delete;
  TestSchema& operator=(const TestSchema&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] store::StoreOptions options() const;
  [[nodiscard]] std::unique_ptr<store::Store> open() const { return store::Store::open(options()); }
  /// Runs SQL in this schema (search_path set) and returns the first column of the first row.
  std::string scalar(const std::string& sql) const;
  void exec(const std::string& sql) const;

 private:
  std::string url_;
  std::string name_;
};

/// A session of its own that runs `sql` (say "SELECT 1 FROM jobs WHERE id = 42 FOR UPDATE") in a
/// transaction it keeps open, holding the locks it took until release() or destruction: the
/// forgotten psql session of an operator.
class HeldLock {
 public:
  HeldLock(const TestSchema& db, const std::string& sql);
  ~HeldLock();
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  /// Ends the transaction (rollback), releasing the locks. Idempotent.
  void release();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskq::test
