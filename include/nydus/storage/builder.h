// Builds a RAFS v6 image (bootstrap + one data blob) from a directory tree:
// the project's test-image generator and `nydus-image create`.
//
// Output follows rafs-format.md section 1: EROFS superblock with the nydus
// extension, one device slot and blob-table entry, compact inodes unless a
// field needs the extended form (or `force_extended`), inline xattrs,
// tail-packed directories and symlinks, chunk-based regular files with
// chunk indexes, the 80-byte chunk table, a prefetch table if asked. Chunks
// are de-duplicated by digest (so holes and repeated data cost one chunk) and
// stored compressed only when that makes them smaller. The blob holds the
// chunks, then the CI array (v1 or v2, compressed with `ci_compressor`) and
// its 4 KiB header; its id is the sha256 of the blob file. The kernel's EROFS
// driver mounts the bootstrap (metadata only: data needs the uncompressed
// cache image).
//
// Thread-safety: a Builder is single-threaded; distinct builders are independent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nydus/result.h"
#include "nydus/storage/compression.h"
#include "nydus/storage/digest.h"

namespace nydus::storage {

struct BuildOptions {
  std::uint32_t chunk_size = 1 << 20;  // power of two, 4 KiB .. 16 MiB
  Compressor compressor = Compressor::kZstd;
  DigestAlgo digester = DigestAlgo::kBlake3;
  bool chunk_info_v2 = false;
  Compressor ci_compressor = Compressor::kNone;
  bool force_extended = false;          // extended inodes everywhere (keeps mtime)
  std::vector<std::string> prefetch_paths;  // absolute paths in the image
  // Also produce the uncompressed cache image (every chunk at its 4 KiB
  // aligned uncompressed offset, what a blob cache holds as `<id>.blob.data`):
  // the kernel's EROFS driver reads file data from it given as `device=`.
  bool cache_image = false;
};

struct BuildResult {
  std::vector<std::uint8_t> bootstrap;
  std::vector<std::uint8_t> blob;  // empty when the tree has no file data
  std::vector<std::uint8_t> cache_image;  // with BuildOptions::cache_image
  std::string blob_id;             // sha256 hex of `blob`; "" when no blob
  std::uint64_t inodes = 0;
  std::uint64_t chunks = 0;        // unique chunks in the blob
};

// Walks `source_dir` (not following symlinks) and builds the image in
// memory. kInvalidArgument for bad options, kIo for unreadable files,
// kUnsupported for trees the format cannot hold (names > 255 bytes, symlink
// targets > 4095 bytes, more than 2^24 chunks).
Result<BuildResult> build_image(const std::string& source_dir, const BuildOptions& options);

// build_image, then writes `bootstrap_path` and `<blob_dir>/<blob_id>` (no blob file when there is no data).
Result<BuildResult> build_image_files(const std::string& source_dir, const BuildOptions& options,
                                      const std::string& bootstrap_path, const std::string& blob_dir);

}  // namespace nydus::storage
