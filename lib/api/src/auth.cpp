#include "auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>

using taskq::config::ApiToken;

namespace taskq::api {

namespace {

void sha256(std::string_view data, unsigned char out[32]) {
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) != 1 || len != 32)
    throw std::runtime_error("SHA-256 failed");
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char h[32];
  sha256(data, h);
  std::string out(64, '0');
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    out[2 * i] = digits[h[i] >> 4];
    out[2 * i + 1] = digits[h[i] & 15];
  }
  return out;
}

Authenticator::Authenticator(std::vector<ApiToken> tokens, bool insecure_no_auth) : open_(insecure_no_auth) {
  for (const auto& t : tokens) {
    Entry e;
    e.name = t.name;
    for (int i = 0; i < 32; ++i) {
      unsigned v = 0;
      std::sscanf(t.sha256.c_str() + 2 * i, "%2x", &v);
      e.hash[i] = static_cast<unsigned char>(v);
    }
    for (const auto& s : t.scopes) {
      e.enqueue = e.enqueue || s == "enqueue" || s == "admin";
      e.read = e.read || s == "read" || s == "admin";
      e.admin = e.admin || s == "admin";
    }
    entries_.push_back(std::move(e));
  }
}

Authenticator::Result Authenticator::check(std::string_view authorization, Scope needed) const {
  if (needed == Scope::none || (open_ && entries_.empty())) return {};
  constexpr std::string_view prefix = "Bearer ";
  if (authorization.size() <= prefix.size() || authorization.substr(0, prefix.size()) != prefix) {
    if (open_) return {};
    return {401, "", "missing bearer token: send Authorization: Bearer TOKEN"};
  }
  unsigned char h[32];
  sha256(authorization.substr(prefix.size()), h);
  const Entry* found = nullptr;
  for (const auto& e : entries_)  // every entry is compared, whichever matches
    if (CRYPTO_memcmp(h, e.hash, 32) == 0) found = &e;
  if (!found) {
    if (open_) return {};
    return {401, "", "unknown token"};
  }
  const bool allowed = (needed == Scope::enqueue && found->enqueue) || (needed == Scope::read && found->read) ||
                       (needed == Scope::admin && found->admin);
  if (!allowed) {
    const char* name = needed == Scope::enqueue ? "enqueue" : needed == Scope::read ? "read" : "admin";
    return {403, found->name, "token '" + found->name + "' lacks the " + std::string(name) + " scope"};
  }
  return {200, found->name, ""};
}

}  // namespace taskq::api
