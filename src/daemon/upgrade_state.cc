// The upgrade state blob (see header and docs/upgrade.md).
#include "nydus/daemon/upgrade_state.h"

#include <cstring>

#include <fmt/format.h>

#include "nydus/config/parse.h"
#include "nydus/config/serialize.h"
#include "nydus/storage/digest.h"

namespace nydus::daemon {
namespace {

constexpr char kMagic[8] = {'N', 'Y', 'D', 'U', 'S', 'U', 'P', 'G'};
constexpr std::size_t kHeaderSize = sizeof(kMagic) + 4 + 4 + 8;
constexpr std::size_t kDigestSize = 32;

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void str(std::string_view s) {
    u64(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void bytes(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  std::vector<std::uint8_t>& out() { return out_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t> out_;
};

// Every read checks the bytes left first; the first shortfall sticks.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  std::uint8_t u8() { return static_cast<std::uint8_t>(get(1)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(get(4)); }
  std::uint64_t u64() { return get(8); }
  std::string str() {
    std::uint64_t n = u64();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(in_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  // A count of items each at least `min_item` bytes long, checked against what is left.
  std::uint64_t count(std::size_t min_item) {
    std::uint64_t n = u64();
    if (ok_ && n > (in_.size() - pos_) / min_item) ok_ = false;
    return ok_ ? n : 0;
  }

 private:
  std::uint64_t get(int n) {
    if (!ok_ || in_.size() - pos_ < static_cast<std::size_t>(n)) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

void write_init(Writer& w, const FuseInitParams& p) {
  for (std::uint32_t v : {p.proto_major, p.proto_minor, p.capable, p.want, p.max_write, p.max_read, p.max_readahead,
                          p.max_background, p.congestion_threshold, p.time_gran}) {
    w.u32(v);
  }
}

FuseInitParams read_init(Reader& r) {
  FuseInitParams p;
  for (std::uint32_t* v : {&p.proto_major, &p.proto_minor, &p.capable, &p.want, &p.max_write, &p.max_read,
                           &p.max_readahead, &p.max_background, &p.congestion_threshold, &p.time_gran}) {
    *v = r.u32();
  }
  return p;
}

void write_mount(Writer& w, const SavedMount& m) {
  const MountRequest& q = m.request;
  w.u32(m.slot);
  w.u32(m.epoch);
  w.u8(q.type == FsType::kRafs ? 1 : 0);
  w.str(q.mountpoint);
  w.str(q.source);
  // Configurations come from UTF-8 texts; replace keeps a stray byte from throwing.
  w.str(config::to_json(q.config, config::Secrets::kKeep).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  w.u64(q.prefetch_files.size());
  for (const auto& p : q.prefetch_files) w.str(p);
  w.str(m.mounted_time);
  w.str(m.node_table);
  w.u64(m.pseudo_dirs.size());
  for (std::uint64_t id : m.pseudo_dirs) w.u64(id);
}

// Smallest encoded mount: slot, epoch, type, five empty strings' lengths and the list count.
constexpr std::size_t kMinMountSize = 4 + 4 + 1 + 8 * 5;

Result<SavedMount> read_mount(Reader& r, std::uint32_t version) {
  SavedMount m;
  m.slot = r.u32();
  std::uint32_t epoch = r.u32();
  std::uint8_t type = r.u8();
  m.request.mountpoint = r.str();
  m.request.source = r.str();
  std::string config_text = r.str();
  std::uint64_t n = r.count(8);
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) m.request.prefetch_files.push_back(r.str());
  m.mounted_time = r.str();
  if (version >= 2) {
    m.node_table = r.str();
    std::uint64_t dirs = r.count(8);
    for (std::uint64_t i = 0; i < dirs && r.ok(); ++i) m.pseudo_dirs.push_back(r.u64());
  }
  if (!r.ok()) return fail(ErrorCode::kCorrupt, "upgrade state: mount record runs past the end");
  if (epoch > 0xffff) return fail(ErrorCode::kCorrupt, fmt::format("upgrade state: epoch {} out of range", epoch));
  m.epoch = static_cast<std::uint16_t>(epoch);
  if (type > 1) return fail(ErrorCode::kCorrupt, fmt::format("upgrade state: unknown fs type {}", type));
  m.request.type = type == 1 ? FsType::kRafs : FsType::kPassthrough;
  auto config = config::parse_config(config_text);
  if (!config) {
    return fail(ErrorCode::kCorrupt,
                "upgrade state: configuration of " + m.request.mountpoint + ": " + config.error().message());
  }
  m.request.config = std::move(*config);
  return m;
}

}  // namespace

Result<std::vector<std::uint8_t>> encode_upgrade_state(const UpgradeState& state) {
  Writer payload;
  payload.str(state.fuse_mountpoint);
  payload.u64(state.fuse_conn_id);
  write_init(payload, state.init);
  payload.u64(state.mounts.size());
  for (const SavedMount& m : state.mounts) write_mount(payload, m);

  Writer w;
  w.bytes({reinterpret_cast<const std::uint8_t*>(kMagic), sizeof(kMagic)});
  w.u32(kUpgradeStateVersion);
  w.u32(0);
  w.u64(payload.out().size());
  w.bytes(payload.out());
  auto d = storage::sha256(w.out());
  if (!d) return tl::unexpected(d.error());
  w.bytes(*d);
  return std::move(w.out());
}

Result<UpgradeState> decode_upgrade_state(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kHeaderSize + kDigestSize || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return fail(ErrorCode::kCorrupt, fmt::format("upgrade state: not a nydus-cpp state ({} bytes)", bytes.size()));
  }
  Reader header(bytes.subspan(sizeof(kMagic), kHeaderSize - sizeof(kMagic)));
  std::uint32_t version = header.u32();
  (void)header.u32();  // flags, none defined
  std::uint64_t length = header.u64();
  if (length != bytes.size() - kHeaderSize - kDigestSize) {
    return fail(ErrorCode::kCorrupt, fmt::format("upgrade state: payload length {} but {} bytes present", length,
                                                 bytes.size() - kHeaderSize - kDigestSize));
  }
  auto d = storage::sha256(bytes.first(bytes.size() - kDigestSize));
  if (!d) return tl::unexpected(d.error());
  if (std::memcmp(d->data(), bytes.data() + bytes.size() - kDigestSize, kDigestSize) != 0) {
    return fail(ErrorCode::kCorrupt, "upgrade state: checksum mismatch");
  }
  if (version != 1 && version != kUpgradeStateVersion) {
    return fail(ErrorCode::kUnsupported, fmt::format("upgrade state: version {} (this daemon reads 1 to {})", version,
                                                     kUpgradeStateVersion));
  }
  Reader r(bytes.subspan(kHeaderSize, static_cast<std::size_t>(length)));
  UpgradeState s;
  s.fuse_mountpoint = r.str();
  s.fuse_conn_id = r.u64();
  s.init = read_init(r);
  std::uint64_t n = r.count(kMinMountSize);
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    auto m = read_mount(r, version);
    if (!m) return tl::unexpected(m.error());
    s.mounts.push_back(std::move(*m));
  }
  if (!r.ok()) return fail(ErrorCode::kCorrupt, "upgrade state: a field runs past the end");
  if (!r.at_end()) return fail(ErrorCode::kCorrupt, "upgrade state: trailing bytes after the last mount");
  return s;
}

}  // namespace nydus::daemon
