#!/usr/bin/env bash
# Builds the .deb from a configured+built build directory, installs it into the
# system, checks the installed daemon and unit, and purges it again.
# Usage: scripts/deb-check.sh [build dir]   (root: dpkg installs system-wide)
set -euo pipefail
build=${1:-build}
start=$SECONDS
(cd "$build" && cpack -G DEB >cpack.log) || { cat "$build/cpack.log"; exit 1; }
deb=$(ls -t "$build"/nydus-cpp_*.deb | head -1)
echo "deb-check: built $deb"
dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Depends):'

# Never clobber or remove files another package (upstream nydus) owns.
for f in /usr/bin/nydusd /etc/nydus/nydusd-config.json; do
  if [ -e "$f" ] && ! dpkg -S "$f" 2>/dev/null | grep -q '^nydus-cpp:'; then
    echo "deb-check: SKIP: $f exists and is not from nydus-cpp"
    exit 0
  fi
done
cleanup() { dpkg --purge nydus-cpp >/dev/null || echo "deb-check: dpkg --purge failed" >&2; }
trap cleanup EXIT
dpkg -i "$deb"
/usr/bin/nydusd --version
/usr/bin/nydusctl --help >/dev/null
/usr/bin/nydus-image --help >/dev/null
[ -f /etc/nydus/nydusd-config.json ] || { echo "deb-check: no /etc/nydus/nydusd-config.json" >&2; exit 1; }
unit=$(dpkg -L nydus-cpp | grep '/nydusd.service$')
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit"
  echo "deb-check: systemd-analyze accepts $unit"
else
  echo "deb-check: SKIP unit check: systemd-analyze is not installed"
fi
trap - EXIT
cleanup
if dpkg -s nydus-cpp >/dev/null 2>&1 || [ -e /usr/bin/nydusd ] || [ -e /etc/nydus/nydusd-config.json ]; then
  echo "deb-check: the package did not remove cleanly" >&2
  exit 1
fi
echo "deb-check: installed, checked and purged in $((SECONDS - start)) s"
