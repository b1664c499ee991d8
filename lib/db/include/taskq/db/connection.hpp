#pragma once
// PostgreSQL connections for taskq (libpqxx). Owns: how a connection is opened (session time zone
// UTC, ISO dates, application name, connect timeout), schema-qualified SQL text, and the mapping
// of database errors to taskq::Error categories. Only db/ and store/ include pqxx.
#include <memory>
#include <pqxx/connection>
#include <string>
#include <string_view>

#include "taskq/core/time.hpp"

namespace taskq::db {

struct DbOptions {
  std::string url;  // libpq URI or key=value string; empty = libpq defaults
  std::string schema = "taskq";
  Duration connect_timeout = std::chrono::seconds{5};
  std::string application_name = "taskq";
};

/// Opens a connection. Throws Error(unavailable) saying which server could not be reached and why.
std::unique_ptr<pqxx::connection> connect(const DbOptions& options);

/// "name" with embedded quotes doubled.
std::string quote_ident(std::string_view name);

/// Replaces "{schema}" with the quoted schema name and "{schema_name}" with the bare name.
std::string with_schema(std::string_view sql, std::string_view schema);

/// Maps a database exception to taskq::Error and throws it: lost connection -> unavailable,
/// missing tables -> not_migrated, unique violation -> conflict, bad values -> invalid_input.
[[noreturn]] void rethrow_as_error(std::string_view context, std::string_view schema);

/// The URL with any password replaced by "***", for messages.
std::string redact_url(std::string_view url);

}  // namespace taskq::db
