// A blob cache's chunk_map file with arbitrary contents, opened for a chunk
// count from the input (byte 0 bit 0: derived from the file length so the
// trusted path is reachable; else bytes 1-3, at most 1 << 20), then a few
// set_ready/is_ready calls from bytes 4-15, and a reopen that must keep them.
// One temp file per process, rewritten for each input.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "nydus/storage/chunk_map.h"

using namespace nydus::storage;

namespace {

const std::string& map_path() {
  static const std::string path = [] {
    char dir[] = "/tmp/chunk_map_fuzz.XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    return std::string(dir) + "/blob.blob.data.chunk_map";
  }();
  return path;
}

void write_file(const std::string& path, const std::uint8_t* p, std::size_t n) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::abort();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) std::abort();
    p += w;
    n -= std::size_t(w);
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kPrefix = 16;
  constexpr std::uint32_t kMaxChunks = 1u << 20;
  if (size < kPrefix || size > ChunkMap::file_size(kMaxChunks) + kPrefix) return 0;
  const std::size_t file_len = size - kPrefix;
  std::uint32_t count = std::uint32_t(data[1] | data[2] << 8 | data[3] << 16) % (kMaxChunks + 1);
  if (data[0] & 1) {
    count = file_len <= 4096 ? 0 : std::uint32_t((file_len - 4096) * 8 - (data[0] >> 1 & 7));
    if (count > kMaxChunks || ChunkMap::file_size(count) != file_len) count = 0;
  }
  const std::string& path = map_path();
  write_file(path, data + kPrefix, file_len);

  auto map = ChunkMap::open(path, count);
  if (!map) std::abort();  // a regular file we can write: always usable
  ChunkMap& m = **map;
  if (m.chunk_count() != count || m.ready_count() > count || m.is_ready(count)) std::abort();
  std::uint32_t set[6];
  for (int i = 0; i < 6; ++i) {
    std::uint32_t raw = std::uint32_t(data[4 + 2 * i] | data[5 + 2 * i] << 8);
    set[i] = count == 0 ? raw : ((data[0] & 0x80) ? raw : raw % count);
    auto r = m.set_ready(set[i]);
    if (r.has_value() != (set[i] < count)) std::abort();
    if (set[i] < count && !m.is_ready(set[i])) std::abort();
  }
  if (m.ready_count() > count || (m.all_ready() && count > 0 && !m.is_ready(count - 1))) std::abort();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || std::uint64_t(st.st_size) != ChunkMap::file_size(count)) std::abort();
  const std::uint32_t ready = m.ready_count();
  map->reset();
  auto again = ChunkMap::open(path, count);
  if (!again || (*again)->rebuilt() || (*again)->ready_count() != ready) std::abort();
  for (std::uint32_t i : set) {
    if (i < count && !(*again)->is_ready(i)) std::abort();
  }
  return 0;
}
