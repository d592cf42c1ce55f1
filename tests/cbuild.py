"""Build and run the plain-C tests in tests/c/ against the Python-free core.

Every test program is compiled with every ``csrc/wire/*.c`` file, with the
same optional features that setup.py links when their headers are found:
the snappy, lz4 and zstd codecs and OpenSSL (TLS and SCRAM).  One place
decides those flags, so a new wire file or a new library needs no change in
the test modules that build C programs.
"""

import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: (header, library flags, macro) of each optional feature, as in setup.py.
FEATURES = (
    ("snappy-c.h", ["-lsnappy"], "PKC_HAVE_SNAPPY"),
    ("lz4frame.h", ["-llz4"], "PKC_HAVE_LZ4"),
    ("zstd.h", ["-lzstd"], "PKC_HAVE_ZSTD"),
    ("openssl/ssl.h", ["-lssl", "-lcrypto"], "PKC_HAVE_OPENSSL"),
)

WARNINGS = ["-std=c11", "-Wall", "-Wextra", "-Wstrict-prototypes", "-Wshadow",
            "-Wno-missing-field-initializers", "-Werror", "-D_GNU_SOURCE"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
TSAN = ["-fsanitize=thread"]


def sanitizer_flags():
    """The sanitizers a test program is built with: ThreadSanitizer under
    scripts/tsan-tests.sh (PKC_TSAN=1), AddressSanitizer and
    UndefinedBehaviorSanitizer otherwise."""
    if os.environ.get("PKC_TSAN", "") not in ("", "0"):
        return TSAN
    return SANITIZE


def python_env(**extra):
    """Environment for a child Python that imports this build of pykafka_c:
    with the sanitizer runtime preloaded again when tests/conftest.py took
    it out of the environment (scripts/tsan-tests.sh)."""
    env = dict(os.environ, **extra)
    preload = env.get("PKC_SANITIZER_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
    return env


def compiler():
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler (gcc or cc) is needed to build the tests in " \
        "tests/c/; run scripts/install-system-deps.sh"
    return cc


def _have_header(cc, header):
    probe = subprocess.run([cc, "-E", "-x", "c", "-"],
                           input="#include <%s>\n" % header,
                           capture_output=True, text=True)
    return probe.returncode == 0


def feature_flags(cc=None, without=()):
    """(-D flags, -l flags) for the optional features whose headers exist,
    leaving out the macros named in ``without``."""
    cc = cc or compiler()
    defs, libs = [], ["-lz"]
    for header, lib, macro in FEATURES:
        if macro not in without and _have_header(cc, header):
            defs.append("-D%s=1" % macro)
            libs += lib
    return defs, libs


def wire_sources():
    return sorted(os.path.join("csrc", "wire", f)
                  for f in os.listdir(os.path.join(ROOT, "csrc", "wire"))
                  if f.endswith(".c"))


def build(name, out_dir, sanitize=True, without=(), extra=()):
    """Compile tests/c/<name>.c with the whole wire core into
    ``out_dir/<name>``; returns the executable's path (asserts on errors)."""
    cc = compiler()
    defs, libs = feature_flags(cc, without)
    exe = os.path.join(str(out_dir), name)
    cmd = ([cc] + WARNINGS + ["-g", "-O1"] + (sanitizer_flags() if sanitize else [])
           + defs + list(extra) + ["-Icsrc/wire", "-Itests/c",
                                   os.path.join("tests", "c", name + ".c")]
           + wire_sources() + ["-o", exe] + libs + ["-lpthread"])
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, "building %s failed:\n%s" % (name, res.stderr)
    return exe


def run(exe, timeout=300, env=None):
    """Run a test program; returns its stdout (asserts it exited 0)."""
    res = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-10000:]
    return res.stdout
