#!/usr/bin/env bash
# Builds nydus-cpp and runs every test: the release build, then the whole
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer, then each
# fuzz target for a short bounded run. Installs the Debian packages first.
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
grep 'tests passed' build/ctest-default.log
