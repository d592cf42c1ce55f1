#!/usr/bin/env bash
# Run the broker-free tests (pytest -m "unit and not slow and not
# cprogram") on every CPython
# this machine has, one interpreter per minor version, and report which ran.
#
#   scripts/test-pythons.sh [--require 3.10,3.11,...] [--except PYTHON]
#
# Interpreters are looked for in $PKC_PYTHONS (a space-separated list of
# executables, which replaces the search), else in pyenv's versions
# ($PYENV_ROOT or ~/.pyenv), then python3.N on PATH, /usr/bin and
# /usr/local/bin.  For each minor version (the first found wins; the others
# are listed) the script:
#   1. makes a venv in $PKC_CACHE_DIR/pyvenvs (default ~/.cache/pykafka_c)
#      and runs `pip install -e '.[test]'` in it (PKC_WERROR=1): the one
#      build of the extension for that Python, in place (each Python's .so
#      has its own name, so they sit side by side in pykafka_c/), through
#      pip's isolated PEP 517 build;
#   2. runs pytest -m "unit and not slow and not cprogram" from the
#      repository root (the plain-C test programs do not depend on the
#      Python; the main Python's run has them).
# Interpreters older than 3.10 are reported and not run (pykafka_c needs
# 3.10+); so are free-threaded builds (python3.13t): _core does not declare
# itself safe without the GIL (README, "Python versions").
#
# --require V,...  fail, naming them, when these minor versions are not found
#                  (scripts/test.sh requires 3.10 to 3.13).
# --except PYTHON  skip PYTHON's minor version (scripts/test.sh: the main
#                  Python, which runs the whole suite).
# Exit status: non-zero if any run failed or a required version is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${PKC_CACHE_DIR:-$HOME/.cache/pykafka_c}
require=""
except=""
while [ $# -gt 0 ]; do
    case "$1" in
        --require) require=${2//,/ }; shift 2 ;;
        --except) except=$2; shift 2 ;;
        *) echo "test-pythons: unknown argument $1" >&2; exit 2 ;;
    esac
done
T0=$SECONDS

# What an interpreter is: "impl X.Y X.Y.Z gil|nogil realpath", or nothing.
describe() {
    "$1" - 2>/dev/null <<'EOF' || true
import os, sys, sysconfig
v = sys.version_info
print(sys.implementation.name, "%d.%d" % v[:2], "%d.%d.%d" % v[:3],
      "nogil" if sysconfig.get_config_var("Py_GIL_DISABLED") else "gil",
      os.path.realpath(sys.executable))
EOF
}

candidates=()
if [ -n "${PKC_PYTHONS:-}" ]; then
    read -r -a candidates <<<"$PKC_PYTHONS"
else
    pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for p in "$pyenv_root"/versions/*/bin/python3; do
        [ -x "$p" ] && candidates+=("$p")
    done
    for n in 10 11 12 13 14 15; do
        for p in "$(command -v "python3.$n" 2>/dev/null || true)" \
                 "$(command -v "python3.${n}t" 2>/dev/null || true)" \
                 "/usr/bin/python3.$n" "/usr/local/bin/python3.$n"; do
            [ -n "$p" ] && [ -x "$p" ] && candidates+=("$p")
        done
    done
fi

except_key=""
if [ -n "$except" ]; then
    read -r _ xy _ gil _ <<<"$(describe "$except")"
    except_key="$xy-$gil"
fi

declare -A chosen=() seen_real=()
order=()
report=()
for p in "${candidates[@]}"; do
    d=$(describe "$p")
    if [ -z "$d" ]; then
        report+=("$p: does not run, ignored")
        continue
    fi
    read -r impl xy full gil real <<<"$d"
    [ -n "${seen_real[$real]:-}" ] && continue
    seen_real[$real]=1
    key="$xy-$gil"
    if [ "$impl" != cpython ]; then
        report+=("$p ($impl $full): not CPython, not run")
    elif [ "$(printf '%s\n3.10\n' "$xy" | sort -V | head -n1)" != 3.10 ]; then
        report+=("$p (CPython $full): older than 3.10, not supported, not run")
    elif [ "$gil" = nogil ]; then
        report+=("$p (CPython $full, free-threaded): not supported, not run")
    elif [ "$key" = "$except_key" ]; then
        report+=("$p (CPython $full): the main Python, runs the whole suite in scripts/test.sh")
        chosen[$key]=except
    elif [ -n "${chosen[$key]:-}" ]; then
        report+=("$p (CPython $full): another $xy was chosen, not run")
    else
        chosen[$key]=$p
        order+=("$p|$xy|$full")
    fi
done

missing=()
for v in $require; do
    [ -n "${chosen[$v-gil]:-}" ] || missing+=("$v")
done

failed=0
results=()
for entry in "${order[@]}"; do
    IFS='|' read -r p xy full <<<"$entry"
    venv=$CACHE/pyvenvs/cp${xy/./}
    log=$ROOT/build/test-pythons-cp${xy/./}.log
    mkdir -p "$ROOT/build" "$CACHE/pyvenvs"
    t=$SECONDS
    echo "=== test-pythons: CPython $full ($p) ($((SECONDS - T0)) s)"
    status=passed
    {
        if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
            rm -rf "$venv"
            "$p" -m venv "$venv"
        fi
        PKC_WERROR=1 "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    } >"$log" 2>&1 || status="failed to install or build (see $log)"
    if [ "$status" = passed ]; then
        "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "unit and not slow and not cprogram" tests \
            >>"$log" 2>&1 || status="FAILED (see $log)"
        # The last count line (none when collection failed: not an error
        # of this script).
        summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|errors?)|^[0-9]+ deselected' "$log" | tail -n1 | sed 's/=//g; s/^ *//; s/ *$//' || true)
    else
        summary=""
    fi
    [ "$status" = passed ] || { failed=1; tail -n 30 "$log"; }
    results+=("CPython $full ($p): $status${summary:+: $summary} [$((SECONDS - t)) s]")
done

echo "=== test-pythons: report ($((SECONDS - T0)) s)"
for r in "${results[@]}"; do echo "  ran:     $r"; done
for r in "${report[@]}"; do echo "  not run: $r"; done
if [ ${#order[@]} -eq 0 ]; then
    if [ -n "$except_key" ] && [ "${chosen[$except_key]:-}" = except ]; then
        echo "test-pythons: no CPython 3.10+ other than the main Python was found"
    else
        echo "test-pythons: no CPython 3.10+ to run on was found" >&2
        failed=1
    fi
fi
if [ ${#missing[@]} -ne 0 ]; then
    echo "test-pythons: required Python versions not found: ${missing[*]}" \
         "(install them, e.g. pyenv install ${missing[*]}, or list them in PKC_PYTHONS)" >&2
    failed=1
fi
exit $failed
