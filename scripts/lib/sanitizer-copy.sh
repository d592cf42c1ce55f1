# Shared by scripts/sanitize-tests.sh and scripts/tsan-tests.sh (sourced).
#
# sanitizer_copy ROOT WORK: copy the checkout at ROOT into WORK (tracked and
# untracked source; no VCS data, build output, compiled extensions, caches
# or fuzz artifacts), so that a sanitizer build in WORK leaves ROOT's own
# build alone.
#
# sanitizer_build PYTHON FLAG: in the current directory, build the
# extension in place with FLAG=1 and warnings as errors; prints the build
# log and returns non-zero when the build fails.
#
# sanitizer_prepare ROOT PYTHON FLAG: all of it in a new temporary
# directory (removed at exit unless KEEP=1), which becomes the current
# directory; sets `work` to it.
#
# sanitizer_runtime LIB: the path of gcc's runtime LIB (libasan.so,
# libtsan.so), or a message and a non-zero status when gcc has none.

sanitizer_copy() {
    tar -C "$1" \
        --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.so' --exclude='*.o' \
        --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis \
        --exclude=./csrc/fuzz/build --exclude=./csrc/fuzz/crashes \
        -cf - . | tar -C "$2" -xf -
}

sanitizer_build() {
    echo "== building with $2=1 in $PWD"
    env "$2=1" PKC_WERROR=1 "$1" setup.py -q build_ext --inplace >build.log 2>&1 || {
        cat build.log >&2
        echo "$0: the $2=1 build failed" >&2
        return 1
    }
}

sanitizer_prepare() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/pkc-$3.XXXXXX")
    if [ "${KEEP:-0}" = 1 ]; then
        echo "$0: keeping $work"
    else
        trap 'rm -rf "$work"' EXIT
    fi
    sanitizer_copy "$1" "$work"
    cd "$work"
    sanitizer_build "$2" "$3"
}

sanitizer_runtime() {
    local path
    path=$(gcc -print-file-name="$1")
    if [ ! -e "$path" ]; then
        echo "$0: gcc has no $1 (install gcc's libgcc-N-dev)" >&2
        return 1
    fi
    echo "$path"
}
