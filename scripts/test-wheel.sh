#!/usr/bin/env bash
# Install a wheel from scripts/build-wheels.sh where there is no compiler
# and no header, and produce and consume with it against a real broker.
#
#   sudo scripts/test-wheel.sh [WHEELHOUSE]      (default dist/wheelhouse)
#
# 1. Makes (once) a clean Debian chroot with debootstrap, $PKC_WHEEL_SUITE
#    (default bookworm: Python 3.11; trixie: Python 3.13), in
#    $PKC_CACHE_DIR/chroots/<suite>-test with nothing but Debian's minimal
#    base, python3 and python3-venv; fails if a C compiler or any of
#    Python.h, zlib.h, snappy-c.h, lz4frame.h, zstd.h, openssl/ssl.h is
#    there, or if pip could reach an index (it installs with --no-index).
# 2. Installs the wheel for the chroot's Python into a fresh venv there.
# 3. Starts one Kafka broker (the newest 4.x) with the project's harness on
#    this machine (`python -m pykafka_c.test.kafka_instance 1
#    --export-hosts FILE`, which needs Java and Maven here, not in the
#    chroot); the chroot shares the loopback network, and gets a copy of
#    the test certificates, and the test CA in its system store for the run.
# 4. Runs scripts/wheel/smoke.py in the chroot: pykafka_c from site-packages
#    with its libraries from the wheel's pykafka_c.libs/, every codec over
#    PLAINTEXT, TLS (with the CA file, and with the system's store), and
#    SASL_SSL with SCRAM-SHA-512.
# 5. Stops the broker it started and unmounts what it mounted.
# PYTHON (default python3) runs the harness, from this source tree (build the
# extension in place first, as scripts/test.sh does).  Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHEELHOUSE=$(realpath "${1:-$ROOT/dist/wheelhouse}")
PYTHON=${PYTHON:-python3}
CACHE=${PKC_CACHE_DIR:-$HOME/.cache/pykafka_c}
SUITE=${PKC_WHEEL_SUITE:-bookworm}
MIRROR=${PKC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CHROOT=$CACHE/chroots/$SUITE-test
T0=$SECONDS
phase() { echo "=== test-wheel: $* ($((SECONDS - T0)) s)"; }
die() { echo "test-wheel: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"

broker_pid=""
mounts=()
system_ca=()
cleanup() {
    [ ${#system_ca[@]} -eq 0 ] || rm -f "${system_ca[@]}"
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 1; done
        kill -KILL "$broker_pid" 2>/dev/null || true
    fi
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT

# --- 1. the clean chroot -----------------------------------------------------
if [ ! -x "$CHROOT/usr/bin/python3" ]; then
    phase "debootstrap $SUITE into $CHROOT"
    rm -rf "$CHROOT.tmp"
    mkdir -p "$(dirname "$CHROOT")"
    debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$CHROOT.tmp" "$MIRROR" \
        >"$CACHE/debootstrap-$SUITE-test.log" 2>&1 || die "debootstrap failed; see $CACHE/debootstrap-$SUITE-test.log"
    mv "$CHROOT.tmp" "$CHROOT"
fi
mountpoint -q "$CHROOT/proc" || { mount -t proc proc "$CHROOT/proc"; mounts+=("$CHROOT/proc"); }
inchroot() { chroot "$CHROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

phase "checking that the chroot has no compiler and no headers"
present=$(inchroot sh -c '
    for c in gcc cc c99 clang tcc; do command -v $c; done
    for h in python3*/Python.h zlib.h snappy-c.h lz4frame.h zstd.h openssl/ssl.h; do
        for d in /usr/include /usr/local/include /usr/include/x86_64-linux-gnu; do ls -d $d/$h; done
    done' 2>/dev/null || true)
[ -z "$present" ] || die "the chroot is not clean: $present"
pyver=$(inchroot python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')
echo "test-wheel: $SUITE chroot: Python $(inchroot python3 -c 'import sys; print(sys.version.split()[0])'), $(inchroot ldd --version | head -n1); no compiler, no headers"

# --- 2. the wheel ------------------------------------------------------------
mapfile -t wheels < <(ls "$WHEELHOUSE"/pykafka_c-*-cp"$pyver"-cp"$pyver"-*manylinux*.whl 2>/dev/null)
[ ${#wheels[@]} -eq 1 ] || die "want one cp$pyver manylinux wheel in $WHEELHOUSE, found ${#wheels[@]} (run scripts/build-wheels.sh)"
wheel=${wheels[0]}
phase "installing $(basename "$wheel") with --no-index"
rm -rf "$CHROOT/opt/smoke" "$CHROOT/opt/wheels"
mkdir -p "$CHROOT/opt/wheels"
cp "$wheel" scripts/wheel/smoke.py "$CHROOT/opt/wheels/"
inchroot python3 -m venv /opt/smoke
inchroot /opt/smoke/bin/pip install -q --disable-pip-version-check --no-index "/opt/wheels/$(basename "$wheel")"

# --- 3. the broker -----------------------------------------------------------
phase "starting one Kafka broker with the harness ($PYTHON)"
hosts_file=$(mktemp)
rm -f "$hosts_file"
log=$ROOT/build/test-wheel-broker.log
mkdir -p "$ROOT/build"
"$PYTHON" -m pykafka_c.test.kafka_instance 1 --export-hosts "$hosts_file" >"$log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 600); do
    [ -f "$hosts_file" ] && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$log"; die "the harness exited before the broker was ready"; }
    sleep 0.5
done
[ -f "$hosts_file" ] || die "no broker after 300 s; see $log"
set -a
# shellcheck disable=SC1090
. "$hosts_file"
set +a
rm -rf "$CHROOT/opt/certs"
cp -r "$PKC_TEST_CERTS" "$CHROOT/opt/certs"
# The test CA in the chroot's system store as update-ca-certificates puts a
# CA there (a hashed link in /etc/ssl/certs), for SslConfig(cafile=None);
# taken out again by cleanup.
ca_hash=$(openssl x509 -hash -noout -in "$PKC_TEST_CERTS/ca.pem")
mkdir -p "$CHROOT/etc/ssl/certs"
cp "$PKC_TEST_CERTS/ca.pem" "$CHROOT/etc/ssl/certs/pkc-test-ca.pem"
ln -sf pkc-test-ca.pem "$CHROOT/etc/ssl/certs/$ca_hash.0"
system_ca=("$CHROOT/etc/ssl/certs/pkc-test-ca.pem" "$CHROOT/etc/ssl/certs/$ca_hash.0")

# --- 4. the smoke test -------------------------------------------------------
phase "smoke test in the chroot (Kafka $KAFKA_VERSION)"
rc=0
inchroot env BROKERS="$BROKERS" BROKERS_SSL="$BROKERS_SSL" BROKERS_SASL_SSL="$BROKERS_SASL_SSL" \
    PKC_TEST_CERTS=/opt/certs /opt/smoke/bin/python /opt/wheels/smoke.py || rc=$?
rm -f "$hosts_file"
phase "done (exit $rc)"
exit $rc
