#!/usr/bin/env bash
# The main job: builds nydusd, nydusctl and nydus-image, turns the bundled
# sample directory (samples/hello) into a RAFS v6 image (bootstrap + zstd
# blob) with the project's generator, starts nydusd on a temporary FUSE mount
# point serving that image with its API socket up, lists the mount, checks it
# against the source directory, and queries the daemon with nydusctl and curl.
# The daemon keeps running until you press Ctrl-C (with --once it stops right
# after the queries). Without /dev/fuse (or root) it runs the API only.
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
[ "${1:-}" = "--once" ] && once=1

if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; else sudo bash scripts/install-deps.sh; fi
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target nydusd nydusctl nydus-image

work=$(mktemp -d /tmp/nydus-demo.XXXXXX)
sock="$work/api.sock"
mnt="$work/mnt"
mkdir -p "$mnt"
echo "== nydus-image create samples/hello   (RAFS v6 bootstrap + blob)"
./build/bin/nydus-image create samples/hello -B "$work/image/hello.boot" -D "$work/image/blobs" --compressor zstd
fuse_args=()
if [ -w /dev/fuse ] && [ "$(id -u)" -eq 0 ]; then
  fuse_args=(--mountpoint "$mnt" --bootstrap "$work/image/hello.boot" --localfs-dir "$work/image/blobs")
else
  echo "demo: /dev/fuse is not usable here (needs root and /dev/fuse); running the API only"
fi
./build/bin/nydusd --apisock "$sock" --log-level info --log-file "$work/nydusd.log" "${fuse_args[@]}" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  mountpoint -q "$mnt" 2>/dev/null && umount -l "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "nydusd did not create $sock"; cat "$work/nydusd.log"; exit 1; }

if [ "${#fuse_args[@]}" -gt 0 ]; then
  for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.05; done
  echo "== ls -lR $mnt   (the RAFS image of samples/hello, served through FUSE)"
  ls -lR "$mnt"
  echo "== cat $mnt/docs/about.txt"
  cat "$mnt/docs/about.txt"
  echo "== diff -r samples/hello $mnt"
  diff -r samples/hello "$mnt" && echo "identical"
  echo
  echo "== curl .../api/v1/daemon/backend?mountpoint=/   (the image's super block)"
  curl -sS --unix-socket "$sock" "http://localhost/api/v1/daemon/backend?mountpoint=/"
  echo
fi

echo "== nydusctl --sock $sock info"
./build/bin/nydusctl --sock "$sock" info
echo
echo "== curl --unix-socket $sock http://localhost/api/v1/daemon"
curl -sS --unix-socket "$sock" http://localhost/api/v1/daemon
echo
echo
echo "== curl -X PUT .../api/v1/daemon -d '{\"log_level\":\"debug\"}'  (changes the log level)"
curl -sS -o /dev/null -w "HTTP %{http_code}\n" --unix-socket "$sock" -X PUT \
  -d '{"log_level":"debug"}' http://localhost/api/v1/daemon
echo "== nydusctl --sock $sock metrics   (counts of the FUSE operations above)"
./build/bin/nydusctl --sock "$sock" metrics || true
echo "== an error answer: curl .../api/v1/metrics?id=/nothing"
curl -sS -w "\nHTTP %{http_code}\n" --unix-socket "$sock" "http://localhost/api/v1/metrics?id=/nothing"

if [ "$once" -eq 1 ]; then
  ./build/bin/nydusctl --sock "$sock" info >/dev/null
  echo "demo: ok"
  exit 0
fi
echo
echo "nydusd (pid $pid) is serving ${fuse_args[1]:-no mount} and the API on $sock; try:"
echo "  ./build/bin/nydusctl --sock $sock info"
echo "  curl --unix-socket $sock http://localhost/api/v1/daemon"
echo "Press Ctrl-C to stop."
wait "$pid"
