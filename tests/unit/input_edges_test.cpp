// Input edges: every duration has a maximum and nothing overflows, whatever the way in (text,
// seconds in a config file or JSON, a C++ EnqueueParams); text shown on a terminal cannot act on it.
#include <catch2/catch.hpp>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/job.hpp"
#include "taskq/core/json.hpp"
#include "taskq/core/printable.hpp"
#include "taskq/core/time.hpp"

using taskq::config::Config;
using taskq::config::parse_config;

using namespace taskq;
using namespace std::chrono;

namespace {

template <typename F>
std::string error_text(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("durations: the maximum is 36500d, written or in seconds", "[time][edges]") {
  CHECK(max_duration == hours{24 * 36500});
  CHECK(parse_duration("36500d") == max_duration);
  CHECK(parse_duration("3153600000") == max_duration);
  CHECK(duration_from_seconds(3153600000.0) == max_duration);
  CHECK(duration_from_seconds(1.5) == milliseconds{1500});
  CHECK(duration_from_seconds(0) == Duration{});
  const struct {
    std::string text;
  } too_long[] = {{"36500d1us"},
                  {"36501d"},
                  {"9999999999d"},
                  {"99999999999999999999999h"},
                  {"3153600001"},
                  {"999999999999999999999999999999s"},
                  {"1" + std::string(400, '0') + "s"}};
  for (const auto& c : too_long) {
    INFO(c.text);
    CHECK(error_text([&] { parse_duration(c.text); }).find("more than the maximum of 36500d") != std::string::npos);
  }
  for (const double secs : {3153600000.5, 1e30, 1e300, std::numeric_limits<double>::infinity()}) {
    INFO(secs);
    CHECK(error_text([&] { duration_from_seconds(secs); }).find("more than the maximum of 36500d") !=
          std::string::npos);
  }
  CHECK(error_text([] { duration_from_seconds(-1); }) == "must not be negative");
  CHECK(error_text([] { duration_from_seconds(std::numeric_limits<double>::quiet_NaN()); }) ==
        "a duration must be a number of seconds");
}

TEST_CASE("durations: config keys and JSON fields refuse what would overflow", "[time][edges]") {
  const struct {
    std::string toml, expect;
  } config_cases[] = {
      {"[worker]\nshutdown_timeout = 1e30\n", "worker.shutdown_timeout: more than the maximum of 36500d"},
      {"[worker]\nshutdown_timeout = \"9999999999d\"\n", "worker.shutdown_timeout: invalid duration"},
      {"[worker]\nshutdown_timeout = -1\n", "worker.shutdown_timeout: must not be negative"},
      {"[worker]\nshutdown_timeout = inf\n", "worker.shutdown_timeout: more than the maximum"},
      {"[worker]\nshutdown_timeout = nan\n", "worker.shutdown_timeout: a duration must be a number of seconds"},
      {"[kinds.k]\nexec = [\"/bin/true\"]\ntimeout = 99999999999999\n", "kinds.k.timeout: more than the maximum"},
      {"[kinds.k]\nexec = [\"/bin/true\"]\nbackoff = \"36501d\"\n", "kinds.k.backoff: invalid duration"},
  };
  for (const auto& c : config_cases) {
    INFO(c.toml);
    const Config cfg = parse_config(c.toml, "t.toml");
    REQUIRE(cfg.worker_errors.size() == 1);
    CHECK(cfg.worker_errors[0].find(c.expect) != std::string::npos);
  }
  const struct {
    std::string json, expect;
  } json_cases[] = {
      {R"({"kind":"k","timeout":1e30})", "timeout: more than the maximum of 36500d"},
      {R"({"kind":"k","in":1e300})", "in: more than the maximum of 36500d"},
      {R"({"kind":"k","in":"9999999999d"})", "in: invalid duration '9999999999d': more than the maximum"},
      {R"({"kind":"k","timeout":-5})", "timeout: must not be negative"},
      {R"({"kind":"k","run_at":"99999-01-01T00:00:00Z"})", "invalid timestamp"},
      {R"({"kind":"k","priority":1e20})", "priority: out of range"},
      {R"({"kind":"k","priority":18446744073709551615})", "priority: out of range"},
      {R"({"kind":"k","max_attempts":-1e300})", "max_attempts: out of range"},
      {R"({"kind":"k","priority":2.5})", "priority: must be an integer"},
  };
  for (const auto& c : json_cases) {
    INFO(c.json);
    CHECK(error_text([&] { enqueue_params_from_json_text(c.json); }).find(c.expect) != std::string::npos);
  }
}

TEST_CASE("durations: validate_enqueue bounds a C++ caller's timeout, delay and run_at", "[job][edges]") {
  EnqueueParams p;
  p.kind = "k";
  p.timeout = max_duration;
  p.delay = max_duration;
  CHECK_NOTHROW(validate_enqueue(p, {}));
  p.timeout = max_duration + microseconds{1};
  CHECK(error_text([&] { validate_enqueue(p, {}); }) == "timeout: more than the maximum (36500d, 100 years)");
  p.timeout.reset();
  p.delay = hours{24 * 365 * 1000};
  CHECK(error_text([&] { validate_enqueue(p, {}); }) == "in: more than the maximum (36500d, 100 years)");
  p.delay.reset();
  p.run_at = Timestamp{sys_days{year{10000} / 1 / 1}};
  CHECK(error_text([&] { validate_enqueue(p, {}); }) == "run_at: must be between the years 0001 and 9999");
  p.run_at = Timestamp{sys_days{year{0} / 12 / 31}};
  CHECK(error_text([&] { validate_enqueue(p, {}); }) == "run_at: must be between the years 0001 and 9999");
  p.run_at = Timestamp{sys_days{year{9999} / 12 / 31}};
  CHECK_NOTHROW(validate_enqueue(p, {}));
}

TEST_CASE("printable: terminal escapes and control characters are shown, not sent", "[text][edges]") {
  const struct {
    std::string in, out;
  } cases[] = {
      {"plain text, é and 日本 and 😀", "plain text, é and 日本 and 😀"},
      {"\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"},
      {"\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"},
      {"line1\nline2\r\tend", "line1\\nline2\\r\\tend"},
      {"back\bspace", "back\\x08space"},
      {std::string("nul\0byte", 8), "nul\\x00byte"},
      {"del\x7f", "del\\x7f"},
      {"\xc2\x9b"
       "31m C1 CSI",
       "\\u009b31m C1 CSI"},
      {"\xc2\x80\xc2\x9f\xc2\xa0", "\\u0080\\u009f\xc2\xa0"},  // U+00A0 is printable
      {"\xe2\x80\xae"
       "reversed",
       "\\u202ereversed"},
      {"\xe2\x80\xa8", "\\u2028"},
      {"\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069"},
      {"bad \xff\xfe utf8", "bad \\xff\\xfe utf8"},
      {"cut \xe6\x97", "cut \\xe6\\x97"},
      {"overlong \xc0\xaf", "overlong \\xc0\\xaf"},
      {"surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80"},
      {"back\\slash", "back\\slash"},
      {"", ""},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    CHECK(printable(c.in) == c.out);
  }
}

TEST_CASE("args: jobs.max_args_bytes applies to the size as stored", "[job][edges]") {
  EnqueueParams p;
  p.kind = "k";
  p.args = "[1e300]";  // 7 bytes of text; PostgreSQL stores [1000...000], 303 bytes
  CHECK(error_text([&] {
          validate_enqueue(p, EnqueueLimits{302});
        }).rfind("args: 303 bytes as stored is over the limit of 302 bytes (jobs.max_args_bytes", 0) == 0);
  CHECK_NOTHROW(validate_enqueue(p, EnqueueLimits{303}));
  // Spacing counts as PostgreSQL writes it: {"a":[1,2]} is stored as {"a": [1, 2]}, 13 bytes.
  p.args = R"({"a":[1,2]})";
  CHECK_NOTHROW(validate_enqueue(p, EnqueueLimits{13}));
  CHECK(error_text([&] { validate_enqueue(p, EnqueueLimits{12}); }).rfind("args: 13 bytes as stored", 0) == 0);
  // Whitespace the text has and jsonb drops does not count.
  p.args = "[\n    1,\n    2\n]";
  CHECK_NOTHROW(validate_enqueue(p, EnqueueLimits{6}));
  // Numbers PostgreSQL cannot hold are refused before the database sees them.
  p.args = "[1e200000]";
  CHECK(error_text([&] { validate_enqueue(p, {}); }).find("out of PostgreSQL's range") != std::string::npos);
}
