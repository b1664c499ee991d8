#include "taskq/db/connection.hpp"

#include <cstdlib>
#include <mutex>
#include <pqxx/except>

#include "taskq/core/error.hpp"

namespace taskq::db {
namespace {

// Session settings every taskq connection relies on: timestamps are read back in UTC, ISO form.
// libpq sends PGTZ and PGDATESTYLE in the startup packet, so this costs no round trip.
void set_session_environment() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::setenv("PGTZ", "UTC", 1);
    ::setenv("PGDATESTYLE", "ISO", 1);
  });
}

void add_param(std::string& conninfo, std::string_view key, std::string_view value) {
  if (conninfo.find(key) != std::string::npos) return;  // the user's own setting wins
  const bool uri = conninfo.rfind("postgres://", 0) == 0 || conninfo.rfind("postgresql://", 0) == 0;
  if (uri) {
    conninfo += conninfo.find('?') == std::string::npos ? '?' : '&';
    conninfo.append(key).append("=").append(value);
  } else {
    if (!conninfo.empty()) conninfo += ' ';
    conninfo.append(key).append("=").append(value);
  }
}

std::string one_line(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// The first line of a server error, without the "ERROR:" prefix and the LINE/HINT context.
std::string primary_message(std::string_view text) {
  std::string_view first = text.substr(0, text.find('\n'));
  if (first.rfind("ERROR:", 0) == 0) first.remove_prefix(6);
  while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
  return std::string(first);
}

}  // namespace

std::string redact_url(std::string_view url) {
  std::string out(url);
  const auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    const auto at = out.find('@', scheme + 3);
    const auto colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      out.replace(colon + 1, at - colon - 1, "***");
  }
  const auto pw = out.find("password=");
  if (pw != std::string::npos) {
    auto end = out.find_first_of(" &", pw);
    out.replace(pw + 9, end == std::string::npos ? std::string::npos : end - pw - 9, "***");
  }
  return out;
}

std::unique_ptr<pqxx::connection> connect(const DbOptions& options) {
  set_session_environment();
  std::string conninfo = options.url;
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(options.connect_timeout).count();
  add_param(conninfo, "connect_timeout", std::to_string(secs < 1 ? 1 : secs));
  add_param(conninfo, "fallback_application_name", options.application_name);
  try {
    return std::make_unique<pqxx::connection>(conninfo);
  } catch (const std::exception& e) {
    const std::string where = options.url.empty() ? "(libpq defaults: PGHOST/PGPORT)" : redact_url(options.url);
    throw Error(Errc::unavailable, "cannot connect to PostgreSQL at " + where + ": " + one_line(e.what()) +
                                       " (is it running? set --database-url or TASKQ_DATABASE_URL)");
  }
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string with_schema(std::string_view sql, std::string_view schema) {
  const std::string quoted = quote_ident(schema);
  std::string out;
  out.reserve(sql.size() + 64);
  std::size_t pos = 0;
  while (pos < sql.size()) {
    const auto brace = sql.find('{', pos);
    if (brace == std::string_view::npos) break;
    out.append(sql.substr(pos, brace - pos));
    if (sql.substr(brace, 8) == "{schema}") {
      out += quoted;
      pos = brace + 8;
    } else if (sql.substr(brace, 13) == "{schema_name}") {
      out.append(schema);
      pos = brace + 13;
    } else {
      out += '{';
      pos = brace + 1;
    }
  }
  out.append(sql.substr(pos));
  return out;
}

void rethrow_as_error(std::string_view context, std::string_view schema) {
  const std::string ctx(context);
  try {
    throw;
  } catch (const Error&) {
    throw;
  } catch (const pqxx::broken_connection& e) {
    throw Error(Errc::unavailable, ctx + ": lost the connection to PostgreSQL: " + one_line(e.what()));
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    const std::string msg = primary_message(e.what());
    if (state == "42P01" || state == "3F000" || state == "42883")
      throw Error(Errc::not_migrated, ctx + ": schema '" + std::string(schema) +
                                          "' is missing or not migrated (run: taskctl migrate): " + msg);
    if (state == "23505") {
      if (msg.find("jobs_unique_key_idx") != std::string::npos)
        throw Error(Errc::conflict, ctx + ": another live job holds the same unique key; nothing was changed");
      throw Error(Errc::conflict, ctx + ": " + msg);
    }
    // Data exceptions, integrity violations and program limits (a value nested too deep, a row
    // too large): the values are refused, the connection is fine.
    if (state.rfind("22", 0) == 0 || state.rfind("23", 0) == 0 || state.rfind("54", 0) == 0)
      throw Error(Errc::invalid_input, ctx + ": " + msg);
    if (state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03")
      throw Error(Errc::unavailable, ctx + ": " + msg);
    throw Error(Errc::internal, ctx + ": database error " + state + ": " + msg);
  } catch (const pqxx::in_doubt_error& e) {
    throw Error(Errc::unavailable,
                ctx + ": connection lost during commit; the outcome is unknown: " + one_line(e.what()));
  } catch (const std::exception& e) {
    throw Error(Errc::internal, ctx + ": " + one_line(e.what()));
  }
}

}  // namespace taskq::db
