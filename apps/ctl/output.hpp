#pragma once
// Printing data on stdout: aligned tables for people, JSON (one document) or JSON Lines (one
// object per line) for scripts.
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "context.hpp"
#include "taskq/core/job.hpp"

namespace taskq::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print() const;  // to stdout
  [[nodiscard]] bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

/// Prints values as a JSON array (json) or one per line (jsonl).
void print_json_values(OutputFormat format, const std::vector<boost::json::value>& values);
void print_json(const boost::json::value& value);

/// "3s ago", "in 5m", for tables.
std::string relative_time(Timestamp t, Timestamp now);
/// "a,b" or "-".
std::string join(const std::vector<std::string>& items, const char* sep = ",");

}  // namespace taskq::ctl

namespace taskq::ctl {
/// "1.234"
std::string fixed(double value, int decimals);
}  // namespace taskq::ctl
