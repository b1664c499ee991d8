#include "taskq/core/jsonb_size.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "taskq/core/error.hpp"

namespace taskq {
namespace {

// A recursive walk over valid JSON text, returning the size of each value as jsonb writes it.
class Measure {
 public:
  Measure(std::string_view what, std::string_view text) : what_(what), s_(text) {}

  std::size_t value(int depth) {
    if (depth > 10000) fail("nested too deeply");
    skip_space();
    if (pos_ >= s_.size()) fail("unexpected end");
    switch (s_[pos_]) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string(nullptr);
      case 't':
        pos_ += 4;
        return 4;
      case 'f':
        pos_ += 5;
        return 5;
      case 'n':
        pos_ += 4;
        return 4;
      default:
        return number();
    }
  }

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  [[nodiscard]] bool at_end() const { return pos_ == s_.size(); }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(Errc::invalid_input, std::string(what_) + ": " + why);
  }

  // {"k": v, ...}: each key once (the last value wins), ", " between members, ": " in each.
  std::size_t object(int depth) {
    ++pos_;                                                    // {
    std::vector<std::pair<std::string, std::size_t>> members;  // decoded key -> size of `"k": v`
    skip_space();
    if (s_[pos_] == '}') {
      ++pos_;
      return 2;
    }
    for (;;) {
      skip_space();
      std::string key;
      const std::size_t key_size = string(&key);
      skip_space();
      ++pos_;  // :
      const std::size_t member = key_size + 2 + value(depth + 1);
      auto same = std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.first == key; });
      if (same != members.end())
        same->second = member;
      else
        members.emplace_back(std::move(key), member);
      skip_space();
      if (s_[pos_++] == '}') break;  // else ','
    }
    std::size_t total = 2 + 2 * (members.size() - 1);
    for (const auto& m : members) total += m.second;
    return total;
  }

  std::size_t array(int depth) {
    ++pos_;  // [
    skip_space();
    if (s_[pos_] == ']') {
      ++pos_;
      return 2;
    }
    std::size_t total = 2, items = 0;
    for (;;) {
      total += value(depth + 1);
      ++items;
      skip_space();
      if (s_[pos_++] == ']') break;  // else ','
    }
    return total + 2 * (items - 1);
  }

  static unsigned hex4(std::string_view h) {
    unsigned v = 0;
    for (char c : h) v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    return v;
  }

  // Size of one code point as jsonb writes it (escaped when below 0x20, else UTF-8).
  static std::size_t written(unsigned cp) {
    if (cp == '"' || cp == '\\' || cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' || cp == '\t') return 2;
    if (cp < 0x20) return 6;
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }

  // A string literal; its decoded text goes to `decoded` when given (object keys).
  std::size_t string(std::string* decoded) {
    ++pos_;  // "
    std::size_t size = 2;
    for (;;) {
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return size;
      }
      if (c != '\\') {
        // Raw bytes (UTF-8 or ASCII) are written as they are, except control characters.
        const auto u = static_cast<unsigned char>(c);
        size += u < 0x80 ? written(u) : 1;
        if (decoded) decoded->push_back(c);
        ++pos_;
        continue;
      }
      const char e = s_[pos_ + 1];
      pos_ += 2;
      unsigned cp = 0;
      switch (e) {
        case 'b':
          cp = '\b';
          break;
        case 'f':
          cp = '\f';
          break;
        case 'n':
          cp = '\n';
          break;
        case 'r':
          cp = '\r';
          break;
        case 't':
          cp = '\t';
          break;
        case 'u':
          cp = hex4(s_.substr(pos_, 4));
          pos_ += 4;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
            const unsigned low = hex4(s_.substr(pos_ + 2, 4));
            if (low >= 0xDC00 && low < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              pos_ += 6;
            }
          }
          break;
        default:
          cp = static_cast<unsigned char>(e);  // '"', '\\', '/'
      }
      size += written(cp);
      if (decoded) append_utf8(*decoded, cp);
    }
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // -?digits[.digits][(e|E)[+-]digits], written as PostgreSQL's numeric writes it: the integer
  // part without leading zeros (at least "0"), then as many fraction digits as the literal had
  // after its point minus its exponent (none when that is not positive).
  std::size_t number() {
    const std::size_t start = pos_;
    const bool negative = s_[pos_] == '-';
    if (negative) ++pos_;
    std::size_t int_digits = 0, frac_digits = 0;
    long long first_nonzero = -1;  // index among all mantissa digits
    std::size_t index = 0;
    auto digits = [&](std::size_t& count) {
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (first_nonzero < 0 && s_[pos_] != '0') first_nonzero = static_cast<long long>(index);
        ++index;
        ++count;
        ++pos_;
      }
    };
    digits(int_digits);
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      digits(frac_digits);
    }
    long long exponent = 0;
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      bool neg_exp = false;
      if (s_[pos_] == '+' || s_[pos_] == '-') neg_exp = s_[pos_++] == '-';
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (exponent < 1000000000) exponent = exponent * 10 + (s_[pos_] - '0');
        ++pos_;
      }
      if (neg_exp) exponent = -exponent;
    }
    const long long scale = std::max(0LL, static_cast<long long>(frac_digits) - exponent);
    // Decimal position of the leading digit: 0 for units, 1 for tens, -1 for tenths.
    const long long lead = first_nonzero < 0 ? -1 : static_cast<long long>(int_digits) - 1 - first_nonzero + exponent;
    const long long whole = lead < 0 ? 1 : lead + 1;
    if (static_cast<unsigned long long>(scale) > jsonb_max_fraction_digits ||
        (lead >= 0 && static_cast<unsigned long long>(whole) > jsonb_max_integer_digits))
      fail("the number " + std::string(s_.substr(start, std::min<std::size_t>(pos_ - start, 40))) +
           (pos_ - start > 40 ? "..." : "") + " is out of PostgreSQL's range (at most " +
           std::to_string(jsonb_max_integer_digits) + " digits before the decimal point and " +
           std::to_string(jsonb_max_fraction_digits) + " after)");
    return (negative && first_nonzero >= 0 ? 1 : 0) + static_cast<std::size_t>(whole) +
           (scale > 0 ? 1 + static_cast<std::size_t>(scale) : 0);
  }

  std::string_view what_;
  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

std::size_t jsonb_text_size(std::string_view what, std::string_view json) {
  Measure m(what, json);
  const std::size_t size = m.value(0);
  m.skip_space();
  if (!m.at_end()) throw Error(Errc::invalid_input, std::string(what) + ": unexpected text after the JSON value");
  return size;
}

}  // namespace taskq
