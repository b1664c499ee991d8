#include "ui_routes.hpp"

#include <string>

#include "routes.hpp"
#include "ui_assets.hpp"

namespace taskq::api {

const UiAsset* find_ui_asset(std::string_view name) {
  for (const auto& a : ui_assets())
    if (a.name == name) return &a;
  return nullptr;
}

namespace {

// Whether an If-None-Match header names `etag` ("*", one tag, or a list; weak tags count).
bool etag_matches(const std::string& if_none_match, std::string_view etag) {
  if (if_none_match.empty()) return false;
  if (if_none_match.find('*') != std::string::npos) return true;
  return if_none_match.find(etag) != std::string::npos;
}

Response asset_response(const UiAsset& asset, const Request& req) {
  Response r;
  if (etag_matches(req.if_none_match, asset.etag)) {
    r.status = 304;
  } else {
    r.body = std::string(asset.body);
  }
  r.content_type = std::string(asset.content_type);
  r.headers.emplace_back("Content-Security-Policy", std::string(ui_content_security_policy));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-cache");  // revalidated each time: an upgrade shows at once
  r.headers.emplace_back("ETag", std::string(asset.etag));
  return r;
}

Response ui_off() {
  return error_response(404, "not_found", "the dashboard is turned off (api.ui = false)");
}

Routed page_route(const RouteCall& call) {
  if (!call.ctx.ui) return answer(ui_off());
  const UiAsset* page = find_ui_asset("index.html");
  if (!page) return answer(error_response(404, "not_found", "the dashboard's index.html is missing from this build"));
  return answer(asset_response(*page, call.request));
}

Routed asset_route(const RouteCall& call) {
  if (!call.ctx.ui) return answer(ui_off());
  const std::string& name = call.params.at("asset");
  const UiAsset* asset = find_ui_asset(name);
  if (!asset) return answer(error_response(404, "not_found", "the dashboard has no file '" + name + "'"));
  return answer(asset_response(*asset, call.request));
}

}  // namespace

void add_ui_routes(std::vector<RouteEntry>& table) {
  table.push_back(route_entry("GET", "/ui", Access::open, page_route));
  table.push_back(route_entry("GET", "/ui/{asset}", Access::open, asset_route));
}

}  // namespace taskq::api
