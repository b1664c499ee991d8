#pragma once
// Bearer tokens: a request's token is hashed (SHA-256) and compared in constant time with every
// configured hash, so neither the tokens nor timing reveal anything. Scopes: enqueue, read,
// admin (admin may also read and enqueue).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskq/config/config.hpp"

namespace taskq::api {

enum class Scope { none, enqueue, read, admin };

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

class Authenticator {
 public:
  Authenticator(std::vector<taskq::config::ApiToken> tokens, bool insecure_no_auth);

  struct Result {
    unsigned status = 200;  // 200, 401 (missing or unknown token), 403 (scope missing)
    std::string token_name;
    std::string message;
  };
  /// `authorization` is the Authorization header ("" when absent).
  [[nodiscard]] Result check(std::string_view authorization, Scope needed) const;

 private:
  struct Entry {
    std::string name;
    unsigned char hash[32];
    bool enqueue = false, read = false, admin = false;
  };
  std::vector<Entry> entries_;
  bool open_;
};

}  // namespace taskq::api
