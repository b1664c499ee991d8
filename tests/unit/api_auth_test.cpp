// taskq-apid's bearer tokens: SHA-256 of the token against the configured hashes, the scopes
// (admin implies read and enqueue), what 401 and 403 say, and api.insecure_no_auth.
#include <catch2/catch.hpp>

#include "auth.hpp"

using taskq::config::ApiToken;

using namespace taskq;
using namespace taskq::api;

namespace {

std::vector<ApiToken> tokens() {
  return {{"ro", sha256_hex("r"), {"read"}, 0},
          {"en", sha256_hex("e"), {"enqueue"}, 0},
          {"ad", sha256_hex("a"), {"admin"}, 0},
          {"rw", sha256_hex("rw"), {"read", "enqueue"}, 0}};
}

}  // namespace

TEST_CASE("auth: sha256_hex is the lower-case hex SHA-256", "[unit][api]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("test") == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  CHECK(sha256_hex(std::string("a\0b", 3)) != sha256_hex("a"));  // the whole token, not up to a NUL
}

TEST_CASE("auth: a token is known by its hash and held to its scopes", "[unit][api]") {
  const Authenticator auth(tokens(), false);
  struct Case {
    const char* token;
    Scope scope;
    unsigned status;
    const char* name;
  } cases[] = {
      {"r", Scope::read, 200, "ro"},    {"r", Scope::enqueue, 403, "ro"},  {"r", Scope::admin, 403, "ro"},
      {"e", Scope::enqueue, 200, "en"}, {"e", Scope::read, 403, "en"},     {"e", Scope::admin, 403, "en"},
      {"a", Scope::read, 200, "ad"},    {"a", Scope::enqueue, 200, "ad"},  {"a", Scope::admin, 200, "ad"},
      {"rw", Scope::read, 200, "rw"},   {"rw", Scope::enqueue, 200, "rw"}, {"rw", Scope::admin, 403, "rw"},
      {"x", Scope::read, 401, ""},      {"R", Scope::read, 401, ""},       {"r ", Scope::read, 401, ""},
  };
  for (const auto& c : cases) {
    INFO("token '" << c.token << "', scope " << static_cast<int>(c.scope));
    const auto r = auth.check(std::string("Bearer ") + c.token, c.scope);
    CHECK(r.status == c.status);
    CHECK(r.token_name == c.name);
    CHECK(r.message.empty() == (c.status == 200));
  }
  CHECK(auth.check("Bearer r", Scope::enqueue).message == "token 'ro' lacks the enqueue scope");
  CHECK(auth.check("Bearer e", Scope::read).message == "token 'en' lacks the read scope");
  CHECK(auth.check("Bearer rw", Scope::admin).message == "token 'rw' lacks the admin scope");
  CHECK(auth.check("Bearer nope", Scope::read).message == "unknown token");
}

TEST_CASE("auth: a missing or malformed Authorization header is 401", "[unit][api]") {
  const Authenticator auth(tokens(), false);
  for (const char* header : {"", "Bearer ", "Bearer", "Basic cjpy", "r", "Token r"}) {
    INFO("Authorization: '" << header << "'");
    const auto r = auth.check(header, Scope::read);
    CHECK(r.status == 401);
    CHECK(r.message == "missing bearer token: send Authorization: Bearer TOKEN");
  }
  // No scope needed: no token needed.
  CHECK(auth.check("", Scope::none).status == 200);
  CHECK(auth.check("Bearer x", Scope::none).status == 200);
}

TEST_CASE("auth: insecure_no_auth lets anonymous callers do everything, known tokens keep their scopes",
          "[unit][api]") {
  const Authenticator open(tokens(), true);
  CHECK(open.check("", Scope::admin).status == 200);
  CHECK(open.check("Bearer unknown", Scope::admin).status == 200);
  CHECK(open.check("Basic x", Scope::enqueue).status == 200);
  CHECK(open.check("Bearer r", Scope::enqueue).status == 403);
  CHECK(open.check("Bearer a", Scope::admin).token_name == "ad");

  const Authenticator none({}, true);
  CHECK(none.check("", Scope::admin).status == 200);
  CHECK(none.check("Bearer r", Scope::admin).status == 200);

  // Without it, no tokens configured means nothing is allowed.
  const Authenticator closed({}, false);
  CHECK(closed.check("", Scope::read).status == 401);
  CHECK(closed.check("Bearer r", Scope::read).status == 401);
}
