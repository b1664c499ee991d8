#include "routes.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <map>
#include <vector>

#include "admin_routes.hpp"
#include "route_table.hpp"
#include "taskq/core/json.hpp"
#include "taskq/core/text.hpp"
#include "taskq/queue/json_shapes.hpp"
#include "ui_routes.hpp"

using taskq::store::JobFilter;
using taskq::store::JobPage;

using taskq::queue::change_json;
using taskq::queue::Client;
using taskq::queue::lease_json;
using taskq::queue::periodic_json;
using taskq::queue::queue_change_json;
using taskq::queue::queue_stats_json;
using taskq::queue::worker_json;

namespace taskq::api {

namespace json = boost::json;

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      unsigned v = 0;
      const auto [p, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16);
      if (ec != std::errc{} || p != text.data() + i + 3) return std::nullopt;
      out += static_cast<char>(v);
      i += 2;
    } else if (c == '+') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::multimap<std::string, std::string>> parse_query(std::string_view query) {
  std::multimap<std::string, std::string> out;
  if (query.empty()) return out;
  for (const auto& pair : split(query, '&')) {
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto k = percent_decode(pair.substr(0, eq));
    auto v = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    if (!k || !v) return std::nullopt;
    out.emplace(std::move(*k), std::move(*v));
  }
  return out;
}

