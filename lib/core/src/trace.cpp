#include "taskq/core/trace.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "taskq/core/error.hpp"

namespace taskq {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int hex_value(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

// Empty when `s` is `n` lowercase hex digits, not all zeros; otherwise what is wrong.
std::string hex_field_error(std::string_view what, std::string_view s, std::size_t n) {
  if (s.size() != n) return std::string(what) + " must be " + std::to_string(n) + " hex digits";
  bool nonzero = false;
  for (char c : s) {
    if (!is_lower_hex(c)) return std::string(what) + " must be lowercase hex digits";
    nonzero = nonzero || c != '0';
  }
  if (!nonzero) return std::string(what) + " must not be all zeros";
  return {};
}

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

// The spec's key grammar: simple-key, or tenant-id "@" system-id.
bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > 256) return false;
  const auto at = k.find('@');
  if (at == std::string_view::npos) {
    if (!(k[0] >= 'a' && k[0] <= 'z')) return false;
    for (char c : k)
      if (!key_char(c)) return false;
    return true;
  }
  const auto tenant = k.substr(0, at);
  const auto system = k.substr(at + 1);
  if (tenant.empty() || tenant.size() > 241 || system.empty() || system.size() > 14) return false;
  if (!((tenant[0] >= 'a' && tenant[0] <= 'z') || (tenant[0] >= '0' && tenant[0] <= '9'))) return false;
  if (!(system[0] >= 'a' && system[0] <= 'z')) return false;
  for (char c : tenant)
    if (!key_char(c)) return false;
  for (char c : system)
    if (!key_char(c)) return false;
  return true;
}

bool valid_value(std::string_view v) {
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  for (char c : v)
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
  return true;
}

void fill_random(unsigned char* out, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(out + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw Error(Errc::internal, std::string("getrandom: ") + std::strerror(errno));
    }
    got += static_cast<std::size_t>(r);
  }
}

// `bytes` random bytes as lowercase hex, never all zeros.
std::string random_hex(std::size_t bytes) {
  std::array<unsigned char, 16> buf{};
  std::string out;
  for (;;) {
    fill_random(buf.data(), bytes);
    out.clear();
    bool nonzero = false;
    for (std::size_t i = 0; i < bytes; ++i) {
      out += hex_digits[buf[i] >> 4];
      out += hex_digits[buf[i] & 0xf];
      nonzero = nonzero || buf[i] != 0;
    }
    if (nonzero) return out;
  }
}

}  // namespace

std::optional<TraceContext> parse_traceparent(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<TraceContext> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  constexpr std::size_t v00_size = 2 + 1 + trace_id_hex + 1 + span_id_hex + 1 + 2;  // 55
  if (text.size() < 2 || !is_lower_hex(text[0]) || !is_lower_hex(text[1]))
    return fail("must start with a 2 lowercase hex digit version, like 00-<trace id>-<parent id>-<flags>");
  const std::string_view version = text.substr(0, 2);
  if (version == "ff") return fail("version ff is invalid");
  if (text.size() < v00_size) return fail("too short: expected 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>");
  if (version == "00" && text.size() != v00_size)
    return fail("version 00 must be exactly 55 characters, not " + std::to_string(text.size()));
  if (text.size() > v00_size && text[v00_size] != '-')
    return fail("a later version must have '-' after its first 55 characters");
  if (text[2] != '-' || text[3 + trace_id_hex] != '-' || text[4 + trace_id_hex + span_id_hex] != '-')
    return fail("expected 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>");
  TraceContext t;
  t.trace_id = std::string(text.substr(3, trace_id_hex));
  t.parent_id = std::string(text.substr(4 + trace_id_hex, span_id_hex));
  const std::string_view flags = text.substr(5 + trace_id_hex + span_id_hex, 2);
  if (auto e = hex_field_error("trace id", t.trace_id, trace_id_hex); !e.empty()) return fail(e);
  if (auto e = hex_field_error("parent id", t.parent_id, span_id_hex); !e.empty()) return fail(e);
  if (!is_lower_hex(flags[0]) || !is_lower_hex(flags[1])) return fail("flags must be 2 lowercase hex digits");
  t.flags = static_cast<std::uint8_t>((hex_value(flags[0]) * 16 + hex_value(flags[1])) & 0x01);
  return t;
}

std::string format_traceparent(const TraceContext& t) {
  std::string out = "00-";
  out += t.trace_id;
  out += '-';
  out += t.parent_id;
  out += '-';
  out += hex_digits[(t.flags >> 4) & 0xf];
  out += hex_digits[t.flags & 0xf];
  return out;
}

std::string tracestate_error(std::string_view text) {
  if (text.size() > max_tracestate_bytes)
    return "longer than " + std::to_string(max_tracestate_bytes) + " bytes (32 members of at most 513 characters)";
  std::size_t members = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view m = text.substr(start, end - start);
    while (!m.empty() && (m.front() == ' ' || m.front() == '\t')) m.remove_prefix(1);
    while (!m.empty() && (m.back() == ' ' || m.back() == '\t')) m.remove_suffix(1);
    if (!m.empty()) {
      const std::string n = std::to_string(members + 1);
      if (++members > max_tracestate_members)
        return "more than " + std::to_string(max_tracestate_members) + " list members";
      const auto eq = m.find('=');
      if (eq == std::string_view::npos) return "list member " + n + " is not key=value";
      if (!valid_key(m.substr(0, eq)))
        return "list member " + n +
               ": the key must be 1 to 256 of a-z 0-9 _ - * / starting with a letter (or tenant@system)";
      if (!valid_value(m.substr(eq + 1)))
        return "list member " + n +
               ": the value must be 1 to 256 printable ASCII characters without ',' or '=', not ending in a space";
    }
    start = end + 1;
  }
  return {};
}

std::string checked_traceparent(std::string_view field, std::string_view text) {
  std::string why;
  const auto t = parse_traceparent(text, &why);
  if (!t) throw Error(Errc::invalid_input, std::string(field) + ": " + why);
  return format_traceparent(*t);
}

void check_tracestate(std::string_view field, std::string_view text) {
  if (auto e = tracestate_error(text); !e.empty()) throw Error(Errc::invalid_input, std::string(field) + ": " + e);
}

TraceContext new_trace() {
  TraceContext t;
  t.trace_id = random_hex(trace_id_hex / 2);
  t.parent_id = random_hex(span_id_hex / 2);
  t.flags = 1;
  return t;
}

std::string new_span_id() {
  return random_hex(span_id_hex / 2);
}

std::string job_log_label(JobId id, const std::string& queue, const std::string& kind, const std::string& trace_id) {
  std::string out = "job " + std::to_string(id) + " (queue " + queue + ", kind " + kind;
  if (!trace_id.empty()) out += ", trace_id=" + trace_id;
  out += ')';
  return out;
}

std::string child_traceparent(const TraceContext& parent, std::string_view span_id) {
  TraceContext child = parent;
  child.parent_id = std::string(span_id);
  return format_traceparent(child);
}

}  // namespace taskq
