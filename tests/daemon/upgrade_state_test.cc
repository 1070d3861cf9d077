// The upgrade state blob: round trips of any size, and clean errors for
// anything that is not a complete blob of this version.
#include "nydus/daemon/upgrade_state.h"

#include <gtest/gtest.h>

#include "nydus/config/parse.h"
#include "nydus/storage/digest.h"

namespace nydus::daemon {
namespace {

constexpr const char* kRafsConfig = R"({"version":2,"backend":{"type":"registry","registry":{
  "host":"registry.example.com","repo":"library/app","auth":"dXNlcjpzZWNyZXQ="}},
  "cache":{"type":"blobcache","filecache":{"work_dir":"/var/cache/nydus"}},"rafs":{"mode":"direct"}})";

SavedMount rafs_mount(unsigned i) {
  SavedMount m;
  m.slot = i % 255 + 1;
  m.epoch = static_cast<std::uint16_t>(i * 7);
  m.request.mountpoint = "/snapshots/" + std::to_string(i) + "/fs";
  m.request.type = FsType::kRafs;
  m.request.source = "/var/lib/nydus/snapshots/" + std::to_string(i) + "/image/image.boot";
  m.request.config = *config::parse_config(kRafsConfig);
  m.request.prefetch_files = {"/usr/bin", "/etc/passwd"};
  m.mounted_time = "2026-11-28 09:00:00.5 +00:00:00";
  return m;
}

UpgradeState sample(unsigned mounts) {
  UpgradeState s;
  s.fuse_mountpoint = "/run/nydus/mnt";
  s.fuse_conn_id = (std::uint64_t{0} << 20) | 57;
  s.init = {7, 31, 0x1234567u, 0x1034561u, 1u << 20, 0, 128u << 10, 12, 9, 1};
  for (unsigned i = 0; i < mounts; ++i) s.mounts.push_back(rafs_mount(i));
  SavedMount pt;
  pt.slot = 3;
  pt.epoch = 65535;
  pt.request.mountpoint = "/";
  pt.request.source = "/srv/data";
  pt.mounted_time = "2026-11-28 09:00:01.25 +00:00:00";
  pt.node_table = "/run/nydusd/nydusd-d1-state/passthrough-1-2-3.nodes";
  pt.pseudo_dirs = {5, 9};
  s.mounts.push_back(pt);
  return s;
}

void expect_same(const UpgradeState& a, const UpgradeState& b) {
  EXPECT_EQ(a.fuse_mountpoint, b.fuse_mountpoint);
  EXPECT_EQ(a.fuse_conn_id, b.fuse_conn_id);
  EXPECT_EQ(a.init, b.init);
  ASSERT_EQ(a.mounts.size(), b.mounts.size());
  for (std::size_t i = 0; i < a.mounts.size(); ++i) {
    const SavedMount& x = a.mounts[i];
    const SavedMount& y = b.mounts[i];
    EXPECT_EQ(x.slot, y.slot);
    EXPECT_EQ(x.epoch, y.epoch);
    EXPECT_EQ(x.mounted_time, y.mounted_time);
    EXPECT_EQ(x.request.mountpoint, y.request.mountpoint);
    EXPECT_EQ(x.request.type, y.request.type);
    EXPECT_EQ(x.request.source, y.request.source);
    EXPECT_EQ(x.request.config, y.request.config) << i;
    EXPECT_EQ(x.request.prefetch_files, y.request.prefetch_files);
    EXPECT_EQ(x.node_table, y.node_table);
    EXPECT_EQ(x.pseudo_dirs, y.pseudo_dirs);
  }
}

TEST(UpgradeStateTest, RoundTripKeepsEveryField) {
  UpgradeState s = sample(3);
  auto back = decode_upgrade_state(encode_upgrade_state(s).value());
  ASSERT_TRUE(back) << back.error().message();
  expect_same(s, *back);
  // Credentials survive: the successor must read the same registry.
  EXPECT_EQ(back->mounts[0].request.config.backend->registry->auth, "dXNlcjpzZWNyZXQ=");
}

TEST(UpgradeStateTest, TwoThousandMountsRoundTrip) {
  UpgradeState s = sample(2000);
  auto bytes = encode_upgrade_state(s).value();
  EXPECT_GT(bytes.size(), 32u << 10) << "larger than upstream's 32 KiB receive buffer";
  auto back = decode_upgrade_state(bytes);
  ASSERT_TRUE(back) << back.error().message();
  expect_same(s, *back);
}

TEST(UpgradeStateTest, EmptyStateRoundTrips) {
  auto back = decode_upgrade_state(encode_upgrade_state(UpgradeState{}).value());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_TRUE(back->mounts.empty());
}

TEST(UpgradeStateTest, EveryTruncationIsACleanError) {
  auto bytes = encode_upgrade_state(sample(2)).value();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_upgrade_state(std::span(bytes).first(n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << n;
  }
  auto padded = bytes;
  padded.push_back(0);
  EXPECT_FALSE(decode_upgrade_state(padded));
}

TEST(UpgradeStateTest, EveryFlippedByteIsACleanError) {
  auto bytes = encode_upgrade_state(sample(1)).value();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= 0x5a;
    auto r = decode_upgrade_state(copy);
    EXPECT_FALSE(r) << "byte " << i;
  }
}

TEST(UpgradeStateTest, GarbageAndOtherVersionsAreRefused) {
  std::vector<std::uint8_t> garbage(4096, 0xab);
  EXPECT_EQ(decode_upgrade_state(garbage).error().code(), ErrorCode::kCorrupt);
  EXPECT_EQ(decode_upgrade_state({}).error().code(), ErrorCode::kCorrupt);
  const char text[] = "NYDUSUPG not really a state blob, just text that starts like one.................";
  EXPECT_EQ(decode_upgrade_state(std::span(reinterpret_cast<const std::uint8_t*>(text), sizeof(text))).error().code(),
            ErrorCode::kCorrupt);
}

TEST(UpgradeStateTest, AnotherVersionIsUnsupported) {
  auto bytes = encode_upgrade_state(sample(1)).value();
  bytes[8] = 3;  // version, right after the magic (this daemon reads 1 and 2); the checksum is made valid again
  auto d = storage::sha256(std::span(bytes).first(bytes.size() - 32)).value();
  std::copy(d.begin(), d.end(), bytes.end() - 32);
  auto r = decode_upgrade_state(bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(r.error().message().find("version 3"), std::string::npos) << r.error().message();
}

// A version 1 blob (a daemon from before node tables) is still read: its
// mounts come back without node table or pseudo directory ids.
TEST(UpgradeStateTest, VersionOneIsStillRead) {
  UpgradeState s;
  s.fuse_mountpoint = "/mnt";
  s.mounts.push_back(rafs_mount(4));
  auto v2 = encode_upgrade_state(s).value();
  // Version 1 = version 2 without the last mount's trailing empty table name and empty id list.
  std::vector<std::uint8_t> v1(v2.begin(), v2.end() - 32 - 16);
  v1[8] = 1;
  std::uint64_t len = v1.size() - 24;
  for (int i = 0; i < 8; ++i) v1[16 + i] = static_cast<std::uint8_t>(len >> (8 * i));
  auto d = storage::sha256(v1).value();
  v1.insert(v1.end(), d.begin(), d.end());
  auto back = decode_upgrade_state(v1);
  ASSERT_TRUE(back) << back.error().message();
  expect_same(s, *back);
  EXPECT_EQ(v2[8], 2u) << "written as version 2";
}

}  // namespace
}  // namespace nydus::daemon
