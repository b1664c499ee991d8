#pragma once
// The routes of taskq-apid as data: one entry per method and path pattern, with who may call it
// and its handler. route() (routes.hpp) decides every request from this table alone:
//   1. a segment with a malformed % escape: 400; no pattern matches the path: 404;
//   2. the pattern matches but no entry of it takes the method: 405 with Allow (every method
//      of the pattern, in table order);
//   3. the token is checked against the entry's access (401, 403);
//   4. the handler decides the rest (its own 400, 404, 415, 422, or the work to do).
// Steps 1-3 need only the headers, so the same table decides before a body is read.
//
// A pattern is literal segments and {name} parameters ("/v1/jobs/{id}/cancel"). Empty segments
// of a path are ignored ("//v1//jobs/" is "/v1/jobs"), and each segment is percent-decoded
// before it is compared. A literal wins over a parameter at the same place, without going back:
// "/v1/jobs/batch" is the batch route, never job "batch", and "/v1/jobs/batch/cancel" is no
// route at all. docs/openapi.yaml lists the same routes (a unit test holds the two in step).
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace taskq::api {

struct Request;
struct Routed;
struct RouteContext;

/// Who may call a route.
enum class Access {
  open,                  // anyone: the probes
  read_if_metrics_auth,  // anyone, or only a token with the read scope when api.metrics_auth = true
  read,                  // a token with the read scope (or admin)
  enqueue,               // a token with the enqueue scope (or admin)
  admin,                 // a token with the admin scope
};

/// A request's path parameters by name: {"id": "42"} for "/v1/jobs/42" on "/v1/jobs/{id}".
using RouteParams = std::map<std::string, std::string, std::less<>>;

/// What a handler gets: the request (its method, path and token already accepted), the server's
/// context and the path parameters.
struct RouteCall {
  const Request& request;
  const RouteContext& ctx;
  const RouteParams& params;
};

struct RouteEntry {
  std::string method;  // "GET" or "POST"
  std::string pattern;
  Access access = Access::read;
  std::function<Routed(const RouteCall&)> handler;
  bool head = true;                   // a GET route also answers HEAD (not an event stream)
  std::string name;                   // "GET /v1/jobs/{id}": the route in logs and metrics
  std::vector<std::string> segments;  // of the pattern: "v1", "jobs", "{id}"

  [[nodiscard]] bool takes(std::string_view request_method) const {
    return request_method == method || (head && method == "GET" && request_method == "HEAD");
  }
};

/// An entry of the table; `head`: a GET route also answers HEAD (false for event streams).
RouteEntry route_entry(std::string method, std::string pattern, Access access,
                       std::function<Routed(const RouteCall&)> handler, bool head = true);

/// Every route, in the order a 405's Allow lists the methods of one pattern.
const std::vector<RouteEntry>& route_table();

/// Where a path leads.
struct PathMatch {
  bool malformed = false;                  // a segment has a malformed % escape
  std::vector<const RouteEntry*> entries;  // the matching pattern's entries, in table order; none: 404
  RouteParams params;

  /// The entry that takes `method`, or nullptr (a 405 when `entries` is not empty).
  [[nodiscard]] const RouteEntry* entry_for(std::string_view method) const;
  /// The Allow header of a 405: "GET, POST".
  [[nodiscard]] std::string allow() const;
};

/// Matches a request's path (without the query) against route_table().
PathMatch match_path(std::string_view path);

}  // namespace taskq::api
