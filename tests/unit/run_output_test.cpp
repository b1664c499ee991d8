// What a handler reports made into data PostgreSQL accepts (run_output.hpp): messages, stderr
// tails, results and progress cleaned and bounded; the per-run log budget.
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "run_output.hpp"
#include "taskq/core/utf8.hpp"

using taskq::worker::HandlerResult;

using namespace taskq;
using namespace taskq::worker;

namespace {
const std::string fffd = "\xEF\xBF\xBD";
}

TEST_CASE("tidy_result cleans the message and the stderr tail, and cuts long messages", "[exec][output]") {
  HandlerResult r;
  r.kind = HandlerResult::Kind::retry;
  r.message = std::string("bad \xff\0byte", 10);
  r.stderr_tail = std::string("\x82\xac tail \0end", 12);
  tidy_result(r);
  CHECK(r.message == "bad " + fffd + "byte");
  CHECK(r.stderr_tail == fffd + fffd + " tail end");
  r.message = std::string(max_message_bytes - 1, 'x') + "\xe2\x82\xac";  // the euro sign would cross the cut
  tidy_result(r);
  CHECK(r.message == std::string(max_message_bytes - 1, 'x'));
}

TEST_CASE("tidy_result: a result that is not JSON fails a completed attempt with result: ...", "[exec][output]") {
  HandlerResult r;
  r.result = "{\"open\": ";
  tidy_result(r);
  CHECK(r.kind == HandlerResult::Kind::retry);
  CHECK(r.message.rfind("result: not valid JSON: ", 0) == 0);
  CHECK_FALSE(r.result.has_value());

  HandlerResult empty;
  empty.result = "";
  tidy_result(empty);
  CHECK(empty.message == "result: empty");

  HandlerResult ok;
  ok.result = R"(["\u0000x", "\udc00"])";
  tidy_result(ok);
  CHECK(ok.kind == HandlerResult::Kind::completed);
  CHECK(ok.result == std::optional<std::string>(R"(["x", "\ufffd"])"));
}

TEST_CASE("error entries and progress values are valid JSON of clean text", "[exec][output]") {
  HandlerResult r;
  r.kind = HandlerResult::Kind::retry;
  r.message = std::string("nul\0 and \xc3", 10);
  r.exit_status = 3;
  r.stderr_tail = "oops\n";
  tidy_result(r);
  const auto entry = error_entry(2, r, Timestamp{});
  CHECK(valid_utf8(entry));
  CHECK(entry.find("\\u0000") == std::string::npos);
  const auto v = boost::json::parse(entry).as_object();
  CHECK(v.at("attempt").as_int64() == 2);
  CHECK(v.at("message").as_string() == "nul and " + fffd);
  CHECK(v.at("exit_status").as_int64() == 3);
  CHECK(v.at("stderr_tail").as_string() == "oops\n");

  const auto p = progress_json(40, std::string("half\0way \xff", 10) + std::string(5000, 'm'), Timestamp{});
  const auto o = boost::json::parse(p).as_object();
  CHECK(o.at("percent").as_int64() == 40);
  const std::string msg(o.at("message").as_string());
  CHECK(msg.rfind("halfway " + fffd, 0) == 0);
  CHECK(msg.size() <= max_progress_message_bytes);
  CHECK(boost::json::parse(progress_json(7, "", Timestamp{})).as_object().if_contains("message") == nullptr);
}

TEST_CASE("a run's log budget lets a few lines through and counts the rest", "[exec][output][bounds]") {
  LogBudget log(3);
  int written = 0;
  for (int i = 0; i < 1000; ++i)
    if (log.take()) ++written;
  CHECK(written == 3);
  CHECK(log.suppressed() == 997);
  log.add_suppressed(5);
  CHECK(log.suppressed() == 1002);
}
