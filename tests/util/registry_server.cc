#include "util/registry_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "util/daemon_process.h"

namespace nydus::testutil {
namespace {

const std::string kFakeScript = std::string(NYDUS_SOURCE_DIR) + "/tests/registry/fake_registry.py";

bool executable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path) : log_path_(std::move(log_path)) {
  std::vector<char*> v;
  for (auto& a : argv) v.push_back(a.data());
  v.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    execv(v[0], v.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
}

bool ChildProcess::alive() {
  int st = 0;
  return pid_ > 0 && waitpid(pid_, &st, WNOHANG) == 0;
}

std::string ChildProcess::log() const { return read_file(log_path_); }

std::string ChildProcess::wait_for_line(const std::string& prefix) {
  auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (std::chrono::steady_clock::now() < deadline) {
    std::istringstream in(log());
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with(prefix)) return line;
    }
    if (!alive()) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::pair<int, std::string> curl(std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/curl", "-sS", "--max-time", "30"});
  return run_command(args);
}

std::string push_blob(const std::string& base_url, const std::string& repo, const std::string& blob_path,
                      const std::vector<std::string>& curl_auth) {
  std::string digest = std::filesystem::path(blob_path).filename().string();
  std::vector<std::string> post = curl_auth;
  post.insert(post.end(), {"-i", "-X", "POST", "--data-binary", "", base_url + "/v2/" + repo + "/blobs/uploads/"});
  auto [rc, out] = curl(post);
  std::string location;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > 9 && (line.starts_with("Location:") || line.starts_with("location:"))) {
      location = line.substr(9);
      while (!location.empty() && (location.front() == ' ')) location.erase(0, 1);
      while (!location.empty() && (location.back() == '\r' || location.back() == ' ')) location.pop_back();
    }
  }
  if (rc != 0 || location.empty()) return "upload POST failed: " + out;
  if (location.starts_with("/")) location = base_url + location;
  location += (location.find('?') == std::string::npos ? "?" : "&") + std::string("digest=sha256:") + digest;
  std::vector<std::string> put = curl_auth;
  put.insert(put.end(), {"-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H",
                         "Content-Type: application/octet-stream", "--data-binary", "@" + blob_path, location});
  auto [rc2, code] = curl(put);
  if (rc2 != 0 || code != "201") return "upload PUT answered " + code;
  return "";
}

FakeRegistry::FakeRegistry(const std::string& work_dir, const std::string& blob_dir,
                           const std::vector<std::string>& args) {
  if (!executable("/usr/bin/python3")) {
    skip_ = "/usr/bin/python3 not installed";
    return;
  }
  std::vector<std::string> argv = {"/usr/bin/python3", kFakeScript, "--blob-dir", blob_dir};
  argv.insert(argv.end(), args.begin(), args.end());
  proc_ = std::make_unique<ChildProcess>(argv, work_dir + "/fake_registry.log");
  std::string line = proc_->wait_for_line("PORTS ");
  std::istringstream ports(line.substr(line.empty() ? 0 : 6));
  ports >> port_ >> store_port_;
}

void FakeRegistry::control(const nlohmann::json& j) {
  curl({"-X", "POST", "--data-binary", j.dump(), url() + "/_control"});
}

nlohmann::json FakeRegistry::stats() {
  auto [rc, out] = curl({url() + "/_stats"});
  auto j = nlohmann::json::parse(out, nullptr, false);
  return rc == 0 && j.is_object() ? j : nlohmann::json::object();
}

DockerRegistry::DockerRegistry(const std::string& work_dir, const std::string& user, const std::string& pass, bool tls)
    : dir_(work_dir), user_(user), pass_(pass), tls_(tls) {
  for (const char* tool : {"/usr/bin/docker-registry", "/usr/bin/htpasswd", "/usr/bin/openssl"}) {
    if (!executable(tool)) {
      skip_ = std::string(tool) + " not installed (scripts/install-deps.sh)";
      return;
    }
  }
  auto [rc, hash] = run_command({"/usr/bin/htpasswd", "-Bbn", user, pass});
  if (rc != 0) {
    error_ = "htpasswd: " + hash;
    return;
  }
  write_file(dir_ + "/htpasswd", hash);
  std::string tls_conf;
  if (tls) {
    ca_ = dir_ + "/cert.pem";
    auto [rc2, out] = run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                                   dir_ + "/key.pem", "-out", ca_, "-days", "2", "-subj", "/CN=127.0.0.1",
                                   "-addext", "subjectAltName=IP:127.0.0.1"});
    if (rc2 != 0) {
      error_ = "openssl: " + out;
      return;
    }
    tls_conf = "  tls:\n    certificate: " + ca_ + "\n    key: " + dir_ + "/key.pem\n";
  }
  port_ = free_port();
  config_ = dir_ + "/registry.yml";
  write_file(config_, "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
                      "    rootdirectory: " + dir_ + "/storage\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) +
                      "\n" + tls_conf + "auth:\n  htpasswd:\n    realm: test\n    path: " + dir_ + "/htpasswd\n");
  start();
}

void DockerRegistry::start() {
  proc_ = std::make_unique<ChildProcess>(std::vector<std::string>{"/usr/bin/docker-registry", "serve", config_},
                                         dir_ + "/registry.log");
  auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (std::chrono::steady_clock::now() < deadline) {
    // Any HTTP answer (401 without credentials) means it listens.
    auto [rc, code] = curl({"-k", "-o", "/dev/null", "-w", "%{http_code}", url() + "/v2/"});
    if (code == "401" || code == "200") return;
    if (!proc_->alive()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  error_ = "docker-registry did not come up: " + proc_->log();
}

void DockerRegistry::restart() {
  error_.clear();
  start();
}

std::vector<std::string> DockerRegistry::curl_auth() const {
  std::vector<std::string> a = {"-u", user_ + ":" + pass_};
  if (tls_) a.insert(a.end(), {"--cacert", ca_});
  return a;
}

}  // namespace nydus::testutil
