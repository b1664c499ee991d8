#pragma once
// Text that comes from outside taskq's control (what a handler writes, a webhook answers, an
// in-process handler returns) made into text PostgreSQL accepts, so that it is data and never a
// fault. PostgreSQL refuses, in text and jsonb: bytes that are not UTF-8 (SQLSTATE 22021), the
// NUL character (a NUL byte in text, `\u0000` in jsonb: 22P05), and in jsonb a UTF-16 surrogate
// escape without its pair (`\ud800`: 22P02). The rules, one place (documented in taskq-workerd(8)):
//   - every maximal ill-formed UTF-8 subsequence (Unicode's "maximal subpart" practice: a byte that
//     cannot start a character, a sequence cut short, an overlong form, an encoded surrogate, a code
//     point above U+10FFFF) becomes one U+FFFD REPLACEMENT CHARACTER;
//   - NUL is removed (the byte in text, the `\u0000` escape in JSON strings);
//   - in JSON strings, a `\uD800`-`\uDBFF` escape not followed by a `\uDC00`-`\uDFFF` escape, and a
//     `\uDC00`-`\uDFFF` escape not preceded by one, become `\ufffd`;
//   - text cut to a size is cut on a character boundary, never inside a multi-byte character.
// Nothing else is changed: JSON keeps its numbers, spacing and key order byte for byte.
// Pure code: no I/O, no allocation beyond the returned strings.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace taskq {

/// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
/// U+10FFFF). NUL counts as well-formed here.
[[nodiscard]] bool valid_utf8(std::string_view text) noexcept;

/// `text` with ill-formed UTF-8 replaced by U+FFFD and NUL bytes removed.
[[nodiscard]] std::string clean_text(std::string_view text);

/// The longest prefix of `text` of at most `max_bytes` that does not end inside a character.
[[nodiscard]] std::string_view utf8_head(std::string_view text, std::size_t max_bytes) noexcept;

/// The longest suffix of `text` of at most `max_bytes` that does not start inside a character.
[[nodiscard]] std::string_view utf8_tail(std::string_view text, std::size_t max_bytes) noexcept;

/// `text` without the continuation bytes it starts with (at most 3): for text whose beginning
/// was cut off elsewhere.
[[nodiscard]] std::string_view utf8_skip_partial(std::string_view text) noexcept;

/// clean_text() of `text`, at most `max_bytes` long, cut on a character boundary: text for a
/// bounded field (an error message, a progress message).
[[nodiscard]] std::string clean_text_head(std::string_view text, std::size_t max_bytes);

/// Deepest nesting of arrays and objects accepted in JSON from a handler.
inline constexpr std::size_t max_json_depth = 512;

/// JSON text from a handler made acceptable to jsonb: the string rules above applied inside string
/// literals (and keys), then checked to be exactly one JSON value (RFC 8259, surrounding
/// whitespace allowed, at most max_json_depth deep). On failure returns nothing and sets `error`
/// to what is wrong and where, e.g. "not valid JSON: syntax error at byte 12" or "empty".
/// PostgreSQL may still refuse a well-formed value it cannot store (a number beyond its numeric
/// range, such as 1e1000000); the caller must be ready for that.
[[nodiscard]] std::optional<std::string> clean_json(std::string_view text, std::string& error);

}  // namespace taskq
