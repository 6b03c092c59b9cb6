#!/usr/bin/env bash
# Install test: installs a built tree into a temporary prefix and checks that
# an outside project can use it, through the CMake package and through
# pkg-config; that a program built with one MPI refuses the provider built
# for the other; and that the README's commands and snippets work as
# written against that prefix (tests/readme/check.py).
#
#   tests/install/run.sh <build-dir>
#
# Set PINHEAP_KEEP_INSTALL_TMP=1 to keep the temporary directory.
set -euo pipefail

if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 <build-dir>" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
# Run from `make check`: keep the outer make's settings out of the builds here.
unset MAKEFLAGS MFLAGS MAKELEVEL
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinheap-install.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
cleanup() {
  if [ "${PINHEAP_KEEP_INSTALL_TMP:-0}" = 1 ]; then
    echo "install test: kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

prefix=$tmp/prefix
failures=0
fail() { echo "install test: FAIL: $*" >&2; failures=$((failures + 1)); }
die() { echo "install test: FAIL: $*" >&2; exit 1; }
step() { echo "== install test: $*"; }

# Runs "$@", requires that it prints exactly "ok" and exits 0.
expect_ok() {
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] || [ "$out" != ok ]; then
    printf '%s\n' "$out" >&2
    fail "$1 exited $rc, printed the above instead of 'ok'"
    return 1
  fi
  echo "$1: ok"
}

