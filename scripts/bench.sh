#!/usr/bin/env bash
# The API load benchmark matrix (docs/benchmarks.md): GET /api/v1/daemon over
# nydusd's Unix socket against nydus_ceiling (a fixed-reply epoll server, the
# limit of the transport on this machine), alternating the two in every round
# so machine noise hits both alike, then the idle-connection scenario and the
# micro-benchmarks. Prints tables of nydusd/ceiling ratios.
#
#   scripts/bench.sh [--rounds N] [--duration S] [--no-micro] [--no-pin]
#   BENCH_BUILD_DIR=dir  use (and build the targets in) an existing build tree
#                        instead of the `default` preset's build/
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
duration=3
micro=1
pin=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --no-micro) micro=0; shift ;;
    --no-pin) pin=0; shift ;;
    *) echo "usage: $0 [--rounds N] [--duration S] [--no-micro] [--no-pin]" >&2; exit 2 ;;
  esac
done

targets="nydusd nydus_loadgen nydus_ceiling nydus_bench_apid nydus_api_bench"
if [ -n "${BENCH_BUILD_DIR:-}" ]; then
  build="$BENCH_BUILD_DIR"
  cmake --build "$build" --target $targets >/dev/null
else
  build=build
  cmake --preset default >/dev/null
  cmake --build --preset default --target $targets >/dev/null
fi
bin="$build/bin"

# 10,000 idle connections need descriptors in both processes (root may raise
# the hard limit; otherwise the soft limit goes up to it).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

# Servers on CPU 0, the load generator on CPU 1: without pinning the scheduler
# sometimes puts both on one core, and single-connection latency then swings
# by 4x between rounds. Every server gets the same placement.
server_cpu=""; client_cpu=""
if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu="taskset -c 0"; client_cpu="taskset -c 1"
fi

