// See nydus/storage/chunk_map.h; layout in ondisk.h (ChunkMapHeader).
#include "nydus/storage/chunk_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "file_io.h"
#include "ondisk.h"

namespace nydus::storage {
namespace {

constexpr std::uint64_t kHeaderSize = sizeof(ondisk::ChunkMapHeader);

std::uint8_t bit_mask(std::uint32_t index) { return std::uint8_t(1u << (7 - index % 8)); }

// Mask of the bits in bitmap byte `byte` that stand for real chunks (the last
// byte may have unused low bits, which are ignored on load).
std::uint8_t valid_mask(std::uint32_t byte, std::uint32_t count) {
  std::uint64_t first = std::uint64_t(byte) * 8;
  if (first + 8 <= count) return 0xFF;
  return std::uint8_t(0xFF << (8 - (count - first)));
}

bool header_trusted(const ondisk::ChunkMapHeader& h) {
  if (h.magic.value() != ondisk::kChunkMapMagic || h.version.value() != ondisk::kChunkMapVersion ||
      h.magic2.value() != ondisk::kChunkMapMagic2) {
    return false;
  }
  if (h.all_ready.value() != 0 && h.all_ready.value() != ondisk::kChunkMapAllReady) return false;
  for (std::uint8_t b : h.reserved) {
    if (b != 0) return false;
  }
  return true;
}

Result<void> pwrite_all(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off, const char* what) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off_t(off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return tl::unexpected(os_error(std::string("write chunk_map ") + what, errno));
    p += w;
    n -= std::size_t(w);
    off += std::uint64_t(w);
  }
  return {};
}

// Truncates the file to an empty map of the right size: zero bitmap, fresh header.
Result<void> reset_file(int fd, std::uint64_t size, std::uint32_t count) {
  if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, off_t(size)) != 0) {
    return tl::unexpected(os_error("truncate chunk_map", errno));
  }
  ondisk::ChunkMapHeader h{};
  h.magic = ondisk::kChunkMapMagic;
  h.version = ondisk::kChunkMapVersion;
  h.magic2 = ondisk::kChunkMapMagic2;
  h.all_ready = count == 0 ? ondisk::kChunkMapAllReady : 0;
  std::uint8_t raw[kHeaderSize];
  ondisk::store(raw, h);
  return pwrite_all(fd, raw, kHeaderSize, 0, "header");
}

}  // namespace

ChunkMap::ChunkMap(int fd, std::uint32_t count)
    : fd_(fd), count_(count), bits_(new std::atomic<std::uint8_t>[(std::uint64_t(count) + 7) / 8]) {
  for (std::uint64_t i = 0; i < (std::uint64_t(count) + 7) / 8; ++i) bits_[i].store(0, std::memory_order_relaxed);
}

ChunkMap::~ChunkMap() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<ChunkMap>> ChunkMap::open(const std::string& path, std::uint32_t chunk_count) {
  // O_NONBLOCK: a FIFO planted at the path must not hang the mount; it is then refused as not regular.
  FileFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644));
  if (fd.get() < 0) return tl::unexpected(os_error("open chunk_map " + path, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return tl::unexpected(os_error("stat chunk_map " + path, errno));
  if (!S_ISREG(st.st_mode)) return fail(ErrorCode::kInvalidArgument, "chunk_map " + path + " is not a regular file");

  const std::uint64_t size = file_size(chunk_count);
  std::vector<std::uint8_t> bytes;
  bool trusted = false;
  if (std::uint64_t(st.st_size) == size) {
    bytes.resize(size);
    if (auto r = pread_exact(fd.get(), bytes, 0, "chunk_map " + path); !r) return tl::unexpected(r.error());
    trusted = header_trusted(ondisk::load<ondisk::ChunkMapHeader>(bytes.data()));
  }
  std::unique_ptr<ChunkMap> map(new ChunkMap(fd.release(), chunk_count));
  if (!trusted) {
    map->rebuilt_ = st.st_size != 0;  // an empty file is a fresh one, not a discarded one
    if (auto r = reset_file(map->fd_, size, chunk_count); !r) return tl::unexpected(r.error());
    return map;
  }
  const bool all = ondisk::load<ondisk::ChunkMapHeader>(bytes.data()).all_ready.value() == ondisk::kChunkMapAllReady;
  std::uint32_t ready = 0;
  for (std::uint32_t b = 0; b < (std::uint64_t(chunk_count) + 7) / 8; ++b) {
    // Upstream treats all_ready as authoritative, whatever the bitmap says.
    std::uint8_t v = std::uint8_t((all ? 0xFF : bytes[kHeaderSize + b]) & valid_mask(b, chunk_count));
    map->bits_[b].store(v, std::memory_order_relaxed);
    ready += std::uint32_t(__builtin_popcount(v));
  }
  map->ready_.store(ready, std::memory_order_release);
  return map;
}

bool ChunkMap::is_ready(std::uint32_t index) const {
  if (index >= count_) return false;
  return (bits_[index / 8].load(std::memory_order_acquire) & bit_mask(index)) != 0;
}

Result<void> ChunkMap::set_ready(std::uint32_t index) {
  if (index >= count_) {
    return fail(ErrorCode::kInvalidArgument,
                "chunk " + std::to_string(index) + " out of range (" + std::to_string(count_) + " chunks)");
  }
  std::uint8_t old = bits_[index / 8].fetch_or(bit_mask(index), std::memory_order_acq_rel);
  if (old & bit_mask(index)) return {};  // already ready: nothing new to persist
  if (auto r = write_byte(index / 8); !r) return r;
  if (ready_.fetch_add(1, std::memory_order_acq_rel) + 1 == count_) return write_all_ready();
  return {};
}

// Writes the in-memory byte to the file without a lock. Two setters of bits
// in the same byte may race, an older value landing last; each writer
// re-reads the byte after its write and writes again if it changed, so the
// last write to land always carries every bit set before it.
Result<void> ChunkMap::write_byte(std::uint32_t byte_index) {
  for (;;) {
    std::uint8_t v = bits_[byte_index].load(std::memory_order_acquire);
    if (auto r = pwrite_all(fd_, &v, 1, kHeaderSize + byte_index, "bitmap"); !r) return r;
    if (bits_[byte_index].load(std::memory_order_acquire) == v) return {};
  }
}

Result<void> ChunkMap::write_all_ready() {
  ondisk::Le32 flag;
  flag = ondisk::kChunkMapAllReady;
  return pwrite_all(fd_, flag.data(), sizeof(flag), offsetof(ondisk::ChunkMapHeader, all_ready), "header");
}

}  // namespace nydus::storage
