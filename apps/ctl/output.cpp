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
  std::cout << boost::json::serialize(value) << '\n' << std::flush;
}

void print_json_values(OutputFormat format, const std::vector<boost::json::value>& values) {
  if (format == OutputFormat::jsonl) {
    std::string out;
    for (const auto& v : values) {
      out += boost::json::serialize(v);
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
