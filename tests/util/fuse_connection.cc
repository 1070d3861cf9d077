#include "util/fuse_connection.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>

namespace nydus::testutil {

std::uint64_t fuse_connection_id(const std::string& mountpoint) {
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0) return 0;
  return (std::uint64_t{major(st.st_dev)} << 20) | minor(st.st_dev);
}

std::string fuse_connection_file(std::uint64_t conn, const char* file) {
  return "/sys/fs/fuse/connections/" + std::to_string(conn) + "/" + file;
}

void abort_fuse_connection(std::uint64_t conn) {
  if (conn == 0) return;
  if (::access(fuse_connection_file(conn, "abort").c_str(), W_OK) != 0) {
    ::mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, nullptr);
  }
  std::ofstream(fuse_connection_file(conn, "abort")) << "1";
}

}  // namespace nydus::testutil
