// Runs the Python end-to-end checks (tests/e2e/py) against a real nydusd:
// the Prometheus exposition through prometheus_client's parser, and every
// route against docs/openapi.yaml. A script exits 77 when a Python module it
// needs is missing, which skips the test.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "util/nydusd_fuse_fixture.h"

namespace nydus::testutil {
namespace {

constexpr const char* kPython = "/usr/bin/python3";
const std::string kPyDir = std::string(NYDUS_SOURCE_DIR) + "/tests/e2e/py";
const std::string kFixture = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";

class PythonCheckTest : public NydusdFuseFixture {
 protected:
  // Runs `/usr/bin/python3 <script> <args…>`; fails with its output unless it exits 0.
  void run(const std::string& script, const std::string& args) {
    // Debian's interpreter: the python3-* packages install for it, not for another one on PATH.
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is not installed";
    std::string log = dir_.file(script + ".log");
    std::string cmd = std::string(kPython) + " " + kPyDir + "/" + script + " " + args + " >" + log + " 2>&1";
    int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc)) << cmd;
    if (WEXITSTATUS(rc) == 77) GTEST_SKIP() << slurp(log);
    EXPECT_EQ(WEXITSTATUS(rc), 0) << cmd << "\n" << slurp(log);
  }
};

TEST_F(PythonCheckTest, PrometheusExpositionParsesAndMatchesTheJsonRoutes) {
  if (IsSkipped()) return;
  start();
  run("prometheus_check.py", sock_ + " " + mnt_ + " " + kFixture + " " + std::string(NYDUS_BIN_DIR) + "/nydusctl");
}

// Every route, success and error cases, ending with exit: statuses and bodies
// must be ones docs/openapi.yaml documents, and every documented operation is
// exercised.
TEST_F(PythonCheckTest, EveryRouteAnswersAsDocsOpenapiYamlSays) {
  if (IsSkipped()) return;
  start();
  run("openapi_check.py", sock_ + " " + mnt_ + " " + kFixture + " " + std::string(NYDUS_SOURCE_DIR) + "/docs/openapi.yaml");
}

}  // namespace
}  // namespace nydus::testutil
