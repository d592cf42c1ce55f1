#!/usr/bin/env bash
# The broker-free tests on a CPython this machine does not have, taken from
# Debian unstable ("sid"), in a debootstrap chroot: Python 3.14 by default.
#
#   sudo scripts/test-python-chroot.sh [VERSION]      (default 3.14)
#
# Makes (once) $PKC_CACHE_DIR/chroots/sid-py<VERSION> with python<VERSION>-dev,
# gcc, the zlib/snappy/lz4/zstd/OpenSSL headers and the lz4, zstd and openssl
# commands (the unit tests' interop cases run them) from Debian's packages,
# copies this source tree into it, and there runs what scripts/test-pythons.sh
# runs for each Python: `pip install -e '.[test]'` (PKC_WERROR=1) in a venv,
# then pytest -m "unit and not slow and not cprogram".  Not part of scripts/test.sh (it needs
# root and Debian's mirror, and sid moves): the README's "Python versions"
# says when it was last run and what it gave.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-3.14}
CACHE=${PKC_CACHE_DIR:-$HOME/.cache/pykafka_c}
MIRROR=${PKC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CHROOT=$CACHE/chroots/sid-py${VERSION/./}
PKGS=python$VERSION-dev,python$VERSION-venv,gcc,libc6-dev,zlib1g-dev,libsnappy-dev,liblz4-dev,libzstd-dev,libssl-dev,openssl,ca-certificates,lz4,zstd
T0=$SECONDS
phase() { echo "=== test-python-chroot: $* ($((SECONDS - T0)) s)"; }
die() { echo "test-python-chroot: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
mounts=()
cleanup() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" || true; done
}
trap cleanup EXIT

if [ ! -x "$CHROOT/usr/bin/python$VERSION" ]; then
    phase "debootstrap sid with Python $VERSION into $CHROOT"
    rm -rf "$CHROOT.tmp"
    mkdir -p "$(dirname "$CHROOT")"
    debootstrap --variant=minbase --include="$PKGS" sid "$CHROOT.tmp" "$MIRROR" \
        >"$CACHE/debootstrap-sid-py$VERSION.log" 2>&1 || die "debootstrap failed; see $CACHE/debootstrap-sid-py$VERSION.log"
    mv "$CHROOT.tmp" "$CHROOT"
fi
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
mountpoint -q "$CHROOT/proc" || { mount -t proc proc "$CHROOT/proc"; mounts+=("$CHROOT/proc"); }
mountpoint -q "$CHROOT/dev" || { mount --bind /dev "$CHROOT/dev"; mounts+=("$CHROOT/dev"); }
# A chroot made before a package joined PKGS gets it now.  Check-Valid-Until
# is off because the mirror this was run against served a sid Release file
# past its Valid-Until date (apt refuses it otherwise).
if ! chroot "$CHROOT" dpkg -s ${PKGS//,/ } >/dev/null 2>&1; then
    phase "apt-get install the packages missing from $CHROOT"
    chroot "$CHROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c \
        "apt-get -o Acquire::Check-Valid-Until=false update -q && apt-get install -y -q --no-install-recommends ${PKGS//,/ }" \
        >"$CACHE/apt-sid-py$VERSION.log" 2>&1 || die "apt-get failed; see $CACHE/apt-sid-py$VERSION.log"
fi
# The chroot's pip trusts what this machine's pip trusts (a proxy's CA).
cp "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$CHROOT/etc/pkc-pip-ca.crt"

phase "source tree"
rm -rf "$CHROOT/src/pykafka_c"
mkdir -p "$CHROOT/src/pykafka_c"
git ls-files -z --cached --others --exclude-standard |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$CHROOT/src/pykafka_c"

phase "pip install -e .[test] and the unit tests on $(chroot "$CHROOT" "python$VERSION" -c 'import sys; print("CPython", sys.version.split()[0])')"
chroot "$CHROOT" env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/pkc-pip-ca.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PKC_WERROR=1 VERSION="$VERSION" sh -c '
    set -e
    cd /src/pykafka_c
    [ -x /opt/venv/bin/python ] || python$VERSION -m venv /opt/venv
    /opt/venv/bin/pip install -q -e ".[test]"
    /opt/venv/bin/python -m pytest -q -p no:cacheprovider -m "unit and not slow and not cprogram" tests'
phase "done"
