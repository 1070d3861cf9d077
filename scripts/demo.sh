#!/usr/bin/env bash
# The main job: builds nydusd and nydusctl, starts nydusd with its API socket,
# and queries it with nydusctl and curl. The daemon keeps running until you
# press Ctrl-C (or, with --once, stops right after the queries).
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
[ "${1:-}" = "--once" ] && once=1

if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; else sudo bash scripts/install-deps.sh; fi
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target nydusd nydusctl

work=$(mktemp -d /tmp/nydus-demo.XXXXXX)
sock="$work/api.sock"
./build/bin/nydusd --apisock "$sock" --id demo --supervisor "$work/supervisor.sock" --log-level info \
  --log-file "$work/nydusd.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "nydusd did not create $sock"; cat "$work/nydusd.log"; exit 1; }

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
echo "== an error answer: curl .../api/v1/metrics"
curl -sS -w "\nHTTP %{http_code}\n" --unix-socket "$sock" http://localhost/api/v1/metrics

if [ "$once" -eq 1 ]; then
  ./build/bin/nydusctl --sock "$sock" info >/dev/null
  echo "demo: ok"
  exit 0
fi
echo
echo "nydusd (pid $pid) is serving $sock; try:"
echo "  ./build/bin/nydusctl --sock $sock info"
echo "  curl --unix-socket $sock http://localhost/api/v1/daemon"
echo "Press Ctrl-C to stop."
wait "$pid"
