// Micro-benchmarks of one API request's path inside nydusd, and of the JSON
// payloads it serialises. Each group has a reference that does the least
// possible work on the same bytes, so results read as ratios measured in the
// same run (docs/benchmarks.md), not as absolute times of one machine.
//
//   BM_Reference_CopyBytes   copy the request in and a prepared reply out
//   BM_Parse                 RequestReader (Beast parser, limits) only
//   BM_ParseRouteHandleSerialise  GET /api/v1/daemon through reader, router,
//                            Daemon::handle (inline answer) and the wire head
//   BM_Json_Reference        nlohmann dump of a small fixed object
//   BM_Json_DaemonInfo       DaemonInfo v1 payload
//   BM_Json_GlobalMetrics    §4.3 global metrics with every histogram bucket populated
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/http/http_request_reader.h"
#include "api/http/http_response.h"
#include "nydus/api/payloads.h"
#include "nydus/api/service.h"
#include "nydus/daemon/daemon.h"
#include "nydus/daemon/metrics_json.h"
#include "nydus/fs/fs_metrics.h"

namespace {

using namespace nydus;

const std::string kRequest = "GET /api/v1/daemon HTTP/1.1\r\nHost: localhost\r\n\r\n";

// Pushes kRequest through a reader and returns the parsed request.
api::HttpRequest parse_one(api::RequestReader& reader) {
  auto buf = reader.prepare();
  std::memcpy(buf.data(), kRequest.data(), kRequest.size());
  reader.commit(kRequest.size());
  api::ParseEvent ev = reader.parse();
  if (ev.kind != api::ParseEvent::Kind::kRequest) std::abort();
  return std::move(ev.request);
}

void BM_Reference_CopyBytes(benchmark::State& state) {
  const std::string reply = api::http_wire::format_head(200, 300, false) + std::string(300, 'x');
  char in[1024];
  std::string out;
  for (auto _ : state) {
    std::memcpy(in, kRequest.data(), kRequest.size());
    benchmark::DoNotOptimize(in);
    out = reply;
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_Reference_CopyBytes);

void BM_Parse(benchmark::State& state) {
  api::RequestReader reader(64 << 10, 1 << 20);
  for (auto _ : state) {
    api::HttpRequest r = parse_one(reader);
    benchmark::DoNotOptimize(r.target.data());
  }
}
BENCHMARK(BM_Parse);

void BM_ParseRouteHandleSerialise(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  daemon::DaemonOptions options;
  options.build = daemon::build_info();
  daemon::Daemon d(options);
  if (!d.start()) std::abort();
  api::HttpHandler handler = api::make_api_http_handler(d);
  api::RequestReader reader(64 << 10, 1 << 20);
  std::string head, body;
  for (auto _ : state) {
    handler(parse_one(reader), [&](api::HttpResponse r) {
      head = api::http_wire::format_head(r.status, r.body.size(), r.close);
      body = std::move(r.body);
    });
    benchmark::DoNotOptimize(head.data());
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["reply_bytes"] = static_cast<double>(head.size() + body.size());
}
BENCHMARK(BM_ParseRouteHandleSerialise);

void BM_Json_Reference(benchmark::State& state) {
  nlohmann::ordered_json j = {{"a", 1}, {"b", "two"}, {"c", true}};
  for (auto _ : state) {
    std::string s = j.dump();
    benchmark::DoNotOptimize(s.data());
  }
}
BENCHMARK(BM_Json_Reference);

void BM_Json_DaemonInfo(benchmark::State& state) {
  api::DaemonInfo info;
  info.version = daemon::build_info();
  info.id = "8a1f5a8c-1c0e-4a57-a2b5-1f7e4d1d9f00";
  info.supervisor = "/run/containerd-nydus/supervisor/8a1f5a8c.sock";
  info.state = "RUNNING";
  info.backend_collection = nlohmann::ordered_json::object();
  for (int i = 0; i < 4; ++i) {
    (*info.backend_collection)["/mnt/layer" + std::to_string(i)] = {
        {"backend_type", "rafs"}, {"mountpoint", "/mnt/layer" + std::to_string(i)},
        {"mounted_time", "2024-01-01T00:00:00Z"}, {"config", {{"id", "c"}, {"backend", {{"type", "localfs"}}}}}};
  }
  for (auto _ : state) {
    std::string s = api::to_json(info);
    benchmark::DoNotOptimize(s.data());
  }
}
BENCHMARK(BM_Json_DaemonInfo);

void BM_Json_GlobalMetrics(benchmark::State& state) {
  fs::FsMetrics m("/", fs::FsMetricsOptions{});
  // Reads of every size bucket and every latency bucket, and every fop.
  for (std::uint64_t i = 0; i < 4096; ++i) {
    std::uint64_t size = 1ull << (i % 21);
    m.record_read(i % 64 + 1, size, true, size, std::chrono::microseconds(1ull << (i % 24)));
  }
  for (std::size_t f = 0; f < fs::kFopCount; ++f) {
    m.record(static_cast<fs::Fop>(f), 1, true);
    m.record(static_cast<fs::Fop>(f), 1, false);
  }
  for (auto _ : state) {
    std::string s = daemon::global_metrics_json(m.snapshot());
    benchmark::DoNotOptimize(s.data());
  }
  state.counters["json_bytes"] = static_cast<double>(daemon::global_metrics_json(m.snapshot()).size());
}
BENCHMARK(BM_Json_GlobalMetrics);

}  // namespace

BENCHMARK_MAIN();
