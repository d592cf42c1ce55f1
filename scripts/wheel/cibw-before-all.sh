#!/bin/sh
# cibuildwheel's before-all (pyproject.toml, [tool.cibuildwheel.linux]):
# the build dependencies inside a manylinux_2_28 (AlmaLinux 8) or
# musllinux_1_2 (Alpine) image, before any wheel is built.
#   manylinux: zlib, snappy, lz4, zstd headers from the distribution, and
#              OpenSSL 3.0 built into /opt/pkc-openssl (AlmaLinux 8 has
#              OpenSSL 1.1.1; pykafka_c needs 3.x) by build-openssl.sh;
#   musllinux: zlib, snappy, lz4, zstd and OpenSSL 3 headers from Alpine.
# Written for a maintainer's release machine (Docker and the internet);
# not run on the development machine (README, "Wheels").
set -eu
here=$(dirname "$0")
if command -v apk >/dev/null 2>&1; then
    apk add --no-cache zlib-dev snappy-dev lz4-dev zstd-dev openssl-dev
elif command -v dnf >/dev/null 2>&1; then
    dnf install -y dnf-plugins-core
    dnf config-manager --set-enabled powertools || dnf config-manager --set-enabled crb || true
    dnf install -y zlib-devel snappy-devel lz4-devel libzstd-devel \
        perl-IPC-Cmd perl-Time-Piece curl
    sh "$here/build-openssl.sh" /opt/pkc-openssl
else
    echo "cibw-before-all: neither apk nor dnf: not a manylinux_2_28 or musllinux image" >&2
    exit 1
fi
