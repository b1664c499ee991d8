#include "taskq/core/time.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <thread>

#include "taskq/core/error.hpp"

namespace taskq {
namespace {

using namespace std::chrono;

// Reads exactly `n` digits at text[pos]; returns -1 when they are not all digits.
int read_digits(std::string_view text, std::size_t pos, std::size_t n) {
  if (pos + n > text.size()) return -1;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

[[noreturn]] void bad_timestamp(std::string_view text, std::string_view why) {
  throw Error(Errc::invalid_input, "invalid timestamp '" + std::string(text) + "': " + std::string(why) +
                                       " (expected RFC 3339, e.g. 2026-11-23T10:00:00Z)");
}

// Shared by RFC 3339 and PostgreSQL ISO forms: "YYYY-MM-DD" then sep then "HH:MM:SS[.frac]"
// then "Z" | "+HH[:MM]" | "-HH[:MM]".
Timestamp parse_iso(std::string_view text, bool allow_date_only) {
  const int y = read_digits(text, 0, 4);
  if (y < 0 || text.size() < 10 || text[4] != '-' || text[7] != '-') bad_timestamp(text, "date must be YYYY-MM-DD");
  const int mo = read_digits(text, 5, 2);
  const int d = read_digits(text, 8, 2);
  if (mo < 1 || mo > 12 || d < 1) bad_timestamp(text, "month or day out of range");
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) bad_timestamp(text, "no such date");
  Timestamp t = time_point_cast<Duration>(sys_days{ymd});
  if (text.size() == 10) {
    if (!allow_date_only) bad_timestamp(text, "time of day missing");
    return t;
  }
  if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') bad_timestamp(text, "expected 'T' between date and time");
  const int h = read_digits(text, 11, 2);
  const int mi = read_digits(text, 14, 2);
  const int s = read_digits(text, 17, 2);
  if (h < 0 || mi < 0 || s < 0 || text.size() < 19 || text[13] != ':' || text[16] != ':')
    bad_timestamp(text, "time must be HH:MM:SS");
  if (h > 23 || mi > 59 || s > 60) bad_timestamp(text, "time of day out of range");
  t += hours{h} + minutes{mi} + seconds{s};
  std::size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::int64_t frac = 0;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) bad_timestamp(text, "fraction of a second has no digits");
    for (int i = digits; i < 6; ++i) frac *= 10;
    t += microseconds{frac};
  }
  if (pos >= text.size()) bad_timestamp(text, "time zone missing (add Z for UTC)");
  const char z = text[pos];
  if (z == 'Z' || z == 'z') {
    if (pos + 1 != text.size()) bad_timestamp(text, "unexpected text after 'Z'");
    return t;
  }
  if (z != '+' && z != '-') bad_timestamp(text, "time zone must be Z or +HH:MM");
  const int oh = read_digits(text, pos + 1, 2);
  int om = 0;
  std::size_t end = pos + 3;
  if (end < text.size()) {
    if (text[end] == ':') ++end;
    om = read_digits(text, end, 2);
    end += 2;
  }
  if (oh < 0 || om < 0 || oh > 23 || om > 59 || end != text.size())
    bad_timestamp(text, "time zone must be Z or +HH:MM");
  const auto offset = hours{oh} + minutes{om};
  return z == '+' ? t - offset : t + offset;
}

void append2(std::string& out, unsigned v) {
  out += static_cast<char>('0' + v / 10);
  out += static_cast<char>('0' + v % 10);
}

std::string format_iso(Timestamp t, char sep, std::string_view zone) {
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<Duration> tod{t - day};
  std::string out;
  out.reserve(32);
  const int y = static_cast<int>(ymd.year());
  if (y < 0 || y > 9999) return std::to_string(y);  // out of range for ISO; never stored by taskq
  out += std::to_string(y + 10000).substr(1);
  out += '-';
  append2(out, static_cast<unsigned>(ymd.month()));
  out += '-';
  append2(out, static_cast<unsigned>(ymd.day()));
  out += sep;
  append2(out, static_cast<unsigned>(tod.hours().count()));
  out += ':';
  append2(out, static_cast<unsigned>(tod.minutes().count()));
  out += ':';
  append2(out, static_cast<unsigned>(tod.seconds().count()));
  if (auto us = tod.subseconds().count(); us != 0) {
    std::string frac = std::to_string(us + 1000000).substr(1);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    out += '.';
    out += frac;
  }
  out += zone;
  return out;
}

}  // namespace

