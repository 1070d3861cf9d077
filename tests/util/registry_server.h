// Registries for the registry backend's tests, run as child processes:
// FakeRegistry (tests/registry/fake_registry.py: bearer tokens, redirects to
// an "object store" port, faults on request) and DockerRegistry (Debian's
// docker-registry with htpasswd auth, optionally TLS). Both wait for
// readiness by polling with a hang-guard deadline and are killed (SIGKILL)
// when destroyed. A missing tool is reported by skip_reason().
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nydus::testutil {

// A child process with stdout and stderr sent to a file.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();  // SIGKILL and reap
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Polls the log (10 s hang guard) for a line starting with `prefix`; "" if none came or the child exited.
  std::string wait_for_line(const std::string& prefix);
  bool alive();
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// A port nobody listens on now (bound then released).
int free_port();
// `curl -sS <args…>`; {exit code, output}.
std::pair<int, std::string> curl(std::vector<std::string> args);
// Pushes a blob file (named by its sha256) through the distribution upload
// API: POST /v2/<repo>/blobs/uploads/, then PUT <location>?digest=sha256:<id>.
// "" on success, else what failed.
std::string push_blob(const std::string& base_url, const std::string& repo, const std::string& blob_path,
                      const std::vector<std::string>& curl_auth);

class FakeRegistry {
 public:
  // `args`: fake_registry.py options after --blob-dir.
  FakeRegistry(const std::string& work_dir, const std::string& blob_dir, const std::vector<std::string>& args);
  std::string skip_reason() const { return skip_; }
  bool up() const { return port_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // The object store: /<anything>/<blob id>, no auth.
  std::string store_url() const { return "http://127.0.0.1:" + std::to_string(store_port_); }
  // POST /_control with a JSON body; GET /_stats.
  void control(const nlohmann::json& j);
  nlohmann::json stats();
  std::string log() const { return proc_ ? proc_->log() : ""; }

 private:
  std::string skip_;
  int port_ = 0, store_port_ = 0;
  std::unique_ptr<ChildProcess> proc_;
};

class DockerRegistry {
 public:
  // htpasswd user `user`:`pass`; TLS from a fresh self-signed cert for 127.0.0.1 when `tls`.
  DockerRegistry(const std::string& work_dir, const std::string& user, const std::string& pass, bool tls);
  std::string skip_reason() const { return skip_; }
  std::string error() const { return error_; }  // set when the tools exist but start-up failed
  std::string scheme() const { return tls_ ? "https" : "http"; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return scheme() + "://" + host(); }
  const std::string& ca_file() const { return ca_; }
  // curl options that authenticate and trust the certificate.
  std::vector<std::string> curl_auth() const;
  void kill() { proc_.reset(); }
  // Starts the same registry again on the same port and storage.
  void restart();

 private:
  void start();
  std::string skip_, error_, dir_, user_, pass_, ca_, config_;
  bool tls_ = false;
  int port_ = 0;
  std::unique_ptr<ChildProcess> proc_;
};

}  // namespace nydus::testutil
