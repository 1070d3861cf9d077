#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, builds a consumer of the
# client library against it twice (find_package(nydus-cpp), then pkg-config),
# and runs both against the installed nydusd.
# Usage: install_test.sh <build dir> <C++ compiler>
set -euo pipefail
build=$1
cxx=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/nydus-install-test.XXXXXX)
daemon=
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
for f in bin/nydusd bin/nydusctl bin/nydus-image; do [ -x "$prefix/$f" ] || fail "$f not installed"; done
libdir=$(dirname "$(find "$prefix" -name libnydus-api-client.a | head -1)")
[ -f "$libdir/libnydus-api-client.a" ] || fail "libnydus-api-client.a not installed"
[ -f "$libdir/pkgconfig/nydus-api-client.pc" ] || fail "nydus-api-client.pc not installed"
[ -f "$prefix/include/nydus/api/client.h" ] || fail "client.h not installed"
# The install tree must not point back into the source or build tree.
if grep -rlF -e "$build" -e "$(cd "$here/../.." && pwd)" "$libdir/cmake" "$libdir/pkgconfig"; then
  fail "installed package files name the build or source tree"
fi

# 1. CMake package.
cmake -S "$here/consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/consumer.log" 2>&1 || { cat "$tmp/consumer.log"; fail "configure consumer"; }
cmake --build "$tmp/consumer" >>"$tmp/consumer.log" 2>&1 || { cat "$tmp/consumer.log"; fail "build consumer"; }

# 2. pkg-config (--static: the library is an archive, so its private deps link too).
export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046  # word splitting of the flags is intended
"$cxx" -std=c++20 -Wall -Wextra -Werror -o "$tmp/consumer-pc" "$here/consumer/main.cc" \
      $(pkg-config --cflags --libs --static nydus-api-client) || fail "build consumer through pkg-config"

# Both talk to the installed daemon (API only; the first one started with the
# installed sample configuration, which it validates); each run ends it with an exit request.
config=(--config "$(find "$prefix" -name nydusd-config.json | head -1)")
for consumer in "$tmp/consumer/consumer" "$tmp/consumer-pc"; do
  sock=$tmp/api.sock
  "$prefix/bin/nydusd" --apisock "$sock" --log-level warn "${config[@]}" 2>"$tmp/nydusd.log" &
  config=()
  daemon=$!
  # Hang guard only: the socket normally appears within milliseconds.
  for _ in $(seq 1200); do [ -S "$sock" ] && break; kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
  [ -S "$sock" ] || { cat "$tmp/nydusd.log"; fail "installed nydusd did not create its socket"; }
  out=$("$consumer" "$sock") || { echo "$out"; cat "$tmp/nydusd.log"; fail "$consumer"; }
  echo "$out"
  grep -qx 'state=RUNNING version=[^ ]*' <<<"$out" || fail "unexpected daemon info from $consumer"
  grep -qxE 'umount_error=[45][0-9]{2}' <<<"$out" || fail "unexpected umount error from $consumer"
  wait "$daemon" || fail "nydusd exited with status $?"
  daemon=
done
echo "install test passed"
