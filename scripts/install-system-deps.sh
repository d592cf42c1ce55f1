#!/usr/bin/env bash
# Install the system packages pykafka_c needs to build and to run its whole
# test suite, when they are missing:
#   a C compiler, Python headers, zlib/snappy/lz4/zstd headers (codecs),
#   OpenSSL's headers and command (TLS, SCRAM, test certificates),
#   a JDK 17+ and Maven (real Kafka brokers from Maven Central), kcat
#   (interop tests), clang with its libFuzzer/ASan runtime (fuzz targets),
#   gcc's ASan and TSan runtimes (sanitizer runs).
#
# Idempotent: when everything is there it prints nothing and exits 0.
# With apt-get it runs `apt-get update` and installs what is missing (as root,
# or through sudo).  Without apt-get it names exactly what is missing and
# exits 1.
#
# PYTHON (default python3) is the interpreter whose headers are checked.
set -euo pipefail

PYTHON=${PYTHON:-python3}
missing_pkgs=()     # Debian package names
missing_what=()     # human-readable descriptions

need() {            # need PACKAGE DESCRIPTION
    missing_pkgs+=("$1")
    missing_what+=("$2")
}

have_header() {
    local h
    for d in /usr/include /usr/local/include /usr/include/"$(gcc -print-multiarch 2>/dev/null || true)"; do
        h="$d/$1"
        [ -n "$d" ] && [ -f "$h" ] && return 0
    done
    return 1
}

java_major() {      # prints the major version of the java that would be used, or nothing
    local java=""
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        java="$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then
        java=java
    else
        return 0
    fi
    "$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.\{0,1\}\([0-9]*\).*/\1 \2/p' | head -n1 |
        awk '{ if ($1 == 1) print $2; else print $1 }'
}

apt_has() {         # is a package installable from the configured sources?
    apt-cache show "$1" >/dev/null 2>&1
}

pick_jdk() {
    local p
    for p in openjdk-17-jdk-headless openjdk-21-jdk-headless openjdk-25-jdk-headless default-jdk-headless; do
        if apt_has "$p"; then echo "$p"; return 0; fi
    done
    echo openjdk-17-jdk-headless
}

check_all() {
    missing_pkgs=()
    missing_what=()
    command -v gcc >/dev/null 2>&1 || need build-essential "a C compiler (gcc)"
    if command -v gcc >/dev/null 2>&1; then
        # gcc's sanitizer runtimes, for scripts/sanitize-tests.sh and
        # scripts/tsan-tests.sh (Debian: in libgcc-N-dev's dependencies).
        local rt
        for rt in libasan.so libtsan.so; do
            [ -e "$(gcc -print-file-name=$rt)" ] ||
                need "libgcc-$(gcc -dumpversion | cut -d. -f1)-dev" "gcc's $rt (sanitizer runtime)"
        done
    fi
    if ! "$PYTHON" -c 'import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
        need python3-dev "Python headers (Python.h) for $PYTHON"
    fi
    if "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")))' 2>/dev/null; then
        # Debian's own Python refuses pip installs: scripts/test.sh uses a venv.
        "$PYTHON" -c 'import ensurepip' 2>/dev/null || need python3-venv "the venv module with ensurepip for $PYTHON"
    elif ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        need python3-pip "pip for $PYTHON"
    fi
    have_header zlib.h      || need zlib1g-dev   "zlib headers (zlib.h)"
    have_header snappy-c.h  || need libsnappy-dev "snappy headers (snappy-c.h)"
    have_header lz4frame.h  || need liblz4-dev   "lz4 headers (lz4frame.h)"
    have_header zstd.h      || need libzstd-dev  "zstd headers (zstd.h)"
    have_header openssl/ssl.h || need libssl-dev "OpenSSL headers (openssl/ssl.h) for TLS and SCRAM"
    command -v openssl >/dev/null 2>&1 || need openssl "the openssl command (test certificates)"
    local jm
    jm=$(java_major || true)
    if [ -z "$jm" ] || [ "$jm" -lt 17 ]; then
        need JDK "a JDK 17 or newer (java${jm:+; found Java $jm})"
    fi
    command -v mvn  >/dev/null 2>&1 || need maven "Maven (mvn)"
    command -v kcat >/dev/null 2>&1 || need kcat  "kcat"
    if ! command -v clang >/dev/null 2>&1; then
        need clang "clang"
        need CLANG_RT "clang's libFuzzer/sanitizer runtime (libclang-rt-N-dev)"
    else
        local fuzzer
        fuzzer=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
        if [ -z "$fuzzer" ] || [ ! -f "$fuzzer" ]; then
            need CLANG_RT "clang's libFuzzer/sanitizer runtime (libclang_rt.fuzzer, libclang-rt-N-dev)"
        fi
    fi
}

check_all
[ ${#missing_pkgs[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get is not available; install these yourself:" >&2
    for w in "${missing_what[@]}"; do echo "  - $w" >&2; done
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-system-deps: not root and no sudo; missing:" >&2
        for w in "${missing_what[@]}"; do echo "  - $w" >&2; done
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system-deps: installing: ${missing_what[*]}" >&2
"${SUDO[@]}" apt-get update -qq

resolve_pkgs() {    # turn placeholders into real package names
    local out=() p ver
    for p in "${missing_pkgs[@]}"; do
        case "$p" in
            JDK) out+=("$(pick_jdk)") ;;
            CLANG_RT)
                if command -v clang >/dev/null 2>&1; then
                    ver=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
                    out+=("libclang-rt-${ver}-dev")
                fi ;;
            *) out+=("$p") ;;
        esac
    done
    printf '%s\n' "${out[@]}"
}

# clang first: the runtime package is named after its version.
if printf '%s\n' "${missing_pkgs[@]}" | grep -qx clang; then
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
mapfile -t pkgs < <(resolve_pkgs | grep -vx clang || true)
if [ ${#pkgs[@]} -gt 0 ]; then
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

check_all
if [ ${#missing_pkgs[@]} -ne 0 ]; then
    echo "install-system-deps: still missing after apt-get install:" >&2
    for w in "${missing_what[@]}"; do echo "  - $w" >&2; done
    exit 1
fi
echo "install-system-deps: done" >&2
