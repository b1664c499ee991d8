#pragma once
// The web dashboard under /ui: static pages and scripts embedded at build time (ui_assets.hpp),
// open to anyone because they hold no data (the browser asks /v1 with the user's token), served
// with a strict Content-Security-Policy. api.ui = false turns them off (404).
#include <string_view>
#include <vector>

#include "route_table.hpp"

namespace taskq::api {

/// What every dashboard asset is served with: no inline script or style, nothing from elsewhere.
constexpr std::string_view ui_content_security_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Appends GET /ui (the page) and GET /ui/{asset} to the table.
void add_ui_routes(std::vector<RouteEntry>& table);

}  // namespace taskq::api
