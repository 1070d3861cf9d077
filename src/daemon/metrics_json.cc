// Rendering of the §4.3–§4.9 snapshots (see header). Key order is upstream's
// serialisation order; ordered_json keeps it.
#include "nydus/daemon/metrics_json.h"

#include <nlohmann/json.hpp>

#include "nydus/api/payloads.h"

namespace nydus::daemon {

namespace {

using ojson = nlohmann::ordered_json;

template <std::size_t N>
ojson array_of(const std::array<std::uint64_t, N>& a) {
  ojson j = ojson::array();
  for (std::uint64_t v : a) j.push_back(v);
  return j;
}

// A JSON array of `one(item)` for each item, as compact text.
template <class T, class Fn>
std::string list_json(const std::vector<T>& items, Fn one) {
  ojson j = ojson::array();
  for (const T& item : items) j.push_back(one(item));
  return api::dump_compact(j);
}

}  // namespace

std::string global_metrics_json(const fs::FsMetricsSnapshot& m) {
  ojson j;
  j["files_account_enabled"] = m.options.files;
  j["access_pattern_enabled"] = m.options.access_pattern;
  j["record_latest_read_files_enabled"] = m.options.latest_read_files;
  j["measure_latency"] = true;
  j["id"] = m.id;
  j["nr_opens"] = m.nr_opens;
  j["data_read"] = m.data_read;
  j["block_count_read"] = array_of(m.block_count_read);
  j["fop_hits"] = array_of(m.fop_hits);
  j["fop_errors"] = array_of(m.fop_errors);
  j["fop_cumulative_latency_total"] = array_of(m.fop_cumulative_latency);
  j["read_latency_dist"] = array_of(m.read_latency_dist);
  return api::dump_compact(j);
}

std::string files_metrics_json(const std::vector<fs::FileMetricsSnapshot>& files) {
  ojson j = ojson::object();
  for (const fs::FileMetricsSnapshot& f : files) {
    ojson e;
    e["total_fops"] = f.total_fops;
    e["data_read"] = f.data_read;
    e["block_count_read"] = array_of(f.block_count_read);
    e["fop_hits"] = array_of(f.fop_hits);
    e["fop_errors"] = array_of(f.fop_errors);
    j[std::to_string(f.ino)] = std::move(e);
  }
  return api::dump_compact(j);
}

std::string latest_read_files_json(const std::vector<std::uint64_t>& inos) {
  ojson j = ojson::array();
  for (auto it = inos.begin(); it != inos.end();) {
    std::uint64_t start = *it, end = start;
    for (++it; it != inos.end() && *it == end + 1; ++it) end = *it;
    j.push_back(start == end ? ojson::array({start}) : ojson::array({start, end}));
  }
  return api::dump_compact(j);
}

std::string access_patterns_json(const std::vector<fs::AccessPattern>& patterns) {
  return list_json(patterns, [](const fs::AccessPattern& p) {
    return ojson{{"ino", p.ino},
                 {"nr_read", p.nr_read},
                 {"first_access_time_secs", p.first_access_secs},
                 {"first_access_time_nanos", p.first_access_nanos}};
  });
}

std::string backend_metrics_json(const storage::BackendMetricsSnapshot& m) {
  ojson sizes = ojson::array();
  for (const auto& row : m.read_latency_sizes_dist) sizes.push_back(array_of(row));
  ojson j;
  j["backend_type"] = m.backend_type;
  j["read_count"] = m.read_count;
  j["read_errors"] = m.read_errors;
  j["read_amount_total"] = m.read_amount_total;
  j["read_cumulative_latency_millis_total"] = m.read_cumulative_latency_millis_total;
  j["read_cumulative_latency_millis_dist"] = array_of(m.read_cumulative_latency_millis_dist);
  j["read_count_block_size_dist"] = array_of(m.read_count_block_size_dist);
  j["read_latency_sizes_dist"] = std::move(sizes);
  return api::dump_compact(j);
}

std::string blobcache_metrics_json(const storage::BlobCacheStats& s, const storage::PrefetchStats& p) {
  ojson j;
  j["underlying_files"] = s.underlying_files;
  j["store_path"] = s.store_path;
  j["partial_hits"] = s.partial_hits;
  j["whole_hits"] = s.whole_hits;
  j["total"] = s.total;
  j["entries_count"] = s.entries_count;
  j["prefetch_data_amount"] = p.data_amount;
  j["prefetch_requests_count"] = p.requests;
  j["prefetch_workers"] = p.workers;
  j["prefetch_unmerged_chunks"] = p.unmerged_chunks;
  j["prefetch_cumulative_time_millis"] = p.cumulative_millis;
  j["prefetch_begin_time_secs"] = p.begin_millis / 1000;
  j["prefetch_begin_time_millis"] = p.begin_millis % 1000;
  j["prefetch_end_time_secs"] = p.end_millis / 1000;
  j["prefetch_end_time_millis"] = p.end_millis % 1000;
  j["buffered_backend_size"] = 0;  // chunks are written through, never buffered
  j["data_all_ready"] = s.data_all_ready;
  return api::dump_compact(j);
}

std::string inflight_json(const std::vector<fs::InflightRequest>& reqs) {
  return list_json(reqs, [](const fs::InflightRequest& r) {
    return ojson{{"inode", r.inode}, {"opcode", r.opcode}, {"unique", r.unique}, {"timestamp_secs", r.timestamp_secs}};
  });
}

std::string super_block_info_json(const storage::SuperBlockInfo& sb, std::uint64_t attr_timeout_secs,
                                  std::uint64_t entry_timeout_secs) {
  ojson j;
  j["magic"] = sb.magic;
  j["version"] = sb.version;
  j["sb_size"] = sb.sb_size;
  j["root_inode"] = sb.root_inode;
  j["chunk_size"] = sb.chunk_size;
  j["inodes_count"] = sb.inodes_count;
  j["flags"] = {{"bits", sb.flags}};
  j["inode_table_entries"] = 0;  // this and the other zeros: fields of v5 images only
  j["inode_table_offset"] = 0;
  j["blob_table_size"] = sb.blob_table_size;
  j["blob_table_offset"] = sb.blob_table_offset;
  j["extended_blob_table_offset"] = 0;
  j["extended_blob_table_entries"] = 0;
  j["prefetch_table_offset"] = sb.prefetch_table_offset;
  j["prefetch_table_entries"] = sb.prefetch_table_entries;
  j["attr_timeout"] = {{"secs", attr_timeout_secs}, {"nanos", 0}};
  j["entry_timeout"] = {{"secs", entry_timeout_secs}, {"nanos", 0}};
  j["is_chunk_dict"] = false;
  j["meta_blkaddr"] = sb.meta_blkaddr;
  j["root_nid"] = sb.root_nid;
  j["chunk_table_offset"] = sb.chunk_table_offset;
  j["chunk_table_size"] = sb.chunk_table_size;
  return api::dump_compact(j);
}

}  // namespace nydus::daemon
