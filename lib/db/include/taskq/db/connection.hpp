#pragma once
// PostgreSQL connections for taskq (libpqxx). Owns: how a connection is opened (application name,
// connect timeout, and the session's limits: statement, lock and idle-in-transaction timeouts, TCP
// keepalives and tcp_user_timeout, all in the startup packet; then session time zone UTC and ISO
// dates, set right after connecting, never in the process environment), schema-qualified SQL text,
// and the mapping of database errors to taskq::Error categories (is_transient() in core reads
// them). Only db/ and store/ include pqxx.
#include <memory>
#include <pqxx/connection>
#include <string>
#include <string_view>

#include "taskq/core/session.hpp"
#include "taskq/core/time.hpp"

namespace taskq::db {

struct DbOptions {
  std::string url;  // libpq URI or key=value string; empty = libpq defaults
  std::string schema = "taskq";
  Duration connect_timeout = std::chrono::seconds{5};
  std::string application_name = "taskq";
  SessionSettings session;
  bool synchronous_commit = true;  // false: "-c synchronous_commit=off" (see StoreOptions)
};

/// The conninfo string connect() opens: the user's URL (URI or key=value) as libpq parses it, plus
/// connect_timeout, fallback_application_name, the keepalive settings and tcp_user_timeout where
/// the URL does not set them, and the session settings as "-c name=value" in `options` (after the
/// URL's own options, or PGOPTIONS, which keep any setting they name). Settings travel in the
/// startup packet: no extra round trip. `with_options` false: without `options` (for a pooler
/// that refuses it).
std::string session_conninfo(const DbOptions& options, bool with_options = true);

/// What connect() writes to stderr, once per process, when the server refused the startup
/// `options` and it connected without them.
inline constexpr std::string_view options_refused_warning =
    "taskq: warning: the server refused the startup parameter 'options' (a pooler such as PgBouncer?); "
    "connected without it, so database.statement_timeout, lock_timeout and idle_in_transaction_timeout "
    "do not apply: set them on the role instead (ALTER ROLE ... SET lock_timeout = '2s', ...)";

/// Opens a connection, then sets TimeZone to UTC and DateStyle to ISO in the session (SET, which
/// poolers track and pqxx repeats if it reconnects), so timestamps read back exactly. When the
/// server (a pooler such as PgBouncer) refuses the startup packet's `options`, connects again
/// without them and writes options_refused_warning to stderr once. Throws Error(unavailable)
/// saying which server could not be reached and why.
std::unique_ptr<pqxx::connection> connect(const DbOptions& options);

/// "name" with embedded quotes doubled.
std::string quote_ident(std::string_view name);

/// Replaces "{schema}" with the quoted schema name and "{schema_name}" with the bare name.
std::string with_schema(std::string_view sql, std::string_view schema);

/// Maps a database exception to taskq::Error and throws it: lost connection -> unavailable,
/// missing tables -> not_migrated, unique violation -> conflict, bad values -> invalid_input,
/// lock_timeout (55P03), deadlock (40P01) and serialization failure (40001) -> locked,
/// statement_timeout or a cancelled statement (57014) -> timeout. `context` says what was being
/// done ("cancel job 42"); the message starts with it.
[[noreturn]] void rethrow_as_error(std::string_view context, std::string_view schema);

/// The URL with any password replaced by "***", for messages.
std::string redact_url(std::string_view url);

}  // namespace taskq::db
