// nydus-image: build, inspect and check RAFS v6 images (main only; the work
// is in the nydus_storage library).
//
//   nydus-image create SOURCE_DIR -B BOOTSTRAP -D BLOB_DIR [--chunk-size N] [--compressor none|lz4_block|zstd]
//                      [--digester blake3|sha256] [--chunk-info-v2] [--ci-compressor C] [--extended] [--prefetch PATH]...
//   nydus-image inspect BOOTSTRAP            superblock, blobs and tree
//   nydus-image check BOOTSTRAP -D BLOB_DIR [--blob-file F] [--validate]
//                                            reads every file; exit status 1 on any error
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>

#include "nydus/storage/builder.h"
#include "nydus/storage/image.h"
#include "nydus/storage/walk.h"

using namespace nydus;
using namespace nydus::storage;

namespace {

int die(const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.to_string().c_str());
  return 1;
}

char type_char(std::uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR: return 'd';
    case S_IFLNK: return 'l';
    case S_IFCHR: return 'c';
    case S_IFBLK: return 'b';
    case S_IFIFO: return 'p';
    case S_IFSOCK: return 's';
  }
  return '-';
}

int inspect(const std::string& boot) {
  auto im = Image::open(boot, {});
  if (!im) return die(im.error());
  const SuperBlock& sb = (*im)->super_block();
  std::printf("format:            %s\n", sb.rafs ? "RAFS v6" : "EROFS");
  std::printf("block size:        %u\n", sb.block_size);
  std::printf("root nid:          %u\n", sb.root_nid);
  std::printf("inodes:            %llu\n", (unsigned long long)sb.inodes);
  std::printf("meta blkaddr:      %u\n", sb.meta_blkaddr);
  std::printf("feature compat:    0x%x  incompat: 0x%x\n", sb.feature_compat, sb.feature_incompat);
  if (sb.rafs) {
    std::printf("flags:             0x%llx\n", (unsigned long long)sb.flags);
    std::printf("chunk size:        %u\n", sb.chunk_size);
    std::printf("blob table:        %llu +%u\n", (unsigned long long)sb.blob_table_offset, sb.blob_table_size);
    std::printf("chunk table:       %llu +%llu\n", (unsigned long long)sb.chunk_table_offset,
                (unsigned long long)sb.chunk_table_size);
    std::printf("prefetch nids:     %zu\n", (*im)->prefetch_nids().size());
  }
  for (const auto& b : (*im)->blobs()) {
    std::printf("blob %u: %s\n", b.index, b.blob_id.empty() ? "(no tag)" : b.blob_id.c_str());
    if (b.raw_device) {
      std::printf("  raw device, %u blocks\n", b.device_blocks);
      continue;
    }
    std::printf("  chunks %u, compressor %s, digest %s, features 0x%x\n", b.chunk_count, to_string(b.compressor),
                to_string(b.digester), b.features);
    std::printf("  compressed %llu, uncompressed %llu, chunk info at %llu (+%llu, %s, %llu bytes)\n",
                (unsigned long long)b.compressed_size, (unsigned long long)b.uncompressed_size,
                (unsigned long long)b.ci_offset, (unsigned long long)b.ci_compressed_size, to_string(b.ci_compressor),
                (unsigned long long)b.ci_uncompressed_size);
  }
  std::printf("tree:\n");
  auto w = walk(**im, [&](const std::string& path, const InodeAttr& a) -> Result<void> {
    std::printf("  %c%04o %6llu %5u:%-5u %3u %10llu %s", type_char(a.mode), a.mode & 07777, (unsigned long long)a.ino,
                a.uid, a.gid, a.nlink, (unsigned long long)a.size, path.c_str());
    if (S_ISLNK(a.mode)) {
      auto t = (*im)->readlink(a.ino);
      std::printf(" -> %s", t ? t->c_str() : "?");
    }
    if (S_ISCHR(a.mode) || S_ISBLK(a.mode)) std::printf(" [%u:%u]", major(a.rdev), minor(a.rdev));
    std::printf("\n");
    return {};
  });
  if (!w) return die(w.error());
  return 0;
}

