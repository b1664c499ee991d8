#pragma once
// The routes the dashboard needs besides those of routes.cpp: cancel or retry every job matching
// a filter (admin; a dry run counts them for the confirmation), pause, resume and trigger a
// periodic schedule (admin), and finished jobs per queue and minute (read).
#include <vector>

#include "route_table.hpp"

namespace taskq::api {

/// Appends POST /v1/jobs/cancel, POST /v1/jobs/retry, GET /v1/throughput and
/// POST /v1/periodic/{name}/pause|resume|trigger to the table.
void add_admin_routes(std::vector<RouteEntry>& table);

/// Most jobs a bulk cancel or retry lists in its answer (the count is always exact).
constexpr std::size_t max_listed_changes = 100;

}  // namespace taskq::api
