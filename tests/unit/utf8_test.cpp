// The sanitizer for text that reaches PostgreSQL from handlers (taskq/core/utf8.hpp): what it
// replaces, removes and keeps, case by case.
#include <catch2/catch.hpp>
#include <string>

#include "taskq/core/utf8.hpp"

using namespace taskq;

namespace {
const std::string fffd = "\xEF\xBF\xBD";
}

TEST_CASE("clean_text replaces each maximal ill-formed subsequence with one U+FFFD and removes NUL", "[utf8]") {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"plain ascii", "plain ascii"},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},  // é € 😀 kept
      {std::string("a\0b", 3), "ab"},                                                              // NUL removed
      {std::string("\0\0", 2), ""},
      {"\xFF", fffd},  // never valid
      {"a\xC0\xAF"
       "b",
       "a" + fffd + fffd + "b"},                        // overlong '/': C0 cannot start a character
      {"\xE0\x80\xAF", fffd + fffd + fffd},             // overlong 3-byte form: E0 needs A0..BF next
      {"\xED\xA0\x80", fffd + fffd + fffd},             // an encoded surrogate (U+D800)
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
      {"\xE2\x82", fffd},                               // cut short at the end: one replacement
      {"\xE2\x82x", fffd + "x"},                        // cut short before ASCII
      {"\xF0\x9F\x98", fffd},                           // a 4-byte character missing its last byte
      {"\x80\x80", fffd + fffd},                        // stray continuation bytes, one each
      {"\xC3\xA9\xA9", "\xC3\xA9" + fffd},              // a continuation byte too many
  };
  for (const auto& c : cases) {
    INFO("input bytes: " << c.in.size());
    CHECK(clean_text(c.in) == c.out);
    CHECK(valid_utf8(clean_text(c.in)));
  }
  CHECK(valid_utf8("caf\xC3\xA9"));
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));
  CHECK_FALSE(valid_utf8("\xE2\x82"));
}

TEST_CASE("utf8_head and utf8_tail cut on character boundaries", "[utf8]") {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";  // a é € 😀 z: 1+2+3+4+1 bytes
  CHECK(utf8_head(s, 100) == s);
  CHECK(utf8_head(s, 1) == "a");
  CHECK(utf8_head(s, 2) == "a");  // would cut é
  CHECK(utf8_head(s, 3) == "a\xC3\xA9");
  CHECK(utf8_head(s, 5) == "a\xC3\xA9");              // would cut €
  CHECK(utf8_head(s, 9) == "a\xC3\xA9\xE2\x82\xAC");  // would cut 😀 after 3 of its 4 bytes
  CHECK(utf8_head(s, 0).empty());
  CHECK(utf8_head("\xF0\x9F\x98\x80", 2).empty());

  CHECK(utf8_tail(s, 100) == s);
  CHECK(utf8_tail(s, 1) == "z");
  CHECK(utf8_tail(s, 4) == "z");  // would start inside 😀
  CHECK(utf8_tail(s, 5) == "\xF0\x9F\x98\x80z");
  CHECK(utf8_tail(s, 7) == "\xF0\x9F\x98\x80z");  // would start inside €
  CHECK(utf8_tail(s, 8) == "\xE2\x82\xAC\xF0\x9F\x98\x80z");
  // Not UTF-8 at all: at most 3 bytes are skipped, the rest is for clean_text.
  CHECK(utf8_tail("\x80\x80\x80\x80\x80x", 5) == "\x80x");

  CHECK(clean_text_head("ab\xC3\xA9", 3) == "ab");
  CHECK(clean_text_head(std::string("a\0\xFF", 3), 10) == "a" + fffd);
}

TEST_CASE("clean_json fixes strings (NUL, lone surrogates, bad bytes) and keeps everything else", "[utf8]") {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {R"({"a": [1, 2.50, -0, 1e400, 12345678901234567890123]})",
       R"({"a": [1, 2.50, -0, 1e400, 12345678901234567890123]})"},  // numbers byte for byte
      {R"({"a":"\u0000"})", R"({"a":""})"},
      {R"({"a\u0000b":"x\u0000y"})", R"({"ab":"xy"})"},  // keys too
      {R"({"a":"\ud800"})", R"({"a":"\ufffd"})"},
      {R"({"a":"\uDBFFz"})", R"({"a":"\ufffdz"})"},
      {R"({"a":"\udc00"})", R"({"a":"\ufffd"})"},              // a low surrogate alone
      {R"({"a":"\udc00\ud800"})", R"({"a":"\ufffd\ufffd"})"},  // in the wrong order
      {R"({"a":"\ud83d\ude00"})", R"({"a":"\ud83d\ude00"})"},  // a pair is one character: kept
      {R"({"a":"\ud800\u0000"})", R"({"a":"\ufffd"})"},
      {"{\"a\":\"\xFF\xC3\xA9\"}", "{\"a\":\"" + fffd + "\xC3\xA9\"}"},
      {R"(["\\u0000", "\"\u0041"])", R"(["\\u0000", "\"\u0041"])"},  // an escaped backslash is not an escape
      {"  \"x\"\n", "  \"x\"\n"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    std::string error;
    const auto out = clean_json(c.in, error);
    CHECK(error.empty());
    REQUIRE(out.has_value());
    CHECK(*out == c.out);
  }
}

TEST_CASE("clean_json refuses what is not exactly one JSON value, saying what and where", "[utf8]") {
  struct Case {
    std::string in, error;
  };
  const Case cases[] = {
      {"", "empty"},
      {" \n\t", "empty"},
      {"{\"a\": ", "not valid JSON: "},
      {"not json", "not valid JSON: "},
      {"{} {}", "more than one value (extra data at byte 4)"},
      {"[1,]", "at byte 4"},
      {std::string("\"a\0b\"", 5), "not valid JSON: "},  // a raw control character in a string
      {"\"\\u00zz\"", "not valid JSON: "},
      {"{\"a\": \xFF}", "not valid JSON: "},  // not in a string: not JSON
      {std::string(600, '[') + std::string(600, ']'), "nested deeper than 512 levels"},
  };
  for (const auto& c : cases) {
    INFO(c.in.substr(0, 40));
    std::string error;
    CHECK_FALSE(clean_json(c.in, error).has_value());
    CHECK(error.find(c.error) != std::string::npos);
  }
  std::string error;
  CHECK(clean_json(std::string(500, '[') + std::string(500, ']'), error).has_value());
}

TEST_CASE("clean_text_head stays within its size even when replacements grow the text", "[utf8]") {
  const std::string bad(10, '\xff');  // 10 bytes become 10 replacement characters, 30 bytes
  const auto out = clean_text_head(bad, 10);
  CHECK(out == fffd + fffd + fffd);
  CHECK(out.size() <= 10);
}
