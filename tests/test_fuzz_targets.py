"""Every libFuzzer target builds under ASan + UBSan, replays its seed
corpus, and survives a short random run (``scripts/fuzz.sh``).

The long runs (minutes per target) are for before a release:
``scripts/fuzz.sh 600``.  Here each target gets a few seconds, so the
targets cannot rot and every past crasher in a corpus stays fixed.
"""

import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = sorted(os.path.basename(p)[len("fuzz_"):-len(".c")]
                 for p in glob.glob(os.path.join(ROOT, "csrc", "fuzz",
                                                 "fuzz_*.c")))
SECONDS = int(os.environ.get("PKC_FUZZ_SECONDS", "8"))

pytestmark = [pytest.mark.unit, pytest.mark.slow]


def test_there_are_fuzz_targets_for_the_decoders():
    # One target per decoder of the Python-free core.
    for name in ("records", "decompress", "proto", "frame", "sasl",
                 "fetch_response"):
        assert name in TARGETS, TARGETS


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target(name):
    if shutil.which(os.environ.get("CC", "clang")) is None:
        pytest.fail("clang is needed to build the libFuzzer targets; run "
                    "scripts/install-system-deps.sh")
    corpus = os.path.join(ROOT, "csrc", "fuzz", "corpus", name)
    assert os.path.isdir(corpus) and os.listdir(corpus), \
        "no seed corpus for fuzz target %s" % name
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fuzz.sh"),
                           str(SECONDS), name], cwd=ROOT,
                          capture_output=True, text=True,
                          timeout=600 + SECONDS)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
