#include "taskq/db/connection.hpp"

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <pqxx/except>
#include <utility>
#include <vector>

#include "taskq/core/error.hpp"

namespace taskq::db {
namespace {

// What PgBouncer answers to a startup packet with `options` (unless ignore_startup_parameters
// lists it, when it drops them silently).
constexpr std::string_view refused_options = "unsupported startup parameter: options";

// Session settings every taskq connection relies on: timestamps are read back in UTC, ISO form.
// Set with SET right after connecting. Not through libpq's PGTZ and PGDATESTYLE: they would change
// the environment of the whole process (an embedding program's, and every child it starts). Not
// in the startup packet's `options` either: a pooler refuses them or, told to ignore them, drops
// them silently. PgBouncer tracks TimeZone and DateStyle per client and sets them on each server
// connection it lends, even in transaction pooling; pqxx sets them again when it reconnects the
// session; and set last, they win over the URL's `options` and a PGTZ of the user's.
void set_session_settings(pqxx::connection& conn) {
  conn.set_variable("TimeZone", "'UTC'");
  conn.set_variable("DateStyle", "'ISO'");
}

std::unique_ptr<pqxx::connection> open_session(const std::string& conninfo) {
  auto conn = std::make_unique<pqxx::connection>(conninfo);
  set_session_settings(*conn);
  return conn;
}

// key=value with the value quoted for libpq ('...' with \ and ' escaped).
void append_param(std::string& conninfo, std::string_view key, std::string_view value) {
  if (!conninfo.empty()) conninfo += ' ';
  conninfo.append(key).append("='");
  for (char c : value) {
    if (c == '\\' || c == '\'') conninfo += '\\';
    conninfo += c;
  }
  conninfo += '\'';
}

std::int64_t whole_ms(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::int64_t whole_seconds_at_least_1(Duration d) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return secs < 1 ? 1 : secs;
}

// Whether a libpq `options` value already sets the server parameter `name` ("-c name=..." or
// "--name=...", '-' and '_' alike, as the server reads them).
bool options_set(std::string_view options, std::string_view name) {
  std::string norm(options);
  for (char& c : norm)
    if (c == '-') c = '_';
  std::string key(name);
  key += '=';
  for (auto pos = norm.find(key); pos != std::string::npos; pos = norm.find(key, pos + 1))
    if (pos == 0 || norm[pos - 1] == ' ' ||
        (pos >= 2 && (norm.compare(pos - 2, 2, "__") == 0 || norm.compare(pos - 2, 2, "_c") == 0)))
      return true;
  return false;
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

std::string session_conninfo(const DbOptions& o, bool with_options) {
  // libpq parses the user's URL (URI or key=value, multi-host included); what it sets wins.
  std::vector<std::pair<std::string, std::string>> given;
  char* err = nullptr;
  PQconninfoOption* parsed = ::PQconninfoParse(o.url.c_str(), &err);
  if (!parsed) {
    std::string why = err ? one_line(err) : "cannot be parsed";
    ::PQfreemem(err);
    throw Error(Errc::invalid_input, "database URL " + redact_url(o.url) + ": " + why);
  }
  for (PQconninfoOption* p = parsed; p->keyword; ++p)
    if (p->val) given.emplace_back(p->keyword, p->val);
  ::PQconninfoFree(parsed);
  const auto has = [&](std::string_view key) {
    for (const auto& [k, v] : given)
      if (k == key) return true;
    return false;
  };
  std::string user_options;
  for (const auto& [k, v] : given)
    if (k == "options") user_options = v;
  if (!has("options"))
    if (const char* env = std::getenv("PGOPTIONS"); env) user_options = env;  // `options` would replace it

  std::string out;
  for (const auto& [k, v] : given)
    if (k != "options") append_param(out, k, v);
  const auto add = [&](std::string_view key, const std::string& value) {
    if (!has(key)) append_param(out, key, value);
  };
  add("connect_timeout", std::to_string(whole_seconds_at_least_1(o.connect_timeout)));
  add("fallback_application_name", o.application_name);
  const SessionSettings& s = o.session;
  add("keepalives", s.keepalives ? "1" : "0");
  if (s.keepalives) {
    add("keepalives_idle", std::to_string(whole_seconds_at_least_1(s.keepalives_idle)));
    add("keepalives_interval", std::to_string(whole_seconds_at_least_1(s.keepalives_interval)));
    add("keepalives_count", std::to_string(s.keepalives_count));
  }
  add("tcp_user_timeout", std::to_string(whole_ms(s.tcp_user_timeout)));

  std::string opts = user_options;
  const auto set = [&](std::string_view name, const std::string& value) {
    if (options_set(user_options, name)) return;
    if (!opts.empty()) opts += ' ';
    opts.append("-c ").append(name).append("=").append(value);
  };
  set("statement_timeout", std::to_string(whole_ms(s.statement_timeout)));
  set("lock_timeout", std::to_string(whole_ms(s.lock_timeout)));
  set("idle_in_transaction_session_timeout", std::to_string(whole_ms(s.idle_in_transaction_timeout)));
  if (!o.synchronous_commit) set("synchronous_commit", "off");
  if (with_options) append_param(out, "options", opts);
  return out;
}

std::unique_ptr<pqxx::connection> connect(const DbOptions& options) {
  const auto fail = [&](const std::exception& e) {
    const std::string where = options.url.empty() ? "(libpq defaults: PGHOST/PGPORT)" : redact_url(options.url);
    return Error(Errc::unavailable, "cannot connect to PostgreSQL at " + where + ": " + one_line(e.what()) +
                                        " (is it running? set --database-url or TASKQ_DATABASE_URL)");
  };
  try {
    return open_session(session_conninfo(options));
  } catch (const std::exception& e) {
    if (std::string_view(e.what()).find(refused_options) == std::string_view::npos) throw fail(e);
  }
  // A pooler in front of PostgreSQL (PgBouncer) refuses the startup packet's `options`: connect
  // without them, and say once what that costs.
  try {
    auto conn = open_session(session_conninfo(options, false));
    static std::once_flag once;
    std::call_once(once, [] {
      std::fprintf(stderr, "%s\n", std::string(options_refused_warning).c_str());
      std::fflush(stderr);
    });
    return conn;
  } catch (const std::exception& e) {
    throw fail(e);
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
    if (state == "55P03")
      throw Error(Errc::locked, ctx + ": locked by another session (waited database.lock_timeout); try again");
    if (state == "40P01" || state == "40001")
      throw Error(Errc::locked, ctx + ": " + msg + " (with another session); try again");
    if (state == "57014") {
      if (msg.find("statement timeout") != std::string::npos)
        throw Error(Errc::timeout, ctx + ": took longer than database.statement_timeout; try again");
      throw Error(Errc::timeout, ctx + ": " + msg + "; try again");
    }
    throw Error(Errc::internal, ctx + ": database error " + state + ": " + msg);
  } catch (const pqxx::in_doubt_error& e) {
    throw Error(Errc::unavailable,
                ctx + ": connection lost during commit; the outcome is unknown: " + one_line(e.what()));
  } catch (const std::exception& e) {
    throw Error(Errc::internal, ctx + ": " + one_line(e.what()));
  }
}

}  // namespace taskq::db
