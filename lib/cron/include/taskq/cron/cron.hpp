#pragma once
// Cron expressions and their next fire times in an IANA time zone. Pure code: no database, no
// clock of its own (callers pass the instant to search after).
//
// Accepted: 5 fields (minute hour day-of-month month day-of-week) or 6 (a leading seconds field);
// each field a list of `*`, `?` (as `*`), `N`, `N-M`, with an optional `/STEP`; month names
// JAN-DEC and weekday names SUN-SAT (any case); weekday 7 is Sunday. Macros: @yearly
// (@annually), @monthly, @weekly, @daily (@midnight), @hourly, and @every DURATION.
// Day-of-month and day-of-week combine as in Vixie cron: when both are restricted (neither
// starts with `*`), a day matches if either matches; otherwise both must.
//
// Time zones and DST (the rule, documented in man taskq-schedulerd): a schedule is matched
// against the zone's wall-clock time, and every matching wall-clock time fires once.
//   - A wall-clock time skipped by a spring-forward gap fires at the end of the gap (02:30 on the
//     day clocks jump from 02:00 to 03:00 fires at 03:00), once however many skipped times match.
//   - A wall-clock time that occurs twice when clocks fall back fires at its first occurrence
//     only.
// So a daily 02:30 job runs exactly once on both days. @every DURATION ignores the zone: it fires
// at the multiples of DURATION since 1970-01-01T00:00:00Z, so its ticks do not depend on when a
// scheduler started.
#include <bitset>
#include <optional>
#include <string>
#include <string_view>

#include "taskq/core/time.hpp"

namespace taskq::cron {

class Expression {
 public:
  /// Parses; throws Error(invalid_input) naming the field and what is wrong, e.g.
  /// "cron '0 25 * * *': hour field '25': 25 is out of range 0-23".
  static Expression parse(std::string_view text);

  /// The first fire time strictly after `after`, in the zone named `zone` (IANA, e.g.
  /// "Europe/Berlin"; "UTC"). Nothing when no time matches within 8 years (e.g. 30 February).
  /// Throws Error(invalid_input) for an unknown zone.
  [[nodiscard]] std::optional<Timestamp> next_after(Timestamp after, std::string_view zone = "UTC") const;

  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
  std::optional<Duration> every_;
  std::bitset<60> seconds_, minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool day_star_ = false, weekday_star_ = false;

  [[nodiscard]] bool day_matches(int day, int weekday) const;
};

/// Throws Error(invalid_input) when `zone` is not a time zone of the system's tz database.
void validate_zone(std::string_view zone);

}  // namespace taskq::cron
