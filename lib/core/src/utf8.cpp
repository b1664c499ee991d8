#include "taskq/core/utf8.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>

namespace taskq {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool is_continuation(unsigned char c) noexcept {
  return (c & 0xC0) == 0x80;
}

// Length of the well-formed character starting at text[i], or, when it is ill-formed, 0 and in
// `skip` the length of its maximal subpart (at least 1): the bytes one U+FFFD stands for.
std::size_t char_length(std::string_view text, std::size_t i, std::size_t& skip) noexcept {
  const auto b = static_cast<unsigned char>(text[i]);
  skip = 1;
  if (b < 0x80) return 1;
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, C0, C1 or F5..FF: cannot start a character
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (i + k >= text.size()) {
      skip = k;
      return 0;
    }
    const auto c = static_cast<unsigned char>(text[i + k]);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : is_continuation(c);
    if (!ok) {
      skip = k;
      return 0;
    }
  }
  return need + 1;
}

// Appends text[i] (one character or one ill-formed subpart, see clean_text) and returns how many
// bytes it used.
std::size_t append_clean_char(std::string& out, std::string_view text, std::size_t i) {
  std::size_t skip = 1;
  const std::size_t n = char_length(text, i, skip);
  if (n == 0) {
    out.append(replacement);
    return skip;
  }
  if (n == 1 && text[i] == '\0') return 1;
  out.append(text.substr(i, n));
  return n;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of a `\uXXXX` escape at text[i], or -1 when there is none.
long escape_at(std::string_view text, std::size_t i) noexcept {
  if (i + 6 > text.size() || text[i] != '\\' || text[i + 1] != 'u') return -1;
  long v = 0;
  for (std::size_t k = 2; k < 6; ++k) {
    const int h = hex_value(text[i + k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

// A SAX handler that accepts everything: basic_parser checks the syntax and the depth without
// building a value (a 1 MiB result costs no tree).
struct SyntaxOnly {
  using ec_t = boost::json::error_code;
  using sv_t = boost::json::string_view;
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return true; }
  bool on_object_end(std::size_t, ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_key_part(sv_t, std::size_t, ec_t&) { return true; }
  bool on_key(sv_t, std::size_t, ec_t&) { return true; }
  bool on_string_part(sv_t, std::size_t, ec_t&) { return true; }
  bool on_string(sv_t, std::size_t, ec_t&) { return true; }
  bool on_number_part(sv_t, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv_t, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, sv_t, ec_t&) { return true; }
  bool on_double(double, sv_t, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(sv_t, ec_t&) { return true; }
  bool on_comment(sv_t, ec_t&) { return true; }
};

// Empty when `text` is exactly one JSON value (whitespace around it allowed), else what is wrong.
std::string json_syntax_error(std::string_view text) {
  boost::json::parse_options opts;
  opts.max_depth = max_json_depth;
  boost::json::basic_parser<SyntaxOnly> p(opts);
  boost::json::error_code ec;
  const std::size_t used = p.write_some(false, text.data(), text.size(), ec);
  if (ec) {
    if (ec == boost::json::error::too_deep) return "nested deeper than " + std::to_string(max_json_depth) + " levels";
    return "not valid JSON: " + ec.message() + " at byte " + std::to_string(used + 1);
  }
  if (used < text.size())
    return "not valid JSON: more than one value (extra data at byte " + std::to_string(used + 1) + ")";
  return {};
}

}  // namespace

bool valid_utf8(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t skip = 1;
    const std::size_t n = char_length(text, i, skip);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string clean_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    // Runs of plain ASCII are copied at once.
    std::size_t j = i;
    while (j < text.size() && static_cast<unsigned char>(text[j]) < 0x80 && text[j] != '\0') ++j;
    out.append(text.substr(i, j - i));
    i = j;
    if (i < text.size()) i += append_clean_char(out, text, i);
  }
  return out;
}

std::string_view utf8_head(std::string_view text, std::size_t max_bytes) noexcept {
  if (text.size() <= max_bytes) return text;
  std::size_t end = max_bytes;
  // text[end] is the first byte left out: when it continues a character, that character is cut,
  // so end moves back to its first byte (a well-formed character has at most 3 continuations).
  for (int k = 0; k < 3 && end > 0 && is_continuation(static_cast<unsigned char>(text[end])); ++k) --end;
  if (is_continuation(static_cast<unsigned char>(text[end]))) end = max_bytes;  // not UTF-8 anyway
  return text.substr(0, end);
}

std::string_view utf8_skip_partial(std::string_view text) noexcept {
  std::size_t start = 0;
  for (int k = 0; k < 3 && start < text.size() && is_continuation(static_cast<unsigned char>(text[start])); ++k)
    ++start;
  return text.substr(start);
}

std::string_view utf8_tail(std::string_view text, std::size_t max_bytes) noexcept {
  if (text.size() <= max_bytes) return text;
  // The first byte kept may continue a character whose first byte was left out: skip the rest of it.
  return utf8_skip_partial(text.substr(text.size() - max_bytes));
}

std::string clean_text_head(std::string_view text, std::size_t max_bytes) {
  std::string out = clean_text(utf8_head(text, max_bytes));
  // Replacements are longer than the bytes they replace: cut again, on a character.
  if (out.size() > max_bytes) out.resize(utf8_head(out, max_bytes).size());
  return out;
}

std::optional<std::string> clean_json(std::string_view text, std::string& error) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (!in_string) {
      // Outside strings only ASCII is valid JSON; anything else is left for the syntax check.
      if (c == '"') in_string = true;
      out += c;
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = false;
      out += c;
      ++i;
    } else if (c == '\\') {
      const long unit = escape_at(text, i);
      if (unit < 0) {  // another escape (\n, \", ...) or a malformed one: the syntax check decides
        out.append(text.substr(i, std::min<std::size_t>(2, text.size() - i)));
        i += 2;
      } else if (unit == 0) {
        i += 6;  // \u0000: removed
      } else if (unit >= 0xD800 && unit <= 0xDBFF) {
        const long next = escape_at(text, i + 6);
        if (next >= 0xDC00 && next <= 0xDFFF) {
          out.append(text.substr(i, 12));  // a pair: one character
          i += 12;
        } else {
          out.append("\\ufffd");
          i += 6;
        }
      } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
        out.append("\\ufffd");  // a low surrogate without its high one
        i += 6;
      } else {
        out.append(text.substr(i, 6));
        i += 6;
      }
    } else if (static_cast<unsigned char>(c) < 0x80) {
      out += c;  // a raw control character (NUL too) is invalid JSON: the syntax check refuses it
      ++i;
    } else {
      i += append_clean_char(out, text, i);
    }
  }
  std::size_t b = 0;
  while (b < out.size() && (out[b] == ' ' || out[b] == '\t' || out[b] == '\n' || out[b] == '\r')) ++b;
  if (b == out.size()) {
    error = "empty";
    return std::nullopt;
  }
  error = json_syntax_error(out);
  if (!error.empty()) return std::nullopt;
  return out;
}

}  // namespace taskq
