// The runtime key/value store behind GET/PUT /api/v1/config (contract §2.1.6).
//
// Keys are "<id>:<name>" where <id> is the instance id (the RAFS mountpoint
// inside the daemon, "" when the client gave none) and <name> one of
// kRuntimeConfigNames. Differences from upstream, on purpose:
//  * an update is validated as a whole before anything is stored (§10 #20);
//  * reads redact secrets (§10 #21): registry_auth reads as "<redacted>" and
//    credentials inside proxy_url are masked. lookup() gives backends the real value.
// Thread-safe.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "nydus/api/types.h"
#include "nydus/result.h"

namespace nydus::daemon {

inline constexpr std::array<std::string_view, 3> kRuntimeConfigNames = {"registry_auth", "proxy_url",
                                                                         "dragonfly_scheduler_endpoint"};
inline constexpr std::string_view kRedacted = "<redacted>";

class RuntimeConfigStore {
 public:
  // Stores every entry or none. Errors: kInvalidArgument naming the first unknown key.
  Result<void> update(const std::optional<std::string>& id, const api::ConfigMap& values);

  // With id: that instance's entries with the "<id>:" prefix removed; without:
  // every entry under its full key. Secrets redacted.
  api::ConfigMap get(const std::optional<std::string>& id) const;

  // The unredacted value, for the component that needs it.
  std::optional<std::string> lookup(std::string_view id, std::string_view name) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> values_;  // guarded by mu_
};

// proxy_url with any "user:password@" userinfo replaced by "<redacted>@".
std::string redact_url_credentials(std::string_view url);

}  // namespace nydus::daemon
