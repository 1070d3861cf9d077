// The API socket's file-system node: safe creation and safe removal.
//
// Upstream nydusd unlinks whatever sits at the socket path before bind() and
// again at exit (wire contract §10 #3): it deletes regular files, steals the
// path from a live daemon and may remove a successor's socket. SocketFile
// replaces that with:
//  * before bind, lstat the path: absent -> go on; not a socket -> refuse
//    (kAlreadyExists); a socket someone accepts on -> refuse (kAlreadyExists);
//    a socket nobody listens on (connect() gets ECONNREFUSED) -> stale, unlink;
//  * the socket gets `mode` without a window where it is more accessible: the
//    mode is set on the socket inode (fchmod) before bind(), which Linux uses
//    for the node bind() creates, so the process umask is never touched
//    (umask is process-wide and other threads may be creating files);
//    a chmod() after bind() then sets exactly `mode`;
//  * the (st_dev, st_ino) of the node is remembered, and remove_if_ours()
//    unlinks the path only while it still names that node.
//
// Thread-safety: a SocketFile is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <string>

#include "nydus/result.h"

namespace nydus::api {

class SocketFile {
 public:
  // Creates, binds and listens on an AF_UNIX stream socket at `path`,
  // following the rules above. The listening fd is owned by the SocketFile
  // until release_fd(). Errors: kInvalidArgument (empty path, path longer than
  // sun_path), kAlreadyExists (live socket or non-socket at the path), kIo
  // (any failing system call; the message names the call and the path).
  static Result<SocketFile> create(const std::string& path, unsigned mode);

  SocketFile() = default;
  SocketFile(SocketFile&& other) noexcept;
  SocketFile& operator=(SocketFile&& other) noexcept;
  SocketFile(const SocketFile&) = delete;
  SocketFile& operator=(const SocketFile&) = delete;
  // Closes the fd if still owned. Does not remove the path (call remove_if_ours).
  ~SocketFile();

  // Hands the listening fd over to the caller (e.g. an asio acceptor); -1 after.
  int release_fd();

  // Unlinks the path if it is still the node this object created. Returns
  // true if it was removed. Only the first call does anything.
  bool remove_if_ours();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool owned_ = false;  // a node was created and not yet removed
};

}  // namespace nydus::api
