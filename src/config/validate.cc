// Semantic checks of ConfigV2 (contract §7.2–§7.4), collecting every problem.
//
// The rules are upstream's `validate()` methods; the difference is that each
// failed rule becomes a Problem naming the key, instead of one `false`.
#include "nydus/config/validate.h"

#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace nydus::config {
namespace {

constexpr std::string_view kBackendTypes = "localfs, localdisk, oss, s3, registry, http-proxy";

class Collector {
 public:
  explicit Collector(std::string_view prefix) : prefix_(prefix) {}

  void add(std::string_view key, std::string message) {
    std::string full(prefix_);
    if (!key.empty()) {
      if (!full.empty()) full += '.';
      full += key;
    }
    problems_.push_back(Problem{std::move(full), std::move(message)});
  }
  void non_empty(std::string_view key, const std::string& value) {
    if (value.empty()) add(key, "must not be empty");
  }
  std::vector<Problem> take() { return std::move(problems_); }

 private:
  std::string_view prefix_;
  std::vector<Problem> problems_;
};

void append(std::vector<Problem>& to, std::vector<Problem> from) {
  for (auto& p : from) to.push_back(std::move(p));
}

std::string join(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  return fmt::format("{}.{}", prefix, key);
}

// Shared by cache.prefetch and rafs.prefetch; only enabled prefetch counts.
void check_prefetch(Collector& c, std::string_view key, const PrefetchConfigV2& p) {
  if (!p.enable) return;
  if (p.batch_size > kMaxBatchSize) {
    c.add(join(key, "batch_size"),
          fmt::format("must be at most {} when prefetch is enabled, got {}", kMaxBatchSize, p.batch_size));
  }
  if (p.threads == 0 || p.threads > kMaxPrefetchThreads) {
    c.add(join(key, "threads"), fmt::format("must be between 1 and {} when prefetch is enabled, got {}",
                                            kMaxPrefetchThreads, p.threads));
  }
}

void check_http_proxy_addr(Collector& c, const std::string& addr) {
  if (addr.empty()) return c.add("http-proxy.addr", "must not be empty");
  if (addr.starts_with("http://") || addr.starts_with("https://")) return;
  std::error_code ec;
  if (addr.front() == '/' && std::filesystem::exists(addr, ec)) return;
  c.add("http-proxy.addr",
        fmt::format("must start with http:// or https://, or be the absolute path of an existing Unix socket, got `{}`",
                    addr));
}

}  // namespace

std::string Problem::to_string() const { return key.empty() ? message : fmt::format("{}: {}", key, message); }

std::string render(const std::vector<Problem>& problems) {
  std::string out;
  for (const Problem& p : problems) {
    if (!out.empty()) out += "; ";
    out += p.to_string();
  }
  return out;
}

std::vector<Problem> validate_backend(const BackendConfigV2& b, std::string_view prefix) {
  Collector c(prefix);
  auto missing = [&](std::string_view section) {
    c.add(section, fmt::format("section required when type is `{}`", b.type));
  };
  if (b.type == "localfs") {
    if (!b.localfs) {
      missing("localfs");
    } else if (b.localfs->blob_file.empty() && b.localfs->dir.empty()) {
      c.add("localfs.dir", "required when blob_file is empty");
    }
  } else if (b.type == "localdisk") {
    if (!b.localdisk) {
      missing("localdisk");
    } else {
      c.non_empty("localdisk.device_path", b.localdisk->device_path);
    }
  } else if (b.type == "oss") {
    if (!b.oss) {
      missing("oss");
    } else {
      c.non_empty("oss.endpoint", b.oss->endpoint);
      c.non_empty("oss.bucket_name", b.oss->bucket_name);
    }
  } else if (b.type == "s3") {
    if (!b.s3) {
      missing("s3");
    } else {
      c.non_empty("s3.region", b.s3->region);
      c.non_empty("s3.bucket_name", b.s3->bucket_name);
    }
  } else if (b.type == "registry") {
    if (!b.registry) {
      missing("registry");
    } else {
      c.non_empty("registry.host", b.registry->host);
      c.non_empty("registry.repo", b.registry->repo);
    }
  } else if (b.type == "http-proxy") {
    if (!b.http_proxy) {
      missing("http-proxy");
    } else {
      check_http_proxy_addr(c, b.http_proxy->addr);
    }
  } else if (b.type.empty()) {
    c.add("type", fmt::format("must not be empty (expected one of {})", kBackendTypes));
  } else {
    c.add("type", fmt::format("unsupported backend type `{}` (expected one of {})", b.type, kBackendTypes));
  }
  return c.take();
}

std::vector<Problem> validate_cache(const CacheConfigV2& cache, std::string_view prefix) {
  Collector c(prefix);
  const std::string& t = cache.type;
  if (t == "blobcache" || t == "filecache") {
    if (!cache.filecache) {
      c.add("filecache", fmt::format("section required when type is `{}`", t));
    } else {
      c.non_empty("filecache.work_dir", cache.filecache->work_dir);
    }
  } else if (t == "fscache") {
    if (!cache.fscache) {
      c.add("fscache", "section required when type is `fscache`");
    } else {
      c.non_empty("fscache.work_dir", cache.fscache->work_dir);
    }
  } else if (!t.empty() && t != "dummycache") {
    c.add("type", fmt::format("unsupported cache type `{}` (expected blobcache, filecache, fscache, dummycache or "
                              "empty)",
                              t));
  }
  check_prefetch(c, "prefetch", cache.prefetch);
  return c.take();
}

std::vector<Problem> validate_rafs(const RafsConfigV2& rafs, std::string_view prefix) {
  Collector c(prefix);
  if (rafs.mode != "direct" && rafs.mode != "cached") {
    c.add("mode", fmt::format("must be `direct` or `cached`, got `{}`", rafs.mode));
  }
  if (rafs.batch_size > kMaxBatchSize) {
    c.add("batch_size", fmt::format("must be at most {}, got {}", kMaxBatchSize, rafs.batch_size));
  }
  check_prefetch(c, "prefetch", rafs.prefetch);
  return c.take();
}

std::vector<Problem> validate(const ConfigV2& config) {
  std::vector<Problem> out;
  if (config.version != 2) out.push_back({"version", fmt::format("must be 2, got {}", config.version)});
  if (config.backend) append(out, validate_backend(*config.backend));
  if (config.cache) append(out, validate_cache(*config.cache));
  if (config.rafs) append(out, validate_rafs(*config.rafs));
  return out;
}

std::vector<Problem> validate_for_rafs_mount(const ConfigV2& config) {
  std::vector<Problem> out = validate(config);
  if (!config.cache) out.push_back({"cache", "section required for a RAFS mount"});
  if (!config.rafs) out.push_back({"rafs", "section required for a RAFS mount"});
  if (config.overlay) {
    if (config.overlay->upper_dir.empty()) out.push_back({"overlay.upper_dir", "must not be empty"});
    if (config.overlay->work_dir.empty()) out.push_back({"overlay.work_dir", "must not be empty"});
  }
  return out;
}

}  // namespace nydus::config
