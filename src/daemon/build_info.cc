#include "nydus/build_info_values.h"
#include "nydus/daemon/daemon.h"

namespace nydus::daemon {

api::BuildInfo build_info() {
  return api::BuildInfo{NYDUS_PACKAGE_VER, NYDUS_GIT_COMMIT, NYDUS_BUILD_TIME, NYDUS_BUILD_PROFILE, NYDUS_COMPILER};
}

}  // namespace nydus::daemon
