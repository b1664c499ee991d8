#pragma once
// Small text helpers shared by the parsers (cron fields, query strings, comma lists).
#include <string_view>
#include <vector>

namespace taskq {

/// "a,,b" -> {"a", "", "b"}; "" -> {""}. The views point into `text`.
std::vector<std::string_view> split(std::string_view text, char sep);

}  // namespace taskq
