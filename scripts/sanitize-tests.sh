#!/usr/bin/env bash
# Run the unit tests against an ASan+UBSan build of pykafka_c._core.
#
# Usage: scripts/sanitize-tests.sh [PYTEST ARGS...]   (default: -m unit -q)
#
# The checkout is copied (without .git, build products and caches) to a
# temporary directory, built there in place with PKC_SANITIZE=1, and the tests
# run from that copy, so the worktree's own build is left alone.  Python is not
# instrumented, so the ASan runtime is preloaded and Python's allocator is
# switched to malloc so ASan sees every allocation.  Leak detection is off
# (CPython keeps memory until exit); any ASan error or any UBSan report aborts
# the run.  Set KEEP=1 to keep the temporary copy.  Exit status: pytest's, or
# non-zero if the build fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/pkc-sanitize.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "sanitize-tests.sh: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

# Copy the tree: tracked and untracked source, but no VCS data, build output,
# compiled extensions, caches or fuzz artifacts.
tar -C "$root" \
    --exclude=./.git --exclude=./build --exclude='*.so' --exclude='*.o' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis \
    --exclude=./csrc/fuzz/build --exclude=./csrc/fuzz/crashes \
    -cf - . | tar -C "$work" -xf -

cd "$work"
echo "== building with PKC_SANITIZE=1 in $work"
PKC_SANITIZE=1 PKC_WERROR=1 "$python" setup.py -q build_ext --inplace >build.log 2>&1 || {
    cat build.log >&2
    echo "sanitize-tests.sh: build failed" >&2
    exit 1
}

asan_rt=$(gcc -print-file-name=libasan.so)
if [ ! -e "$asan_rt" ]; then
    echo "sanitize-tests.sh: gcc has no libasan.so (install libasan8 / gcc)" >&2
    exit 1
fi

if [ $# -eq 0 ]; then
    set -- -m unit -q
fi

echo "== pytest $* (ASan+UBSan)"
export PKC_SANITIZE=1  # tests that compile C themselves add the sanitizers too
export PYTHONMALLOC=malloc
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
LD_PRELOAD=$asan_rt "$python" -m pytest -p no:cacheprovider "$@"
