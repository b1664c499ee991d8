// [api], api.tls and the [[api.tokens]] entries: taskq-apid's section. Its errors are kept in
// Config::api_errors (see config.cpp) for validate_api_config.
#include <string>

#include "config_parse.hpp"
#include "taskq/core/error.hpp"

namespace taskq::config {

const std::vector<ConfigKey>& api_table_keys() {
  static const std::vector<ConfigKey> keys = {
      {"api.tls", "table", "(none)",
       "Serve HTTPS: { cert = \"/etc/taskq/tls.crt\", key = \"/etc/taskq/tls.key\" } (PEM files). Without it, "
       "plain HTTP."},
      {"api.tokens.name", "string", "(required)", "The token's name, for logs."},
      {"api.tokens.sha256", "string", "(required)",
       "The token's SHA-256 as 64 hex digits; the token itself never appears in the config."},
      {"api.tokens.scopes", "array of strings", "(required)",
       "What it may do: enqueue (POST jobs), read (GET), admin (cancel, retry, pause, resume)."},
  };
  return keys;
}

namespace parsing {

KeyHandlers api_server_handlers() {
  return {
      {{"api.listen", "array of strings", "[\"127.0.0.1:8080\"]",
        "Addresses taskq-apid listens on: HOST:PORT or [IPV6]:PORT, one or more."},
       [](Config& c, const toml::node& n, const std::string& w) {
         const auto* arr = n.as_array();
         if (!arr || arr->empty()) bad(w, "api.listen", "must be a non-empty array such as [\"127.0.0.1:8080\"]");
         std::vector<std::string> out;
         for (const auto& item : *arr) {
           if (!item.is_string()) bad(w, "api.listen", "must be an array of strings");
           out.push_back(get_listen_address(item, w, "api.listen"));
         }
         c.api.listen = std::move(out);
       }},
      {{"api.threads", "integer", "2", "I/O threads of taskq-apid (1 to 64)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.threads = static_cast<int>(get_int(n, w, "api.threads", 1, 64));
       }},
      {{"api.db_pool", "integer", "8",
        "Database connections of taskq-apid, each with its own thread (1 to 256); database work never runs on "
        "the I/O threads."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.db_pool = static_cast<int>(get_int(n, w, "api.db_pool", 1, 256));
       }},
      {{"api.db_acquire_timeout", "duration", "\"1s\"",
        "Longest a request waits for a free database connection (10ms to 1m); then it gets 503 with Retry-After. "
        "/readyz answers 503 while the pool is stuck that long."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.db_acquire_timeout =
             get_duration_at_least(n, w, "api.db_acquire_timeout", std::chrono::milliseconds{10}, "10ms");
         if (c.api.db_acquire_timeout > std::chrono::minutes{1}) bad(w, "api.db_acquire_timeout", "must be at most 1m");
       }},
      {{"api.max_body", "size", "\"1MiB\"", "Largest request body; larger requests get 413."},
       [](Config& c, const toml::node& n, const std::string& w) { c.api.max_body = get_size(n, w, "api.max_body"); }},
      {{"api.request_timeout", "duration", "\"30s\"",
        "How long a client may take to send a request (at least 100ms); slower clients are cut off."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.request_timeout =
             get_duration_at_least(n, w, "api.request_timeout", std::chrono::milliseconds{100}, "100ms");
       }},
  };
}

KeyHandlers api_limit_handlers() {
  return {
      {{"api.max_connections", "integer", "10000",
        "Open connections taskq-apid serves at most (1 to 1000000), event streams included; a connection "
        "beyond it is accepted and closed at once (plain HTTP gets a 503 first)."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.max_connections = static_cast<int>(get_int(n, w, "api.max_connections", 1, 1000000));
       }},
      {{"api.max_event_streams", "integer", "5000",
        "Event streams open at once in all (1 to 1000000); a stream request beyond it gets 503 with Retry-After."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.max_event_streams = static_cast<int>(get_int(n, w, "api.max_event_streams", 1, 1000000));
       }},
      {{"api.max_event_streams_per_token", "integer", "1000",
        "Event streams open at once per token (1 to 1000000; without tokens, for all clients together); a "
        "stream request beyond it gets 429 with Retry-After."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.max_event_streams_per_token =
             static_cast<int>(get_int(n, w, "api.max_event_streams_per_token", 1, 1000000));
       }},
      {{"api.stream_write_timeout", "duration", "\"30s\"",
        "An event stream whose client has not taken a write within this time (at least 100ms) is closed; so is "
        "one with more than 4 MiB unsent."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.stream_write_timeout =
             get_duration_at_least(n, w, "api.stream_write_timeout", std::chrono::milliseconds{100}, "100ms");
       }},
      {{"api.shutdown_timeout", "duration", "\"10s\"",
        "On SIGTERM, how long in-flight requests may finish before taskq-apid exits."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.shutdown_timeout = get_duration(n, w, "api.shutdown_timeout");
       }},
      {{"api.insecure_no_auth", "boolean", "false",
        "true: serve without tokens (every request may do everything). Without tokens and without this, "
        "taskq-apid refuses to start."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.insecure_no_auth = get_bool(n, w, "api.insecure_no_auth");
       }},
      {{"api.metrics_auth", "boolean", "false", "true: /metrics needs a token with the read scope."},
       [](Config& c, const toml::node& n, const std::string& w) {
         c.api.metrics_auth = get_bool(n, w, "api.metrics_auth");
       }},
      {{"api.ui", "boolean", "true",
        "true: serve the web dashboard under /ui (its pages hold no data; it asks the API with the user's token)."},
       [](Config& c, const toml::node& n, const std::string& w) { c.api.ui = get_bool(n, w, "api.ui"); }},
  };
}

// [api] tls = { cert = "...", key = "..." }
ApiTls parse_tls(const toml::node& node, const std::string& where) {
  ApiTls tls;
  for (const auto& [k, v] : get_table(node, where, "api.tls")) {
    const std::string key = "api.tls." + std::string(k.str());
    if (k.str() == "cert")
      tls.cert = get_string(v, where, key);
    else if (k.str() == "key")
      tls.key = get_string(v, where, key);
    else
      bad(where, key, "unknown key (tls takes cert and key)");
  }
  if (tls.cert.empty() || tls.key.empty()) bad(where, "api.tls", "needs both cert and key (PEM file paths)");
  return tls;
}

// One [[api.tokens]] entry.
ApiToken parse_token(const toml::node& node, std::size_t index, std::string_view source) {
  const std::string where0 = where_of(source, node);
  std::string label = "api.tokens[" + std::to_string(index) + "]";
  const auto* table = node.as_table();
  if (!table) bad(where0, label, "expected an [[api.tokens]] table");
  ApiToken t;
  t.line = static_cast<int>(node.source().begin.line);
  if (const auto* name = table->get("name"); name && name->is_string())
    label = "api.tokens '" + *name->value<std::string>() + "'";
  bool has_scopes = false;
  for (const auto& [k, v] : *table) {
    const std::string key = label + ": " + std::string(k.str());
    const std::string w = where_of(source, v);
    if (k.str() == "name") {
      t.name = get_string(v, w, key);
    } else if (k.str() == "sha256") {
      t.sha256 = get_string(v, w, key);
      for (char& ch : t.sha256)
        if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
      if (t.sha256.size() != 64 || t.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
        bad(w, key,
            "must be the 64 hex digits of the token's SHA-256 (printf %s \"$TOKEN\" | sha256sum), never the token "
            "itself");
    } else if (k.str() == "scopes") {
      const auto* arr = v.as_array();
      if (!arr) bad(w, key, "must be an array such as [\"enqueue\", \"read\"]");
      for (const auto& item : *arr) {
        const auto scope = item.value<std::string>();
        if (!item.is_string() || !scope || (*scope != "enqueue" && *scope != "read" && *scope != "admin"))
          bad(w, key, "scopes are enqueue, read and admin");
        t.scopes.push_back(*scope);
      }
      has_scopes = true;
    } else {
      bad(w, key, "unknown key (a token takes name, sha256, scopes)");
    }
  }
  if (t.name.empty()) bad(where0, label, "needs a name");
  if (t.sha256.empty()) bad(where0, label, "needs sha256");
  if (!has_scopes) bad(where0, label, "needs scopes, e.g. [\"enqueue\", \"read\"]");
  return t;
}

}  // namespace parsing
}  // namespace taskq::config
