// Talks to a running nydusd through the installed client library: prints the
// daemon's state and version, then asks it to exit.
// Usage: consumer <api.sock>
#include <iostream>

#include <nydus/api/client.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer <api.sock>\n";
    return 2;
  }
  nydus::api::ApiClient client(argv[1]);
  auto info = client.daemon_info();
  if (!info) {
    std::cerr << "daemon_info: " << info.error().to_string() << "\n";
    return 1;
  }
  std::cout << "state=" << info->state << " version=" << info->version.package_ver << "\n";
  auto missing = client.umount("/not-mounted");  // an HTTP error arrives as a ClientError
  if (missing || missing.error().status == 0) {
    std::cerr << "umount of nothing did not fail with an HTTP error\n";
    return 1;
  }
  std::cout << "umount_error=" << missing.error().status << "\n";
  if (auto r = client.exit(); !r) {
    std::cerr << "exit: " << r.error().to_string() << "\n";
    return 1;
  }
  std::cout << "exit=ok\n";
  return 0;
}
