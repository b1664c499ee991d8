#pragma once
// Text forms PostgreSQL reads: array literals for parameters, and COPY text-format fields.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace taskq::store::sql {

/// {"a","b \"c\""} — every element quoted, quotes and backslashes escaped.
std::string text_array(const std::vector<std::string>& items);
/// The same, with NULL for empty elements: {"a",NULL}.
std::string text_array(const std::vector<std::optional<std::string>>& items);
/// {1,2,3}
std::string int_array(const std::vector<std::int64_t>& items);
/// Appends a field escaped for COPY ... FROM STDIN (text format): backslash, tab, newline, CR.
void append_copy_field(std::string& line, std::string_view value);

}  // namespace taskq::store::sql
