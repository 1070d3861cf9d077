// upgrade_bench: the read pause a container sees while nydusd hands its FUSE
// connection to a successor (contract §6.6, docs/upgrade.md). The built
// nydusd serves the sample RAFS image at /r; 8 reader threads open, read whole
// and verify its files through the mount without pause; the bench plays the
// snapshotter with the tests' supervisor. The pause of a run is the longest
// stretch in which no reader completed a read.
//
//   upgrade_bench [runs]     runs of each kind, default 50
//
// Hot upgrade (§6.6 C): sendfd, new daemon --upgrade, takeover, exit of the
// old one (waited for), start; the pause is measured from before sendfd to
// reads flowing again after RUNNING. Failover (§6.6 B): kill -9, reap, the
// stored state served, the same command line started again (failover
// detected, --failover-policy resend), takeover, start; the pause is reported
// from kill -9 and from the new daemon's start (fork). Needs root, /dev/fuse
// and ../shared/fixtures/rafs-v6; runs chain one daemon generation after the
// other, hot upgrades first.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/daemon_process.h"
#include "util/fuse_connection.h"
#include "util/raw_client.h"
#include "util/test_supervisor.h"
#include "util/verifying_readers.h"

namespace {

using namespace nydus::testutil;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

const std::string kFixture = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// One handover's timings (ms).
struct Run {
  double pause = 0;       // hot upgrade: the longest pause in the window; failover: from kill -9
  double from_start = 0;  // failover: from the new daemon's fork to the first read answered
  double to_init = 0;     // failover: fork to state INIT (socket, failover detection)
  double ops = 0;         // hot upgrade: exit + reaping + start; failover: takeover + start
};

// The chain of daemon generations on one mountpoint and one supervisor socket.
class Chain {
 public:
  Chain() : mnt_(dir_.file("mnt")), sup_(dir_.file("sup.sock")) {}
  ~Chain() { end(); }

  // The first daemon, with the image at /r; the files and their content.
  bool start(std::vector<std::pair<std::string, std::string>>& files);
  bool hot_upgrade(VerifyingReaders& readers, Run& run);
  bool failover(VerifyingReaders& readers, Run& run);
  // Unsticks readers waiting on a connection nobody serves (a failed run).
  void abort_connection() const { abort_fuse_connection(conn_); }
  // Stops the last daemon (it unmounts); detaches the mount if it is left.
  void end();
  const std::string& error() const { return error_; }

 private:
  bool fail(const std::string& what);
  bool save();
  bool spawn(const std::string& sock, std::vector<std::string> extra);

