#include "util/verifying_readers.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/wait.h"

namespace nydus::testutil {

VerifyingReaders::VerifyingReaders(std::vector<std::pair<std::string, std::string>> files, unsigned n,
                                   std::function<void()> unstick)
    : files_(std::move(files)), unstick_(std::move(unstick)), last_(Clock::now()) {
  for (unsigned i = 0; i < n; ++i) done_.push_back(std::async(std::launch::async, [this, i] { run(i); }));
}

bool VerifyingReaders::progress(std::uint64_t n) {
  std::uint64_t target = reads_.load() + n * done_.size();
  return eventually([&] { return reads_.load() >= target || failures_.load() > 0; });
}

bool VerifyingReaders::stop() {
  stop_ = true;
  const auto deadline = Clock::now() + kHangGuard;
  bool ok = true;
  for (auto& f : done_) {
    if (f.valid() && f.wait_until(deadline) != std::future_status::ready) ok = false;
  }
  if (!ok && unstick_) unstick_();
  return ok;
}

std::string VerifyingReaders::first_failure() const {
  std::lock_guard lock(mu_);
  return first_failure_;
}

VerifyingReaders::Pause VerifyingReaders::take_longest_pause() {
  std::lock_guard lock(mu_);
  Pause p = longest_;
  last_ = Clock::now();
  longest_ = Pause{last_, last_};
  return p;
}

void VerifyingReaders::completed() {
  ++reads_;
  std::lock_guard lock(mu_);  // a completed read is rare next to the FUSE round trips it took
  auto now = Clock::now();
  if (now - last_ > longest_.end - longest_.begin) longest_ = Pause{last_, now};
  last_ = now;
}

void VerifyingReaders::run(unsigned id) {
  std::vector<char> buf(1 << 16);
  for (std::size_t k = id; !stop_.load(); ++k) {
    const auto& [path, want] = files_[k % files_.size()];
    // CLOEXEC: a daemon started meanwhile must not inherit a file of its own mount.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::string got;
    int err = 0;
    if (fd < 0) err = errno;
    for (ssize_t n = 1; fd >= 0 && n > 0;) {
      n = ::read(fd, buf.data(), buf.size());
      if (n < 0) err = errno;
      if (n > 0) got.append(buf.data(), static_cast<std::size_t>(n));
    }
    if (fd >= 0) ::close(fd);
    if (err == 0 && got == want) {
      completed();
    } else if (failures_++ == 0) {
      std::lock_guard lock(mu_);
      first_failure_ = path + ": " + (err ? std::strerror(err) : "content differs");
    }
  }
}

}  // namespace nydus::testutil
