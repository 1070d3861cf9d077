// nydus_bench_apid: nydusd's API stack with the connection cap as a flag.
//
// The same Daemon, make_api_http_handler and HttpServer that tools/nydusd.cc
// wires together, API only, for the one benchmark nydusd cannot run as built:
// 10,000 idle connections, which is over nydusd's fixed cap of
// HttpServerOptions::max_connections (1024). Everything else in the
// benchmark runs the real nydusd binary.
//
// Usage: nydus_bench_apid --socket PATH [--max-connections N]; SIGINT/SIGTERM stop it.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "nydus/api/service.h"
#include "nydus/daemon/daemon.h"

int main(int argc, char** argv) {
  nydus::api::HttpServerOptions http;
  http.max_connections = 1 << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view a = argv[i];
    if (a == "--socket") http.socket_path = argv[i + 1];
    else if (a == "--max-connections") http.max_connections = std::strtoul(argv[i + 1], nullptr, 10);
  }
  if (http.socket_path.empty()) {
    std::fprintf(stderr, "usage: nydus_bench_apid --socket PATH [--max-connections N]\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // before any thread starts

  nydus::daemon::DaemonOptions options;
  options.build = nydus::daemon::build_info();
  nydus::daemon::Daemon d(options);
  if (auto r = d.start(); !r) {
    std::fprintf(stderr, "start-up failed: %s\n", r.error().message().c_str());
    return 1;
  }
  auto server = nydus::api::HttpServer::start(http, nydus::api::make_api_http_handler(d));
  if (!server) {
    std::fprintf(stderr, "cannot start the API server: %s\n", server.error().message().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&mask, &sig);
  (*server)->stop();
  return 0;
}
