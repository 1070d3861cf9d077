#include "nydus/daemon/events.h"

#include <ctime>

namespace nydus::daemon {

std::string imf_fixdate(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

void EventRing::push(std::string_view text) {
  auto verdict = limit_.admit(text.substr(0, text.find(": ")));
  if (!verdict.pass) return;
  std::string entry = imf_fixdate(std::time(nullptr)) + " - " + std::string(text) + suppressed_suffix(verdict.suppressed);
  std::lock_guard<std::mutex> lock(mu_);
  // An entry bigger than the whole ring is truncated rather than evicting everything for nothing.
  if (entry.size() > max_size_) entry.resize(max_size_);
  while (!entries_.empty() && (entries_.size() >= max_errors_ || total_size_ + entry.size() > max_size_)) {
    total_size_ -= entries_.front().size();
    entries_.pop_front();
  }
  if (max_errors_ == 0) return;
  total_size_ += entry.size();
  entries_.push_back(std::move(entry));
}

api::EventsInfo EventRing::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  api::EventsInfo info;
  info.max_errors = max_errors_;
  info.max_size = max_size_;
  info.total_errors = entries_.size();
  info.total_size = total_size_;
  info.errors.assign(entries_.begin(), entries_.end());
  return info;
}

}  // namespace nydus::daemon
