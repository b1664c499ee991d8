#include "db_pool.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace taskq::api {

DbPool::DbPool(ClientOptions options, int size) : options_(std::move(options)) {
  for (int i = 0; i < size; ++i) threads_.emplace_back([this, i] { run(i); });
}

DbPool::~DbPool() {
  stop();
}

void DbPool::check_connect() {
  auto c = Client::connect(options_);
  for (const auto& m : c->migration_status())
    if (!m.applied_at)
      throw Error(Errc::not_migrated, "schema '" + options_.store.schema + "' lacks migration " +
                                          std::to_string(m.version) + " (" + m.name + "): run taskctl migrate");
}

void DbPool::submit(Task task, Done done) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back({std::move(task), std::move(done)});
  }
  cv_.notify_one();
}

void DbPool::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void DbPool::run(int index) {
  std::unique_ptr<Client> client;
  auto backoff = std::chrono::milliseconds{0};
  auto next_attempt = std::chrono::steady_clock::now();
  bool down_logged = false;
  ClientOptions options = options_;
  options.store.application_name = (options_.store.application_name + " db" + std::to_string(index)).substr(0, 63);
  for (;;) {
    Item item;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued task is done
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    Response r;
    if (!client && std::chrono::steady_clock::now() >= next_attempt) {
      try {
        client = Client::connect(options);
        if (down_logged) spdlog::info("db{}: connected to PostgreSQL again", index);
        down_logged = false;
        backoff = std::chrono::milliseconds{0};
      } catch (const std::exception& e) {
        backoff = std::min(std::chrono::milliseconds{5000},
                           backoff.count() == 0 ? std::chrono::milliseconds{100} : backoff * 2);
        next_attempt = std::chrono::steady_clock::now() + backoff;
        if (!down_logged) spdlog::warn("db{}: PostgreSQL unreachable ({}); retrying", index, e.what());
        down_logged = true;
      }
    }
    if (!client) {
      r = error_response(503, "unavailable", "PostgreSQL is unreachable; try again");
    } else {
      try {
        r = item.task(*client);
      } catch (const Error& e) {
        if (e.code() == Errc::unavailable) client.reset();
        r = from_error(e);
      } catch (const std::exception& e) {
        spdlog::error("db{}: {}", index, e.what());
        r = error_response(500, "internal", e.what());
      }
    }
    item.done(std::move(r));
  }
}

}  // namespace taskq::api
