// Tree walk (walk.h): readdir of each directory, recursion with a depth
// limit and a visited set so corrupt images cannot loop forever.
#include "nydus/storage/walk.h"

#include <sys/stat.h>

#include <set>
#include <vector>

namespace nydus::storage {
namespace {

Result<void> walk_dir(const Image& im, std::uint64_t ino, const std::string& path, int depth,
                      std::set<std::uint64_t>& seen,
                      const std::function<Result<void>(const std::string&, const InodeAttr&)>& fn) {
  if (depth > 4096) return fail(ErrorCode::kCorrupt, "bad image: directory tree deeper than 4096");
  if (!seen.insert(ino).second) return fail(ErrorCode::kCorrupt, "bad image: directory " + std::to_string(ino) + " reached twice");
  std::vector<std::pair<std::string, std::uint64_t>> entries;
  auto r = im.readdir(ino, 0, [&](const DirEntry& e) {
    if (e.name != "." && e.name != "..") entries.emplace_back(std::string(e.name), e.ino);
    return true;
  });
  if (!r) return r;
  for (const auto& [name, child] : entries) {
    auto a = im.getattr(child);
    if (!a) return tl::unexpected(a.error());
    std::string p = (path == "/" ? "/" : path + "/") + name;
    if (auto f = fn(p, *a); !f) return f;
    if (S_ISDIR(a->mode)) {
      if (auto w = walk_dir(im, child, p, depth + 1, seen, fn); !w) return w;
    }
  }
  return {};
}

}  // namespace

Result<void> walk(const Image& image, const std::function<Result<void>(const std::string&, const InodeAttr&)>& fn) {
  auto root = image.getattr(image.root_ino());
  if (!root) return tl::unexpected(root.error());
  if (auto f = fn("/", *root); !f) return f;
  std::set<std::uint64_t> seen;
  return walk_dir(image, image.root_ino(), "/", 0, seen, fn);
}

}  // namespace nydus::storage