work=$(mktemp -d /tmp/nydus-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_socket() {
  for _ in $(seq 500); do [ -S "$1" ] && return 0; sleep 0.01; done
  echo "bench: no socket at $1" >&2; exit 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

$server_cpu "$bin/nydusd" --apisock "$work/nydusd.sock" --log-level warn >"$work/nydusd.log" 2>&1 &
nydusd_pid=$!
pids+=("$nydusd_pid")
wait_socket "$work/nydusd.sock"
reply_bytes=$(curl -s --unix-socket "$work/nydusd.sock" http://localhost/api/v1/daemon | wc -c)
sleep 0.5
nydusd_idle_rss=$(rss_kib "$nydusd_pid")

$server_cpu "$bin/nydus_ceiling" --socket "$work/ceiling.sock" --body-bytes "$reply_bytes" &
pids+=("$!")
wait_socket "$work/ceiling.sock"

run() {  # run <socket> <loadgen args...>
  local sock="$1"; shift
  $client_cpu "$bin/nydus_loadgen" --socket "$sock" --duration "$duration" --warmup 1 "$@"
}

echo "# nydus API load benchmark: GET /api/v1/daemon ($reply_bytes-byte body), $(nproc) CPUs"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); rounds=$rounds duration=${duration}s (+1s warm-up)"
echo "# placement: ${server_cpu:-unpinned} (servers), ${client_cpu:-unpinned} (load generator)"
echo "# nydusd idle RSS: ${nydusd_idle_rss} KiB"
echo
printf '| %-9s | %-11s | %-11s | %-12s | %-23s | %-23s | %-9s | %-13s |\n' \
  "conns x d" "ceiling r/s" "nydusd r/s" "rps ratio" "ceiling p50/p99/p99.9 us" "nydusd p50/p99/p99.9 us" \
  "p50 ratio" "non2xx/drops"
printf '|%s|\n' "-----------|-------------|-------------|--------------|-------------------------|-------------------------|-----------|---------------"
for spec in 1x1 16x1 64x1 256x1 16x16; do
  conns=${spec%x*}; depth=${spec#*x}
  : >"$work/c"; : >"$work/n"
  for r in $(seq "$rounds"); do
    # Alternate which server goes first, so a drift in machine load is shared.
    if [ $((r % 2)) -eq 1 ]; then order="c n"; else order="n c"; fi
    for who in $order; do
      if [ "$who" = c ]; then sock="$work/ceiling.sock"; else sock="$work/nydusd.sock"; fi
      run "$sock" --connections "$conns" --depth "$depth" >>"$work/$who"
    done
  done
  ratios=$(paste -d' ' "$work/n" "$work/c" | awk '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "rps") { if (n == "") n = kv[2]; else c = kv[2] } }
      printf "%.3f\n", n / c; n = ""; c = "" }')
  p50r=$(paste -d' ' "$work/n" "$work/c" | awk '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "p50_us") { if (n == "") n = kv[2]; else c = kv[2] } }
      printf "%.3f\n", n / c; n = ""; c = "" }')
  med() { field "$2" <"$work/$1" | median; }
  sum() { field "$2" <"$work/$1" | awk '{s += $1} END {print s + 0}'; }
  printf '| %-9s | %11.0f | %11.0f | %5.2f (%s) | %23s | %23s | %9s | %13s |\n' "$conns x $depth" \
    "$(med c rps)" "$(med n rps)" "$(echo "$ratios" | median)" "$(echo "$ratios" | sort -g | head -1)-$(echo "$ratios" | sort -g | tail -1)" \
    "$(med c p50_us)/$(med c p99_us)/$(med c p999_us)" "$(med n p50_us)/$(med n p99_us)/$(med n p999_us)" \
    "$(echo "$p50r" | median)" "$(( $(sum n non2xx) + $(sum c non2xx) ))/$(( $(sum n dropped) + $(sum c dropped) ))"
done
echo
echo "rps ratio: median nydusd/ceiling over the rounds (min-max); p50 ratio: median of nydusd p50 / ceiling p50."

# Idle connections: nydusd's stack with the cap raised (nydusd itself refuses
# beyond 1024), 16 active connections with and without 10,000 idle ones. A
# fresh server each round: freed memory stays in the allocator, so only a
# fresh process shows what the idle connections cost.
: >"$work/i0"; : >"$work/i1"
for r in $(seq "$rounds"); do
  rm -f "$work/apid.sock"
  $server_cpu "$bin/nydus_bench_apid" --socket "$work/apid.sock" &
  apid_pid=$!
  pids+=("$apid_pid")
  wait_socket "$work/apid.sock"
  run "$work/apid.sock" --connections 16 >>"$work/i0"
  run "$work/apid.sock" --connections 16 --idle 10000 --server-pid "$apid_pid" >>"$work/i1"
  kill "$apid_pid"
  wait "$apid_pid" 2>/dev/null || true
done
echo
echo "| scenario (nydus_bench_apid)   | r/s (median) | throughput kept | RSS per idle connection |"
echo "|-------------------------------|--------------|-----------------|-------------------------|"
base=$(field rps <"$work/i0" | median)
with=$(field rps <"$work/i1" | median)
per=$(paste -d' ' <(field rss_before_kib <"$work/i1") <(field rss_idle_kib <"$work/i1") |
      awk '{printf "%.2f\n", ($2 - $1) / 10000}' | median)
printf '| %-29s | %12.0f | %15s | %23s |\n' "16 active" "$base" "-" "-"
printf '| %-29s | %12.0f | %14.1f%% | %19s KiB |\n' "16 active + 10,000 idle" "$with" \
  "$(awk -v a="$with" -v b="$base" 'BEGIN {print 100 * a / b}')" "$per"
# The same with nydusd itself (fresh), as far as its cap allows.
$server_cpu "$bin/nydusd" --apisock "$work/nydusd2.sock" --log-level warn >"$work/nydusd2.log" 2>&1 &
nydusd2_pid=$!
pids+=("$nydusd2_pid")
wait_socket "$work/nydusd2.sock"
sleep 0.5
echo
echo "nydusd itself, 16 active + 1,000 idle: $(run "$work/nydusd2.sock" --connections 16 --idle 1000 --server-pid "$nydusd2_pid")"
echo "nydusd RSS after the whole run: $(rss_kib "$nydusd_pid") KiB (idle at start: $nydusd_idle_rss KiB)"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$micro" = 1 ]; then
  echo
  "$bin/nydus_api_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_filter='.' 2>/dev/null | grep -E '_median|^Benchmark|^---'
fi
