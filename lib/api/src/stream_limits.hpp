#pragma once
// How many event streams taskq-apid keeps open: at most api.max_event_streams in all and
// api.max_event_streams_per_token per token (streams hold a connection each for as long as their
// job or queue lives, so one client must not take them all). A stream request beyond either
// limit is answered at once: 503 (in all) or 429 (per token), with Retry-After.
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "response.hpp"

namespace taskq::api {

class StreamLimits {
 public:
  StreamLimits(int max_total, int max_per_token) : max_total_(max_total), max_per_token_(max_per_token) {}

  /// One open stream's place; released when destroyed. Move-only.
  class Slot {
   public:
    Slot() = default;
    Slot(StreamLimits* owner, std::string token) : owner_(owner), token_(std::move(token)) {}
    Slot(Slot&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), token_(std::move(o.token_)) {}
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = std::exchange(o.owner_, nullptr);
        token_ = std::move(o.token_);
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    void release();

   private:
    StreamLimits* owner_ = nullptr;
    std::string token_;
  };

  /// A place for a stream of `token` ("" without authentication), or the refusal to answer.
  struct Taken {
    std::optional<Slot> slot;
    Response refusal;
    std::string reason;  // the refusal's message, for the log
  };
  Taken take(const std::string& token);
  [[nodiscard]] int open() const;

 private:
  const int max_total_, max_per_token_;
  mutable std::mutex mu_;
  int total_ = 0;
  std::map<std::string, int> per_token_;
};

}  // namespace taskq::api
