#!/usr/bin/env bash
# Run the unit tests against an ASan+UBSan build of pykafka_c._core.
#
# Usage: scripts/sanitize-tests.sh [PYTEST ARGS...]
#        (default: -m "unit and not slow" -q -ra)
#
# The slow unit tests are left out by default: they build C programs of their
# own (the fuzz targets carry clang's own ASan runtime, which cannot share a
# process with the preloaded gcc one) or repeat large property grids.
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
. "$root/scripts/lib/sanitizer-copy.sh"
sanitizer_prepare "$root" "$python" PKC_SANITIZE

asan_rt=$(sanitizer_runtime libasan.so)

if [ $# -eq 0 ]; then
    set -- -m "unit and not slow" -q -ra
fi

echo "== pytest $* (ASan+UBSan)"
export PKC_SANITIZE=1  # tests that compile C themselves add the sanitizers too
export PYTHONMALLOC=malloc
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
LD_PRELOAD=$asan_rt "$python" -m pytest -p no:cacheprovider "$@"
