// jsonb_text_size() against PostgreSQL itself: for each JSON text, the size computed without a
// database equals the length of what PostgreSQL stores and gives back; and the args limit applies
// to that size everywhere args enter (here the C++ Client, one job and a stream).
#include <catch2/catch.hpp>
#include <random>
#include <sstream>

#include "taskq/core/error.hpp"
#include "taskq/core/jsonb_size.hpp"
#include "taskq/queue/client.hpp"
#include "test_db.hpp"

using taskq::queue::Client;

using namespace taskq;
using taskq::test::TestSchema;

namespace {

// PostgreSQL's own answer, the text passed as a bound-free literal (dollar quoting).
std::string stored_length(const TestSchema& db, const std::string& json) {
  return db.scalar("SELECT octet_length($json$" + json + "$json$::jsonb::text)");
}

std::string random_json(std::mt19937& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  static const char* numbers[] = {"0",     "-0",     "1",      "-12.50", "1e3",       "1E+3",  "2.5e-3",
                                  "0.001", "100e-2", "0.00e5", "-7.0e1", "123456789", "1e-20", "9.99E20"};
  static const char* strings[] = {R"("")",
                                  R"("a b")",
                                  R"("\u00e9")",
                                  R"("\/\\\"")",
                                  R"("\u001f\t\n")",
                                  "\"\xc3\xa9t\xc3\xa9\"",
                                  R"("\ud83d\ude00")",
                                  "\"\x7f\""};
  switch (depth > 3 ? pick(3) : pick(5)) {
    case 0:
      return numbers[pick(std::size(numbers))];
    case 1:
      return strings[pick(std::size(strings))];
    case 2:
      return pick(2) ? "true" : "null";
    case 3: {
      std::string a = "[";
      for (int i = 0, n = pick(4); i < n; ++i) a += (i ? " , " : "") + random_json(rng, depth + 1);
      return a + "]";
    }
    default: {
      static const char* keys[] = {R"("a")", R"("b")", R"("\u0061")", R"("long key")", R"("")"};
      std::string o = "{ ";
      for (int i = 0, n = pick(4); i < n; ++i)
        o += std::string(i ? ",\n" : "") + keys[pick(std::size(keys))] + ":" + random_json(rng, depth + 1);
      return o + "}";
    }
  }
}

}  // namespace

TEST_CASE("jsonb_text_size equals the length PostgreSQL stores", "[jsonb]") {
  TestSchema db;
  const std::vector<std::string> cases = {"1e300",
                                          "1E+300",
                                          "-1e300",
                                          "1e-300",
                                          "1.5e-300",
                                          "-0",
                                          "-0.0",
                                          "0.00e3",
                                          "0e-100",
                                          "1.50",
                                          "100e-2",
                                          "0.001e2",
                                          "12.34e1",
                                          "-1.5E+3",
                                          "123.456e-1",
                                          "0.0000",
                                          "1e131071",
                                          "1e-16383",
                                          R"({"a":1,"a":[1,2,{}]})",
                                          R"({"b":"\u00e9\/\t","a":2,"aa":[ ]})",
                                          R"("\u0001\b\f\n\r\t\"\\")",
                                          R"(["\ud83d\ude00", "x\u007fy"])",
                                          R"({"k": {"k": {"k": 1e5}}, "k": null})",
                                          "  [ 1 , 2 ]  ",
                                          R"({"":""})",
                                          "true",
                                          "null",
                                          "[[],{}]"};
  for (const auto& c : cases) {
    INFO(c);
    CHECK(std::to_string(jsonb_text_size("args", c)) == stored_length(db, c));
  }
  std::mt19937 rng(20261129);
  for (int i = 0; i < 200; ++i) {
    const std::string c = random_json(rng, 0);
    INFO(c);
    CHECK(std::to_string(jsonb_text_size("args", c)) == stored_length(db, c));
  }
}

TEST_CASE("numbers PostgreSQL cannot store are refused before the database sees them", "[jsonb]") {
  for (const std::string c : {"1e131072", "-12e131071", "1e-16384", "0e-20000", "[1, 1e999999999999]"}) {
    INFO(c);
    try {
      jsonb_text_size("args", c);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_input);
      CHECK(std::string(e.what()).rfind("args: the number ", 0) == 0);
      CHECK(std::string(e.what()).find("out of PostgreSQL's range") != std::string::npos);
    }
  }
}

TEST_CASE("jobs.max_args_bytes limits the args as stored, in one enqueue and in a stream", "[jsonb][queue]") {
  TestSchema db;
  Client client(db.open(), EnqueueLimits{100});
  EnqueueParams p;
  p.kind = "k";
  p.args = "[1e300]";  // 7 bytes of text, 303 stored
  try {
    client.enqueue(p);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    CHECK(std::string(e.what()).rfind("args: 303 bytes as stored is over the limit of 100 bytes", 0) == 0);
  }
  p.args = "[1e90]";  // 93 stored: fits
  CHECK(client.enqueue(p).job.args == "[1" + std::string(90, '0') + "]");
  std::istringstream lines("{\"kind\":\"k\",\"args\":{\"n\":2}}\n{\"kind\":\"k\",\"args\":{\"n\":1e300}}\n");
  try {
    client.enqueue_jsonl(lines, "stdin");
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).rfind("stdin:2: args: 308 bytes as stored is over the limit", 0) == 0);
  }
  CHECK(db.scalar("SELECT count(*) FROM jobs") == "1");  // nothing of the stream was enqueued
}
