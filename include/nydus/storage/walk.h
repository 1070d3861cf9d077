// Depth-first walk of an image's tree, for tools and tests: every name once
// (hardlinks appear under each of their names), "." and ".." skipped,
// directories in their on-disk (sorted) order.
//
// kCorrupt if a directory is reached twice (a cycle or a hardlinked
// directory, which a valid image cannot have) or the tree is deeper than 4096.
//
// Thread-safety: as Image (const).
#pragma once

#include <functional>
#include <string>

#include "nydus/storage/image.h"

namespace nydus::storage {

// fn(path, attr) with path "/" for the root and "/a/b" below it; returning
// an error stops the walk with that error.
Result<void> walk(const Image& image, const std::function<Result<void>(const std::string&, const InodeAttr&)>& fn);

}  // namespace nydus::storage
