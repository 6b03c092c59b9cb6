#!/usr/bin/env bash
# Installs the Debian packages pinheap needs to build, test and benchmark,
# but only those not installed yet. Runs `apt-get update` first when anything
# is missing. Works as root, or through sudo when not root.
#
#   scripts/deps.sh            install what is missing
#   scripts/deps.sh --check    only report what is missing (exit 1 if any)
set -euo pipefail

# The one list of packages. Add new ones here.
PACKAGES=(
  cmake
  make
  gcc
  libc6-dev        # gcc only recommends it; needed where recommends are off
  pkg-config
  libjemalloc-dev
  libmimalloc-dev  # benchmarks compare against mimalloc
  libcmocka-dev    # unit tests
  python3          # programs run under libpinheap-preload in the tests
  libpython3.11-testsuite # Python's own test suite, a slice of it run under libpinheap-preload
  clang            # the fuzzers (libFuzzer)
  libclang-rt-14-dev # libFuzzer and the sanitizers' runtimes
  sqlite3          # programs run under libpinheap-preload in the tests
  valgrind         # memcheck over the integration tests
  libopenmpi-dev   # the MPI provider and its tests, under Open MPI
  openmpi-bin
  libmpich-dev     # ... and under MPICH
  mpich
  libfabric-dev    # the libfabric provider and its tests
  libfabric-bin
  librsvg2-bin     # rsvg-convert: the tests turn a heap picture (SVG) into a PNG
  libdpdk-dev      # the comparison's peer: DPDK's rte_malloc over an external heap (bench/compare)
)

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  *) echo "deps.sh: unknown argument: $1" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
  echo "deps.sh: install these yourself: ${PACKAGES[*]}" >&2
  exit 1
fi

is_installed() {
  # Prints one status per installed architecture; "installed" means unpacked
  # and configured (not just config files left behind).
  dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps.sh: all ${#PACKAGES[@]} packages are installed."
  exit 0
fi

echo "deps.sh: missing: ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "deps.sh: not root and sudo not found; run as root or install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a dpkg lock held by another apt (e.g. unattended-upgrades on a
# freshly booted machine) instead of failing at once.
APT_OPTS=(-y -o DPkg::Lock::Timeout=300)

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install "${missing[@]}"

# Verify: a package name that exists nowhere fails apt-get above, but check
# anyway so a silent partial install is caught here and not at build time.
still=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still+=("$pkg")
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "deps.sh: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "deps.sh: installed: ${missing[*]}"
