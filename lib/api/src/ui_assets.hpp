#pragma once
// The dashboard's files (lib/api/ui/*), embedded into taskq-apid at build time by
// lib/api/CMakeLists.txt: no build step, no files to install, nothing fetched from elsewhere.
#include <string_view>
#include <vector>

namespace taskq::api {

struct UiAsset {
  std::string_view name;          // "app.js": the file name, served as /ui/app.js
  std::string_view content_type;  // from the file's extension
  std::string_view etag;          // "\"<sha1 of the content>\""
  std::string_view body;
};

/// Every asset, by name.
const std::vector<UiAsset>& ui_assets();

/// The asset called `name`, or nullptr.
const UiAsset* find_ui_asset(std::string_view name);

}  // namespace taskq::api
