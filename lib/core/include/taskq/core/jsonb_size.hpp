#pragma once
// The size of a JSON value as PostgreSQL stores it in a jsonb column and gives it back: what
// jobs.max_args_bytes limits, and exactly the bytes a handler reads on its stdin.
//
// jsonb does not keep the text it was given. It keeps one value per object key (the last),
// writes strings with its own escapes (only '"', '\\' and control characters escaped), separates
// items with ", " and ": ", and writes every number out in full from its numeric form: 1e300 is
// 301 digits, 1e-5 is 0.00001, 1.50 stays 1.50. So a short text can store large, and spacing can
// store smaller. jsonb_text_size() computes that size from the text without a database.
#include <cstddef>
#include <string_view>

namespace taskq {

/// Largest number of digits before / after the decimal point a jsonb number can have (PostgreSQL's
/// numeric format); larger numbers are refused by PostgreSQL.
inline constexpr std::size_t jsonb_max_integer_digits = 131072;
inline constexpr std::size_t jsonb_max_fraction_digits = 16383;

/// The length of PostgreSQL's text form of `json` stored as jsonb. `json` must be valid JSON
/// (parse it first). Throws Error(invalid_input) "<what>: ..." for a number PostgreSQL's numeric
/// format cannot hold.
std::size_t jsonb_text_size(std::string_view what, std::string_view json);

}  // namespace taskq