# Requires that the executable $1 loads libpinheap.so from the temp prefix
# (with the environment the caller gives).
loads_from_prefix() {
  local so
  so=$(ldd "$1" | awk '/libpinheap\.so/ { print $3; exit }')
  if [ -z "$so" ] || [ ! -e "$so" ]; then
    fail "$1 does not load libpinheap.so: $(ldd "$1" | tr '\n' ' ')"
    return 1
  fi
  so=$(readlink -f "$so")
  case "$so" in
    "$prefix"/*) ;;
    *) fail "$1 loads $so, not the library under $prefix"; return 1 ;;
  esac
}

step "cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix"

# The library directory: lib, or lib/<multiarch> when GNUInstallDirs chose
# Debian's multiarch layout (prefix /usr), or lib64 elsewhere.
libdir=
for d in lib "lib/$(cc -print-multiarch 2>/dev/null || true)" lib/*-linux-gnu* lib64; do
  if [ -e "$prefix/$d/libpinheap.so" ]; then libdir=$prefix/${d%/}; break; fi
done
if [ -z "$libdir" ]; then
  (cd "$prefix" && find . | sort) >&2
  die "libpinheap.so is not under $prefix/lib, lib/<multiarch> or lib64 (tree above)"
fi
echo "library directory: ${libdir#"$prefix"/}"

step "installed files"
for f in "$prefix/include/pinheap.h" \
         "$prefix/include/pinheap_sym.h" \
         "$libdir/libpinheap.so" \
         "$libdir/libpinheap.a" \
         "$libdir/libpinheap-preload.so" \
         "$libdir/libpinheap-record.so" \
         "$libdir/pkgconfig/pinheap.pc" \
         "$libdir/cmake/pinheap/pinheapConfig.cmake" \
         "$libdir/cmake/pinheap/pinheapConfigVersion.cmake" \
         "$prefix/bin/pinheap"; do
  if [ -e "$f" ]; then echo "present: ${f#"$prefix"/}"; else fail "missing: ${f#"$prefix"/}"; fi
done
# The libfabric provider, when the build has it.
ofi=0
grep -q '^PINHEAP_OFI:BOOL=ON$' "$build_dir/CMakeCache.txt" && ofi=1
if [ "$ofi" = 1 ]; then
  for f in "$prefix/include/pinheap_ofi.h" \
           "$libdir/libpinheap-ofi.so" \
           "$libdir/libpinheap-ofi.a" \
           "$libdir/pkgconfig/pinheap-ofi.pc"; do
    if [ -e "$f" ]; then echo "present: ${f#"$prefix"/}"; else fail "missing: ${f#"$prefix"/}"; fi
  done
fi
[ "$failures" -eq 0 ] || { (cd "$prefix" && find . | sort) >&2; die "installed tree incomplete (above)"; }

step "the installed pinheap tool records a program with the installed libraries"
if "$prefix/bin/pinheap" record -o "$tmp/true.trace" -- true && "$prefix/bin/pinheap" info "$tmp/true.trace" > /dev/null; then
  echo "pinheap record: ok"
else
  fail "the installed pinheap record did not write a trace that reads"
fi

# The objects are built with -fvisibility=hidden: every function named $3...
# that header $1 declares must be exported by library $2.
check_exports() {
  local api exported fn
  step "exported symbols of $(basename "$2")"
  api=$(grep -oE "\\b$3[a-z_]+[[:space:]]*\\(" "$1" | tr -d '( \t' | sort -u)
  exported=$(nm -D --defined-only "$2" | awk '{ print $NF }' | sort -u)
  for fn in $api; do
    grep -qx "$fn" <<<"$exported" || fail "$(basename "$2") does not export $fn"
  done
  echo "$(wc -w <<<"$api") API functions checked"
  [ "$failures" -eq 0 ] || die "public functions missing from $(basename "$2")"
}
check_exports "$prefix/include/pinheap.h" "$libdir/libpinheap.so" pinheap_
[ "$ofi" = 1 ] && check_exports "$prefix/include/pinheap_ofi.h" "$libdir/libpinheap-ofi.so" pinheap_ofi_
check_exports "$prefix/include/pinheap_sym.h" "$libdir/libpinheap.so" pinheap_sym_

step "CMake consumer (find_package(pinheap), pinheap::pinheap)"
(
  unset pinheap_DIR
  cmake -S "$here/consumer" -B "$tmp/consumer-build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
) || die "configuring the CMake consumer failed"
found_dir=$(sed -n 's/^pinheap_DIR:[A-Z]*=//p' "$tmp/consumer-build/CMakeCache.txt")
[ "$(readlink -f "$found_dir")" = "$(readlink -f "$libdir/cmake/pinheap")" ] ||
  die "the consumer found pinheap in '$found_dir', not under $prefix"
cmake --build "$tmp/consumer-build" || die "building the CMake consumer failed"
if loads_from_prefix "$tmp/consumer-build/consumer"; then
  expect_ok "$tmp/consumer-build/consumer" || true
fi
if [ -e "$tmp/consumer-build/consumer_static" ]; then
  if ldd "$tmp/consumer-build/consumer_static" | grep -q libpinheap; then
    fail "consumer_static (pinheap::pinheap_static) loads libpinheap.so"
  fi
  expect_ok "$tmp/consumer-build/consumer_static" || true
else
  fail "the CMake package has no pinheap::pinheap_static target"
fi
if [ "$ofi" = 1 ]; then
  if [ -e "$tmp/consumer-build/consumer_ofi" ]; then
    loads_from_prefix "$tmp/consumer-build/consumer_ofi" && expect_ok "$tmp/consumer-build/consumer_ofi" || true
  else
    fail "the CMake package has no pinheap::pinheap_ofi target"
  fi
fi

step "pkg-config consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists --print-errors pinheap || die "pkg-config cannot use pinheap.pc"
pc_includedir=$(pkg-config --variable=includedir pinheap)
pc_libdir=$(pkg-config --variable=libdir pinheap)
if [ "$(readlink -m "$pc_includedir")" != "$prefix/include" ] ||
   [ "$(readlink -m "$pc_libdir")" != "$libdir" ]; then
  fail "pinheap.pc is not relocatable: after 'cmake --install --prefix $prefix' it says
    includedir=$pc_includedir
    libdir=$pc_libdir
  (the configure-time CMAKE_INSTALL_PREFIX), so a consumer would use whatever
  is installed there instead. Derive the prefix from \${pcfiledir} or write
  the .pc at install time."
else
  flags=$(pkg-config --cflags --libs pinheap)
  echo "pkg-config --cflags --libs pinheap: $flags"
  # shellcheck disable=SC2086  # the flags are meant to split
  if cc -std=c99 -pedantic -Wall -Wextra -Werror -o "$tmp/consumer_pc" \
      "$here/consumer/main.c" $flags; then
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if loads_from_prefix "$tmp/consumer_pc"; then
      expect_ok "$tmp/consumer_pc" || true
    fi
  else
    fail "compiling main.c with the pkg-config flags failed"
  fi
  if [ "$ofi" = 1 ]; then
    flags=$(pkg-config --cflags --libs pinheap-ofi)
    echo "pkg-config --cflags --libs pinheap-ofi: $flags"
    # shellcheck disable=SC2086  # the flags are meant to split
    if cc -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer_ofi_pc" "$here/consumer/ofi.c" $flags; then
      loads_from_prefix "$tmp/consumer_ofi_pc" && expect_ok "$tmp/consumer_ofi_pc" || true
    else
      fail "compiling ofi.c with the pkg-config flags of pinheap-ofi failed"
    fi
  fi
fi

# The MPI provider, for each MPI it was built for: its files and exports,
# and the consumer built through the CMake package and through pkg-config,
# run at 2 ranks.
for so in "$libdir"/libpinheap-mpi-*.so; do
  [ -e "$so" ] || continue
  flavour=${so##*/libpinheap-mpi-}
  flavour=${flavour%.so}
  step "MPI provider for $flavour"
  for f in "$prefix/include/pinheap_mpi.h" "$prefix/include/pinheap_sym.h" \
           "$libdir/libpinheap-mpi-$flavour.a" "$libdir/pkgconfig/pinheap-mpi-$flavour.pc"; do
    [ -e "$f" ] || fail "missing: ${f#"$prefix"/}"
  done
  api=$(grep -oE '\bpinheap_mpi_[a-z_]+[[:space:]]*\(' "$prefix/include/pinheap_mpi.h" | tr -d '( \t' | sort -u)
  exported=$(nm -D --defined-only "$so" | awk '{ print $NF }' | sort -u)
  for fn in $api; do
    grep -qx "$fn" <<<"$exported" || fail "$(basename "$so") does not export $fn"
  done
  exe=$tmp/consumer-build/consumer_mpi_$flavour
  if [ -x "$exe" ]; then
    expect_ok bash "$here/../mpi/run.sh" "$flavour" 2 "$exe" || true
  else
    fail "the CMake package has no pinheap::pinheap_mpi_$flavour target"
  fi
  flags=$(pkg-config --cflags --libs "pinheap-mpi-$flavour") || { fail "pkg-config pinheap-mpi-$flavour"; continue; }
  echo "pkg-config --cflags --libs pinheap-mpi-$flavour: $flags"
  # shellcheck disable=SC2086  # the flags are meant to split
  if cc -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer_mpi_pc_$flavour" "$here/consumer/main_mpi.c" $flags; then
    LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      expect_ok bash "$here/../mpi/run.sh" "$flavour" 2 "$tmp/consumer_mpi_pc_$flavour" || true
  else
    fail "compiling main_mpi.c with the pkg-config flags of pinheap-mpi-$flavour failed"
  fi
