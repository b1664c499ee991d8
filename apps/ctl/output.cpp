#include "output.hpp"

#include <boost/json/serialize.hpp>
#include <iostream>

#include "taskq/core/printable.hpp"

namespace taskq::ctl {
namespace {

// Display width of UTF-8 text, counting code points (good enough for names and states).
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

// Serialized JSON with DEL and the C1 controls (U+0080 to U+009F, which some terminals act on)
// escaped as \u007f .. \u009f as well: Boost.JSON escapes only C0. The same value, and nothing
// a terminal acts on. Outside strings JSON text is ASCII, so these bytes are inside strings.
std::string terminal_safe(std::string json) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto c = static_cast<unsigned char>(json[i]);
    const auto next = i + 1 < json.size() ? static_cast<unsigned char>(json[i + 1]) : 0;
    if (c == 0x7F || (c == 0xC2 && next >= 0x80 && next <= 0x9F)) {
      const unsigned code = c == 0x7F ? 0x7F : next;
      out.append("\\u00").push_back(hex[code >> 4]);
      out.push_back(hex[code & 0xF]);
      if (c == 0xC2) ++i;
    } else {
      out.push_back(json[i]);
    }
  }
  return out;
}

}  // namespace

void Table::print() const {
  // Cells may hold text from handlers and other hosts: terminal escapes are shown, never acted on.
  std::vector<std::vector<std::string>> rows;
  rows.reserve(rows_.size());
  for (const auto& row : rows_) {
    auto& cells = rows.emplace_back();
    for (const auto& cell : row) cells.push_back(printable(cell));
  }
  std::vector<std::size_t> widths(headers_.size(), 0);
  for (std::size_t i = 0; i < headers_.size(); ++i) widths[i] = width(headers_[i]);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out.append(widths[i] - width(cells[i]) + 2, ' ');
    }
    out += '\n';
  };
  line(headers_);
  for (const auto& row : rows) line(row);
  std::cout << out << std::flush;
}

void print_json(const boost::json::value& value) {
  std::cout << terminal_safe(boost::json::serialize(value)) << '\n' << std::flush;
}

void print_json_values(OutputFormat format, const std::vector<boost::json::value>& values) {
  if (format == OutputFormat::jsonl) {
    std::string out;
    for (const auto& v : values) {
      out += terminal_safe(boost::json::serialize(v));
      out += '\n';
    }
    std::cout << out << std::flush;
    return;
  }
  boost::json::array arr(values.begin(), values.end());
  print_json(arr);
}

std::string relative_time(Timestamp t, Timestamp now) {
  using namespace std::chrono;
  const bool future = t > now;
  const auto d = duration_cast<seconds>(future ? t - now : now - t).count();
  std::string amount;
  if (d < 60)
    amount = std::to_string(d) + "s";
  else if (d < 3600)
    amount = std::to_string(d / 60) + "m";
  else if (d < 86400)
    amount = std::to_string(d / 3600) + "h";
  else
    amount = std::to_string(d / 86400) + "d";
  return future ? "in " + amount : amount + " ago";
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  if (items.empty()) return "-";
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

}  // namespace taskq::ctl

namespace taskq::ctl {
std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}
}  // namespace taskq::ctl
