// The exec handler machinery without a database: the protocol (output tails, side channel, exit
// classification), retry delays, and real child processes started by spawn_process().
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "backoff.hpp"
#include "exec_protocol.hpp"
#include "subprocess.hpp"
#include "taskq/core/error.hpp"

using taskq::worker::HandlerResult;

using taskq::config::BackoffConfig;

using namespace taskq;
using namespace taskq::worker;
using namespace std::chrono_literals;

namespace {

struct Finished {
  ExitStatus status;
  std::string out, err, side;
};

// Pumps a child's pipes with poll() until it has exited and its pipes are at EOF, with a deadline
// that fails the test. Writes `input` to its stdin first (non-blocking, as the worker does).
Finished pump(SpawnedProcess& p, const std::string& input = "{}", std::size_t keep = output_tail_bytes) {
  ::signal(SIGPIPE, SIG_IGN);  // as the worker does: a child that exits without reading is an EPIPE
  OutputTail out(keep), err(keep);
  std::string side;
  std::size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::optional<ExitStatus> status;
  char buf[65536];
  while (!status || p.stdout_r || p.stderr_r || p.side_r) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::vector<pollfd> fds;
    if (p.stdin_w) fds.push_back({p.stdin_w.get(), POLLOUT, 0});
    for (Fd* fd : {&p.stdout_r, &p.stderr_r, &p.side_r})
      if (*fd) fds.push_back({fd->get(), POLLIN, 0});
    if (!status) fds.push_back({p.pidfd.get(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), 100);
    if (p.stdin_w) {
      const ssize_t n = ::write(p.stdin_w.get(), input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (written == input.size() || (n < 0 && errno == EPIPE)) p.stdin_w.reset();
    }
    auto drain = [&](Fd& fd, auto&& sink) {
      for (;;) {
        if (!fd) return;
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) {
          sink(std::string_view(buf, static_cast<std::size_t>(n)));
        } else if (n == 0) {
          fd.reset();
        } else {
          return;  // EAGAIN
        }
      }
    };
    drain(p.stdout_r, [&](std::string_view d) { out.append(d); });
    drain(p.stderr_r, [&](std::string_view d) { err.append(d); });
    drain(p.side_r, [&](std::string_view d) { side.append(d); });
    if (!status) status = try_reap(p.pid);
  }
  return {*status, out.str(), err.str(), side};
}

SpawnOptions sh(const std::string& script) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.env = {{"PATH", "/usr/bin:/bin"}, {"GREETING", "hello"}};
  return o;
}

bool gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

}  // namespace

TEST_CASE("OutputTail keeps the last bytes and counts the dropped ones", "[exec]") {
  OutputTail t(8);
  t.append("abc");
  CHECK(t.str() == "abc");
  t.append("defghijk");
  CHECK(t.str() == "defghijk");
  CHECK(t.dropped() == 3);
  for (int i = 0; i < 100; ++i) t.append("0123456789");
  CHECK(t.str() == "23456789");
  CHECK(t.total() == 1011);
  t.append(std::string(50, 'x') + "tail1234");
  CHECK(t.str() == "tail1234");
}

TEST_CASE("the side channel parses progress, result and snooze lines, across reads", "[exec]") {
  SideChannelParser p;
  std::vector<SideMessage> m;
  p.feed("progress 40 half", m);
  CHECK(m.empty());  // no newline yet
  p.feed(" way\r\nresult {\"a\": [1, 2]}\nsnooze 2.5\n", m);
  REQUIRE(m.size() == 3);
  CHECK(m[0].kind == SideMessage::Kind::progress);
  CHECK(m[0].percent == 40);
  CHECK(m[0].text == "half way");
  CHECK(m[1].kind == SideMessage::Kind::result);
  CHECK(m[1].text == "{\"a\": [1, 2]}");
  CHECK(m[2].kind == SideMessage::Kind::snooze);
  CHECK(m[2].delay == 2500ms);
  p.feed("progress 100", m);
  p.finish(m);  // a last line without newline counts
  REQUIRE(m.size() == 4);
  CHECK(m[3].percent == 100);
  CHECK(p.errors().empty());
}

TEST_CASE("bad side channel lines are reported with their line number and ignored", "[exec]") {
  SideChannelParser p(64);
  std::vector<SideMessage> m;
  p.feed("progress 120\nresult {nope\nsnooze -1\nhello\n" + std::string(100, 'x') + "\nprogress 5\n", m);
  // A result line's text is passed on as it is: whether it is JSON decides the attempt.
  REQUIRE(m.size() == 2);
  CHECK(m[0].kind == SideMessage::Kind::result);
  CHECK(m[0].text == "{nope");
  CHECK(m[0].line == 2);
  CHECK(m[1].percent == 5);
  REQUIRE(p.errors().size() == 4);
  CHECK(p.error_count() == 4);
  CHECK(p.errors()[0] == "side channel line 1: progress must be 0-100, got '120'");
  CHECK(p.errors()[1].find("line 3: snooze") != std::string::npos);
  CHECK(p.errors()[2].find("line 4: unknown message 'hello'") != std::string::npos);
  CHECK(p.errors()[3].find("line 5: longer than 64 bytes") != std::string::npos);
}

