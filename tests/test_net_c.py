"""Build and run the plain-C tests of csrc/wire/net.c (tests/c/test_net.c),
with AddressSanitizer and UndefinedBehaviorSanitizer."""

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_net_c(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (gcc or cc) is needed to build tests/c/test_net.c"
    exe = tmp_path / "test_net"
    build = subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
         "-g", "-O1", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=undefined", "-Icsrc/wire",
         "tests/c/test_net.c", "csrc/wire/net.c", "csrc/wire/buf.c",
         "-o", str(exe)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
