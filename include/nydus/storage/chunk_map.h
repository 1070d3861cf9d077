// The persisted ready-map of a blob cache: `<blob_id>.blob.data.chunk_map`,
// byte-compatible with upstream nydusd's (registry-and-cache.md section 3), so
// a node can switch daemons without losing or trusting a wrong cache.
//
// A bit is set only by set_ready(), which the caller calls after the chunk's
// data is in `.blob.data`; bits only ever go from 0 to 1 while the map is open.
// The bitmap lives in memory (atomics, no lock) and every change is written
// through to the file with pwrite; the file is never mmap'ed, so a file
// truncated under a mount cannot SIGBUS the daemon.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "nydus/result.h"

namespace nydus::storage {

class ChunkMap {
 public:
  // Opens (creating if absent) the chunk_map at `path` for a blob of
  // `chunk_count` chunks. A file of the wrong size, magic, version or header
  // is discarded and rebuilt empty (rebuilt() says so). kInvalidArgument if
  // `path` exists and is not a regular file; kIo if it cannot be created/read.
  static Result<std::unique_ptr<ChunkMap>> open(const std::string& path, std::uint32_t chunk_count);

  // The file size the layout requires: 4096 + ceil(chunk_count / 8).
  static std::uint64_t file_size(std::uint32_t chunk_count) { return 4096 + (std::uint64_t(chunk_count) + 7) / 8; }

  ~ChunkMap();
  ChunkMap(const ChunkMap&) = delete;
  ChunkMap& operator=(const ChunkMap&) = delete;

  std::uint32_t chunk_count() const { return count_; }
  bool is_ready(std::uint32_t index) const;
  // Marks chunk `index` ready in memory and in the file (and the header's
  // all_ready once the last chunk is in). Call only after its data is
  // written. An error means the file is not updated; the in-memory bit is
  // still set (the data is there for this process) — callers may keep
  // serving and report the cache as degraded.
  Result<void> set_ready(std::uint32_t index);
  std::uint32_t ready_count() const { return ready_.load(std::memory_order_acquire); }
  bool all_ready() const { return ready_count() == count_; }
  // True if open() found an untrusted file and started over.
  bool rebuilt() const { return rebuilt_; }

 private:
  ChunkMap(int fd, std::uint32_t count);
  Result<void> write_byte(std::uint32_t byte_index);
  Result<void> write_all_ready();

  int fd_;
  std::uint32_t count_;
  bool rebuilt_ = false;
  std::unique_ptr<std::atomic<std::uint8_t>[]> bits_;
  std::atomic<std::uint32_t> ready_{0};
};

}  // namespace nydus::storage
