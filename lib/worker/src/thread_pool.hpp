#pragma once
// The threads that run in-process handlers for the executor.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace taskq::worker {

// A pool of threads for in-process handlers: grows when every thread is busy, so a handler that
// blocks never delays another job. Threads whose handler ignored a stop request stay busy until
// it returns; the pool is bounded by the worker's slots plus such stragglers.
class ThreadPool {
 public:
  ~ThreadPool() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    threads_.clear();  // joins
  }
  void run(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
      if (idle_ < tasks_.size()) threads_.emplace_back([this] { loop(); });
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      --idle_;
      if (tasks_.empty()) return;  // stopping
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
  std::vector<std::jthread> threads_;
};

}  // namespace taskq::worker
