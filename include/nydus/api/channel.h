// A multi-producer, multi-consumer blocking queue: the request/response
// channels of the classic dispatch shape (service.h).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace nydus::api {

template <class T>
class Channel {
 public:
  // False once the channel is closed (the value is dropped).
  bool send(T value) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return false;
      queue_.push_back(std::move(value));
    }
    cv_.notify_one();
    return true;
  }

  // Blocks until a value arrives; nullopt once closed and drained.
  std::optional<T> recv() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || closed_; });
    if (queue_.empty()) return std::nullopt;
    T v = std::move(queue_.front());
    queue_.pop_front();
    return v;
  }

  // Wakes every receiver; later sends fail.
  void close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> queue_;  // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

}  // namespace nydus::api
