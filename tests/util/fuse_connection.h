// The kernel's side of a FUSE mount as tests see it: the connection id and
// its fusectl files (/sys/fs/fuse/connections/<id>/), used to end a
// connection nobody serves so that readers stuck on it return.
#pragma once

#include <cstdint>
#include <string>

namespace nydus::testutil {

// `(major << 20) | minor` of the mountpoint's st_dev (contract §6.4); 0 when
// it cannot be stat()ed. Call it while a daemon serves the mount.
std::uint64_t fuse_connection_id(const std::string& mountpoint);
// /sys/fs/fuse/connections/<conn>/<file>.
std::string fuse_connection_file(std::uint64_t conn, const char* file);
// Writes 1 to the connection's `abort` (mounting fusectl first if needed):
// every pending and future request fails with ENOTCONN. Nothing for conn 0.
void abort_fuse_connection(std::uint64_t conn);

}  // namespace nydus::testutil
