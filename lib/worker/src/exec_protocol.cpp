#include "exec_protocol.hpp"

#include <boost/json/parse.hpp>
#include <cmath>
#include <cstring>
#include <string>

namespace taskq::worker {

// ---------------------------------------------------------------------------------------------
// OutputTail: a string that drops its front half when it would grow past twice the capacity, so
// appends stay amortised O(n) and str() returns the last `capacity` bytes.

OutputTail::OutputTail(std::size_t capacity) : capacity_(capacity) {}

void OutputTail::append(std::string_view data) {
  if (data.size() >= capacity_) {
    dropped_ += buf_.size() + (data.size() - capacity_);
    buf_.assign(data.substr(data.size() - capacity_));
    return;
  }
  buf_.append(data);
  if (buf_.size() > 2 * capacity_) {
    const std::size_t cut = buf_.size() - capacity_;
    buf_.erase(0, cut);
    dropped_ += cut;
  }
}

std::string OutputTail::str() const {
  if (buf_.size() <= capacity_) return buf_;
  return buf_.substr(buf_.size() - capacity_);
}

std::size_t OutputTail::total() const noexcept {
  return dropped_ + buf_.size();
}

// ---------------------------------------------------------------------------------------------
// Side channel

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_json(std::string_view text) {
  boost::system::error_code ec;
  (void)boost::json::parse(text, ec);
  return !ec;
}

std::string shorten(std::string_view s) {
  if (s.size() <= 60) return std::string(s);
  return std::string(s.substr(0, 57)) + "...";
}

}  // namespace

SideChannelParser::SideChannelParser(std::size_t max_line) : max_line_(max_line) {}

void SideChannelParser::feed(std::string_view data, std::vector<SideMessage>& out) {
  while (!data.empty()) {
    const auto nl = data.find('\n');
    const std::string_view piece = data.substr(0, nl);
    if (!overlong_) {
      if (partial_.size() + piece.size() > max_line_) {
        overlong_ = true;
        partial_.clear();
      } else {
        partial_.append(piece);
      }
    }
    if (nl == std::string_view::npos) return;
    data.remove_prefix(nl + 1);
    ++line_no_;
    if (overlong_) {
      errors_.push_back("side channel line " + std::to_string(line_no_) + ": longer than " + std::to_string(max_line_) +
                        " bytes; ignored");
      overlong_ = false;
    } else {
      parse_line(partial_, out);
    }
    partial_.clear();
  }
}

void SideChannelParser::finish(std::vector<SideMessage>& out) {
  if (overlong_) {
    errors_.push_back("side channel line " + std::to_string(line_no_ + 1) + ": longer than " +
                      std::to_string(max_line_) + " bytes; ignored");
  } else if (!trim(partial_).empty()) {
    ++line_no_;
    parse_line(partial_, out);
  }
  partial_.clear();
  overlong_ = false;
}

void SideChannelParser::parse_line(std::string_view raw, std::vector<SideMessage>& out) {
  const std::string_view line = trim(raw);
  if (line.empty()) return;
  const std::string where = "side channel line " + std::to_string(line_no_) + ": ";
  const auto space = line.find(' ');
  const std::string_view word = line.substr(0, space);
  const std::string_view rest = space == std::string_view::npos ? std::string_view{} : trim(line.substr(space + 1));
  if (word == "progress") {
    const auto sp = rest.find(' ');
    const std::string num(rest.substr(0, sp));
    char* end = nullptr;
    const long pct = num.empty() ? -1 : std::strtol(num.c_str(), &end, 10);
    if (num.empty() || *end != '\0' || pct < 0 || pct > 100) {
      errors_.push_back(where + "progress must be 0-100, got '" + shorten(num) + "'");
      return;
    }
    SideMessage m;
    m.kind = SideMessage::Kind::progress;
    m.percent = static_cast<int>(pct);
    if (sp != std::string_view::npos) m.text = std::string(trim(rest.substr(sp + 1)));
    out.push_back(std::move(m));
  } else if (word == "result") {
    if (rest.empty() || !is_json(rest)) {
      errors_.push_back(where + "result is not valid JSON: '" + shorten(rest) + "'");
      return;
    }
    SideMessage m;
    m.kind = SideMessage::Kind::result;
    m.text = std::string(rest);
    out.push_back(std::move(m));
  } else if (word == "snooze") {
    const std::string num(rest);
    char* end = nullptr;
    const double secs = num.empty() ? -1 : std::strtod(num.c_str(), &end);
    if (num.empty() || *end != '\0' || !std::isfinite(secs) || secs < 0) {
      errors_.push_back(where + "snooze needs a number of seconds >= 0, got '" + shorten(num) + "'");
      return;
    }
    constexpr double max_secs = 30.0 * 24 * 3600;
    SideMessage m;
    m.kind = SideMessage::Kind::snooze;
    m.delay = Duration{static_cast<std::int64_t>(std::min(secs, max_secs) * 1e6)};
    out.push_back(std::move(m));
  } else {
    errors_.push_back(where + "unknown message '" + shorten(word) + "' (expected progress, result or snooze)");
  }
}

// ---------------------------------------------------------------------------------------------
// Exit classification

HandlerResult classify_exit(const ExecFacts& facts) {
  HandlerResult r;
  r.exit_status = facts.status.code;
  r.signal = facts.status.signal;
  r.stderr_tail = facts.stderr_tail;
  if (facts.status.signal) {
    const int sig = *facts.status.signal;
    const char* name = sigdescr_np(sig);
    r.kind = HandlerResult::Kind::retry;
    r.message = "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "") +
                (facts.status.core_dumped ? ", core dumped" : "");
    return r;
  }
  const int code = facts.status.code.value_or(-1);
  if (code == 0) {
    r.kind = HandlerResult::Kind::completed;
    if (facts.result_line) {
      r.result = facts.result_line;
    } else if (!facts.stdout_truncated) {
      const std::string_view out = trim(facts.stdout_all);
      std::string_view body = out;
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.remove_suffix(1);
      while (!body.empty() && (body.front() == '\n' || body.front() == '\r' || body.front() == ' '))
        body.remove_prefix(1);
      if (!body.empty() && is_json(body)) r.result = std::string(body);
    }
    return r;
  }
  if (code == exit_snooze) {
    r.kind = HandlerResult::Kind::snoozed;
    r.snooze = facts.snooze_line.value_or(default_snooze);
    return r;
  }
  if (code == exit_permanent) {
    r.kind = HandlerResult::Kind::failed;
    r.message = "exit status 65 (permanent failure)";
    return r;
  }
  r.kind = HandlerResult::Kind::retry;
  r.message = "exit status " + std::to_string(code);
  return r;
}

}  // namespace taskq::worker
