"""The documentation (docs/: the API reference from the docstrings, the
usage page) builds with Sphinx, warnings as errors.

Sphinx comes with ``pip install -e '.[test]'`` (the ``docs`` extra); when it
is missing the test fails and says so.  The usage page's code blocks are
type-checked with the README's by tests/test_typing.py.
"""

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.unit, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def test_docs_build_without_warnings(tmp_path):
    try:
        import sphinx  # noqa: F401
    except ImportError as exc:
        pytest.fail("Sphinx is missing (%s): install the test dependencies "
                    "with pip install -e '.[test]'" % exc, pytrace=False)
    out = tmp_path / "html"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         "-d", str(tmp_path / "doctrees"), DOCS, str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout
    api = (out / "api.html").read_text()
    usage = (out / "usage.html").read_text()
    # the reference is built from the docstrings: the main classes are
    # there with their methods
    for name in ("KafkaClient", "get_simple_consumer", "get_producer",
                 "SimpleConsumer", "BalancedConsumer", "Producer",
                 "install_as_pykafka", "NoBrokersAvailableError"):
        assert name in api, name
    # the usage page has the guide's three patterns (included from the
    # type-checked examples/usage_guide_patterns.py) and pykafka_c's
    # additions
    for text in ("reset_offset_on_start", "topic_producers",
                 "SocketDisconnectedError", "Kafka 4", "headers",
                 "enable_idempotence", "SCRAM-SHA-512", "Jupyter"):
        assert text in usage, text
