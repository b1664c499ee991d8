// Readers of one value of the config file (strings, durations, integers, sizes, tables), shared
// by every section. Each names the file, the line and the key when the value is wrong.
#include <string>

#include "config_parse.hpp"
#include "taskq/core/error.hpp"

namespace taskq::config::parsing {

[[noreturn]] void bad(const std::string& where, std::string_view key, const std::string& why) {
  throw Error(Errc::invalid_input, where + ": " + std::string(key) + ": " + why);
}

std::string get_string(const toml::node& n, const std::string& where, std::string_view key) {
  if (auto s = n.value<std::string>(); s && n.is_string()) return *s;
  bad(where, key, "must be a string");
}

bool is_listen_address(const std::string& a) {
  const auto colon = a.rfind(':');
  const bool v6 = !a.empty() && a.front() == '[';
  return !(colon == std::string::npos || colon == 0 || colon + 1 == a.size() ||
           (v6 && (colon < 2 || a[colon - 1] != ']')) ||
           a.find_first_not_of("0123456789", colon + 1) != std::string::npos || a.size() - colon - 1 > 5 ||
           std::stoi(a.substr(colon + 1)) > 65535);
}

std::string get_listen_address(const toml::node& n, const std::string& where, std::string_view key) {
  const std::string a = get_string(n, where, key);
  if (!is_listen_address(a)) bad(where, key, "'" + a + "' is not HOST:PORT or [IPV6]:PORT (port 0 to 65535)");
  return a;
}

Duration get_duration(const toml::node& n, const std::string& where, std::string_view key) {
  if (n.is_integer() || n.is_floating_point()) {
    try {
      return duration_from_seconds(n.value<double>().value_or(-1));
    } catch (const Error& e) {
      bad(where, key, e.what());
    }
  }
  if (!n.is_string()) bad(where, key, "must be a duration such as \"5s\" or a number of seconds");
  try {
    return parse_duration(*n.value<std::string>());
  } catch (const Error& e) {
    bad(where, key, e.what());
  }
}

Duration get_duration_at_least(const toml::node& n, const std::string& where, std::string_view key, Duration min,
                               const char* min_text) {
  const Duration d = get_duration(n, where, key);
  if (d < min) bad(where, key, std::string("must be at least ") + min_text);
  return d;
}

std::int64_t get_int(const toml::node& n, const std::string& where, std::string_view key, std::int64_t min,
                     std::int64_t max) {
  auto v = n.value<std::int64_t>();
  if (!v || !n.is_integer()) bad(where, key, "must be an integer");
  if (*v < min || *v > max) bad(where, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  return *v;
}

bool get_bool(const toml::node& n, const std::string& where, std::string_view key) {
  if (!n.is_boolean()) bad(where, key, "must be true or false");
  return *n.value<bool>();
}

const toml::table& get_table(const toml::node& n, const std::string& where, std::string_view key) {
  const auto* t = n.as_table();
  if (!t) bad(where, key, "must be a table, e.g. { name = value }");
  return *t;
}

std::uint64_t get_size(const toml::node& n, const std::string& where, std::string_view key) {
  if (n.is_integer()) {
    const auto v = *n.value<std::int64_t>();
    if (v < 1) bad(where, key, "must be at least 1 byte");
    return static_cast<std::uint64_t>(v);
  }
  if (!n.is_string()) bad(where, key, "must be a size such as \"512MiB\" or a number of bytes");
  const std::string text = *n.value<std::string>();
  std::size_t pos = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  if (pos == 0 || pos > 18) bad(where, key, "'" + text + "' is not a size such as \"512MiB\" or \"1GiB\"");
  const std::uint64_t number = std::stoull(text.substr(0, pos));
  std::string unit = text.substr(pos);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::pair<const char*, std::uint64_t> units[] = {{"", 1},
                                                                {"B", 1},
                                                                {"KiB", 1ULL << 10},
                                                                {"MiB", 1ULL << 20},
                                                                {"GiB", 1ULL << 30},
                                                                {"TiB", 1ULL << 40},
                                                                {"KB", 1000ULL},
                                                                {"MB", 1000000ULL},
                                                                {"GB", 1000000000ULL},
                                                                {"TB", 1000000000000ULL}};
  for (const auto& [name, factor] : units)
    if (unit == name) {
      if (number == 0) bad(where, key, "must be at least 1 byte");
      if (number > (~0ULL) / factor) bad(where, key, "'" + text + "' is too large");
      return number * factor;
    }
  bad(where, key, "unknown unit in '" + text + "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
}

std::vector<std::pair<std::string, std::string>> get_string_table(const toml::node& n, const std::string& where,
                                                                  std::string_view key, bool env_names) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : get_table(n, where, key)) {
    const std::string k = std::string(key) + "." + std::string(name.str());
    if (!value.is_string()) bad(where, k, "must be a string");
    if (env_names && (name.str().empty() || name.str().find('=') != std::string_view::npos))
      bad(where, k, "an environment variable name must be non-empty and contain no '='");
    out.emplace_back(std::string(name.str()), *value.value<std::string>());
  }
  return out;
}

std::string where_of(std::string_view source, const toml::node& n) {
  std::string w(source);
  if (n.source().begin.line > 0) w += ":" + std::to_string(n.source().begin.line);
  return w;
}

}  // namespace taskq::config::parsing
