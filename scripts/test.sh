#!/usr/bin/env bash
# Builds nydus-cpp and runs every test: the release build, then the whole
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer, then a
# Release (-O3) build with clang-14 and one with g++-12 and their unit tests,
# then each fuzz target for a short bounded run. Every build has -Werror (the presets set
# NYDUS_WERROR). Installs the Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; else sudo bash scripts/install-deps.sh; fi

jobs=$(nproc)
cmake --preset default
cmake --build --preset default -j "$jobs"
mkdir -p build
ctest --preset default -j "$jobs" 2>&1 | tee build/ctest-default.log

cmake --preset sanitize
cmake --build --preset sanitize -j "$jobs"
ctest --preset sanitize -j "$jobs" 2>&1 | tee build/ctest-sanitize.log

# The second compiler at -O3: its warnings differ from g++'s, and optimiser
# warnings appear only at -O3. Unit tests only (label e2e excluded): the
# end-to-end suite already ran twice above.
cmake --preset clang-release
cmake --build --preset clang-release -j "$jobs"
ctest --preset clang-release -j "$jobs" 2>&1 | tee build/ctest-clang-release.log

# g++ at -O3: its optimiser warnings (e.g. -Wrestrict false positives in
# libstdc++ 12's string concatenation) appear neither at -O2 nor with clang.
cmake --preset gcc-release
cmake --build --preset gcc-release -j "$jobs"
ctest --preset gcc-release -j "$jobs" 2>&1 | tee build/ctest-gcc-release.log

# Fuzz smoke runs: each target for FUZZ_SECONDS on its seed corpus.
if [ -d fuzz ] && [ -f fuzz/CMakeLists.txt ]; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi

# The quick-start job must keep working too.
bash scripts/demo.sh --once

# The Debian package, from the release build above: dpkg -i, check, purge.
if [ "$(id -u)" -eq 0 ]; then bash scripts/deb-check.sh build; else sudo bash scripts/deb-check.sh build; fi

# Repeat the verdicts last, so the closing line is the test suite's.
echo "sanitize build: $(grep 'tests passed' build/ctest-sanitize.log)"
echo "clang-release build (unit tests): $(grep 'tests passed' build/ctest-clang-release.log)"
echo "gcc-release build (unit tests): $(grep 'tests passed' build/ctest-gcc-release.log)"
grep 'tests passed' build/ctest-default.log
