#include "admin_routes.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <string>

#include "routes.hpp"
#include "taskq/core/json.hpp"
#include "taskq/core/text.hpp"
#include "taskq/queue/json_shapes.hpp"

using taskq::queue::change_json;
using taskq::queue::Client;
using taskq::queue::max_throughput_minutes;
using taskq::queue::periodic_change_json;
using taskq::queue::throughput_json;
using taskq::store::JobChange;
using taskq::store::JobFilter;

namespace taskq::api {

namespace json = boost::json;

namespace {

// A string, or an array of strings, of a filter field: each value is one entry.
std::vector<std::string> strings_of(const json::value& v, const std::string& field) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.emplace_back(v.get_string());
  } else if (v.is_array()) {
    for (const auto& item : v.get_array()) {
      if (!item.is_string()) throw Error(Errc::invalid_input, field + ": must be a string or an array of strings");
      out.emplace_back(item.get_string());
    }
  } else {
    throw Error(Errc::invalid_input, field + ": must be a string or an array of strings");
  }
  return out;
}

std::string one_string(const json::value& v, const std::string& field) {
  if (!v.is_string()) throw Error(Errc::invalid_input, field + ": must be a string");
  return std::string(v.get_string());
}

// The body of POST /v1/jobs/cancel and /retry: {"queue", "state", "kind", "tag", "dry_run"}.
// At least one of the filters: a bulk change of every job is never one click away.
struct BulkRequest {
  JobFilter filter;
  bool dry_run = false;
};

BulkRequest bulk_request(const std::string& body) {
  const auto v = parse_json("body", body);
  if (!v.is_object()) throw Error(Errc::invalid_input, "body: must be a JSON object with a filter");
  BulkRequest out;
  bool filtered = false;
  for (const auto& [key, value] : v.get_object()) {
    const std::string k(key);
    if (k == "queue") {
      out.filter.queues = strings_of(value, k);
      for (const auto& q : out.filter.queues) validate_name("queue", q);
    } else if (k == "state") {
      for (const auto& s : strings_of(value, k)) out.filter.states.push_back(parse_job_state(s));
    } else if (k == "kind") {
      out.filter.kind = one_string(value, k);
    } else if (k == "tag") {
      out.filter.tag = one_string(value, k);
    } else if (k == "dry_run") {
      if (!value.is_bool()) throw Error(Errc::invalid_input, "dry_run: must be true or false");
      out.dry_run = value.get_bool();
      continue;
    } else {
      throw Error(Errc::invalid_input, k + ": unknown field (known: queue, state, kind, tag, dry_run)");
    }
    filtered = true;
  }
  if (!filtered)
    throw Error(Errc::invalid_input,
                "body: give at least one of queue, state, kind, tag (a filter of every job "
                "is refused)");
  return out;
}

Response bulk_answer(const std::vector<JobChange>& changes, bool dry_run) {
  json::array jobs;
  for (const auto& c : changes) {
    if (jobs.size() == max_listed_changes) break;
    jobs.push_back(change_json(c));
  }
  return json_response(
      200, json::object{
               {"dry_run", dry_run}, {"count", static_cast<std::int64_t>(changes.size())}, {"jobs", std::move(jobs)}});
}

Routed bulk_route(const RouteCall& call, bool cancel) {
  const Request& req = call.request;
  if (!is_json(req.content_type))
    return answer(error_response(415, "unsupported_media_type",
                                 "send the filter as Content-Type: application/json (got '" + req.content_type + "')"));
  if (req.body_pending) return Routed{};  // headers accepted: the body is read next
  BulkRequest bulk;
  try {
    bulk = bulk_request(req.body);
  } catch (const Error& e) {
    return answer(from_error(e));
  }
  Routed out;
  out.may_lock = true;
  out.task = [bulk, cancel](Client& c) {
    const auto changes =
        cancel ? c.cancel_matching(bulk.filter, bulk.dry_run) : c.retry_matching(bulk.filter, bulk.dry_run);
    return bulk_answer(changes, bulk.dry_run);
  };
  return out;
}

// GET /v1/throughput?minutes=N (1 to 1440, default 60).
Routed throughput_route(const RouteCall& call) {
  const auto q = parse_query(call.request.query);
  if (!q) return answer(malformed_query());
  int minutes = 60;
  for (const auto& [k, v] : *q) {
    if (k != "minutes")
      return answer(from_error(Error(Errc::invalid_input, k + ": unknown query parameter (known: minutes)")));
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), minutes);
    if (ec != std::errc{} || p != v.data() + v.size() || minutes < 1 || minutes > max_throughput_minutes)
      return answer(from_error(Error(
          Errc::invalid_input, "minutes: must be an integer from 1 to " + std::to_string(max_throughput_minutes))));
  }
  return run_task([minutes](Client& c) { return json_response(200, throughput_json(c.throughput(minutes))); });
}

enum class PeriodicAction { pause, resume, trigger };

// POST /v1/periodic/{name}/pause, /resume and /trigger.
Routed periodic_route(const RouteCall& call, PeriodicAction action) {
  const std::string& name = call.params.at("name");
  try {
    validate_name("name", name);
  } catch (const Error& e) {
    return answer(error_response(422, "invalid_field", e.what(), "name"));
  }
  Routed out;
  out.may_lock = true;
  if (action == PeriodicAction::trigger) {
    out.ok_status = 201;
    out.task = [name](Client& c) { return enqueue_answer(c.trigger_periodic(name)); };
  } else {
    const bool pause = action == PeriodicAction::pause;
    out.task = [name, pause](Client& c) {
      return json_response(200, periodic_change_json(name, pause, c.set_periodic_paused(name, pause)));
    };
  }
  return out;
}

}  // namespace

void add_admin_routes(std::vector<RouteEntry>& table) {
  table.push_back(
      route_entry("POST", "/v1/jobs/cancel", Access::admin, [](const RouteCall& c) { return bulk_route(c, true); }));
  table.push_back(
      route_entry("POST", "/v1/jobs/retry", Access::admin, [](const RouteCall& c) { return bulk_route(c, false); }));
  table.push_back(route_entry("GET", "/v1/throughput", Access::read, throughput_route));
  table.push_back(route_entry("POST", "/v1/periodic/{name}/pause", Access::admin,
                              [](const RouteCall& c) { return periodic_route(c, PeriodicAction::pause); }));
  table.push_back(route_entry("POST", "/v1/periodic/{name}/resume", Access::admin,
                              [](const RouteCall& c) { return periodic_route(c, PeriodicAction::resume); }));
  table.push_back(route_entry("POST", "/v1/periodic/{name}/trigger", Access::admin,
                              [](const RouteCall& c) { return periodic_route(c, PeriodicAction::trigger); }));
}

}  // namespace taskq::api
