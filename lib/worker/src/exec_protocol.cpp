#include "exec_protocol.hpp"

#include <cmath>
#include <cstring>
#include <string>

#include "taskq/core/utf8.hpp"

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
  const std::string_view kept = std::string_view(buf_).substr(buf_.size() > capacity_ ? buf_.size() - capacity_ : 0);
  // When bytes were dropped before, the first kept ones may continue a character whose start is gone.
  if (dropped_ > 0 || kept.size() < buf_.size()) return std::string(utf8_skip_partial(kept));
  return buf_;
}

std::size_t OutputTail::total() const noexcept {
  return dropped_ + buf_.size();
}

// ---------------------------------------------------------------------------------------------
// Side channel

namespace {

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A quote of handler bytes for a log line: valid UTF-8, at most about 60 bytes.
std::string shorten(std::string_view s) {
  if (s.size() <= 60) return clean_text(s);
  return clean_text_head(s, 57) + "...";
}

}  // namespace

SideChannelParser::SideChannelParser(std::size_t max_line, std::size_t kept) : max_line_(max_line), kept_(kept) {}

template <class Message>
void SideChannelParser::reject(std::size_t line_no, Message&& what) {
  ++error_count_;
  // The message is built only while errors are kept: a flood of bad lines costs a count each.
  if (keeping()) errors_.push_back("side channel line " + std::to_string(line_no) + ": " + what());
}

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
      reject(line_no_, [&] { return "longer than " + std::to_string(max_line_) + " bytes; ignored"; });
      overlong_ = false;
    } else {
      parse_line(partial_, out);
    }
    partial_.clear();
  }
}

void SideChannelParser::finish(std::vector<SideMessage>& out) {
  if (overlong_) {
    reject(line_no_ + 1, [&] { return "longer than " + std::to_string(max_line_) + " bytes; ignored"; });
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
  const auto space = line.find(' ');
  const std::string_view word = line.substr(0, space);
  const std::string_view rest = space == std::string_view::npos ? std::string_view{} : trim(line.substr(space + 1));
  if (word == "progress") {
    const auto sp = rest.find(' ');
    const std::string num(rest.substr(0, sp));
    char* end = nullptr;
    const long pct = num.empty() ? -1 : std::strtol(num.c_str(), &end, 10);
    if (num.empty() || *end != '\0' || pct < 0 || pct > 100) {
      reject(line_no_, [&] { return "progress must be 0-100, got '" + shorten(num) + "'"; });
      return;
    }
    SideMessage m;
    m.kind = SideMessage::Kind::progress;
    m.percent = static_cast<int>(pct);
    m.line = line_no_;
    if (sp != std::string_view::npos) m.text = std::string(trim(rest.substr(sp + 1)));
    out.push_back(std::move(m));
  } else if (word == "result") {
    SideMessage m;
    m.kind = SideMessage::Kind::result;
    m.text = std::string(rest);
    m.line = line_no_;
    out.push_back(std::move(m));
  } else if (word == "snooze") {
    const std::string num(rest);
    char* end = nullptr;
    const double secs = num.empty() ? -1 : std::strtod(num.c_str(), &end);
    if (num.empty() || *end != '\0' || !std::isfinite(secs) || secs < 0) {
      reject(line_no_, [&] { return "snooze needs a number of seconds >= 0, got '" + shorten(num) + "'"; });
      return;
    }
    constexpr double max_secs = 30.0 * 24 * 3600;
    SideMessage m;
    m.kind = SideMessage::Kind::snooze;
    m.delay = Duration{static_cast<std::int64_t>(std::min(secs, max_secs) * 1e6)};
    m.line = line_no_;
    out.push_back(std::move(m));
  } else {
    reject(line_no_, [&] { return "unknown message '" + shorten(word) + "' (expected progress, result or snooze)"; });
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
    std::string error;
    if (facts.result_line) {
      r.result = clean_json(*facts.result_line, error);
      if (!r.result) {
        r.kind = HandlerResult::Kind::retry;
        r.message = "result: " + error + " (side channel line " + std::to_string(facts.result_line_no) + ")";
      }
    } else if (!facts.stdout_truncated) {
      r.result = clean_json(facts.stdout_all, error);  // not JSON: not a result, and that is fine
      if (r.result) {
        const std::string_view body = trim_space(*r.result);
        if (body.size() != r.result->size()) r.result = std::string(body);
      }
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
