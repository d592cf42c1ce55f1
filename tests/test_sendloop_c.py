"""Build and run the plain-C tests of the producer's send engine
(tests/c/test_sendloop.c: csrc/wire/sendloop.c against a C fake broker
thread), with AddressSanitizer and UndefinedBehaviorSanitizer."""

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIRE = ["sendloop", "net", "records", "proto", "crc32c", "compress", "buf"]


def test_sendloop_c(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (gcc or cc) is needed for tests/c/test_sendloop.c"
    exe = tmp_path / "test_sendloop"
    build = subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
         "-DPKC_HAVE_SNAPPY=1", "-DPKC_HAVE_LZ4=1", "-DPKC_HAVE_ZSTD=1",
         "-g", "-O1", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=undefined", "-Icsrc/wire", "-Itests/c",
         "tests/c/test_sendloop.c"]
        + ["csrc/wire/%s.c" % n for n in WIRE]
        + ["-o", str(exe), "-lz", "-lsnappy", "-llz4", "-lzstd", "-lpthread"],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
