// Helpers shared by the storage benchmarks (rafs_bench, registry_bench):
// shell commands, dropping the page cache, the text-like source file.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

namespace nydus::bench {

inline int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

// A command's standard output without its trailing line breaks.
inline std::string sh_out(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

inline void drop_caches() {
  ::sync();
  std::ofstream("/proc/sys/vm/drop_caches") << "3\n";
}

// `size` bytes of words from a small vocabulary with random separators:
// compressible like text (~3x by zstd), never repeating. Kept when present.
inline void make_text_file(const std::string& path, std::uint64_t size) {
  if (std::filesystem::exists(path) && std::filesystem::file_size(path) == size) return;
  static const char* kWords[] = {"nydus", "image", "chunk", "blob", "lazy", "fuse", "erofs", "layer",
                                 "container", "snapshot", "registry", "bootstrap", "inode", "digest", "zstd", "read"};
  std::mt19937_64 rng(42);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  std::string buf;
  std::uint64_t written = 0;
  while (written < size) {
    buf.clear();
    while (buf.size() < (1 << 20)) {
      std::uint64_t r = rng();
      buf += kWords[r & 15];
      buf += " \n,.;:"[(r >> 4) % 6];
      buf += std::to_string((r >> 8) & 0xfff);
    }
    std::size_t n = std::size_t(std::min<std::uint64_t>(buf.size(), size - written));
    f.write(buf.data(), std::streamsize(n));
    written += n;
  }
}

// `size` bytes that zstd cannot shrink (the builder stores them as they are).
inline void make_random_file(const std::string& path, std::uint64_t size) {
  if (std::filesystem::exists(path) && std::filesystem::file_size(path) == size) return;
  std::mt19937_64 rng(43);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  std::vector<std::uint64_t> buf(1 << 17);
  for (std::uint64_t written = 0; written < size;) {
    for (auto& w : buf) w = rng();
    std::size_t n = std::size_t(std::min<std::uint64_t>(buf.size() * 8, size - written));
    f.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(n));
    written += n;
  }
}

}  // namespace nydus::bench
