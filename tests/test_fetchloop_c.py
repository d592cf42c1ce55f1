"""Build and run the plain-C tests of the fetch engine's answer parser
(tests/c/test_fetchloop.c) with AddressSanitizer and
UndefinedBehaviorSanitizer."""

import glob
import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _codec_flags(cc):
    """The optional codecs setup.py would link, by header presence."""
    flags, libs = [], []
    for header, lib, macro in (("snappy-c.h", "snappy", "PKC_HAVE_SNAPPY"),
                               ("lz4frame.h", "lz4", "PKC_HAVE_LZ4"),
                               ("zstd.h", "zstd", "PKC_HAVE_ZSTD")):
        probe = subprocess.run([cc, "-E", "-x", "c", "-"],
                               input="#include <%s>\n" % header,
                               capture_output=True, text=True)
        if probe.returncode == 0:
            flags.append("-D%s=1" % macro)
            libs.append("-l" + lib)
    return flags, libs


def test_fetchloop_c(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (gcc or cc) is needed to build " \
        "tests/c/test_fetchloop.c"
    flags, libs = _codec_flags(cc)
    wire = sorted(glob.glob(os.path.join(ROOT, "csrc", "wire", "*.c")))
    exe = tmp_path / "test_fetchloop"
    build = subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
         "-g", "-O1", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=undefined", "-Icsrc/wire"] + flags +
        ["tests/c/test_fetchloop.c"] + wire +
        ["-o", str(exe), "-lz", "-lpthread"] + libs,
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failures" in run.stdout, run.stdout
