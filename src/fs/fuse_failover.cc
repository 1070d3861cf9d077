// Failover policy (see header).
#include "nydus/fs/fuse_failover.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace nydus::fs {

namespace {

// Debian 12's <linux/fuse.h> (protocol 7.38) predates resend (7.40, Linux 6.9).
constexpr std::int32_t kNotifyResend = 7;
constexpr std::uint32_t kResendMinor = 40;

bool write_fusectl(std::uint64_t conn_id, const char* file) {
  std::string path = fmt::format("/sys/fs/fuse/connections/{}/{}", conn_id, file);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("failover: cannot open {}: {}", path, std::strerror(errno));
    return false;
  }
  bool ok = ::write(fd, "1", 1) == 1;
  if (!ok) spdlog::warn("failover: writing {} failed: {}", path, std::strerror(errno));
  ::close(fd);
  return ok;
}

bool notify_resend(int fuse_fd) {
  fuse_out_header h{};
  h.len = sizeof h;
  h.error = kNotifyResend;  // notifications carry their code in `error`, with unique 0
  h.unique = 0;
  if (::write(fuse_fd, &h, sizeof h) == static_cast<ssize_t>(sizeof h)) return true;
  spdlog::warn("failover: FUSE_NOTIFY_RESEND refused: {}", std::strerror(errno));
  return false;
}

}  // namespace

std::optional<FailoverPolicy> parse_failover_policy(std::string_view s) {
  if (s == "none") return FailoverPolicy::kNone;
  if (s == "resend") return FailoverPolicy::kResend;
  if (s == "flush") return FailoverPolicy::kFlush;
  return std::nullopt;
}

bool apply_failover_policy(int fuse_fd, const FuseInitParams& init, std::uint64_t conn_id, FailoverPolicy policy) {
  bool ok = true;
  switch (policy) {
    case FailoverPolicy::kNone:
      return true;
    case FailoverPolicy::kResend:
      ok = (init.proto_major == 7 && init.proto_minor >= kResendMinor && notify_resend(fuse_fd)) ||
           write_fusectl(conn_id, "resend");
      if (ok) spdlog::info("failover: asked the kernel to resend the requests of FUSE connection {}", conn_id);
      break;
    case FailoverPolicy::kFlush:
      ok = write_fusectl(conn_id, "flush");
      if (ok) spdlog::info("failover: flushed FUSE connection {}", conn_id);
      break;
  }
  return ok;
}

}  // namespace nydus::fs
