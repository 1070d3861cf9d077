// A whole RAFS instance as the FUSE layer drives it: the input is a bootstrap
// and its data blob, framed as [u32 LE bootstrap length][bootstrap][blob]. The
// blob is served (in memory) under every blob id the image names, so reads
// reach the chunk-info array, decompression and digest validation with
// attacker-chosen bytes. The instance (fs::RafsFs, xattrs on) is walked
// through the Filesystem interface: lookup of every listed name, getattr,
// readlink, xattrs, open/read at the start, across chunk ends, at the end and
// past it, and readdir resumed from every offset it hands out. Errors are
// expected; crashes, UB, leaks and hangs are findings.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nydus/fs/rafs_fs.h"
#include "nydus/storage/chunk_cache.h"
#include "nydus/storage/image.h"

using namespace nydus;

namespace {

struct Walker {
  fs::Filesystem& fs;
  int budget = 400;  // operations on inodes, so a huge tree cannot time out

  void read_file(fs::Ino ino, const struct stat& st) {
    auto fh = fs.open(ino, 0);
    if (!fh) return;
    std::vector<char> buf(8192);
    const std::uint64_t size = std::uint64_t(st.st_size);
    for (std::uint64_t off : {std::uint64_t{0}, std::uint64_t{4090}, size > 100 ? size - 100 : 0, size,
                              std::uint64_t{1} << 62}) {
      (void)fs.read(ino, *fh, buf.data(), buf.size(), off_t(off));
    }
    fs.release(ino, *fh);
  }

  void visit(fs::Ino dir, int depth) {
    if (depth > 8 || --budget < 0) return;
    auto dh = fs.opendir(dir);
    if (!dh) return;
    // Two entries per call, resuming from the offset the last one gave: the
    // way the kernel pages through a directory with a small buffer.
    std::vector<std::string> names;
    std::uint64_t off = 0;
    for (int calls = 0; calls < 200; ++calls) {
      int taken = 0;
      std::uint64_t next = off;
      auto r = fs.readdir(dir, *dh, off, [&](const fs::DirEntry& e) {
        if (taken == 2) return false;
        ++taken;
        names.emplace_back(e.name);
        next = e.next_off;
        return true;
      });
      if (!r || taken == 0 || next == off) break;
      off = next;
    }
    fs.releasedir(dir, *dh);
    for (const auto& name : names) {
      if (name == "." || name == ".." || --budget < 0) continue;
      auto e = fs.lookup(dir, name);
      if (!e) continue;
      (void)fs.getattr(e->ino);
      (void)fs.listxattr(e->ino);
      (void)fs.getxattr(e->ino, "user.fuzz");
      (void)fs.getxattr(e->ino, "security.capability");
      (void)fs.access(e->ino, 4);
      if (S_ISLNK(e->attr.st_mode)) (void)fs.readlink(e->ino);
      if (S_ISREG(e->attr.st_mode)) read_file(e->ino, e->attr);
      if (S_ISDIR(e->attr.st_mode)) visit(e->ino, depth + 1);
      fs.forget(e->ino, 1);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4 || size > (4u << 20)) return 0;
  std::uint32_t boot_len;
  std::memcpy(&boot_len, data, 4);
  if (boot_len > size - 4) return 0;
  std::vector<std::uint8_t> boot(data + 4, data + 4 + boot_len), blob(data + 4 + boot_len, data + size);

  auto backend = std::make_shared<storage::MemoryBackend>();
  storage::ImageOptions io;
  io.backend = backend;
  io.digest_validate = (size & 1) != 0;  // both paths: plain reads into the reply, and decoded chunks
  io.chunk_cache = std::make_shared<storage::ChunkCache>(1u << 20);
  auto image = storage::Image::from_bytes(std::move(boot), io);
  if (!image) return 0;
  for (const auto& b : (*image)->blobs()) backend->add(b.blob_id, blob);

  fs::RafsOptions o;
  o.enable_xattr = true;
  o.start_time = {1, 0};
  auto rafs = fs::RafsFs::from_image(std::move(*image), std::move(o));
  (void)rafs->statfs(rafs->root());
  (void)rafs->getattr(rafs->root());
  (void)rafs->getattr(0);
  (void)rafs->getattr(~fs::Ino{0});
  Walker{*rafs}.visit(rafs->root(), 0);
  return 0;
}
