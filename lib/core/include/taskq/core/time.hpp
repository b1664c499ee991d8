#pragma once
// Time points and durations as taskq shows and accepts them: RFC 3339 timestamps in UTC with
// microsecond precision, and durations written like "250ms", "30s", "1h30m", "2d".
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace taskq {

using Duration = std::chrono::microseconds;
using Timestamp = std::chrono::sys_time<Duration>;

/// Parses an RFC 3339 timestamp ("2026-11-23T10:00:00Z", "2026-11-23T10:00:00.5+01:00"). A date
/// alone ("2026-11-23") means midnight UTC. Throws Error(invalid_input) naming what is wrong.
Timestamp parse_rfc3339(std::string_view text);
/// "2026-11-23T10:00:00.123456Z"; fractional digits only when non-zero.
std::string format_rfc3339(Timestamp t);
/// Parses PostgreSQL's ISO output of a timestamptz with TimeZone=UTC ("2026-11-23 10:00:00.5+00").
Timestamp parse_pg_timestamp(std::string_view text);
/// Formats for PostgreSQL input ("2026-11-23 10:00:00.123456+00").
std::string format_pg_timestamp(Timestamp t);

/// The longest duration taskq accepts anywhere (timeouts, delays, intervals, grace periods,
/// retention): 36500 days, about 100 years. Far below what the clocks and PostgreSQL can hold, so
/// no deadline computed from a duration overflows.
inline constexpr Duration max_duration = std::chrono::hours{24 * 36500};

/// Parses "250ms", "30s", "5m", "1h30m", "2d", "1.5h", "90" (seconds). Negative and more than
/// max_duration are rejected. Throws Error(invalid_input) naming the text and the accepted units.
Duration parse_duration(std::string_view text);
/// A number of seconds (config files, JSON fields) as a duration, rounded to the microsecond.
/// Throws Error(invalid_input) when it is negative, not a finite number or more than max_duration.
Duration duration_from_seconds(double seconds);
/// Shortest exact form: "1h30m", "250ms", "0s".
std::string format_duration(Duration d);

/// A source of the current time, so time-dependent code can be tested without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Timestamp now() const = 0;
  [[nodiscard]] virtual std::chrono::steady_clock::time_point steady_now() const = 0;
  /// Waits `d` of this clock's time. The system clock sleeps; a test clock may advance itself
  /// instead, so a loop that polls until a deadline runs without real waiting.
  virtual void sleep_for(std::chrono::steady_clock::duration d) const;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] Timestamp now() const override;
  [[nodiscard]] std::chrono::steady_clock::time_point steady_now() const override;
  static const SystemClock& instance();
};

/// The monotonic clock in nanoseconds: for "when did this loop last go round" stamps kept in an
/// atomic, and for measuring durations. Never goes back; unrelated to wall-clock time.
std::int64_t steady_ns() noexcept;

}  // namespace taskq
