// RAFS v6 / EROFS bootstrap parser: the input is a bootstrap. It is opened
// (with digest validation and an empty in-memory blob store), and every
// operation is run on every reachable inode: getattr, readdir, lookup,
// readlink, xattrs, small reads (which reach the chunk-index decoding and
// fail on the missing blob). Errors are expected; crashes, UB and hangs are
// findings.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nydus/storage/image.h"
#include "nydus/storage/walk.h"

using namespace nydus;
using namespace nydus::storage;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1 << 20)) return 0;
  ImageOptions o;
  o.backend = std::make_shared<MemoryBackend>();
  o.digest_validate = true;
  auto im = Image::from_bytes(std::vector<std::uint8_t>(data, data + size), o);
  if (!im) return 0;
  int budget = 2000;
  (void)walk(**im, [&](const std::string&, const InodeAttr& a) -> Result<void> {
    if (--budget < 0) return fail(ErrorCode::kInternal, "budget");
    (void)(*im)->listxattr(a.ino);
    (void)(*im)->getxattr(a.ino, "user.x");
    if (S_ISLNK(a.mode)) (void)(*im)->readlink(a.ino);
    if (S_ISDIR(a.mode)) (void)(*im)->lookup(a.ino, "m");
    if (S_ISREG(a.mode)) {
      std::uint8_t buf[512];
      (void)(*im)->read(a.ino, 0, buf);
      (void)(*im)->read(a.ino, a.size > 4096 ? a.size - 4096 : 0, buf);
    }
    return {};
  });
  (void)(*im)->super_block_info();
  return 0;
}
