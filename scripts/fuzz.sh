#!/usr/bin/env bash
# Run the libFuzzer targets under AddressSanitizer + UndefinedBehaviorSanitizer.
#
# Usage: scripts/fuzz.sh [SECONDS] [NAME...]
#
#   SECONDS  time per target (default 60)
#   NAME     targets to run, e.g. "decompress" for csrc/fuzz/fuzz_decompress.c;
#            default: every csrc/fuzz/fuzz_*.c
#
# Each target is built with clang from its own file plus every csrc/wire/*.c,
# with the optional codecs whose headers exist (as setup.py does), and run with
# csrc/fuzz/corpus/<name>/ as read-only seeds; new corpus entries go to a
# temporary directory that is removed afterwards.  Crash, leak, timeout and
# out-of-memory inputs are written to csrc/fuzz/crashes/<name>-*, binaries to
# csrc/fuzz/build/ (both git-ignored).  Exit status is non-zero if any target
# failed to build or found a problem.
#
# Environment: CC (default clang), FUZZ_MALLOC_LIMIT_MB (single allocation
# limit, default 256), FUZZ_RSS_LIMIT_MB (default 2048), FUZZ_TIMEOUT
# (seconds per input, default 10), FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail

secs=${1:-60}
if [ $# -gt 0 ]; then shift; fi
case $secs in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS] [NAME...]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CC=${CC:-clang}
build=csrc/fuzz/build
crashes=csrc/fuzz/crashes
mkdir -p "$build" "$crashes"

have_header() {
    printf '#include <%s>\n' "$1" | "$CC" -E -x c - >/dev/null 2>&1
}

defs=(-D_GNU_SOURCE)
libs=(-lz)
have_header snappy-c.h && { defs+=(-DPKC_HAVE_SNAPPY=1); libs+=(-lsnappy); }
have_header lz4frame.h && { defs+=(-DPKC_HAVE_LZ4=1); libs+=(-llz4); }
have_header zstd.h && { defs+=(-DPKC_HAVE_ZSTD=1); libs+=(-lzstd); }
have_header openssl/ssl.h && { defs+=(-DPKC_HAVE_OPENSSL=1); libs+=(-lssl -lcrypto); }

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for src in csrc/fuzz/fuzz_*.c; do
        [ -e "$src" ] || continue
        n=${src##*/fuzz_}
        names+=("${n%.c}")
    done
fi
if [ ${#names[@]} -eq 0 ]; then
    echo "fuzz.sh: no targets (csrc/fuzz/fuzz_*.c)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pkc-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

failed=()
for name in "${names[@]}"; do
    src=csrc/fuzz/fuzz_$name.c
    bin=$build/fuzz_$name
    seeds=csrc/fuzz/corpus/$name
    if [ ! -f "$src" ]; then
        echo "fuzz.sh: no such target $src" >&2
        failed+=("$name(missing)")
        continue
    fi
    echo "== fuzz_$name: building"
    if ! "$CC" -std=c11 -g -O1 -fno-omit-frame-pointer \
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            "${defs[@]}" -Icsrc/wire "$src" csrc/wire/*.c "${libs[@]}" -lpthread \
            -o "$bin"; then
        failed+=("$name(build)")
        continue
    fi
    corpus=("$work/$name")
    mkdir -p "$work/$name"
    if [ -d "$seeds" ]; then
        corpus+=("$seeds")
    else
        echo "fuzz.sh: warning: no seed corpus $seeds" >&2
    fi
    echo "== fuzz_$name: running for ${secs}s"
    # shellcheck disable=SC2086
    if ! "$bin" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
            -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}" \
            -malloc_limit_mb="${FUZZ_MALLOC_LIMIT_MB:-256}" \
            -artifact_prefix="$crashes/$name-" -print_final_stats=1 \
            ${FUZZ_ARGS:-} "${corpus[@]}"; then
        failed+=("$name")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]} (inputs in $crashes/)" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran clean: ${names[*]}"