done

# libpinheap-shmem, when the build has it: its files and the OpenSHMEM
# routines it serves, and the OpenSHMEM consumer, run at 2 PEs under
# oshrun, built through the CMake package (shared and static), with oshcc
# and pkg-config, and with oshcc alone and the library preloaded. Each run
# must print "ok" and the library's stats line (it served the calls).
if [ -e "$build_dir/libpinheap-shmem.so" ]; then
  step "libpinheap-shmem"
  for f in "$libdir/libpinheap-shmem.so" "$libdir/libpinheap-shmem.a" "$libdir/pkgconfig/pinheap-shmem.pc"; do
    if [ -e "$f" ]; then echo "present: ${f#"$prefix"/}"; else fail "missing: ${f#"$prefix"/}"; fi
  done
  exported=$(nm -D --defined-only "$libdir/libpinheap-shmem.so" | awk '{ print $NF }' | sort -u)
  for fn in shmem_malloc shmem_calloc shmem_align shmem_realloc shmem_free shmalloc shmemalign shrealloc shfree \
            shmemx_malloc_with_hint shmem_finalize; do
    grep -qx "$fn" <<<"$exported" || fail "libpinheap-shmem.so does not export $fn"
  done
  shmem_ok() {
    local what=$1 out err rc=0
    shift
    err=$tmp/shmem.err
    out=$(PINHEAP_STATS=1 bash "$here/../mpi/run.sh" oshmem 2 "$@" 2>"$err") || rc=$?
    if [ "$rc" -ne 0 ] || [ "$out" != ok ] || ! grep -q '^libpinheap-shmem: symmetric heap of 2 PEs' "$err"; then
      printf '%s\n' "$out" >&2
      tail -n 20 "$err" >&2
      fail "$what: exit $rc, printed the above instead of 'ok' and the library's stats line"
      return 1
    fi
    echo "$what: ok, served by libpinheap-shmem"
  }
  for exe in consumer_shmem consumer_shmem_static; do
    if [ -x "$tmp/consumer-build/$exe" ]; then
      shmem_ok "$exe (CMake package)" "$tmp/consumer-build/$exe" || true
    else
      fail "the CMake package has no target for $exe"
    fi
  done
  if command -v oshcc >/dev/null; then
    flags=$(pkg-config --cflags --libs pinheap-shmem) || fail "pkg-config pinheap-shmem"
    echo "pkg-config --cflags --libs pinheap-shmem: $flags"
    # shellcheck disable=SC2086  # the flags are meant to split
    if oshcc -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer_shmem_pc" "$here/consumer/shmem.c" $flags \
        -Wl,-rpath,"$libdir"; then
      shmem_ok "oshcc with pkg-config pinheap-shmem" "$tmp/consumer_shmem_pc" || true
    else
      fail "compiling shmem.c with oshcc and the pkg-config flags of pinheap-shmem failed"
    fi
    if oshcc -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer_shmem_plain" "$here/consumer/shmem.c"; then
      shmem_ok "oshcc alone, libpinheap-shmem.so preloaded" \
        env LD_PRELOAD="$libdir/libpinheap-shmem.so" "$tmp/consumer_shmem_plain" || true
    else
      fail "compiling shmem.c with oshcc failed"
    fi
  fi
