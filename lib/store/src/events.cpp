// Events: LISTEN/NOTIFY on the store's connection, and the event listeners whose rows turn on the
// job events of migration 3.
#include <poll.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sql_text.hpp"
#include "store_impl.hpp"
#include "taskq/core/error.hpp"

namespace taskq::store {
namespace {

// ---------------------------------------------------------------------------------------------
// Statements. {schema} is the quoted schema name, {schema_name} the bare one (channel names).

// One statement: the listener row, then its followed jobs brought to exactly `jobs` ($5).
// $1 name, $2 host, $3 pid, $4 streams, $6 queues, $7 all queues, $8 ttl (us).
constexpr std::string_view register_listener_sql =
    "WITH l AS (INSERT INTO {schema}.event_listeners (name, host, pid, streams, queues, all_queues, expires_at) "
    "  VALUES ($1, $2, $3, $4, $6::text[], $7, now() + $8::bigint * interval '1 microsecond') "
    "  ON CONFLICT (name) DO UPDATE SET streams = EXCLUDED.streams, queues = EXCLUDED.queues, "
    "  all_queues = EXCLUDED.all_queues, updated_at = now(), expires_at = EXCLUDED.expires_at RETURNING name), "
    "gone AS (DELETE FROM {schema}.event_watched_jobs w WHERE w.listener = $1 "
    "  AND w.job_id NOT IN (SELECT unnest($5::bigint[]))), "
    "added AS (INSERT INTO {schema}.event_watched_jobs (job_id, listener) "
    "  SELECT j, l.name FROM l, unnest($5::bigint[]) j ON CONFLICT DO NOTHING) "
    "SELECT count(*) FROM l";

// The listener's row, and the rows of listeners expired for an hour.
constexpr std::string_view unregister_listener_sql =
    "DELETE FROM {schema}.event_listeners WHERE name = $1 OR expires_at < now() - "
    "interval '1 hour'";

constexpr std::string_view events_wanted_sql = "SELECT {schema}.events_wanted()";

}  // namespace

void Store::listen(const std::vector<std::string>& events) {
  impl_->guard("listen for notifications", [&] {
    for (const auto& e : events) {
      if (e != "insert" && e != "cancel" && e != "leader" && e != "events")
        throw Error(Errc::invalid_input, "unknown event '" + e + "'");
      impl_->receivers.push_back(
          std::make_unique<Receiver>(*impl_->conn, impl_->options.schema + "_" + e, e, impl_->pending));
    }
    // Receivers issue LISTEN lazily on some paths; make sure it is in effect before returning.
    impl_->conn->get_notifs();
  });
}

std::vector<Notification> Store::wait_notifications(Duration timeout, int wake_fd) {
  return impl_->guard("wait for notifications", [&] {
    impl_->conn->get_notifs();
    if (impl_->pending.empty()) {
      pollfd fds[2] = {{impl_->conn->sock(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
      const int n = ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1 << 30)));
      if (n < 0 && errno != EINTR) throw Error(Errc::internal, std::string("poll: ") + std::strerror(errno));
      if (n > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) impl_->conn->get_notifs();
      if (!impl_->conn->is_open()) throw pqxx::broken_connection("connection to the server was lost");
    }
    return std::exchange(impl_->pending, {});
  });
}

void Store::register_event_listener(const std::string& name, const std::string& host, int pid, const EventWatch& watch,
                                    Duration ttl) {
  const auto context = [&] { return "register event listener " + name; };
  impl_->guard(context, [&] {
    std::vector<std::int64_t> jobs(watch.jobs.begin(), watch.jobs.end());
    pqxx::nontransaction tx(*impl_->conn);
    tx.exec_params(impl_->sql(register_listener_sql), name, host, pid, watch.streams, sql::int_array(jobs),
                   sql::text_array(watch.queues), watch.all_queues, ttl.count());
  });
}

void Store::unregister_event_listener(const std::string& name) {
  const auto context = [&] { return "unregister event listener " + name; };
  impl_->guard(context, [&] {
    pqxx::nontransaction tx(*impl_->conn);
    tx.exec_params(impl_->sql(unregister_listener_sql), name);
  });
}

bool Store::events_wanted() {
  return impl_->guard("read event listeners", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    return tx.exec(impl_->sql(events_wanted_sql))[0][0].as<bool>();
  });
}

}  // namespace taskq::store
