#!/usr/bin/env bash
# Look for data races: the fetch and send engines under ThreadSanitizer.
#
# Usage: scripts/tsan-tests.sh [PYTEST ARGS...]
#        (default: the THREADED tests below, on Kafka 4 only)
#
# The checkout is copied to a temporary directory and built there with
# PKC_TSAN=1 (setup.py), so the worktree's own build is left alone.  Then
#   * the plain-C tests of the fetch engine, the send engine and the
#     connection layer (tests/c/, built with -fsanitize=thread by
#     tests/cbuild.py when PKC_TSAN=1), where engine threads and a fake
#     broker thread run against the calling thread, and
#   * the thread-heavy Python tests (lifecycle calls from eight threads,
#     concurrent stop(), the hostile-broker tests of both engines, the
#     broker link, TLS with reauthentication) on a real broker,
# run with the ThreadSanitizer runtime preloaded into the (uninstrumented)
# interpreter.  CPython's GIL is a pthread mutex and condition variable,
# which the runtime intercepts, so Python-side ordering is seen; CPython's
# own memory accesses are not instrumented and so cannot be reported.
# No suppressions are needed today; if CPython itself ever needs one, it
# goes in tests/tsan.supp with the reason beside it.
#
# Every report fails the run: reports are written to files (pytest would
# otherwise swallow the stderr of a test) and printed at the end.  KEEP=1
# keeps the temporary copy.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
# The interpreter binary itself: a pyenv shim is a shell script, and bash
# does not run under the preloaded runtime.
python=$("$python" -c 'import sys; print(sys.executable)')
. "$root/scripts/lib/sanitizer-copy.sh"
sanitizer_prepare "$root" "$python" PKC_TSAN

tsan_rt=$(sanitizer_runtime libtsan.so)

THREADED=(
    tests/test_fetchloop_c.py
    tests/test_sendloop_c.py
    tests/test_net_c.py
    tests/test_lifecycle_stress.py
    tests/test_simpleconsumer.py::test_concurrent_stop_from_several_threads
    tests/test_connection.py::test_threads_cannot_interleave_frames
    tests/test_fetcher_hostile.py
    tests/test_producer_hostile.py
    tests/test_link_hostile.py
    tests/test_security.py::test_reauthentication_with_short_lived_tokens
)
if [ $# -eq 0 ]; then
    set -- -q -ra "${THREADED[@]}"
    export PKC_KAFKA_VERSIONS=${PKC_KAFKA_VERSIONS:-kafka4}
fi

reports=$work/tsan-reports
mkdir -p "$reports"
echo "== pytest $* (ThreadSanitizer)"
export PKC_TSAN=1  # test programs build with -fsanitize=thread; conftest.py
                   # keeps the preload away from the brokers and tools
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 log_path=$reports/report${TSAN_SUPPRESSIONS:+ suppressions=$TSAN_SUPPRESSIONS}"
rc=0
LD_PRELOAD=$tsan_rt "$python" -m pytest -p no:cacheprovider "$@" || rc=$?
if compgen -G "$reports/report*" >/dev/null; then
    cat "$reports"/report* >&2
    echo "tsan-tests.sh: ThreadSanitizer reported the races above" >&2
    exit 1
fi
exit "$rc"
