// The state a daemon hands to its successor through the supervisor (live
// upgrade and failover, contract §6.3): what a new daemon needs to serve the
// same FUSE connection, i.e. every mount (type, source, configuration,
// mountpoint, prefetch list, slot) and the parameters the kernel negotiated
// at FUSE_INIT.
//
// The supervisor stores the bytes without reading them, so the format is our
// own (docs/upgrade.md):
//
//   magic "NYDUSUPG" | u32 version | u32 flags (0) | u64 payload length |
//   payload | SHA-256 of everything before it (32 bytes)
//
// little-endian, strings as u64 length + bytes. There is no size limit on
// encode; decode checks the checksum and every length against the bytes
// present before using them, and refuses other versions, so a truncated,
// padded or foreign blob is a clean kCorrupt / kUnsupported error.
//
// The configuration is kept with its credentials: the successor needs them to
// read the same backends. The blob goes only to the supervisor (which wrote
// those configurations in the first place), never to a log, event or reply.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nydus/daemon/fs_service.h"
#include "nydus/fs/fuse_server.h"
#include "nydus/result.h"

namespace nydus::daemon {

// Written; version 1 (no node tables, no pseudo directory ids) is still read.
inline constexpr std::uint32_t kUpgradeStateVersion = 2;

// What the kernel and the old daemon agreed at FUSE_INIT (fs/fuse_server.h).
using FuseInitParams = fs::FuseInitParams;

struct SavedMount {
  // The instance's slot and epoch in the pseudo-filesystem: with an image
  // inode they make the node ids the kernel holds (fs/pseudo_fs.h).
  std::uint32_t slot = 0;
  std::uint16_t epoch = 0;
  MountRequest request;     // mountpoint inside the pseudo-filesystem, type, source, config, prefetch
  std::string mounted_time; // as reported in daemon info, kept across the handover
  // Version 2. Passthrough: the node table file its ids are kept in ("" for
  // none: the successor then restores it at a new epoch, old ids ESTALE).
  std::string node_table{};
  // Version 2: node ids of the pseudo directories along the mountpoint
  // (fs::Placement::dirs). Empty from version 1: new ids.
  std::vector<std::uint64_t> pseudo_dirs{};
};

struct UpgradeState {
  std::string fuse_mountpoint;   // host path of the FUSE mount
  std::uint64_t fuse_conn_id = 0;  // (major << 20) | minor of the mount's st_dev (§6.4)
  FuseInitParams init;
  std::vector<SavedMount> mounts;
};

// Fails only when SHA-256 is unavailable (kInternal).
Result<std::vector<std::uint8_t>> encode_upgrade_state(const UpgradeState& state);

// Errors: kCorrupt (bad magic, checksum, length, or a field running past the
// end), kUnsupported (a version this daemon does not read).
Result<UpgradeState> decode_upgrade_state(std::span<const std::uint8_t> bytes);

}  // namespace nydus::daemon