namespace {

std::optional<JobId> parse_id(const std::string& text) {
  JobId id = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc{} || p != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

// "Application/JSON; charset=utf-8" -> "application/json".
std::string media_type(const std::string& content_type) {
  std::string base = content_type.substr(0, content_type.find(';'));
  while (!base.empty() && base.back() == ' ') base.pop_back();
  for (auto& c : base) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return base;
}

Response method_not_allowed(const std::string& allow) {
  auto r = error_response(405, "method_not_allowed", "use " + allow + " on this path");
  r.headers.emplace_back("Allow", allow);
  return r;
}

json::object job_json(const Job& job, std::optional<bool> duplicate = std::nullopt) {
  auto o = job_to_json(job);
  if (duplicate) o["duplicate"] = *duplicate;
  return o;
}

// The job id of a path's {id}; else the 404 to answer.
std::optional<JobId> job_id(const RouteCall& call, Routed& refusal) {
  const std::string& text = call.params.at("id");
  const auto id = parse_id(text);
  if (!id) refusal = answer(error_response(404, "not_found", "no such job: '" + text + "' is not a job id"));
  return id;
}

Routed enqueue_route(const RouteCall& call) {
  const Request& req = call.request;
  if (!is_json(req.content_type))
    return answer(error_response(415, "unsupported_media_type",
                                 "send the job as Content-Type: application/json (got '" + req.content_type + "')"));
  if (req.body_pending) return Routed{};  // headers accepted: the body is read next
  EnqueueParams params;
  try {
    params = enqueue_params_from_json(parse_json("body", req.body));
    apply_request_trace(params, req.trace);
    if (!req.idempotency_key.empty()) {
      if (params.unique_key && *params.unique_key != req.idempotency_key)
        throw Error(Errc::invalid_input, "unique_key: differs from the Idempotency-Key header; send one of them");
      params.unique_key = req.idempotency_key;
    }
    validate_enqueue(params, call.ctx.limits, JsonCheck::already_parsed);
  } catch (const Error& e) {
    return answer(from_error(e));
  }
  Routed out;
  out.ok_status = 201;
  out.enqueue = std::move(params);
  return out;
}

bool is_ndjson(const std::string& content_type) {
  const auto base = media_type(content_type);
  return base == "application/x-ndjson" || base == "application/jsonl" || base == "application/json-lines";
}

constexpr std::size_t max_batch = 10000;

// A JSON array of jobs, or NDJSON (one job per line, blank lines ignored). Errors name the job.
// The request's trace headers apply to every job without its own traceparent.
std::vector<EnqueueParams> parse_batch(const std::string& body, bool ndjson, const RequestTrace& trace) {
  std::vector<EnqueueParams> jobs;
  auto add = [&](const json::value& v) {
    if (jobs.size() == max_batch)
      throw Error(Errc::invalid_input, "jobs: a batch holds at most " + std::to_string(max_batch) + " jobs");
    try {
      jobs.push_back(enqueue_params_from_json(v));
      apply_request_trace(jobs.back(), trace);
    } catch (const Error& e) {
      throw Error(e.code(), "jobs[" + std::to_string(jobs.size()) + "]." + e.what() + "; nothing was enqueued");
    }
  };
  if (!ndjson) {
    const auto v = parse_json("body", body);
    if (!v.is_array()) throw Error(Errc::invalid_input, "jobs: the body must be a JSON array of jobs");
    for (const auto& item : v.get_array()) add(item);
  } else {
    std::size_t start = 0, line = 0;
    while (start < body.size()) {
      auto end = body.find('\n', start);
      if (end == std::string::npos) end = body.size();
      ++line;
      const std::string_view text(body.data() + start, end - start);
      if (text.find_first_not_of(" \t\r") != std::string_view::npos)
        add(parse_json("line " + std::to_string(line), text));
      start = end + 1;
    }
  }
  if (jobs.empty()) throw Error(Errc::invalid_input, "jobs: the batch is empty");
  return jobs;
}

// Runs on the pool: parses and enqueues a batch, answers the ids.
Response enqueue_batch(Client& c, const std::string& body, bool ndjson, const RequestTrace& trace) {
  const auto results = c.enqueue_batch(parse_batch(body, ndjson, trace));
  json::array ids;
  std::int64_t duplicates = 0;
  std::map<std::string, std::int64_t> by_queue;
  for (const auto& r : results) {
    ids.emplace_back(r.job.id);
    if (r.duplicate)
      ++duplicates;
    else
      ++by_queue[r.job.queue];
  }
  auto resp = json_response(201, json::object{{"count", static_cast<std::int64_t>(results.size())},
                                              {"duplicates", duplicates},
                                              {"ids", std::move(ids)}});
  resp.enqueued.assign(by_queue.begin(), by_queue.end());
  return resp;
}

Routed batch_route(const RouteCall& call) {
  const Request& req = call.request;
  const bool ndjson = is_ndjson(req.content_type);
  if (!ndjson && !is_json(req.content_type))
    return answer(error_response(415, "unsupported_media_type",
                                 "send a JSON array (application/json) or one job per line "
                                 "(application/x-ndjson); got '" +
                                     req.content_type + "'"));
  if (req.body_pending) return Routed{};  // headers accepted: the body is read next
  // Parsed on the pool, not on an I/O thread: a batch can be a megabyte.
  Routed out = run_task(
      [body = req.body, ndjson, trace = req.trace](Client& c) { return enqueue_batch(c, body, ndjson, trace); });
  out.ok_status = 201;
  return out;
}

// A page of jobs as JSON, at most max_list_bytes: it ends before the job that would pass that
// (the first always goes in), and then or when it is full, next_after is its last id.
Response list_page(const JobPage& page, int limit) {
  const auto& jobs = page.jobs;
  std::string items;
  std::size_t kept = 0;
  for (const auto& j : jobs) {
    std::string one = json::serialize(job_json(j));
    if (kept > 0 && items.size() + one.size() + 64 > max_list_bytes) break;
    items += kept == 0 ? "" : ",";
    items += one;
    ++kept;
  }
  const bool more = kept < jobs.size() || (kept > 0 && (page.cut || static_cast<int>(kept) == limit));
  Response r;
  r.body = "{\"jobs\":[" + items + "],\"next_after\":" + (more ? std::to_string(jobs[kept - 1].id) : "null") + "}\n";
  return r;
}

// The filter of GET /v1/jobs from its query; throws Error(invalid_input) naming the parameter.
JobFilter job_filter(const std::multimap<std::string, std::string>& query) {
  JobFilter f;
  for (const auto& [k, v] : query) {
    if (k == "queue") {
      for (const auto part : split(v, ',')) f.queues.emplace_back(part);
    } else if (k == "state") {
      for (const auto s : parse_job_states(v)) f.states.push_back(s);
    } else if (k == "kind") {
      f.kind = v;
    } else if (k == "tag") {
      f.tag = v;
    } else if (k == "limit") {
      int n = 0;
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || p != v.data() + v.size() || n < 1 || n > 1000)
        throw Error(Errc::invalid_input, "limit: must be an integer from 1 to 1000");
      f.limit = n;
    } else if (k == "after") {
      const auto id = parse_id(v);
      if (!id) throw Error(Errc::invalid_input, "after: must be a job id");
      f.after_id = *id;
    } else {
      throw Error(Errc::invalid_input, k + ": unknown query parameter (known: queue, state, kind, tag, limit, after)");
    }
  }
  return f;
}

Routed list_route(const RouteCall& call) {
  const auto q = parse_query(call.request.query);
  if (!q) return answer(malformed_query());
  JobFilter f;
  try {
    f = job_filter(*q);
  } catch (const Error& e) {
    return answer(from_error(e));
  }
  f.max_bytes = max_list_bytes;
  return run_task([f](Client& c) { return list_page(c.list_page(f), f.limit); });
}

Routed get_route(const RouteCall& call) {
  Routed out;
  if (const auto id = job_id(call, out)) out.get = *id;
  return out;
}

Routed job_events_route(const RouteCall& call) {
  Routed out;
  if (const auto id = job_id(call, out)) out.stream = StreamRequest{*id, {}};
  return out;
}

// POST /v1/jobs/{id}/cancel and /retry.
Routed job_change_route(const RouteCall& call, bool cancel) {
  Routed out;
  const auto id = job_id(call, out);
  if (!id) return out;
  out.may_lock = true;
  out.task = [id = *id, cancel](Client& c) {
    const auto changes = cancel ? c.cancel({id}, false) : c.retry({id}, false);
    return json_response(200, change_json(changes.at(0)));
  };
  return out;
}

// POST /v1/queues/{q}/pause and /resume.
Routed queue_change_route(const RouteCall& call, bool pause) {
  const std::string& queue = call.params.at("q");
  try {
    validate_name("queue", queue);
  } catch (const Error& e) {
    return answer(error_response(422, "invalid_field", e.what(), "queue"));
  }
  Routed out;
  out.may_lock = true;
  out.task = [q = queue, pause](Client& c) {
    const auto changes = pause ? c.pause({q}) : c.resume({q});
    return json_response(200, queue_change_json(changes.at(0), pause));
  };
  return out;
}

Routed events_route(const RouteCall& call) {
  const auto q = parse_query(call.request.query);
  if (!q) return answer(malformed_query());
  StreamRequest stream;
  try {
    for (const auto& [k, v] : *q) {
      if (k != "queue") throw Error(Errc::invalid_input, k + ": unknown query parameter (known: queue)");
      for (const auto part : split(v, ',')) {
        validate_name("queue", part);
        stream.queues.emplace_back(part);
      }
    }
  } catch (const Error& e) {
    return answer(from_error(e));
  }
  Routed out;
  out.stream = std::move(stream);
  return out;
}

Routed readyz_route(const RouteCall& call) {
  // A stuck pool is told on the I/O thread: a probe queued behind it would not be answered.
  const DbPool* pool = call.ctx.pool;
  if (pool && pool->stalled_for() >= pool->acquire_timeout())
    return answer(retry_after(
        error_response(503, "not_ready",
                       "all " + std::to_string(pool->size()) + " database connections have been busy for " +
                           format_duration(pool->stalled_for()) + " without one finishing (api.db_acquire_timeout is " +
                           format_duration(pool->acquire_timeout()) + ")"),
        1));
  return run_task([](Client& c) {
    c.require_current_schema();  // not_migrated: 503
    return json_response(200, json::object{{"status", "ready"}});
  });
}

Routed metrics_route(const RouteCall& call) {
  return run_task([&ctx = call.ctx](Client& c) {
    Response r;
    r.body = ctx.metrics.render(c.stats(std::nullopt), ctx.in_flight.load(), ctx.version,
                                ctx.events ? ctx.events->streams() : 0, ctx.events ? ctx.events->delivered() : 0);
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
}

Response queues_answer(Client& c) {
  json::array arr;
  for (const auto& q : c.stats(std::nullopt)) arr.push_back(queue_stats_json(q));
  return json_response(200, json::object{{"queues", std::move(arr)}});
}

Response stats_answer(Client& c) {
  json::object totals{{"scheduled", 0}, {"available", 0}, {"running", 0},
                      {"completed", 0}, {"failed", 0},    {"cancelled", 0}};
  json::array queues;
  for (const auto& q : c.stats(std::nullopt)) {
    totals["scheduled"] = totals["scheduled"].to_number<std::int64_t>() + q.scheduled;
    totals["available"] = totals["available"].to_number<std::int64_t>() + q.available;
    totals["running"] = totals["running"].to_number<std::int64_t>() + q.running;
    totals["completed"] = totals["completed"].to_number<std::int64_t>() + q.completed;
    totals["failed"] = totals["failed"].to_number<std::int64_t>() + q.failed;
    totals["cancelled"] = totals["cancelled"].to_number<std::int64_t>() + q.cancelled;
    queues.push_back(queue_stats_json(q));
  }
  return json_response(200, json::object{{"totals", std::move(totals)}, {"queues", std::move(queues)}});
}

// GET /v1/workers: each worker as taskctl -o json workers shows it, "dead" past the grace.
Routed workers_route(const RouteCall& call) {
  return run_task([grace = call.ctx.worker_grace](Client& c) {
    json::array arr;
    for (const auto& w : c.workers()) arr.push_back(worker_json(w, grace));
    return json_response(200, json::object{{"workers", std::move(arr)}});
  });
}

Response scheduler_answer(Client& c) {
  return json_response(200, lease_json(c.scheduler_lease()));
}

Response periodic_answer(Client& c) {
  json::array arr;
  for (const auto& p : c.periodic_schedules()) arr.push_back(periodic_json(p));
  return json_response(200, json::object{{"periodic", std::move(arr)}});
}

// A GET route whose answer is read from the database as it is.
std::function<Routed(const RouteCall&)> read_only(Response (*read)(Client&)) {
  return [read](const RouteCall&) { return run_task(read); };
}

std::vector<RouteEntry> make_table() {
  const bool no_head = false;  // an event stream answers GET only
  std::vector<RouteEntry> t;
  t.push_back(route_entry("GET", "/healthz", Access::open, [](const RouteCall&) {
    return answer(json_response(200, json::object{{"status", "ok"}}));
  }));
  t.push_back(route_entry("GET", "/readyz", Access::open, readyz_route));
  t.push_back(route_entry("GET", "/metrics", Access::read_if_metrics_auth, metrics_route));
  t.push_back(route_entry("GET", "/v1/jobs", Access::read, list_route));
  t.push_back(route_entry("POST", "/v1/jobs", Access::enqueue, enqueue_route));
  t.push_back(route_entry("POST", "/v1/jobs/batch", Access::enqueue, batch_route));
  t.push_back(route_entry("GET", "/v1/jobs/{id}", Access::read, get_route));
  t.push_back(route_entry("GET", "/v1/jobs/{id}/events", Access::read, job_events_route, no_head));
  t.push_back(route_entry("POST", "/v1/jobs/{id}/cancel", Access::admin,
                          [](const RouteCall& call) { return job_change_route(call, true); }));
  t.push_back(route_entry("POST", "/v1/jobs/{id}/retry", Access::admin,
                          [](const RouteCall& call) { return job_change_route(call, false); }));
  t.push_back(route_entry("GET", "/v1/queues", Access::read, read_only(queues_answer)));
  t.push_back(route_entry("POST", "/v1/queues/{q}/pause", Access::admin,
                          [](const RouteCall& call) { return queue_change_route(call, true); }));
  t.push_back(route_entry("POST", "/v1/queues/{q}/resume", Access::admin,
                          [](const RouteCall& call) { return queue_change_route(call, false); }));
  t.push_back(route_entry("GET", "/v1/events", Access::read, events_route, no_head));
  t.push_back(route_entry("GET", "/v1/stats", Access::read, read_only(stats_answer)));
  t.push_back(route_entry("GET", "/v1/workers", Access::read, workers_route));
  t.push_back(route_entry("GET", "/v1/scheduler", Access::read, read_only(scheduler_answer)));
  t.push_back(route_entry("GET", "/v1/periodic", Access::read, read_only(periodic_answer)));
  add_admin_routes(t);
  add_ui_routes(t);
  return t;
}

bool is_param(const std::string& segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// Whether `pattern` fits `path` up to segment `n` (excluded), parameters taking any value.
bool prefix_fits(const std::vector<std::string>& pattern, const std::vector<std::string>& path, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!is_param(pattern[i]) && pattern[i] != path[i]) return false;
  return true;
}

// Whether a route has the literal path[i] where `pattern` has a parameter: the literal wins.
bool literal_elsewhere(const std::vector<std::string>& path, std::size_t i) {
  for (const auto& e : route_table())
    if (e.segments.size() > i && !is_param(e.segments[i]) && e.segments[i] == path[i] &&
        prefix_fits(e.segments, path, i))
      return true;
  return false;
}

bool fits(const RouteEntry& e, const std::vector<std::string>& path) {
  if (e.segments.size() != path.size()) return false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (is_param(e.segments[i]) ? literal_elsewhere(path, i) : e.segments[i] != path[i]) return false;
  }
  return true;
}

// The scope a token needs for `access` (Scope::none: no token needed).
Scope scope_of(Access access, const RouteContext& ctx) {
  if (access == Access::read_if_metrics_auth) return ctx.metrics_auth ? Scope::read : Scope::none;
  if (access == Access::open) return Scope::none;
  return access == Access::read ? Scope::read : access == Access::enqueue ? Scope::enqueue : Scope::admin;
}

// Checks the token for `scope`; the answer when refused. `token`: set to the token's name.
std::optional<Response> refused(const Authenticator& auth, const Request& req, Scope scope, std::string& token) {
  if (scope == Scope::none) return std::nullopt;
  const auto a = auth.check(req.authorization, scope);
  token = a.token_name;
  if (a.status == 200) return std::nullopt;
  auto r = error_response(a.status, a.status == 401 ? "unauthorized" : "forbidden", a.message);
  if (a.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace

Routed answer(Response r) {
  Routed out;
  out.response = std::move(r);
  return out;
}

Routed run_task(DbPool::Task task) {
  Routed out;
  out.task = std::move(task);
  return out;
}

Response malformed_query() {
  return error_response(400, "malformed_query", "the query string has a malformed % escape");
}

bool is_json(const std::string& content_type) {
  return media_type(content_type) == "application/json";
}

RouteEntry route_entry(std::string method, std::string pattern, Access access,
                       std::function<Routed(const RouteCall&)> handler, bool head) {
  RouteEntry e;
  e.method = std::move(method);
  e.pattern = std::move(pattern);
  e.access = access;
  e.handler = std::move(handler);
  e.head = head;
  e.name = e.method + " " + e.pattern;
  for (const auto s : split(e.pattern, '/'))
    if (!s.empty()) e.segments.emplace_back(s);
  return e;
}

const std::vector<RouteEntry>& route_table() {
  static const std::vector<RouteEntry> table = make_table();
  return table;
}

const RouteEntry* PathMatch::entry_for(std::string_view method) const {
  for (const auto* e : entries)
    if (e->takes(method)) return e;
  return nullptr;
}

std::string PathMatch::allow() const {
  std::string out;
  for (const auto* e : entries) out += (out.empty() ? "" : ", ") + e->method;
  return out;
}

PathMatch match_path(std::string_view path) {
  PathMatch m;
  std::vector<std::string> segments;
  for (const auto s : split(path, '/')) {
    if (s.empty()) continue;
    auto d = percent_decode(s);
    if (!d) {
      m.malformed = true;
      return m;
    }
    segments.push_back(std::move(*d));
  }
  // The first entry that fits, then the other methods of its pattern.
  for (const auto& e : route_table())
    if (m.entries.empty() ? fits(e, segments) : e.pattern == m.entries.front()->pattern) m.entries.push_back(&e);
  if (m.entries.empty()) return m;
  const auto& pattern = m.entries.front()->segments;
  for (std::size_t i = 0; i < pattern.size(); ++i)
    if (is_param(pattern[i])) m.params.emplace(pattern[i].substr(1, pattern[i].size() - 2), segments[i]);
  return m;
}

Response enqueue_answer(const EnqueueResult& r) {
  auto resp = json_response(r.duplicate ? 200 : 201, job_json(r.job, r.duplicate));
  if (!r.duplicate) resp.enqueued.emplace_back(r.job.queue, 1);
  return resp;
}

Response get_answer(JobId id, const Job* job) {
  if (!job) return error_response(404, "not_found", "job " + std::to_string(id) + " does not exist");
  return json_response(200, job_json(*job));
}

Routed route(const Request& req, const RouteContext& ctx) {
  const PathMatch match = match_path(req.path);
  Routed out;
  if (match.malformed) {
    out = answer(error_response(400, "malformed_path", "the path has a malformed % escape"));
    out.route = "unmatched";
    return out;
  }
  if (match.entries.empty()) {
    out = answer(error_response(404, "not_found", "no such path: " + req.path));
    out.route = "unmatched";
    return out;
  }
  const RouteEntry* entry = match.entry_for(req.method);
  std::string token;
  if (!entry) {
    entry = match.entries.front();
    out = answer(method_not_allowed(match.allow()));
  } else if (auto refusal = refused(ctx.auth, req, scope_of(entry->access, ctx), token)) {
    out = answer(std::move(*refusal));
  } else {
    out = entry->handler(RouteCall{req, ctx, match.params});
    out.token = std::move(token);
  }
  out.route = entry->name;
  return out;
}

}  // namespace taskq::api
