#pragma once
// The routes of /v1 and the probes: what each needs (scope), what it checks on the I/O thread
// (path, query, body, content type), and the database task it hands to the pool. The routes
// themselves are a table (route_table.hpp); route() decides a request from it.
#include <map>
#include <optional>
#include <string>

#include <atomic>

#include "auth.hpp"
#include "db_pool.hpp"
#include "events.hpp"
#include "metrics.hpp"
#include "request_trace.hpp"
#include "response.hpp"
#include "taskq/config/config.hpp"
#include "taskq/core/job.hpp"
#include "taskq/core/time.hpp"

namespace taskq::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded per segment by the router
  std::string query;   // raw, after '?'
  std::string body;
  std::string content_type;
  std::string authorization;
  std::string idempotency_key;
  std::string if_none_match;  // the dashboard's assets answer 304 when it names their ETag
  RequestTrace trace;         // traceparent, tracestate and the request id, for enqueued jobs
  // The body is announced but not read yet: a route that needs it answers only what the headers
  // already decide (401, 403, 404, 405, 415) and otherwise nothing, so the body is read next.
  bool body_pending = false;
};

struct Routed {
  std::string route;                     // "POST /v1/jobs", for logs and metrics ("unmatched" for 404)
  std::optional<Response> response;      // answered at once
  DbPool::Task task;                     // else: run on the pool
  std::optional<EnqueueParams> enqueue;  // or: a validated job for the pool's grouped enqueue
  std::optional<JobId> get;              // or: a job id for the pool's grouped read
  std::optional<StreamRequest> stream;   // or: an event stream for the hub
  unsigned ok_status = 200;              // what the task answers on success (for metrics)
  bool may_lock = false;                 // the task may wait on a row lock (DbPool::submit)
  std::string token;                     // the token's name (a stream's per-token limit)
};

/// What routes need besides the request; owned by the server, alive while it runs.
struct RouteContext {
  const Authenticator& auth;
  const EnqueueLimits& limits;
  const Metrics& metrics;
  const std::atomic<int>& in_flight;
  std::string version;
  bool metrics_auth = false;
  const EventHub* events = nullptr;
  const DbPool* pool = nullptr;  // /readyz reports a stuck pool
  // GET /v1/workers calls a worker "dead" once its heartbeat is older than this: the config's
  // scheduler.worker_grace (after which taskq-schedulerd rescues its jobs), whose default it has.
  Duration worker_grace = taskq::config::SchedulerConfig{}.worker_grace;
  bool ui = true;  // api.ui: /ui serves the dashboard (else 404)
};

/// Decides a request from route_table(): 400 (malformed path), 404, 405, 401, 403, then the
/// route's own checks. Never reads the body while `request.body_pending`.
Routed route(const Request& request, const RouteContext& ctx);

/// The most a page of GET /v1/jobs holds, as JSON: a page ends early, with its next cursor, when
/// the next job would take it past this (a job always fits alone).
constexpr std::size_t max_list_bytes = 8 * 1024 * 1024;

/// The answer to POST /v1/jobs: 201 with the job, or 200 with the existing one for a duplicate
/// unique key (Idempotency-Key).
Response enqueue_answer(const EnqueueResult& result);
/// The answer to GET /v1/jobs/{id}: 200 with the job, or 404.
Response get_answer(JobId id, const Job* job);

/// "a%20b" -> "a b"; nothing when the escape is malformed.
std::optional<std::string> percent_decode(std::string_view text);

// For the route files (routes.cpp, admin_routes.cpp, ui_routes.cpp):
/// A route answered at once.
Routed answer(Response r);
/// A route whose answer a task on the pool makes.
Routed run_task(DbPool::Task task);
/// A query string's parameters, name -> values in order; nothing when an escape is malformed.
std::optional<std::multimap<std::string, std::string>> parse_query(std::string_view query);
/// The 400 for a query string with a malformed % escape.
Response malformed_query();
/// Whether a Content-Type is application/json (parameters and case aside).
bool is_json(const std::string& content_type);

}  // namespace taskq::api
