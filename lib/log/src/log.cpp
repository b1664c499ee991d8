#include "taskq/log/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "taskq/core/error.hpp"

using taskq::config::LogConfig;

namespace taskq::log {
namespace {

// %j: the message, escaped for a JSON string.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char hex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char esc[] = {'\\', 'u', '0', '0', hex[(c >> 4) & 0xf], hex[c & 0xf]};
            dest.append(esc, esc + sizeof esc);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

// %J: `,"trace_id":"<32 hex>"` when the message names a job's trace ("trace_id=<32 hex>", as
// every log line about a job does); nothing otherwise. The first such mention counts.
class TraceIdField final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr std::string_view marker = "trace_id=";
    static constexpr std::size_t hex_digits = 32;
    const std::string_view text(msg.payload.data(), msg.payload.size());
    for (auto at = text.find(marker); at != std::string_view::npos; at = text.find(marker, at + 1)) {
      const auto id = text.substr(at + marker.size(), hex_digits);
      if (id.size() == hex_digits && id.find_first_not_of("0123456789abcdef") == std::string_view::npos) {
        dest.append(std::string_view(R"(,"trace_id":")"));
        dest.append(id);
        dest.push_back('"');
        return;
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TraceIdField>();
  }
};

}  // namespace

void setup_logging(const LogConfig& config, std::string_view program) {
  const auto level = spdlog::level::from_str(config.level);
  if (level == spdlog::level::off && config.level != "off")
    throw Error(Errc::invalid_input, "log.level: unknown level '" + config.level + "'");
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(std::string(program), sink);
  const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  if (config.format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('j').add_flag<TraceIdField>('J').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","program":"%n","pid":%P,"msg":"%j"%J})");
    logger->set_formatter(std::move(formatter));
  } else if (config.format == "text") {
    logger->set_pattern(journal ? "%l: %v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
  } else {
    throw Error(Errc::invalid_input, "log.format: unknown format '" + config.format + "'");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace taskq::log
