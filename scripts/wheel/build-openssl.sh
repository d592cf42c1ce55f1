#!/bin/sh
# Build OpenSSL 3.0 (libssl + libcrypto, shared, no apps, no docs) into
# PREFIX for a wheel to carry: pykafka_c needs OpenSSL 3 (for TLS and SCRAM),
# and the systems wheels are built on (Debian 11, AlmaLinux 8 under
# manylinux_2_28) ship OpenSSL 1.1.1.
#
#   build-openssl.sh PREFIX [TARBALL]
#
# TARBALL is openssl-3.0.22.tar.gz (or Debian's openssl_3.0.22.orig.tar.gz,
# the same bytes); without it the tarball is downloaded from OpenSSL's
# GitHub releases (for a machine that can reach them, such as
# cibuildwheel's).  Either way its SHA-256 must match the one below.
# OPENSSLDIR is /etc/ssl: with SslConfig(cafile=None) the wheel's OpenSSL
# finds the system's CA store at /etc/ssl/certs (Debian, Ubuntu, Alpine,
# Fedora and RHEL's compatibility links) or where SSL_CERT_FILE /
# SSL_CERT_DIR point.
# Idempotent: does nothing when PREFIX already holds this version.
set -eu
VERSION=3.0.22
SHA256=67ebca7e50d17383028045486653492195b83db95f8558709701bb47b5c1ef81
PREFIX=$1
TARBALL=${2:-}

if [ -f "$PREFIX/.pkc-openssl-version" ] &&
   [ "$(cat "$PREFIX/.pkc-openssl-version")" = "$VERSION" ]; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$TARBALL" ]; then
    TARBALL=$work/openssl-$VERSION.tar.gz
    curl -fsSL -o "$TARBALL" \
        "https://github.com/openssl/openssl/releases/download/openssl-$VERSION/openssl-$VERSION.tar.gz"
fi
echo "$SHA256  $TARBALL" | sha256sum -c - >/dev/null || {
    echo "build-openssl: $TARBALL is not OpenSSL $VERSION (SHA-256 differs)" >&2
    exit 1
}
tar -xzf "$TARBALL" -C "$work"
cd "$work/openssl-$VERSION"
./Configure "linux-$(uname -m)" --prefix="$PREFIX" --libdir=lib \
    --openssldir=/etc/ssl shared no-tests >/dev/null
make -j"$(nproc)" build_libs >/dev/null
make install_dev >/dev/null
echo "$VERSION" >"$PREFIX/.pkc-openssl-version"
echo "build-openssl: OpenSSL $VERSION in $PREFIX"
