#include "taskq/cron/cron.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "taskq/core/error.hpp"
#include "taskq/core/text.hpp"

namespace taskq::cron {
namespace {

struct FieldSpec {
  const char* name;
  int min, max;
  const char* const* names;  // names[i] is the value min + i; nullptr: numbers only
};

constexpr const char* month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec second_spec{"second", 0, 59, nullptr};
constexpr FieldSpec minute_spec{"minute", 0, 59, nullptr};
constexpr FieldSpec hour_spec{"hour", 0, 23, nullptr};
constexpr FieldSpec day_spec{"day-of-month", 1, 31, nullptr};
constexpr FieldSpec month_spec{"month", 1, 12, month_names};
constexpr FieldSpec weekday_spec{"day-of-week", 0, 7, day_names};  // 7 = Sunday

class FieldParser {
 public:
  FieldParser(std::string_view expr, std::string_view field, const FieldSpec& spec)
      : expr_(expr), field_(field), spec_(spec) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(Errc::invalid_input,
                "cron '" + std::string(expr_) + "': " + spec_.name + " field '" + std::string(field_) + "': " + why);
  }

  int value(std::string_view token) const {
    if (token.empty()) fail("empty value");
    if (spec_.names && std::isalpha(static_cast<unsigned char>(token[0]))) {
      std::string lower;
      for (char c : token) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      // names[0] is the field's first value: JAN = 1, SUN = 0.
      const int count = spec_.names == month_names ? 12 : 7;
      for (int i = 0; i < count; ++i)
        if (lower == spec_.names[i]) return spec_.min + i;
      fail("unknown name '" + std::string(token) + "'");
    }
    if (token.size() > 4 || token.find_first_not_of("0123456789") != std::string_view::npos)
      fail("'" + std::string(token) + "' is not a number");
    const int v = std::stoi(std::string(token));
    if (v < spec_.min || v > spec_.max)
      fail(std::to_string(v) + " is out of range " + std::to_string(spec_.min) + "-" + std::to_string(spec_.max));
    return v;
  }

  // Sets the matching values in `bits` (indexed by value); returns whether the field starts with '*'.
  template <std::size_t N>
  bool parse(std::bitset<N>& bits) const {
    if (field_.empty()) fail("empty");
    for (const auto item : split(field_, ',')) {
      if (item.empty()) fail("empty list item");
      const auto slash = item.find('/');
      const std::string_view range = item.substr(0, slash);
      int step = 1;
      if (slash != std::string_view::npos) {
        const auto s = item.substr(slash + 1);
        if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string_view::npos)
          fail("step '" + std::string(s) + "' is not a number");
        step = std::stoi(std::string(s));
        if (step < 1) fail("step must be at least 1");
      }
      int lo = spec_.min, hi = spec_.max;
      if (range == "*" || range == "?") {
        if (spec_.max == 7) hi = 6;  // weekdays: 0-6, 7 is the same Sunday
      } else {
        const auto dash = range.find('-');
        lo = value(range.substr(0, dash));
        if (dash != std::string_view::npos) {
          hi = value(range.substr(dash + 1));
          if (hi < lo) fail("range " + std::to_string(lo) + "-" + std::to_string(hi) + " runs backwards");
        } else if (slash == std::string_view::npos) {
          hi = lo;
        }
      }
      for (int v = lo; v <= hi; v += step) bits.set(static_cast<std::size_t>(spec_.max == 7 && v == 7 ? 0 : v));
    }
    return field_.front() == '*' || field_.front() == '?';
  }

 private:
  std::string_view expr_, field_;
  const FieldSpec& spec_;
};

const date::time_zone* find_zone(std::string_view zone) {
  try {
    return date::locate_zone(std::string(zone));
  } catch (const std::exception&) {
    throw Error(Errc::invalid_input,
                "unknown time zone '" + std::string(zone) + "' (use an IANA name such as Europe/Berlin or UTC)");
  }
}

}  // namespace

void validate_zone(std::string_view zone) {
  (void)find_zone(zone);
}

