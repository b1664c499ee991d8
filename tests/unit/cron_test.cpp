// Cron expressions: a table of (expression, zone, after) -> next fire time, including DST days in
// Europe/Berlin and America/New_York, Feb 29, @every and the macros; and rejected expressions.
#include <catch2/catch.hpp>
#include <string>

#include "taskq/core/error.hpp"
#include "taskq/cron/cron.hpp"

using namespace taskq;

namespace {

struct Case {
  const char* expr;
  const char* zone;
  const char* after;
  const char* next;  // "" = never
};

// 2026-01-01 is a Thursday. DST 2026: Berlin jumps 02:00 -> 03:00 CEST on 29 March (01:00Z) and
// falls back 03:00 -> 02:00 CET on 25 October (01:00Z); New York jumps 02:00 -> 03:00 EDT on
// 8 March (07:00Z) and falls back 02:00 -> 01:00 EST on 1 November (06:00Z).
const Case cases[] = {
    // basics, UTC
    {"* * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"},
    {"* * * * *", "UTC", "2026-01-01T00:00:30.5Z", "2026-01-01T00:01:00Z"},
    {"0 * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"},
    {"30 2 * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T02:30:00Z"},
    {"30 2 * * *", "UTC", "2026-01-01T02:30:00Z", "2026-01-02T02:30:00Z"},
    {"30 2 * * *", "UTC", "2026-01-01T02:29:59.999999Z", "2026-01-01T02:30:00Z"},
    {"*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z"},
    {"*/15 * * * *", "UTC", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z"},
    {"5,10,15 * * * *", "UTC", "2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z"},
    {"5,10,15 * * * *", "UTC", "2026-01-01T00:15:00Z", "2026-01-01T01:05:00Z"},
    {"0 0-5/2 * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z"},
    {"0 0-5/2 * * *", "UTC", "2026-01-01T04:00:00Z", "2026-01-02T00:00:00Z"},
    {"10/20 * * * *", "UTC", "2026-01-01T00:11:00Z", "2026-01-01T00:30:00Z"},
    {"0 0 1 * *", "UTC", "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z"},
    {"0 0 1 1 *", "UTC", "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"0 0 31 * *", "UTC", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z"},
    {"0 0 */10 * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z"},
    {"0 0 */10 * *", "UTC", "2026-01-21T00:00:00Z", "2026-01-31T00:00:00Z"},
    {"59 23 31 12 *", "UTC", "2026-06-01T00:00:00Z", "2026-12-31T23:59:00Z"},
    // names, weekdays
    {"0 9 * * mon-fri", "UTC", "2026-01-03T10:00:00Z", "2026-01-05T09:00:00Z"},
    {"0 9 * * 1-5", "UTC", "2026-01-03T10:00:00Z", "2026-01-05T09:00:00Z"},
    {"0 9 * * SUN", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T09:00:00Z"},
    {"0 9 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T09:00:00Z"},
    {"0 9 * * 0", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T09:00:00Z"},
    {"0 9 * * Sat,sun", "UTC", "2026-01-01T00:00:00Z", "2026-01-03T09:00:00Z"},
    {"0 0 1 jan,jul *", "UTC", "2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z"},
    {"0 0 1 JAN-MAR *", "UTC", "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"0 0 1 Dec *", "UTC", "2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z"},
    // day-of-month OR day-of-week when both are restricted (Vixie cron)
    {"0 0 13 * 5", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
    {"0 0 13 * 5", "UTC", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z"},
    {"0 0 13 * fri", "UTC", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z"},
    {"0 0 * * 5", "UTC", "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"},  // '*' day: weekday only
    {"0 0 1-7 * *", "UTC", "2026-01-07T00:00:00Z", "2026-02-01T00:00:00Z"},
    {"0 0 ? * 5", "UTC", "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"},
    // February 29 and impossible dates
    {"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 29 2 *", "UTC", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
    {"0 12 28-29 2 *", "UTC", "2027-02-28T12:00:00Z", "2028-02-28T12:00:00Z"},
    {"0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", ""},
    {"0 0 31 4 *", "UTC", "2026-01-01T00:00:00Z", ""},
    // six fields: a leading seconds field
    {"*/10 * * * * *", "UTC", "2026-01-01T00:00:05Z", "2026-01-01T00:00:10Z"},
    {"30 0 0 * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z"},
    {"0 0 12 * * *", "UTC", "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z"},
    {"* * * * * *", "UTC", "2026-01-01T00:00:00.25Z", "2026-01-01T00:00:01Z"},
    // macros
    {"@yearly", "UTC", "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"@annually", "UTC", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
    {"@monthly", "UTC", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z"},
    {"@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
    {"@daily", "UTC", "2026-01-01T23:59:59Z", "2026-01-02T00:00:00Z"},
    {"@midnight", "UTC", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"},
    {"@hourly", "UTC", "2026-01-01T10:59:59Z", "2026-01-01T11:00:00Z"},
    // @every: multiples of the duration since the Unix epoch, whatever the zone
    {"@every 10m", "UTC", "2026-01-01T00:03:00Z", "2026-01-01T00:10:00Z"},
    {"@every 10m", "Europe/Berlin", "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"},
    {"@every 1h30m", "UTC", "1970-01-01T00:00:00Z", "1970-01-01T01:30:00Z"},
    {"@every 90s", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z"},
    {"@every 1s", "UTC", "2026-01-01T00:00:00.5Z", "2026-01-01T00:00:01Z"},
    // zones without DST changes in play
    {"0 9 * * *", "Europe/Berlin", "2026-01-01T00:00:00Z", "2026-01-01T08:00:00Z"},
    {"0 9 * * *", "Europe/Berlin", "2026-07-01T00:00:00Z", "2026-07-01T07:00:00Z"},
    {"0 12 * * *", "America/New_York", "2026-01-01T00:00:00Z", "2026-01-01T17:00:00Z"},
    {"0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-01T18:30:00Z"},
    // Europe/Berlin, spring forward: 02:30 does not exist; it fires once, at the end of the gap
    {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
    {"0 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"},
    {"0 * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
    {"*/20 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"},
    {"*/20 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"},
    // Europe/Berlin, fall back: 02:30 happens twice; it fires at the first only
    {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
    {"0 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", "2026-10-26T01:30:00Z"},
    // America/New_York, spring forward and fall back
    {"30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z"},
    {"30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"},
    {"30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z"},
    {"30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
    {"0 0 * * *", "America/New_York", "2026-11-01T03:00:00Z", "2026-11-01T04:00:00Z"},
    {"0 0 * * *", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"},
};

}  // namespace

TEST_CASE("cron: next fire times", "[cron]") {
  for (const auto& c : cases) {
    INFO(c.expr << " in " << c.zone << " after " << c.after);
    const auto e = cron::Expression::parse(c.expr);
    const auto next = e.next_after(parse_rfc3339(c.after), c.zone);
    if (std::string(c.next).empty()) {
      CHECK_FALSE(next.has_value());
    } else {
      REQUIRE(next.has_value());
      CHECK(format_rfc3339(*next) == format_rfc3339(parse_rfc3339(c.next)));
    }
  }
}

TEST_CASE("cron: a daily 02:30 job fires exactly once on DST days", "[cron]") {
  for (const char* zone : {"Europe/Berlin", "America/New_York"}) {
    const auto e = cron::Expression::parse("30 2 * * *");
    // Count the fires over March and November/October of 2026: one per day.
    for (const auto& [from, days] : {std::pair{"2026-03-01T00:00:00Z", 31}, std::pair{"2026-10-01T00:00:00Z", 61}}) {
      auto t = parse_rfc3339(from);
      for (int i = 0; i < days; ++i) {
        const auto next = e.next_after(t, zone);
        REQUIRE(next.has_value());
        INFO(zone << ": fire " << i << " after " << format_rfc3339(t) << " at " << format_rfc3339(*next));
        if (i > 0) {
          CHECK(*next - t > std::chrono::hours{22});  // never twice on one day
          CHECK(*next - t < std::chrono::hours{26});  // never a day without
        }
        t = *next;
      }
    }
  }
}

TEST_CASE("cron: rejected expressions say what is wrong", "[cron]") {
  const std::pair<const char*, const char*> bad[] = {
      {"", "expected 5 fields"},
      {"* * * *", "found 4"},
      {"* * * * * * *", "found 7"},
      {"60 * * * *", "minute field '60': 60 is out of range 0-59"},
      {"* 24 * * *", "hour field '24'"},
      {"* * 0 * *", "day-of-month field '0'"},
      {"* * 32 * *", "out of range 1-31"},
      {"* * * 13 *", "month field '13'"},
      {"* * * * 8", "day-of-week field '8'"},
      {"*/0 * * * *", "step must be at least 1"},
      {"5-1 * * * *", "runs backwards"},
      {"* * * foo *", "unknown name 'foo'"},
      {"* * * * funday", "unknown name 'funday'"},
      {"1,,2 * * * *", "empty list item"},
      {"a b c d e", "minute field 'a'"},
      {"*/x * * * *", "step 'x' is not a number"},
      {"60 * * * * *", "second field '60'"},
      {"@every", "@every needs a duration"},
      {"@every 0s", "at least 1s"},
      {"@every banana", "cron '@every banana'"},
      {"@fortnightly", "unknown macro @fortnightly"},
      {"@daily 5", "@daily takes no fields"},
  };
  for (const auto& [expr, why] : bad) {
    INFO("expression: '" << expr << "'");
    try {
      cron::Expression::parse(expr);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_input);
      CHECK_THAT(e.what(), Catch::Contains(why));
      CHECK_THAT(e.what(), Catch::Contains(std::string("cron '") + expr + "'"));
    }
  }
}

TEST_CASE("cron: unknown time zones are refused", "[cron]") {
  CHECK_NOTHROW(cron::validate_zone("Europe/Berlin"));
  CHECK_NOTHROW(cron::validate_zone("UTC"));
  CHECK_THROWS_WITH(cron::validate_zone("Mars/Olympus"), Catch::Contains("unknown time zone 'Mars/Olympus'"));
  const auto e = cron::Expression::parse("* * * * *");
  CHECK_THROWS_AS(e.next_after(parse_rfc3339("2026-01-01T00:00:00Z"), "Nowhere/City"), Error);
}
