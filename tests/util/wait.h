// Waiting in tests without depending on machine load.
//
// Tests synchronise on events (condition variables, futures, replies, state
// they can poll); a time limit only guards against a hang and is never part
// of what a test checks. kHangGuard is generous on purpose: a loaded 2-core
// CI machine running the suite under AddressSanitizer must never reach it.
#pragma once

#include <chrono>
#include <thread>

namespace nydus::testutil {

inline constexpr std::chrono::milliseconds kHangGuard = std::chrono::seconds(30);

// Polls `cond` until it holds (true) or `guard` has passed (false).
template <class F>
bool eventually(F cond, std::chrono::milliseconds guard = kHangGuard) {
  auto end = std::chrono::steady_clock::now() + guard;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace nydus::testutil
