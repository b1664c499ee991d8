#include "stream_limits.hpp"

namespace taskq::api {

namespace {

// A stream usually lasts as long as its job; a client should not come back at once.
constexpr const char* retry_after_seconds = "10";

StreamLimits::Taken refusal(unsigned status, const std::string& message) {
  auto r = error_response(status, "too_many_streams", message);
  r.headers.emplace_back("Retry-After", retry_after_seconds);
  return {std::nullopt, std::move(r), message};
}

}  // namespace

void StreamLimits::Slot::release() {
  if (!owner_) return;
  auto* o = std::exchange(owner_, nullptr);
  std::lock_guard lk(o->mu_);
  --o->total_;
  const auto it = o->per_token_.find(token_);
  if (it != o->per_token_.end() && --it->second <= 0) o->per_token_.erase(it);
}

StreamLimits::Taken StreamLimits::take(const std::string& token) {
  std::lock_guard lk(mu_);
  if (total_ >= max_total_)
    return refusal(503, "taskq-apid has api.max_event_streams (" + std::to_string(max_total_) +
                            ") event streams open; try again later");
  auto& mine = per_token_[token];
  if (mine >= max_per_token_) {
    return refusal(429, (token.empty() ? std::string("the clients have") : "token '" + token + "' has") +
                            " api.max_event_streams_per_token (" + std::to_string(max_per_token_) +
                            ") event streams open; close one or try again later");
  }
  ++mine;
  ++total_;
  return {Slot(this, token), {}, {}};
}

int StreamLimits::open() const {
  std::lock_guard lk(mu_);
  return total_;
}

}  // namespace taskq::api
