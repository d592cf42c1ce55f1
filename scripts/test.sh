#!/usr/bin/env bash
# The README's test command: everything needed, then the whole test suite.
#
#   1. scripts/install-system-deps.sh (apt-get installs what is missing)
#   2. pip install -e '.[test]'  (into a venv when the Python is Debian's own,
#      "externally managed" one, or when PKC_VENV=DIR is set)
#   3. build the extension in place with warnings as errors (PKC_WERROR=1)
#   4. the WHOLE pytest suite: unit and integration tests on real Kafka 4.x
#      and 3.9 brokers (the harness fetches the Kafka jars from Maven Central
#      on first use and caches them in $PKC_CACHE_DIR or ~/.cache/pykafka_c)
#   5. scripts/test-pythons.sh: the broker-free tests on every other CPython
#      3.10+ of the machine (pip install -e . for each, an in-place build;
#      with CI=true, as .ci/run sets it, 3.10 to 3.13 are required;
#      PKC_SKIP_PYTHONS=1 leaves this step out)
#   6. scripts/sanitize-tests.sh (ASan/UBSan run)
#   7. scripts/tsan-tests.sh (ThreadSanitizer run of the threaded tests)
#
# Exits non-zero on any failure.  PYTHON (default python3) picks the
# interpreter; PKC_PYTEST_TIMEOUT (seconds, default 4200) bounds the pytest
# run so that a hang still ends with the clusters torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
T0=$SECONDS

phase() { echo "=== test.sh: $* ($((SECONDS - T0)) s)"; }

phase "system dependencies"
PYTHON="$PYTHON" bash scripts/install-system-deps.sh

if [ -z "${PKC_VENV:-}" ] && "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")))'; then
    PKC_VENV=$ROOT/.venv
fi
if [ -n "${PKC_VENV:-}" ]; then
    if [ ! -x "$PKC_VENV/bin/python" ]; then
        phase "creating the virtual environment $PKC_VENV"
        "$PYTHON" -m venv "$PKC_VENV"
    fi
    PYTHON=$PKC_VENV/bin/python
fi

phase "pip install -e .[test] ($PYTHON)"
PKC_WERROR=1 "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'

phase "build (PKC_WERROR=1)"
PKC_WERROR=1 "$PYTHON" setup.py -q build_ext --inplace

phase "pytest: the whole suite"
rc=0
timeout --signal=TERM --kill-after=120 "${PKC_PYTEST_TIMEOUT:-4200}" \
    "$PYTHON" -m pytest -ra --durations=30 tests || rc=$?
if [ "$rc" -ne 0 ]; then
    phase "pytest failed (exit $rc)"
    exit "$rc"
fi

if [ -z "${PKC_SKIP_PYTHONS:-}" ]; then
    phase "unit tests on the other CPythons (scripts/test-pythons.sh)"
    # CI (.ci/run sets CI=true) must not pass with a version silently
    # missing; elsewhere, a machine with one Python runs the suite on it.
    require=()
    [ "${CI:-}" = true ] && require=(--require 3.10,3.11,3.12,3.13)
    bash scripts/test-pythons.sh "${require[@]}" --except "$PYTHON"
fi

phase "sanitizer run (scripts/sanitize-tests.sh)"
PYTHON="$PYTHON" bash scripts/sanitize-tests.sh

phase "ThreadSanitizer run (scripts/tsan-tests.sh)"
PYTHON="$PYTHON" bash scripts/tsan-tests.sh
phase "all passed"
