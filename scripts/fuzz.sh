#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) and runs each one for
# the given number of seconds (default 20) on a scratch copy of its seed corpus.
# Any sanitizer report, UBSan included, a crash, a leak, an input slower than
# 10 s or over 2 GiB of RSS fails the run; the failing input is kept in
# build/fuzz/crash-<name>-* for reproduction.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
shopt -s nullglob
status=0
for bin in build/fuzz/bin/*_fuzz; do
  name=$(basename "$bin" _fuzz)
  work=$(mktemp -d)
  if [ -d "fuzz/corpus/$name" ]; then cp -r "fuzz/corpus/$name/." "$work/"; fi
  echo "fuzz: $name for ${seconds}s"
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$bin" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build/fuzz/crash-$name-" "$work" \
      > "build/fuzz/$name.log" 2>&1; then
    echo "fuzz: $name FAILED (see build/fuzz/$name.log)"; tail -n 40 "build/fuzz/$name.log"; status=1
  fi
  rm -rf "$work"
done
exit $status
