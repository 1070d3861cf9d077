#include "util/config_data.h"

#include <fstream>
#include <sstream>

namespace nydus::testutil {

std::string read_config_data(const std::string& name) {
  std::string path = std::string(NYDUS_SOURCE_DIR) + "/tests/config/data/" + name;
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return "";
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace nydus::testutil