Expression Expression::parse(std::string_view text) {
  Expression e;
  e.text_ = std::string(text);
  std::string_view t = text;
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  std::string expr(t);
  if (!expr.empty() && expr.front() == '@') {
    const auto space = expr.find(' ');
    const std::string macro = expr.substr(0, space);
    if (macro == "@every") {
      if (space == std::string::npos)
        throw Error(Errc::invalid_input, "cron '" + e.text_ + "': @every needs a duration, e.g. @every 10m");
      Duration d{};
      try {
        d = parse_duration(expr.substr(space + 1));
      } catch (const Error& err) {
        throw Error(Errc::invalid_input, "cron '" + e.text_ + "': " + err.what());
      }
      if (d < std::chrono::seconds{1})
        throw Error(Errc::invalid_input, "cron '" + e.text_ + "': @every needs at least 1s");
      e.every_ = d;
      return e;
    }
    if (space != std::string::npos)
      throw Error(Errc::invalid_input, "cron '" + e.text_ + "': " + macro + " takes no fields");
    if (macro == "@yearly" || macro == "@annually")
      expr = "0 0 1 1 *";
    else if (macro == "@monthly")
      expr = "0 0 1 * *";
    else if (macro == "@weekly")
      expr = "0 0 * * 0";
    else if (macro == "@daily" || macro == "@midnight")
      expr = "0 0 * * *";
    else if (macro == "@hourly")
      expr = "0 * * * *";
    else
      throw Error(Errc::invalid_input, "cron '" + e.text_ + "': unknown macro " + macro +
                                           " (use @yearly, @monthly, @weekly, @daily, @hourly or @every)");
  }
  std::vector<std::string_view> fields;
  for (auto f : split(expr, ' '))
    if (!f.empty()) fields.push_back(f);
  if (fields.size() != 5 && fields.size() != 6)
    throw Error(Errc::invalid_input, "cron '" + e.text_ + "': expected 5 fields (minute hour day-of-month month " +
                                         "day-of-week) or 6 (with a leading second), found " +
                                         std::to_string(fields.size()));
  std::size_t i = 0;
  if (fields.size() == 6)
    FieldParser(e.text_, fields[i++], second_spec).parse(e.seconds_);
  else
    e.seconds_.set(0);
  FieldParser(e.text_, fields[i++], minute_spec).parse(e.minutes_);
  FieldParser(e.text_, fields[i++], hour_spec).parse(e.hours_);
  e.day_star_ = FieldParser(e.text_, fields[i++], day_spec).parse(e.days_);
  FieldParser(e.text_, fields[i++], month_spec).parse(e.months_);
  std::bitset<8> weekdays;
  e.weekday_star_ = FieldParser(e.text_, fields[i++], weekday_spec).parse(weekdays);
  for (std::size_t d = 0; d < 7; ++d) e.weekdays_[d] = weekdays[d];
  return e;
}

bool Expression::day_matches(int day, int weekday) const {
  const bool d = days_[static_cast<std::size_t>(day)];
  const bool w = weekdays_[static_cast<std::size_t>(weekday)];
  if (day_star_ || weekday_star_) return d && w;
  return d || w;
}

std::optional<Timestamp> Expression::next_after(Timestamp after, std::string_view zone) const {
  using namespace std::chrono;
  if (every_) {
    const auto since = after.time_since_epoch();
    const auto n = since.count() >= 0 ? since / *every_ + 1 : 0;
    return Timestamp{*every_ * n};
  }
  const date::time_zone* tz = find_zone(zone);
  // Walk the zone's wall-clock time forward, field by field, from the second after `after`.
  auto local = floor<seconds>(tz->to_local(floor<seconds>(after))) + seconds{1};
  const auto limit = local + date::years{8};
  while (local < limit) {
    const auto day_point = date::floor<date::days>(local);
    const date::year_month_day ymd{day_point};
    const auto month = static_cast<unsigned>(ymd.month());
    if (!months_[month]) {
      const auto first_of_next = date::year_month_day{ymd.year() / ymd.month() / 1} + date::months{1};
      local = date::local_days{first_of_next};
      continue;
    }
    const auto day = static_cast<unsigned>(ymd.day());
    const auto weekday = date::weekday{day_point}.c_encoding();
    if (!day_matches(static_cast<int>(day), static_cast<int>(weekday))) {
      local = day_point + date::days{1};
      continue;
    }
    const date::hh_mm_ss<seconds> tod{local - day_point};
    const auto h = static_cast<std::size_t>(tod.hours().count());
    if (!hours_[h]) {
      local = day_point + hours{h + 1};
      continue;
    }
    const auto m = static_cast<std::size_t>(tod.minutes().count());
    if (!minutes_[m]) {
      local = day_point + hours{h} + minutes{m + 1};
      continue;
    }
    const auto s = static_cast<std::size_t>(tod.seconds().count());
    if (!seconds_[s]) {
      local += seconds{1};
      continue;
    }
    // A matching wall-clock time: its instant, by the DST rule in the header.
    const auto info = tz->get_info(local);
    date::sys_seconds instant;
    switch (info.result) {
      case date::local_info::unique:
      case date::local_info::ambiguous:  // the first occurrence
        instant = date::sys_seconds{local.time_since_epoch()} - info.first.offset;
        break;
      case date::local_info::nonexistent:  // skipped by a gap: the end of the gap
        instant = info.second.begin;
        break;
    }
    const Timestamp t = time_point_cast<Duration>(instant);
    if (t > after) return t;
    local += seconds{1};
  }
  return std::nullopt;
}

}  // namespace taskq::cron
