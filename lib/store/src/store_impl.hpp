#pragma once
// What the store's area files share: the connection and its prepared statements (Store::Impl),
// the error mapping every public method runs through (Impl::guard), and the steps more than one
// area takes (inserting a job, checking a lease fence, appending an error entry).
#include <pqxx/pqxx>

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskq/db/connection.hpp"
#include "taskq/store/store.hpp"

namespace taskq::store {

// Collects notifications of one channel into the store's pending list.
class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, const std::string& channel, std::string event, std::vector<Notification>& sink)
      : pqxx::notification_receiver(c, channel), event_(std::move(event)), sink_(sink) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override { sink_.push_back({event_, payload}); }

 private:
  std::string event_;
  std::vector<Notification>& sink_;
};

struct Store::Impl {
  StoreOptions options;
  std::unique_ptr<pqxx::connection> conn;
  std::set<std::string> prepared;
  std::vector<Notification> pending;
  std::vector<std::unique_ptr<Receiver>> receivers;  // after conn: destroyed first

  std::string sql(std::string_view text) const { return db::with_schema(text, options.schema); }

  // Prepares a statement on first use; returns its name.
  const std::string& prepare(const std::string& name, std::string_view text) {
    auto it = prepared.find(name);
    if (it == prepared.end()) {
      conn->prepare(name, sql(text));
      it = prepared.insert(name).first;
    }
    return *it;
  }

  [[noreturn]] void fail(std::string_view context) const { db::rethrow_as_error(context, options.schema); }

  // Runs `f` and returns what it returns; whatever it throws leaves as taskq::Error through
  // fail() (an Error unchanged, a database exception mapped by db::rethrow_as_error). `context`
  // says what was being done: a string, or a callable that builds it, called only on failure so
  // that hot paths do not build messages they never use.
  template <class Context, class F>
  decltype(auto) guard(const Context& context, F&& f) const {
    try {
      return std::forward<F>(f)();
    } catch (...) {
      if constexpr (std::is_invocable_v<const Context&>)
        fail(context());
      else
        fail(context);
    }
  }

  // True when there is no fence or it holds. The lease row is then locked (shared) until the
  // caller's transaction ends, so the lease cannot change hands before its commit. (leases.cpp)
  bool fence_holds(pqxx::transaction_base& tx, const LeaseFence* fence);

  // Inserts one job (or finds the live job holding its unique key) in the caller's transaction.
  // (enqueue.cpp)
  EnqueueResult insert_one(pqxx::transaction_base& tx, const EnqueueParams& p);

  // Cancel and retry (jobs.cpp). lock_ids and lock_matching lock the jobs and return id, queue,
  // kind, state, in id order; `extra` narrows the filter to the states the operation takes.
  pqxx::result lock_ids(pqxx::work& tx, const std::vector<JobId>& ids);
  pqxx::result lock_matching(pqxx::work& tx, const JobFilter& f, std::string_view extra);
  // Applies cancellation to locked jobs; fills in each change's target state.
  void apply_cancel(pqxx::work& tx, std::vector<JobChange>& changes, bool dry_run);
  void apply_retry(pqxx::work& tx, std::vector<JobChange>& changes, bool dry_run);
};

// `errors` with `entry` appended, keeping at most the first entry and the last 10 (claims.cpp,
// where the outcome statements use it; rescue and stuck jobs append through it too).
std::string append_error_sql(std::string_view errors, std::string_view entry);

}  // namespace taskq::store
