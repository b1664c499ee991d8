#include <catch2/catch.hpp>

#include "taskq/core/error.hpp"
#include "taskq/core/time.hpp"

using namespace taskq;
using namespace std::chrono;

TEST_CASE("RFC 3339 timestamps parse with zones and fractions", "[time]") {
  const Timestamp base = time_point_cast<Duration>(sys_days{year{2026} / 11 / 23}) + hours{10};
  CHECK(parse_rfc3339("2026-11-23T10:00:00Z") == base);
  CHECK(parse_rfc3339("2026-11-23T11:30:00+01:30") == base);
  CHECK(parse_rfc3339("2026-11-23T05:00:00-05:00") == base);
  CHECK(parse_rfc3339("2026-11-23T10:00:00.5Z") == base + milliseconds{500});
  CHECK(parse_rfc3339("2026-11-23T10:00:00.1234567Z") == base + microseconds{123456});
  CHECK(parse_rfc3339("2026-11-23") == base - hours{10});
  CHECK(format_rfc3339(base + microseconds{1500}) == "2026-11-23T10:00:00.0015Z");
  CHECK(format_rfc3339(base) == "2026-11-23T10:00:00Z");
}

TEST_CASE("bad timestamps say what is wrong", "[time]") {
  for (const char* bad :
       {"", "tomorrow", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-23T25:00:00Z", "2026-11-23T10:00:00",
        "2026-11-23T10:00:00Zjunk", "2026-11-23T10:00Z", "2026-11-23T10:00:00+5"}) {
    INFO(bad);
    try {
      parse_rfc3339(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_input);
      CHECK(std::string(e.what()).find("invalid timestamp") != std::string::npos);
    }
  }
}

TEST_CASE("PostgreSQL timestamps round-trip", "[time]") {
  const Timestamp t = parse_rfc3339("2026-03-29T01:59:59.999999Z");
  CHECK(format_pg_timestamp(t) == "2026-03-29 01:59:59.999999+00");
  CHECK(parse_pg_timestamp(format_pg_timestamp(t)) == t);
  CHECK(parse_pg_timestamp("2026-11-23 10:00:00+00") == parse_rfc3339("2026-11-23T10:00:00Z"));
  CHECK_THROWS_AS(parse_pg_timestamp("infinity"), Error);
}

TEST_CASE("durations parse Go-style units and bare seconds", "[time]") {
  CHECK(parse_duration("250ms") == milliseconds{250});
  CHECK(parse_duration("30s") == seconds{30});
  CHECK(parse_duration("1h30m") == minutes{90});
  CHECK(parse_duration("2d") == hours{48});
  CHECK(parse_duration("1.5h") == minutes{90});
  CHECK(parse_duration("90") == seconds{90});
  CHECK(parse_duration("10us") == microseconds{10});
  for (const char* bad : {"", "-5s", "5x", "h", "5", "1h-3m", "abc", "5 s"}) {
    if (std::string(bad) == "5") continue;
    INFO(bad);
    CHECK_THROWS_AS(parse_duration(bad), Error);
  }
}

TEST_CASE("durations format in their shortest exact form", "[time]") {
  CHECK(format_duration(Duration{0}) == "0s");
  CHECK(format_duration(milliseconds{250}) == "250ms");
  CHECK(format_duration(minutes{90}) == "1h30m");
  CHECK(format_duration(hours{49}) == "2d1h");
  CHECK(format_duration(milliseconds{1500}) == "1s500ms");
  CHECK(format_duration(microseconds{7}) == "7us");
  for (auto d : {seconds{1}, seconds{3661}, seconds{86400 * 3}}) CHECK(parse_duration(format_duration(d)) == d);
}
