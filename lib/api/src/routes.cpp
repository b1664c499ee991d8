#include "routes.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <map>
#include <vector>

#include "taskq/core/json.hpp"
#include "taskq/core/text.hpp"

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

namespace {

// name -> values, in order; a malformed escape is a 400.
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

bool is_json(const std::string& content_type) {
  return media_type(content_type) == "application/json";
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

json::object change_json(const JobChange& c) {
  return {{"id", c.id},
          {"queue", c.queue},
          {"kind", c.kind},
          {"from", to_string(c.from)},
          {"to", to_string(c.to)},
          {"cancel_requested", c.cancel_requested}};
}

json::object queue_json(const QueueStats& q) {
  json::object o{{"queue", q.queue},
                 {"paused", q.paused_at.has_value()},
                 {"scheduled", q.scheduled},
                 {"available", q.available},
                 {"running", q.running},
                 {"completed", q.completed},
                 {"failed", q.failed},
                 {"cancelled", q.cancelled},
                 {"finished_last_minute", q.finished_last_minute}};
  o["paused_at"] = q.paused_at ? json::value(format_rfc3339(*q.paused_at)) : json::value(nullptr);
  o["oldest_available_age_ms"] =
      q.oldest_available_age
          ? json::value(std::chrono::duration_cast<std::chrono::milliseconds>(*q.oldest_available_age).count())
          : json::value(nullptr);
  return o;
}

// Checks the scope; the routed answer when refused. `token`: set to the token's name.
std::optional<Response> refused(const Authenticator& auth, const Request& req, Scope scope,
                                std::string* token = nullptr) {
  const auto a = auth.check(req.authorization, scope);
  if (token) *token = a.token_name;
  if (a.status == 200) return std::nullopt;
  auto r = error_response(a.status, a.status == 401 ? "unauthorized" : "forbidden", a.message);
  if (a.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

Routed answer(std::string route, Response r) {
  Routed out;
  out.route = std::move(route);
  out.response = std::move(r);
  return out;
}

// Headers accepted; the body is to be read before the route can decide.
Routed needs_body(std::string route) {
  Routed out;
  out.route = std::move(route);
  return out;
}

// A GET route that needs the read scope and answers with `task`.
Routed read_route(const std::string& name, const Request& req, const Authenticator& auth, bool get, DbPool::Task task) {
  if (!get) return answer(name, method_not_allowed("GET"));
  if (auto r = refused(auth, req, Scope::read)) return answer(name, std::move(*r));
  Routed out;
  out.route = name;
  out.task = std::move(task);
  return out;
}

Routed enqueue_route(const Request& req, const EnqueueLimits& limits) {
  const std::string name = "POST /v1/jobs";
  if (!is_json(req.content_type))
    return answer(name,
                  error_response(415, "unsupported_media_type",
                                 "send the job as Content-Type: application/json (got '" + req.content_type + "')"));
  if (req.body_pending) return needs_body(name);
  EnqueueParams params;
  try {
    params = enqueue_params_from_json(parse_json("body", req.body));
    if (!req.idempotency_key.empty()) {
      if (params.unique_key && *params.unique_key != req.idempotency_key)
        throw Error(Errc::invalid_input, "unique_key: differs from the Idempotency-Key header; send one of them");
      params.unique_key = req.idempotency_key;
    }
    validate_enqueue(params, limits, JsonCheck::already_parsed);
  } catch (const Error& e) {
    return answer(name, from_error(e));
  }
  Routed out;
  out.route = name;
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
std::vector<EnqueueParams> parse_batch(const std::string& body, bool ndjson) {
  std::vector<EnqueueParams> jobs;
  auto add = [&](const json::value& v) {
    if (jobs.size() == max_batch)
      throw Error(Errc::invalid_input, "jobs: a batch holds at most " + std::to_string(max_batch) + " jobs");
    try {
      jobs.push_back(enqueue_params_from_json(v));
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

Routed batch_route(const Request& req) {
  const std::string name = "POST /v1/jobs/batch";
  const bool ndjson = is_ndjson(req.content_type);
  if (!ndjson && !is_json(req.content_type))
    return answer(name, error_response(415, "unsupported_media_type",
                                       "send a JSON array (application/json) or one job per line "
                                       "(application/x-ndjson); got '" +
                                           req.content_type + "'"));
  if (req.body_pending) return needs_body(name);
  Routed out;
  out.route = name;
  out.ok_status = 201;
  // Parsed on the pool, not on an I/O thread: a batch can be a megabyte.
  out.task = [body = req.body, ndjson](Client& c) {
    const auto results = c.enqueue_batch(parse_batch(body, ndjson));
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
  };
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

Routed list_route(const Request& req) {
  const std::string name = "GET /v1/jobs";
  const auto q = parse_query(req.query);
  if (!q) return answer(name, error_response(400, "malformed_query", "the query string has a malformed % escape"));
  JobFilter f;
  try {
    for (const auto& [k, v] : *q) {
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
        throw Error(Errc::invalid_input,
                    k + ": unknown query parameter (known: queue, state, kind, tag, limit, after)");
      }
    }
  } catch (const Error& e) {
    return answer(name, from_error(e));
  }
  Routed out;
  out.route = name;
  f.max_bytes = max_list_bytes;
  out.task = [f](Client& c) { return list_page(c.list_page(f), f.limit); };
  return out;
}

}  // namespace

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
  const Authenticator& auth = ctx.auth;
  std::vector<std::string> seg;
  for (const auto s : split(req.path, '/'))
    if (!s.empty()) {
      auto d = percent_decode(s);
      if (!d) return answer("unmatched", error_response(400, "malformed_path", "the path has a malformed % escape"));
      seg.push_back(std::move(*d));
    }
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";

  // Probes: no token.
  if (seg.size() == 1 && seg[0] == "healthz") {
    if (!get) return answer("GET /healthz", method_not_allowed("GET"));
    return answer("GET /healthz", json_response(200, json::object{{"status", "ok"}}));
  }
  if (seg.size() == 1 && seg[0] == "readyz") {
    if (!get) return answer("GET /readyz", method_not_allowed("GET"));
    // A stuck pool is told on the I/O thread: a probe queued behind it would not be answered.
    if (ctx.pool && ctx.pool->stalled_for() >= ctx.pool->acquire_timeout())
      return answer("GET /readyz", retry_after(error_response(503, "not_ready",
                                                              "all " + std::to_string(ctx.pool->size()) +
                                                                  " database connections have been busy for " +
                                                                  format_duration(ctx.pool->stalled_for()) +
                                                                  " without one finishing (api.db_acquire_timeout is " +
                                                                  format_duration(ctx.pool->acquire_timeout()) + ")"),
                                               1));
    Routed out;
    out.route = "GET /readyz";
    out.task = [](Client& c) {
      c.store().require_current_schema();  // not_migrated: 503
      return json_response(200, json::object{{"status", "ready"}});
    };
    return out;
  }

  if (seg.size() == 1 && seg[0] == "metrics") {
    const std::string name = "GET /metrics";
    if (!get) return answer(name, method_not_allowed("GET"));
    if (ctx.metrics_auth)
      if (auto r = refused(auth, req, Scope::read)) return answer(name, std::move(*r));
    Routed out;
    out.route = name;
    out.task = [&ctx](Client& c) {
      Response r;
      r.body = ctx.metrics.render(c.stats(std::nullopt), ctx.in_flight.load(), ctx.version,
                                  ctx.events ? ctx.events->streams() : 0, ctx.events ? ctx.events->delivered() : 0);
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    };
    return out;
  }

  if (seg.size() < 2 || seg[0] != "v1")
    return answer("unmatched", error_response(404, "not_found", "no such path: " + req.path));

  // /v1/jobs
  if (seg[1] == "jobs" && seg.size() == 2) {
    const std::string name = post ? "POST /v1/jobs" : "GET /v1/jobs";
    if (!get && !post) return answer(name, method_not_allowed("GET, POST"));
    if (auto r = refused(auth, req, post ? Scope::enqueue : Scope::read)) return answer(name, std::move(*r));
    return post ? enqueue_route(req, ctx.limits) : list_route(req);
  }
  if (seg[1] == "jobs" && seg.size() == 3 && seg[2] == "batch") {
    const std::string name = "POST /v1/jobs/batch";
    if (!post) return answer(name, method_not_allowed("POST"));
    if (auto r = refused(auth, req, Scope::enqueue)) return answer(name, std::move(*r));
    return batch_route(req);
  }
  if (seg[1] == "jobs" && seg.size() >= 3) {
    const auto id = parse_id(seg[2]);
    if (seg.size() == 3 && seg[2] != "batch") {
      const std::string name = "GET /v1/jobs/{id}";
      if (!get) return answer(name, method_not_allowed("GET"));
      if (auto r = refused(auth, req, Scope::read)) return answer(name, std::move(*r));
      if (!id) return answer(name, error_response(404, "not_found", "no such job: '" + seg[2] + "' is not a job id"));
      Routed out;
      out.route = name;
      out.get = *id;
      return out;
    }
    if (seg.size() == 4 && seg[3] == "events" && seg[2] != "batch") {
      const std::string name = "GET /v1/jobs/{id}/events";
      if (req.method != "GET") return answer(name, method_not_allowed("GET"));
      std::string token;
      if (auto r = refused(auth, req, Scope::read, &token)) return answer(name, std::move(*r));
      if (!id) return answer(name, error_response(404, "not_found", "no such job: '" + seg[2] + "' is not a job id"));
      Routed out;
      out.route = name;
      out.token = std::move(token);
      out.stream = StreamRequest{*id, {}};
      return out;
    }
    if (seg.size() == 4 && (seg[3] == "cancel" || seg[3] == "retry") && seg[2] != "batch") {
      const bool cancel = seg[3] == "cancel";
      const std::string name = cancel ? "POST /v1/jobs/{id}/cancel" : "POST /v1/jobs/{id}/retry";
      if (!post) return answer(name, method_not_allowed("POST"));
      if (auto r = refused(auth, req, Scope::admin)) return answer(name, std::move(*r));
      if (!id) return answer(name, error_response(404, "not_found", "no such job: '" + seg[2] + "' is not a job id"));
      Routed out;
      out.route = name;
      out.may_lock = true;
      out.task = [id = *id, cancel](Client& c) {
        const auto changes = cancel ? c.cancel({id}, false) : c.retry({id}, false);
        return json_response(200, change_json(changes.at(0)));
      };
      return out;
    }
  }

  // /v1/queues, /v1/queues/{q}/pause|resume
  if (seg[1] == "queues" && seg.size() == 2) {
    return read_route("GET /v1/queues", req, auth, get, [](Client& c) {
      json::array arr;
      for (const auto& q : c.stats(std::nullopt)) arr.push_back(queue_json(q));
      return json_response(200, json::object{{"queues", std::move(arr)}});
    });
  }
  if (seg[1] == "queues" && seg.size() == 4 && (seg[3] == "pause" || seg[3] == "resume")) {
    const bool pause = seg[3] == "pause";
    const std::string name = pause ? "POST /v1/queues/{q}/pause" : "POST /v1/queues/{q}/resume";
    if (!post) return answer(name, method_not_allowed("POST"));
    if (auto r = refused(auth, req, Scope::admin)) return answer(name, std::move(*r));
    try {
      validate_name("queue", seg[2]);
    } catch (const Error& e) {
      return answer(name, error_response(422, "invalid_field", e.what(), "queue"));
    }
    Routed out;
    out.route = name;
    out.may_lock = true;
    out.task = [q = seg[2], pause](Client& c) {
      const auto changes = pause ? c.pause({q}) : c.resume({q});
      return json_response(200, json::object{{"queue", q}, {"paused", pause}, {"changed", changes.at(0).changed}});
    };
    return out;
  }

  if (seg[1] == "events" && seg.size() == 2) {
    const std::string name = "GET /v1/events";
    if (req.method != "GET") return answer(name, method_not_allowed("GET"));
    std::string token;
    if (auto r = refused(auth, req, Scope::read, &token)) return answer(name, std::move(*r));
    const auto q = parse_query(req.query);
    if (!q) return answer(name, error_response(400, "malformed_query", "the query string has a malformed % escape"));
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
      return answer(name, from_error(e));
    }
    Routed out;
    out.route = name;
    out.token = std::move(token);
    out.stream = std::move(stream);
    return out;
  }

  if (seg[1] == "stats" && seg.size() == 2) {
    return read_route("GET /v1/stats", req, auth, get, [](Client& c) {
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
        queues.push_back(queue_json(q));
      }
      return json_response(200, json::object{{"totals", std::move(totals)}, {"queues", std::move(queues)}});
    });
  }

  if (seg[1] == "workers" && seg.size() == 2) {
    return read_route("GET /v1/workers", req, auth, get, [](Client& c) {
      json::array arr;
      for (const auto& w : c.workers()) {
        json::array queues;
        for (const auto& q : w.queues) queues.emplace_back(q);
        arr.push_back(json::object{
            {"id", w.id},
            {"host", w.host},
            {"pid", w.pid},
            {"queues", std::move(queues)},
            {"concurrency", w.concurrency},
            {"running", w.running},
            {"version", w.version},
            {"started_at", format_rfc3339(w.started_at)},
            {"heartbeat_at", format_rfc3339(w.heartbeat_at)},
            {"heartbeat_age_ms", std::chrono::duration_cast<std::chrono::milliseconds>(w.heartbeat_age).count()}});
      }
      return json_response(200, json::object{{"workers", std::move(arr)}});
    });
  }

  return answer("unmatched", error_response(404, "not_found", "no such path: " + req.path));
}

}  // namespace taskq::api