  TempDir dir_;
  const std::string mnt_, sup_;
  std::string sock_, error_;
  std::uint64_t conn_ = 0;
  int gen_ = 0;
  std::vector<std::uint8_t> state_;
  int fuse_fd_ = -1;  // the supervisor's copy of the connection
  std::unique_ptr<TestSupervisor> served_;
  std::unique_ptr<DaemonProcess> cur_, next_;
};

bool Chain::fail(const std::string& what) {
  error_ = what;
  if (next_) error_ += "\n--- new daemon's log ---\n" + next_->log();
  if (cur_) error_ += "\n--- daemon's log ---\n" + cur_->log();
  return false;
}

bool Chain::start(std::vector<std::pair<std::string, std::string>>& files) {
  std::filesystem::create_directories(mnt_);
  sock_ = dir_.file("api-0.sock");
  cur_ = std::make_unique<DaemonProcess>(std::vector<std::string>{"--apisock", sock_, "--mountpoint", mnt_, "--id", "b1",
                                                                  "--supervisor", sup_, "--thread-num", "4"},
                                         dir_.file("nydusd-0.log"));
  if (!cur_->wait_for_socket(sock_) || !wait_state(sock_, "RUNNING")) return fail("the first daemon did not start");
  conn_ = fuse_connection_id(mnt_);
  Json cfg = {{"version", 2},
              {"backend", {{"type", "localfs"}, {"localfs", {{"dir", kFixture + "/blobs"}}}}},
              {"cache", {{"type", "blobcache"}, {"filecache", {{"work_dir", dir_.file("cache")}}}}},
              {"rafs", {{"mode", "direct"}, {"validate", true}}}};
  std::string body = Json{{"source", kFixture + "/rafs-v6-2.2.boot"}, {"fs_type", "rafs"}, {"config", cfg.dump()}}.dump();
  auto m = call_at(sock_, "POST", "/api/v1/mount?mountpoint=%2Fr", body);
  if (m.status != 204) return fail("mount /r: " + std::to_string(m.status) + " " + m.body);
  for (const char* f : {"lib.rs", "sync_io.rs"}) {
    std::ifstream in(mnt_ + "/r/" + f, std::ios::binary);
    files.emplace_back(mnt_ + "/r/" + f, std::string(std::istreambuf_iterator<char>(in), {}));
    if (files.back().second.empty()) return fail(std::string("cannot read /r/") + f);
  }
  return save();
}

// §6.6 A: sendfd while the supervisor stores; keeps the state and the descriptor.
bool Chain::save() {
  served_.reset();  // it listens on the same path
  TestSupervisor store(sup_, TestSupervisor::Mode::kStore);
  auto r = call_at(sock_, "PUT", "/api/v1/daemon/fuse/sendfd");
  if (r.status != 204) return fail("sendfd: " + std::to_string(r.status) + " " + r.body);
  store.wait_done();
  if (store.fds().size() != 1) return fail("sendfd: no descriptor reached the supervisor");
  state_ = store.bytes();
  if (fuse_fd_ >= 0) ::close(fuse_fd_);
  fuse_fd_ = ::fcntl(store.fds()[0], F_DUPFD_CLOEXEC, 0);
  return fuse_fd_ >= 0 || fail("dup of the saved descriptor failed");
}

// §6.6 B.1-3 / C.1-3: the supervisor serves the stored state; the new daemon, until INIT.
bool Chain::spawn(const std::string& sock, std::vector<std::string> extra) {
  served_.reset();  // first: its destructor unlinks the path the new one listens on
  served_ = std::make_unique<TestSupervisor>(sup_, TestSupervisor::Mode::kServe, state_, fuse_fd_);
  std::vector<std::string> args = {"--apisock", sock, "--mountpoint", mnt_, "--id", "b1", "--supervisor", sup_,
                                   "--thread-num", "4"};
  args.insert(args.end(), extra.begin(), extra.end());
  next_ = std::make_unique<DaemonProcess>(args, dir_.file("nydusd-" + std::to_string(++gen_) + ".log"));
  return (next_->wait_for_socket(sock) && wait_state(sock, "INIT")) || fail("the new daemon did not reach INIT");
}

bool Chain::hot_upgrade(VerifyingReaders& readers, Run& run) {
  const std::string to = dir_.file("api-" + std::to_string(gen_ + 1) + ".sock");
  readers.take_longest_pause();
  if (!save() || !spawn(to, {"--upgrade"})) return false;
  if (call_at(to, "PUT", "/api/v1/daemon/fuse/takeover").status != 204) return fail("takeover failed");
  if (!wait_state(to, "READY")) return fail("no READY after takeover");
  const auto t_exit = Clock::now();
  if (call_at(sock_, "PUT", "/api/v1/daemon/exit").status != 204) return fail("exit of the old daemon failed");
  if (cur_->wait_exit() != 0) return fail("the old daemon did not exit 0");
  if (call_at(to, "PUT", "/api/v1/daemon/start").status != 204 || !wait_state(to, "RUNNING")) return fail("start failed");
  run.ops = ms(Clock::now() - t_exit);
  if (!readers.progress(1) || readers.failures() > 0) return fail("reads: " + readers.first_failure());
  run.pause = ms(readers.take_longest_pause().length());
  cur_ = std::move(next_);
  sock_ = to;
  return true;
}

bool Chain::failover(VerifyingReaders& readers, Run& run) {
  if (!readers.progress(1)) return fail("reads: " + readers.first_failure());
  readers.take_longest_pause();
  const auto t_kill = Clock::now();
  cur_->signal(SIGKILL);
  if (cur_->wait_exit() != 128 + SIGKILL) return fail("kill -9 did not end the daemon");
  const auto t_spawn = Clock::now();
  if (!spawn(sock_, {"--failover-policy", "resend"})) return false;  // no --upgrade: detected (§6.4)
  run.to_init = ms(Clock::now() - t_spawn);
  const auto t_ops = Clock::now();
  if (call_at(sock_, "PUT", "/api/v1/daemon/fuse/takeover").status != 204) return fail("takeover failed");
  if (call_at(sock_, "PUT", "/api/v1/daemon/start").status != 204 || !wait_state(sock_, "RUNNING")) return fail("start failed");
  run.ops = ms(Clock::now() - t_ops);
  if (!readers.progress(1) || readers.failures() > 0) return fail("reads: " + readers.first_failure());
  const auto p = readers.take_longest_pause();
  run.pause = ms(p.end - t_kill);
  run.from_start = ms(std::max(p.end, t_spawn) - t_spawn);
  cur_ = std::move(next_);
  return save();  // §6.6 A: the supervisor saves after RUNNING
}

void Chain::end() {
  for (auto* d : {&next_, &cur_}) {
    if (!*d) continue;
    (*d)->signal(SIGTERM);
    if (!(*d)->wait_exit()) abort_connection();
    d->reset();
  }
  served_.reset();
  if (fuse_fd_ >= 0) ::close(fuse_fd_);
  fuse_fd_ = -1;
  ::umount2(mnt_.c_str(), MNT_DETACH);
}

// p50 and max of one column.
std::pair<double, double> p50_max(const std::vector<Run>& runs, double Run::*field) {
  std::vector<double> v;
  for (const auto& r : runs) v.push_back(r.*field);
  std::sort(v.begin(), v.end());
  return v.empty() ? std::pair{0.0, 0.0} : std::pair{v[v.size() / 2], v.back()};
}

void print_row(const char* what, const std::vector<Run>& runs, double Run::*field, const char* goal) {
  auto [p50, max] = p50_max(runs, field);
  std::printf("| %-44s | %4zu | %8.1f | %8.1f | %-7s |\n", what, runs.size(), p50, max, goal);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
    std::fprintf(stderr, "upgrade_bench needs root and /dev/fuse\n");
    return 2;
  }
  if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) {
    std::fprintf(stderr, "sample image absent: %s\n", kFixture.c_str());
    return 2;
  }
  std::printf("load average before: %s\n", loadavg().c_str());
  std::fflush(stdout);
  Chain chain;
  std::vector<std::pair<std::string, std::string>> files;
  if (!chain.start(files)) {
    std::fprintf(stderr, "%s\n", chain.error().c_str());
    return 1;
  }
  std::vector<Run> hot, failover;
  bool ok = true;
  {
    VerifyingReaders readers(files, 8, [&] { chain.abort_connection(); });
    for (int i = 0; ok && i < runs; ++i) ok = chain.hot_upgrade(readers, hot.emplace_back());
    for (int i = 0; ok && i < runs; ++i) ok = chain.failover(readers, failover.emplace_back());
    ok = readers.stop() && ok;
    if (readers.failures() > 0) std::fprintf(stderr, "failed reads: %lu, first: %s\n", readers.failures(),
                                             readers.first_failure().c_str());
    ok = ok && readers.failures() == 0;
  }
  if (!ok) {
    std::fprintf(stderr, "run failed: %s\n", chain.error().c_str());
    return 1;
  }
  std::printf("load average after: %s\n\n", loadavg().c_str());
  std::printf("| %-44s | %4s | %8s | %8s | %-7s |\n", "read pause (8 readers)", "runs", "p50 ms", "max ms", "goal");
  std::printf("|%s|------|----------|----------|---------|\n", std::string(46, '-').c_str());
  print_row("hot upgrade (6.6 C), sendfd to reads flowing", hot, &Run::pause, "<= 50");
  print_row("  of which exit + reap + start", hot, &Run::ops, "");
  print_row("failover (6.6 B), from kill -9", failover, &Run::pause, "");
  print_row("failover, from the new daemon's start", failover, &Run::from_start, "<= 500");
  print_row("  of which start to INIT (detection)", failover, &Run::to_init, "");
  print_row("  of which takeover + start", failover, &Run::ops, "");
  return 0;
}