TEST_CASE("a flood of bad side channel lines keeps the first few errors and counts the rest", "[exec][bounds]") {
  SideChannelParser p;
  std::vector<SideMessage> m;
  std::string flood;
  for (int i = 0; i < 100000; ++i) flood += "garbage \xff\xfe line " + std::to_string(i) + "\n";
  p.feed(flood, m);
  CHECK(m.empty());
  CHECK(p.error_count() == 100000);
  REQUIRE(p.errors().size() == side_errors_kept);
  CHECK(p.errors()[0] == "side channel line 1: unknown message 'garbage' (expected progress, result or snooze)");
  // Quotes of the handler's bytes are cut short and made valid UTF-8 (they go to the log).
  p = SideChannelParser(1024, 1);
  p.feed("\xe2\x82\xac\xff" + std::string(100, 'y') + "\n", m);
  REQUIRE(p.errors().size() == 1);
  CHECK(p.errors()[0].find("\xef\xbf\xbd") != std::string::npos);
  CHECK(p.errors()[0].find("...'") != std::string::npos);
  CHECK(p.errors()[0].find('\xff') == std::string::npos);
}

TEST_CASE("an output tail never starts inside a UTF-8 character", "[exec]") {
  OutputTail t(4);
  t.append("ab\xe2\x82\xac");  // "ab€": the last 4 bytes start with 'b'
  CHECK(t.str() == "b\xe2\x82\xac");
  t.append("\xe2\x82\xac");  // "€€": the last 4 bytes start inside the first euro sign
  CHECK(t.str() == "\xe2\x82\xac");
  OutputTail whole(16);
  whole.append("\x82\xac ok");  // nothing dropped: kept as written (cleaned later)
  CHECK(whole.str() == "\x82\xac ok");
}

TEST_CASE("exit statuses classify the attempt", "[exec]") {
  ExecFacts f;
  f.status.code = 0;
  f.stdout_all = "  {\"from\": \"stdout\"}\n";
  auto r = classify_exit(f);
  CHECK(r.kind == HandlerResult::Kind::completed);
  CHECK(r.result == std::optional<std::string>("{\"from\": \"stdout\"}"));
  f.result_line = "[1]";
  CHECK(classify_exit(f).result == std::optional<std::string>("[1]"));  // the result line wins
  f.result_line.reset();
  f.stdout_all = "done, 3 files\n";
  CHECK_FALSE(classify_exit(f).result.has_value());  // not JSON: no result
  f.stdout_all = "{\"cut\": ";
  f.stdout_truncated = true;
  CHECK_FALSE(classify_exit(f).result.has_value());

  // A result line that is not JSON fails the attempt, saying where; results are cleaned.
  f = ExecFacts{};
  f.status.code = 0;
  f.result_line = "{nope";
  f.result_line_no = 3;
  r = classify_exit(f);
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message.rfind("result: not valid JSON: ", 0) == 0);
  CHECK(r.message.find("(side channel line 3)") != std::string::npos);
  CHECK_FALSE(r.result.has_value());
  f.result_line = R"({"a": "\u0000", "b": "\ud800"})";
  r = classify_exit(f);
  CHECK(r.kind == HandlerResult::Kind::completed);
  CHECK(r.result == std::optional<std::string>(R"({"a": "", "b": "\ufffd"})"));
  f.result_line.reset();
  f.stdout_all = "\"caf\xc3\" \n";
  CHECK(classify_exit(f).result == std::optional<std::string>("\"caf\xef\xbf\xbd\""));

  f = ExecFacts{};
  f.status.code = 75;
  CHECK(classify_exit(f).kind == HandlerResult::Kind::snoozed);
  CHECK(classify_exit(f).snooze == default_snooze);
  f.snooze_line = 5s;
  CHECK(classify_exit(f).snooze == std::optional<Duration>(5s));

  f = ExecFacts{};
  f.status.code = 65;
  f.stderr_tail = "bad input\n";
  r = classify_exit(f);
  CHECK(r.kind == HandlerResult::Kind::failed);
  CHECK(r.message == "exit status 65 (permanent failure)");
  CHECK(r.stderr_tail == "bad input\n");
  CHECK(r.exit_status == 65);

  f.status.code = 3;
  CHECK(classify_exit(f).kind == HandlerResult::Kind::retry);
  CHECK(classify_exit(f).message == "exit status 3");

  f = ExecFacts{};
  f.status.signal = SIGKILL;
  r = classify_exit(f);
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message == "killed by signal 9 (Killed)");
  CHECK(r.signal == SIGKILL);
}

