#include "nydus/daemon/runtime_config.h"

#include <algorithm>

namespace nydus::daemon {
namespace {

bool known_name(std::string_view name) {
  return std::find(kRuntimeConfigNames.begin(), kRuntimeConfigNames.end(), name) != kRuntimeConfigNames.end();
}

std::string redact(std::string_view full_key, const std::string& value) {
  auto colon = full_key.rfind(':');
  std::string_view name = colon == std::string_view::npos ? full_key : full_key.substr(colon + 1);
  if (name == "registry_auth") return value.empty() ? value : std::string(kRedacted);
  if (name == "proxy_url") return redact_url_credentials(value);
  return value;
}

}  // namespace

std::string redact_url_credentials(std::string_view url) {
  auto scheme = url.find("://");
  std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  auto end = url.find_first_of("/?#", start);
  std::string_view authority = url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, start));
  out += kRedacted;
  out += url.substr(start + at);
  return out;
}

Result<void> RuntimeConfigStore::update(const std::optional<std::string>& id, const api::ConfigMap& values) {
  for (const auto& [name, value] : values) {
    if (!known_name(name)) {
      return fail(ErrorCode::kInvalidArgument,
                  "unknown configuration key `" + name + "`, expected one of registry_auth, proxy_url, "
                  "dragonfly_scheduler_endpoint");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, value] : values) values_[id.value_or("") + ":" + name] = value;
  return {};
}

api::ConfigMap RuntimeConfigStore::get(const std::optional<std::string>& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  api::ConfigMap out;
  for (const auto& [key, value] : values_) {
    if (!id) {
      out[key] = redact(key, value);
    } else if (key.size() > id->size() && key.compare(0, id->size(), *id) == 0 && key[id->size()] == ':') {
      out[key.substr(id->size() + 1)] = redact(key, value);
    }
  }
  return out;
}

std::optional<std::string> RuntimeConfigStore::lookup(std::string_view id, std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(std::string(id) + ":" + std::string(name));
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

}  // namespace nydus::daemon