fi

# The provider built for one MPI linked into a program built with the
# other's wrapper (`mpicc.mpich main.c -lpinheap-mpi-openmpi`): both MPIs
# load, and pinheap_mpi_create must refuse with a message naming the
# provider library and the MPI library the program's calls reach, instead
# of passing one MPI's handles to the other.
step "the provider built for the other MPI"
flavours=()
for so in "$libdir"/libpinheap-mpi-*.so; do
  [ -e "$so" ] || continue
  f=${so##*/libpinheap-mpi-}
  f=${f%.so}
  command -v "mpicc.$f" >/dev/null && command -v "mpirun.$f" >/dev/null && flavours+=("$f")
done
if [ "${#flavours[@]}" -lt 2 ]; then
  echo "skipped: needs two MPIs with their wrappers and launchers, found: ${flavours[*]:-none}"
fi
for built in "${flavours[@]}"; do
  for used in "${flavours[@]}"; do
    [ "$built" != "$used" ] || continue
    exe=$tmp/wrong_${used}_links_$built
    if ! "mpicc.$used" -o "$exe" "$here/consumer/main_mpi.c" -I"$prefix/include" -L"$libdir" \
        -lpinheap-mpi-"$built" -lpinheap -Wl,-rpath,"$libdir"; then
      fail "mpicc.$used ... -lpinheap-mpi-$built did not link"
      continue
    fi
    case $used in
      openmpi) theirs=libmpi.so ;;
      *) theirs=lib$used ;;
    esac
    rc=0
    out=$(bash "$here/../mpi/run.sh" "$used" 2 "$exe" 2>&1) || rc=$?
    msg=$(grep -m1 'pinheap_mpi_create' <<<"$out" || true)
    if [ "$rc" -ne 0 ] && grep -q "libpinheap-mpi-$built (.*) was built for" <<<"$msg" &&
       grep -qF "$theirs" <<<"$msg" && grep -qF "link libpinheap-mpi-$used" <<<"$msg"; then
      echo "mpicc.$used with libpinheap-mpi-$built: refused: ${msg#*failed: }"
    else
      printf '%s\n' "$out" | tail -n 20 >&2
      fail "mpicc.$used with libpinheap-mpi-$built (exit $rc): no message naming libpinheap-mpi-$built and $theirs"
    fi
  done
done

# Every command and snippet of the README, against this prefix.
step "the README (tests/readme/check.py)"
python3 "$here/../readme/check.py" "$here/../../README.md" "$build_dir" "$prefix" ||
  fail "the README's commands and snippets (above)"

if [ "$failures" -ne 0 ]; then
  echo "install test: $failures failure(s)" >&2
  exit 1
fi
echo "install test: passed"
