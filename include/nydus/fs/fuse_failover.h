// The failover policy of contract §6.4, applied by a daemon that takes over a
// FUSE connection before it reads from it:
//   resend: FUSE_NOTIFY_RESEND on /dev/fuse (Linux >= 6.9, protocol >= 7.40):
//           the kernel puts every request a daemon read and never answered
//           back into its queue, so the successor answers them; on an older
//           protocol, or when the kernel refuses, write 1 to the fusectl file
//           /sys/fs/fuse/connections/<id>/resend (as upstream; absent on
//           kernels without resend support);
//   flush:  write 1 to /sys/fs/fuse/connections/<id>/flush;
//   none:   nothing: such requests wait until the connection ends.
// Failure is logged, never fatal (§6.4).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "nydus/fs/fuse_server.h"

namespace nydus::fs {

// "none" | "resend" | "flush"; nullopt otherwise.
std::optional<FailoverPolicy> parse_failover_policy(std::string_view s);

// True when the policy was carried out.
bool apply_failover_policy(int fuse_fd, const FuseInitParams& init, std::uint64_t conn_id, FailoverPolicy policy);

}  // namespace nydus::fs
