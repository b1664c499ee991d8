// [api] and [[api.tokens]]: values are read, and what taskq-apid refuses (exit 78) names the file,
// the line and the key; taskctl is not stopped by a mistake there.
#include <catch2/catch.hpp>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

using taskq::config::Config;
using taskq::config::parse_config;
using taskq::config::validate_api_config;
using taskq::config::validate_config;

using namespace taskq;
using namespace std::chrono_literals;

namespace {

const std::string hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";  // sha256("test")

std::string refusal(const std::string& toml) {
  try {
    validate_api_config(parse_config(toml, "a.toml"));
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    return e.what();
  }
  FAIL("accepted:\n" << toml);
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("api config: values, tls and tokens are read", "[api][config]") {
  const Config c = parse_config(
      "[api]\nlisten = [\"0.0.0.0:9000\", \"[::1]:9001\"]\nthreads = 4\ndb_pool = 16\n"
      "max_body = \"64KiB\"\nrequest_timeout = \"5s\"\nshutdown_timeout = \"2s\"\n"
      "metrics_auth = true\ntls = { cert = \"/c.pem\", key = \"/k.pem\" }\n"
      "[[api.tokens]]\nname = \"ci\"\nsha256 = \"" +
          std::string("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08") +
          "\"\nscopes = [\"enqueue\", \"read\"]\n",
      "a.toml");
  CHECK(c.api_errors.empty());
  CHECK(c.api.listen == std::vector<std::string>{"0.0.0.0:9000", "[::1]:9001"});
  CHECK(c.api.threads == 4);
  CHECK(c.api.db_pool == 16);
  CHECK(c.api.max_body == 64 * 1024);
  CHECK(c.api.request_timeout == 5s);
  CHECK(c.api.shutdown_timeout == 2s);
  CHECK(c.api.metrics_auth);
  REQUIRE(c.api.tls.has_value());
  CHECK(c.api.tls->cert == "/c.pem");
  REQUIRE(c.api.tokens.size() == 1);
  CHECK(c.api.tokens[0].name == "ci");
  CHECK(c.api.tokens[0].sha256 == hash);  // lower-cased
  CHECK(c.api.tokens[0].scopes == std::vector<std::string>{"enqueue", "read"});
  CHECK(c.api.tokens[0].line == 10);
  CHECK_NOTHROW(validate_api_config(c));
}

TEST_CASE("api config: no tokens is refused unless insecure_no_auth is set", "[api][config]") {
  CHECK(contains(refusal("[api]\nthreads = 2\n"), "insecure_no_auth"));
  CHECK_NOTHROW(validate_api_config(parse_config("[api]\ninsecure_no_auth = true\n", "a.toml")));
}

TEST_CASE("api config: bad values name the file, the line and the key", "[api][config]") {
  CHECK(contains(refusal("[api]\nlisten = [\"localhost\"]\ninsecure_no_auth = true\n"), "a.toml:2: api.listen"));
  CHECK(contains(refusal("[api]\nlisten = [\"h:70000\"]\ninsecure_no_auth = true\n"), "port 0 to 65535"));
  CHECK(contains(refusal("[api]\nthreads = 0\ninsecure_no_auth = true\n"), "api.threads"));
  CHECK(contains(refusal("[api]\nmax_body = \"1 lightyear\"\ninsecure_no_auth = true\n"), "api.max_body"));
  CHECK(contains(refusal("[api]\nrequest_timeout = \"1ms\"\ninsecure_no_auth = true\n"), "at least 100ms"));
  CHECK(contains(refusal("[api]\ntls = { cert = \"/c.pem\" }\ninsecure_no_auth = true\n"), "cert and key"));
  CHECK(contains(refusal("[api]\nport = 80\ninsecure_no_auth = true\n"), "api.port: unknown key"));
  CHECK(contains(refusal("[[api.tokens]]\nname = \"ci\"\nsha256 = \"secret\"\nscopes = [\"read\"]\n"),
                 "a.toml:3: api.tokens 'ci': sha256"));
  CHECK(contains(refusal("[[api.tokens]]\nname = \"ci\"\nsha256 = \"" + hash + "\"\nscopes = [\"root\"]\n"),
                 "enqueue, read and admin"));
  CHECK(contains(refusal("[[api.tokens]]\nname = \"ci\"\nsha256 = \"" + hash + "\"\n"), "needs scopes"));
  CHECK(contains(refusal("[[api.tokens]]\nname = \"ci\"\nsha256 = \"" + hash + "\"\nscopes = [\"read\"]\n" +
                         "[[api.tokens]]\nname = \"ci\"\nsha256 = \"" + hash + "\"\nscopes = [\"read\"]\n"),
                 "duplicate token name"));
}

TEST_CASE("api config errors do not stop taskctl", "[api][config]") {
  const Config c = parse_config("[api]\nthreads = \"many\"\n[database]\nschema = \"x\"\n", "a.toml");
  CHECK_NOTHROW(validate_config(c));
  CHECK(c.api_errors.size() == 1);
}
