// Hostile exec handlers against the real taskq-workerd: output that is not UTF-8, results that
// PostgreSQL would refuse or that are not JSON, a flood of malformed side-channel lines. Each job
// ends in its right state, the other jobs of the same worker complete, and the worker's log and
// memory stay small.
#include <fstream>
#include <string>

#include "system_helpers.hpp"
#include "workerd_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;

// The worker's peak resident memory (VmHWM), in KiB.
long peak_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

std::size_t lines_with(const std::string& log, const std::string& needle) {
  std::size_t n = 0;
  for (const auto& l : lines_of(log))
    if (contains(l, needle)) ++n;
  return n;
}

const std::string fffd = "\xef\xbf\xbd";

}  // namespace

TEST_CASE("workerd: hostile handler output is data: each job ends right, the rest of the worker is unharmed",
          "[workerd][exec][hostile]") {
  TestSchema db;
  // badstderr writes 90017 bytes to stderr: 3-byte lines "é\n", then a byte that is not UTF-8 and
  // a NUL; the last 64 KiB start with the second byte of an "é".
  Workerd w(db, R"(
[kinds.badstderr]
exec = ["/bin/sh", "-c", '''yes é | head -c 90003 >&2; printf '\377 nul:\000:end' >&2; exit 3''']
max_attempts = 1
[kinds.nulresult]
exec = ["/bin/sh", "-c", '''printf '%s\n' 'result {"a":"\u0000"}' >&3''']
[kinds.surrogate]
exec = ["/bin/sh", "-c", '''printf '%s\n' 'result {"a":"\ud800","b":"\udc00"}' >&3''']
[kinds.notjson]
exec = ["/bin/sh", "-c", '''printf '%s\n' 'result {nope' >&3''']
max_attempts = 1
[kinds.bignum]
exec = ["/bin/sh", "-c", '''printf '%s\n' 'result [1e1000000]' >&3''']
max_attempts = 1
[kinds.flood]
exec = ["/bin/sh", "-c", '''timeout 1.5 yes 'garbage line' >&3; exit 0''']
[kinds.ok]
exec = ["/bin/true"]
)");
  const auto flood = enqueue(db, {"flood"});
  REQUIRE_STATE(db, flood, "running", w);
  const auto bad_stderr = enqueue(db, {"badstderr"});
  const auto nul = enqueue(db, {"nulresult"});
  const auto surrogate = enqueue(db, {"surrogate"});
  const auto not_json = enqueue(db, {"notjson"});
  const auto bignum = enqueue(db, {"bignum"});
  std::vector<long long> ordinary;
  for (int i = 0; i < 5; ++i) ordinary.push_back(enqueue(db, {"ok"}));
  for (int i = 0; i < 5; ++i) ordinary.push_back(enqueue(db, {"noop"}));

  for (const auto id : ordinary) REQUIRE_STATE(db, id, "completed", w);

  REQUIRE_STATE(db, bad_stderr, "failed", w);
  const auto tail = job_field(db, bad_stderr, "errors->0->>'stderr_tail'");
  CHECK(tail.size() == 64 * 1024 - 1 + 2 - 1);  // the broken byte dropped, \377 became 3 bytes, the NUL none
  CHECK(tail.rfind("\n\xc3\xa9\n", 0) == 0);    // cut after the broken character, not replaced
  CHECK(tail.substr(tail.size() - fffd.size() - 9) == fffd + " nul::end");

  REQUIRE_STATE(db, nul, "completed", w);
  CHECK(job_field(db, nul, "result::text") == R"({"a": ""})");
  REQUIRE_STATE(db, surrogate, "completed", w);
  CHECK(job_field(db, surrogate, "result->>'a'") == fffd);
  CHECK(job_field(db, surrogate, "result->>'b'") == fffd);

  REQUIRE_STATE(db, not_json, "failed", w);
  const auto not_json_msg = job_field(db, not_json, "errors->0->>'message'");
  CHECK(not_json_msg.rfind("result: not valid JSON: ", 0) == 0);
  CHECK(contains(not_json_msg, "(side channel line 1)"));
  // JSON, but beyond PostgreSQL's numeric range: refused, isolated by the completer.
  REQUIRE_STATE(db, bignum, "failed", w);
  CHECK(job_field(db, bignum, "errors->0->>'message'") ==
        "result: refused by PostgreSQL: value overflows numeric format");

  REQUIRE_STATE(db, flood, "completed", w);
  REQUIRE(w.proc().running());
  const auto log = w.proc().log();
  INFO("--- workerd log (" << log.size() << " bytes) ---\n" << log.substr(0, 20000));
  // A few lines about the flood's malformed lines, then one saying how many more there were.
  const std::string flood_label = "job " + std::to_string(flood) + " (";
  const std::string flood_trace = job_field(db, flood, "substr(traceparent, 4, 32)");
  const auto flood_lines =
      lines_with(log, flood_label + "queue default, kind flood, trace_id=" + flood_trace + "): side channel line");
  CHECK(flood_lines >= 1);
  CHECK(flood_lines <= 5);
  CHECK(lines_with(log, "more log line(s) about this run suppressed") == 1);
  CHECK(log.size() < 64 * 1024);
  const long rss = peak_rss_kib(w.proc().pid());
  INFO("peak RSS " << rss << " KiB");
  CHECK(rss > 0);
  CHECK(rss < 64 * 1024);
}

}  // namespace taskq::systest