Timestamp parse_rfc3339(std::string_view text) {
  return parse_iso(text, true);
}
std::string format_rfc3339(Timestamp t) {
  return format_iso(t, 'T', "Z");
}
Timestamp parse_pg_timestamp(std::string_view text) {
  if (text == "infinity" || text == "-infinity") bad_timestamp(text, "infinite timestamps are not supported");
  return parse_iso(text, false);
}
std::string format_pg_timestamp(Timestamp t) {
  return format_iso(t, ' ', "+00");
}

Duration parse_duration(std::string_view text) {
  auto bad = [&](std::string_view why) -> Error {
    return Error(Errc::invalid_input, "invalid duration '" + std::string(text) + "': " + std::string(why) +
                                          " (examples: 250ms, 30s, 5m, 1h30m, 2d)");
  };
  if (text.empty()) throw bad("empty");
  // A bare number means seconds.
  bool bare = true;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || c == '.')) bare = false;
  std::string with_unit(text);
  if (bare) with_unit += 's';
  double total_us = 0;
  std::size_t pos = 0;
  const std::string_view s = with_unit;
  while (pos < s.size()) {
    std::size_t start = pos;
    while (pos < s.size() && ((s[pos] >= '0' && s[pos] <= '9') || s[pos] == '.')) ++pos;
    if (start == pos) throw bad(s[pos] == '-' ? "must not be negative" : "expected a number");
    double value = 0;
    auto [ptr, ec] = std::from_chars(s.data() + start, s.data() + pos, value);
    if (ec == std::errc::result_out_of_range && ptr == s.data() + pos)
      throw bad("more than the maximum of " + format_duration(max_duration) + " (100 years)");
    if (ec != std::errc{} || ptr != s.data() + pos) throw bad("bad number");
    std::size_t ustart = pos;
    while (pos < s.size() && s[pos] >= 'a' && s[pos] <= 'z') ++pos;
    const std::string_view unit = s.substr(ustart, pos - ustart);
    double scale = 0;
    if (unit == "us")
      scale = 1;
    else if (unit == "ms")
      scale = 1e3;
    else if (unit == "s")
      scale = 1e6;
    else if (unit == "m")
      scale = 60e6;
    else if (unit == "h")
      scale = 3600e6;
    else if (unit == "d")
      scale = 86400e6;
    else if (unit.empty())
      throw bad("missing unit after a number");
    else
      throw bad("unknown unit '" + std::string(unit) + "'");
    total_us += value * scale;
  }
  if (!std::isfinite(total_us) || total_us > static_cast<double>(max_duration.count()))
    throw bad("more than the maximum of " + format_duration(max_duration) + " (100 years)");
  return Duration{static_cast<std::int64_t>(std::llround(total_us))};
}

Duration duration_from_seconds(double seconds) {
  if (std::isnan(seconds)) throw Error(Errc::invalid_input, "a duration must be a number of seconds");
  if (seconds < 0) throw Error(Errc::invalid_input, "must not be negative");
  if (seconds * 1e6 > static_cast<double>(max_duration.count()))
    throw Error(Errc::invalid_input,
                "more than the maximum of " + format_duration(max_duration) + " (100 years, or 3153600000 seconds)");
  return Duration{static_cast<std::int64_t>(std::llround(seconds * 1e6))};
}

std::string format_duration(Duration d) {
  std::int64_t us = d.count();
  if (us == 0) return "0s";
  std::string out;
  if (us < 0) {
    out += '-';
    us = -us;
  }
  if (us % 1000 != 0) return out + std::to_string(us) + "us";
  if (us < 1000000 || us % 1000000 != 0) {
    if (us < 1000000) return out + std::to_string(us / 1000) + "ms";
  }
  std::int64_t ms = us / 1000;
  const std::int64_t day_ms = 86400000, hour_ms = 3600000, min_ms = 60000;
  if (ms >= day_ms) out += std::to_string(ms / day_ms) + "d", ms %= day_ms;
  if (ms >= hour_ms) out += std::to_string(ms / hour_ms) + "h", ms %= hour_ms;
  if (ms >= min_ms) out += std::to_string(ms / min_ms) + "m", ms %= min_ms;
  if (ms >= 1000) out += std::to_string(ms / 1000) + "s", ms %= 1000;
  if (ms > 0) out += std::to_string(ms) + "ms";
  return out;
}

Timestamp SystemClock::now() const {
  return time_point_cast<Duration>(system_clock::now());
}
steady_clock::time_point SystemClock::steady_now() const {
  return steady_clock::now();
}
void Clock::sleep_for(steady_clock::duration d) const {
  std::this_thread::sleep_for(d);
}

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

}  // namespace taskq