int check(const std::string& boot, const std::string& blob_dir, const std::string& blob_file, bool validate) {
  ImageOptions o;
  o.digest_validate = validate;
  if (!blob_dir.empty() || !blob_file.empty()) {
    config::LocalFsConfig cfg;
    cfg.dir = blob_dir;
    cfg.blob_file = blob_file;
    auto be = LocalFsBackend::create(cfg);
    if (!be) return die(be.error());
    o.backend = std::shared_ptr<BlobBackend>(std::move(*be));
  }
  auto im = Image::open(boot, o);
  if (!im) return die(im.error());
  std::uint64_t files = 0, bytes = 0, errors = 0;
  std::vector<std::uint8_t> buf(1 << 20);
  auto w = walk(**im, [&](const std::string& path, const InodeAttr& a) -> Result<void> {
    if (auto x = (*im)->listxattr(a.ino); !x) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), x.error().to_string().c_str());
      ++errors;
    }
    if (!S_ISREG(a.mode)) return {};
    ++files;
    for (std::uint64_t off = 0; off < a.size;) {
      auto n = (*im)->read(a.ino, off, buf);
      if (!n || *n == 0) {
        std::fprintf(stderr, "%s: %s\n", path.c_str(), n ? "short read" : n.error().to_string().c_str());
        ++errors;
        break;
      }
      off += *n;
      bytes += *n;
    }
    return {};
  });
  if (!w) return die(w.error());
  std::printf("%llu files, %llu bytes read, %llu errors\n", (unsigned long long)files, (unsigned long long)bytes,
              (unsigned long long)errors);
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nydus-image: build, inspect and check RAFS v6 images"};
  app.require_subcommand(1);

  std::string src, boot, blob_dir, blob_file, cache_image, compressor = "zstd", digester = "blake3", ci_compressor = "none";
  std::uint32_t chunk_size = 1 << 20;
  bool v2 = false, extended = false, validate = false;
  std::vector<std::string> prefetch;

  auto* create = app.add_subcommand("create", "build a RAFS v6 bootstrap and blob from a directory");
  create->add_option("source", src, "source directory")->required();
  create->add_option("-B,--bootstrap", boot, "bootstrap output path")->required();
  create->add_option("-D,--blob-dir", blob_dir, "directory for the blob (named by its sha256)")->required();
  create->add_option("--chunk-size", chunk_size, "chunk size, power of two 4096..16777216");
  create->add_option("--compressor", compressor, "none, lz4_block or zstd");
  create->add_option("--digester", digester, "blake3 or sha256");
  create->add_flag("--chunk-info-v2", v2, "24-byte chunk-info entries");
  create->add_option("--ci-compressor", ci_compressor, "compression of the chunk-info array");
  create->add_flag("--extended", extended, "extended inodes everywhere (keeps mtime)");
  create->add_option("--prefetch", prefetch, "absolute path in the image to list in the prefetch table");
  create->add_option("--cache-image", cache_image,
                     "also write the uncompressed cache image (kernel EROFS reads data from it as device=)");

  std::string inspect_boot;
  auto* insp = app.add_subcommand("inspect", "print superblock, blobs and tree");
  insp->add_option("bootstrap", inspect_boot, "bootstrap file")->required();

  std::string check_boot;
  auto* chk = app.add_subcommand("check", "read every file of an image");
  chk->add_option("bootstrap", check_boot, "bootstrap file")->required();
  chk->add_option("-D,--blob-dir", blob_dir, "localfs `dir`");
  chk->add_option("--blob-file", blob_file, "localfs `blob_file`");
  chk->add_flag("--validate", validate, "verify chunk digests");

  CLI11_PARSE(app, argc, argv);

  if (*create) {
    BuildOptions o;
    o.chunk_size = chunk_size;
    auto c = parse_compressor(compressor);
    if (!c) return die(c.error());
    o.compressor = *c;
    auto cc = parse_compressor(ci_compressor);
    if (!cc) return die(cc.error());
    o.ci_compressor = *cc;
    if (digester != "blake3" && digester != "sha256") {
      return die(Error(ErrorCode::kInvalidArgument, "unknown digester `" + digester + "`"));
    }
    o.digester = digester == "sha256" ? DigestAlgo::kSha256 : DigestAlgo::kBlake3;
    o.chunk_info_v2 = v2;
    o.force_extended = extended;
    o.prefetch_paths = prefetch;
    o.cache_image = !cache_image.empty();
    std::error_code ec;
    std::filesystem::create_directories(blob_dir, ec);
    auto r = build_image_files(src, o, boot, blob_dir);
    if (!r) return die(r.error());
    if (!cache_image.empty()) {
      std::ofstream f(cache_image, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(r->cache_image.data()), std::streamsize(r->cache_image.size()));
      if (!f.flush()) return die(Error(ErrorCode::kIo, "cannot write " + cache_image));
    }
    std::printf("bootstrap %s: %zu bytes, %llu inodes\n", boot.c_str(), r->bootstrap.size(),
                (unsigned long long)r->inodes);
    if (!r->blob_id.empty()) {
      std::printf("blob %s: %zu bytes, %llu chunks\n", r->blob_id.c_str(), r->blob.size(),
                  (unsigned long long)r->chunks);
    }
    return 0;
  }
  if (*insp) return inspect(inspect_boot);
  return check(check_boot, blob_dir, blob_file, validate);
}