TEST_CASE("retry delays: exponential with jitter and a cap, or fixed", "[exec]") {
  std::mt19937_64 rng(42);
  for (int attempt = 1; attempt <= 6; ++attempt) {
    const double base = std::pow(attempt, 4);
    const double s = std::chrono::duration<double>(retry_delay({}, attempt, rng)).count();
    CHECK(s >= base * 0.9 - 1e-6);
    CHECK(s <= base * 1.1 + 1e-6);
  }
  CHECK(retry_delay({}, 1000, rng) == max_retry_delay);
  CHECK(retry_delay(BackoffConfig{false, 250ms}, 7, rng) == 250ms);
}

TEST_CASE("spawn: args on stdin, exactly the given environment, its own process group, fd 3", "[exec][spawn]") {
  auto o = sh("cat; echo; env | sort; echo pgid $(cut -d' ' -f5 /proc/$$/stat) pid $$; echo 'progress 7' >&3");
  auto p = spawn_process(o);
  const auto f = pump(p, "{\"x\": 1}");
  CHECK(f.status.code == 0);
  CHECK(f.out.rfind("{\"x\": 1}\n", 0) == 0);
  CHECK(f.out.find("GREETING=hello\n") != std::string::npos);
  CHECK(f.out.find("HOME=") == std::string::npos);  // nothing inherited
  CHECK(f.out.find("pgid " + std::to_string(p.pid) + " pid " + std::to_string(p.pid)) != std::string::npos);
  CHECK(f.side == "progress 7\n");
}

TEST_CASE("spawn: working directory, rlimits, PATH lookup", "[exec][spawn]") {
  auto o = sh("pwd; ulimit -n");
  o.working_dir = "/tmp";
  o.limits.open_files = 64;
  auto p = spawn_process(o);
  auto f = pump(p);
  CHECK(f.out == "/tmp\n64\n");

  SpawnOptions bare;
  bare.argv = {"true"};
  bare.env = {{"PATH", "/nonexistent:/usr/bin:/bin"}};
  auto q = spawn_process(bare);
  CHECK(pump(q).status.code == 0);
}

TEST_CASE("spawn: a program that cannot run is an error naming it, no child is left", "[exec][spawn]") {
  SpawnOptions o;
  o.argv = {"/nonexistent/handler", "--flag"};
  try {
    spawn_process(o);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "cannot run /nonexistent/handler: No such file or directory");
  }
  o = sh("true");
  o.working_dir = "/nonexistent-dir";
  try {
    spawn_process(o);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("working directory /nonexistent-dir") != std::string::npos);
  }
  errno = 0;
  CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);  // nothing to reap
  CHECK(errno == ECHILD);
}

TEST_CASE("spawn: a flood of output is read without blocking and only the tail is kept", "[exec][spawn]") {
  auto p = spawn_process(sh("head -c 10000000 /dev/zero | tr '\\0' a; echo END"));
  const auto f = pump(p);
  CHECK(f.status.code == 0);
  CHECK(f.out.size() == output_tail_bytes);
  CHECK(f.out.substr(f.out.size() - 4) == "END\n");
}

TEST_CASE("spawn: signal_group stops the handler and its children", "[exec][spawn]") {
  auto p = spawn_process(sh("sleep 100 & echo $! >&3; exec sleep 100"));
  // Learn the grandchild's pid from fd 3.
  std::string side;
  char buf[64];
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (side.find('\n') == std::string::npos) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    pollfd pfd{p.side_r.get(), POLLIN, 0};
    ::poll(&pfd, 1, 100);
    const ssize_t n = ::read(p.side_r.get(), buf, sizeof buf);
    if (n > 0) side.append(buf, static_cast<std::size_t>(n));
  }
  const pid_t grandchild = static_cast<pid_t>(std::stol(side));
  signal_group(p.pid, SIGKILL);
  const auto f = pump(p);
  CHECK(f.status.signal == SIGKILL);
  // The grandchild was reparented; it is gone once init reaps it.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!gone(grandchild) && std::chrono::steady_clock::now() < until) {
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string pid, comm, state;
    stat >> pid >> comm >> state;
    if (state == "Z" || state.empty()) break;  // killed, waiting to be reaped by its new parent
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 5);
  }
  std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
  std::string pid, comm, state;
  stat >> pid >> comm >> state;
  CHECK((gone(grandchild) || state == "Z"));
}
