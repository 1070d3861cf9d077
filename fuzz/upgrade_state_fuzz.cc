// Live-upgrade state decoder over arbitrary bytes, and the round trip: what
// decodes must encode to bytes that decode to the same state. Each input is
// decoded twice: as is, and with its length field and SHA-256 trailer made
// right, so mutations reach the payload parser past the checksum.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "nydus/config/serialize.h"
#include "nydus/daemon/upgrade_state.h"
#include "nydus/storage/digest.h"

using namespace nydus;
using namespace nydus::daemon;

namespace {

std::string config_text(const config::ConfigV2& c) {
  return config::to_json(c, config::Secrets::kKeep).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool same(const SavedMount& a, const SavedMount& b) {
  return a.slot == b.slot && a.epoch == b.epoch && a.mounted_time == b.mounted_time &&
         a.request.mountpoint == b.request.mountpoint && a.request.type == b.request.type &&
         a.request.source == b.request.source && a.request.prefetch_files == b.request.prefetch_files &&
         config_text(a.request.config) == config_text(b.request.config) && a.node_table == b.node_table &&
         a.pseudo_dirs == b.pseudo_dirs;
}

bool same(const UpgradeState& a, const UpgradeState& b) {
  if (a.fuse_mountpoint != b.fuse_mountpoint || a.fuse_conn_id != b.fuse_conn_id || !(a.init == b.init) ||
      a.mounts.size() != b.mounts.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.mounts.size(); ++i) {
    if (!same(a.mounts[i], b.mounts[i])) return false;
  }
  return true;
}

void check(std::span<const std::uint8_t> input) {
  auto state = decode_upgrade_state(input);
  if (!state) return;
  auto bytes = encode_upgrade_state(*state);
  if (!bytes) std::abort();
  auto again = decode_upgrade_state(*bytes);
  if (!again || !same(*state, *again)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1 << 20)) return 0;
  check(std::span<const std::uint8_t>(data, size));
  constexpr std::size_t kHeader = 24, kDigest = 32;  // magic, version, flags, length | SHA-256
  if (size < kHeader + kDigest) return 0;
  std::vector<std::uint8_t> fixed(data, data + size);
  const std::uint64_t length = size - kHeader - kDigest;
  for (int i = 0; i < 8; ++i) fixed[16 + i] = std::uint8_t(length >> (8 * i));
  auto d = nydus::storage::sha256(std::span<const std::uint8_t>(fixed).first(size - kDigest));
  if (!d) return 0;
  std::copy(d->begin(), d->end(), fixed.end() - kDigest);
  check(fixed);
  return 0;
}
