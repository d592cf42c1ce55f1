"""pykafka 2.8.0's own test suite, run on pykafka_c: the conformance job.

What it does, in order:

1. gets pykafka 2.8.0's source distribution from PyPI with pip (no binary;
   pinned, hash-checked by pip with ``tests/conformance/pykafka-sdist.txt``
   and again here), cached as ``$PKC_CACHE_DIR`` (or
   ``~/.cache/pykafka_c``) ``/pykafka-2.8.0.tar.gz``;
2. extracts its ``tests/`` folder into a temporary folder, with
   ``tests/conformance/pykafka_conftest.py`` as its ``conftest.py`` (which
   calls ``pykafka_c.install_as_pykafka()`` and records every outcome) and
   the shims of ``tests/conformance/shims`` on the path (unittest2, lz4f
   and testinstances, which cannot be installed on Python 3.11);
3. starts one 3-broker Kafka 4 cluster with the harness (TLS and SASL
   listeners included) and runs pykafka's tests in a pytest subprocess
   against it, as pykafka's CI ran them: ``BROKERS``, ``BROKERS_SSL``, the
   certificates (``PKC_TEST_CERTS``) and ``KAFKA_VERSION`` in the
   environment, so pykafka's ``get_cluster()`` returns that cluster;
4. compares the outcomes with ``tests/conformance/expected_failures.toml``.

The job fails on a collection error, an error (setup or teardown), a
failure that is not listed, and a listed test that did not fail (passed,
skipped or vanished: remove it from the list).  The list has three
sections, the only reasons a pykafka test may fail on pykafka_c: it needs
ZooKeeper, a wire version Kafka 4 removed, or a pykafka private internal
that cannot exist in pykafka_c.  README.md's differences section lists the
same tests.

The test-only packages pykafka's tests import (mock, parameterized, kazoo,
lz4, python-snappy, xxhash, and setuptools for pkg_resources) come with
``pip install -e '.[test]'``; a missing one fails the job and is named.
With ``BROKERS`` set the job uses that cluster (as the other integration
tests do) instead of starting one; it must be a 3-broker cluster.
"""

import collections
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

import pykafka_c
from pykafka_c.test.kafka_instance import (CERTS_ENV, DEFAULT_KAFKA_VERSION, HarnessError,
                                           KafkaInstance, listener_env_name)
from pykafka_c.test.utils import ExternalCluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster3, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
CONFORMANCE = os.path.join(HERE, "conformance")
SDIST_REQUIREMENT = os.path.join(CONFORMANCE, "pykafka-sdist.txt")
SDIST_NAME = "pykafka-2.8.0.tar.gz"
SDIST_SHA256 = "f0bbd394ae6970042a587c99fe4dc0966e67787249d963d4ce2f810dc9490577"
EXPECTED = os.path.join(CONFORMANCE, "expected_failures.toml")
REASONS = {
    "zookeeper": "needs ZooKeeper",
    "removed_wire_version": "needs a wire version Kafka 4 removed",
    "private_internal": "reaches a pykafka private internal that cannot exist in pykafka_c",
}
# Import name -> the PyPI package that provides it (pyproject's test extra).
TEST_PACKAGES = {"mock": "mock", "parameterized": "parameterized", "kazoo": "kazoo",
                 "lz4": "lz4", "snappy": "python-snappy", "xxhash": "xxhash",
                 "pkg_resources": "setuptools"}
SUITE_TIMEOUT_S = 1500


def _cache_dir():
    return os.environ.get("PKC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pykafka_c")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def sdist_path():
    """The pinned sdist's path, downloaded with pip when not cached."""
    cache = _cache_dir()
    path = os.path.join(cache, SDIST_NAME)
    if os.path.exists(path) and _sha256(path) == SDIST_SHA256:
        return path
    os.makedirs(cache, exist_ok=True)
    tmp = path + ".download"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
           "--no-deps", "--no-binary", ":all:", "--require-hashes", "-r", SDIST_REQUIREMENT,
           "-d", tmp]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    got = os.path.join(tmp, SDIST_NAME)
    if proc.returncode != 0 or not os.path.exists(got):
        pytest.fail("could not download pykafka 2.8.0's sdist from PyPI with `%s` "
                    "(exit %d):\n%s" % (" ".join(cmd), proc.returncode, proc.stdout[-3000:]),
                    pytrace=False)
    digest = _sha256(got)
    if digest != SDIST_SHA256:
        pytest.fail("%s has sha256 %s, not the pinned %s" % (got, digest, SDIST_SHA256),
                    pytrace=False)
    os.replace(got, path)
    shutil.rmtree(tmp, ignore_errors=True)
    return path


def _extract_tests(sdist, dest):
    """pykafka's tests/ folder into ``dest``; returns pykafka's test files
    (relative paths, as pytest names them)."""
    prefix = "pykafka-2.8.0/tests/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
        for m in members:
            m.name = m.name[len("pykafka-2.8.0/"):]
        tar.extractall(dest, members=members, filter="data")
    files = []
    for root, _, names in os.walk(os.path.join(dest, "tests")):
        files += [os.path.relpath(os.path.join(root, n), dest) for n in names
                  if n.startswith("test_") and n.endswith(".py")]
    return sorted(files)


def _check_test_packages():
    missing = sorted("%s (import %s)" % (pkg, mod) for mod, pkg in TEST_PACKAGES.items()
                     if importlib.util.find_spec(mod) is None)
    if missing:
        pytest.fail("pykafka's tests need these packages, missing from %s: %s; "
                    "install them with `pip install -e '.[test]'`"
                    % (sys.executable, ", ".join(missing)), pytrace=False)


def load_expected():
    """{node id: (reason key, why)} from expected_failures.toml, which may
    only have the three REASONS sections."""
    # Imported here: tomllib is 3.11+, and this module must still import
    # (be collected and deselected) in the unit runs on Python 3.10.
    import tomllib

    with open(EXPECTED, "rb") as f:
        data = tomllib.load(f)
    unknown = set(data) - set(REASONS)
    assert not unknown, ("%s: sections %s are not among the allowed reasons %s"
                         % (EXPECTED, sorted(unknown), sorted(REASONS)))
    out = {}
    for reason, tests in data.items():
        for nodeid, why in tests.items():
            assert nodeid not in out, "%s is listed twice" % nodeid
            assert isinstance(why, str) and why.strip(), "%s: no reason given" % nodeid
            out[nodeid] = (reason, why)
    return out


def _outcome(phases):
    """One word for a test from its setup/call/teardown outcomes."""
    if phases.get("setup") == "failed" or phases.get("teardown") == "failed":
        return "error"
    for word in ("xfailed", "xpassed"):
        if word in phases.values():
            return word
    if phases.get("setup") == "skipped" or phases.get("call") == "skipped":
        return "skipped"
    return {"passed": "passed", "failed": "failed"}.get(phases.get("call"), "error")


def classify(results, expected, test_files):
    """Compare the recorded outcomes with the list: returns (counts,
    problems), problems being the lines that fail the job."""
    outcomes = {nodeid: _outcome(phases) for nodeid, phases in results["reports"].items()}
    for nodeid in results["collected"]:
        outcomes.setdefault(nodeid, "error")        # collected, never reported
    counts = collections.Counter(outcomes.values())
    problems = []
    for nodeid, text in sorted(results["collect_errors"].items()):
        problems.append("collection error in %s: %s" % (nodeid, text.strip()[-500:]))
    files = {nodeid.split("::")[0] for nodeid in results["collected"]}
    for path in test_files:
        if path not in files:
            problems.append("%s: no test collected" % path)
    for nodeid, outcome in sorted(outcomes.items()):
        listed = nodeid in expected
        message = " ".join(results["reports"].get(nodeid, {}).get("message", []))
        if outcome == "error":
            problems.append("ERROR %s: %s" % (nodeid, message))
        elif outcome == "failed" and not listed:
            problems.append("unexpected failure %s: %s" % (nodeid, message))
        elif listed and outcome != "failed":
            problems.append("%s is listed as expected to fail (%s) but %s: remove it from "
                            "expected_failures.toml" % (nodeid, expected[nodeid][0], outcome))
    for nodeid in sorted(set(expected) - set(outcomes)):
        problems.append("%s is listed but was not run: remove it from "
                        "expected_failures.toml" % nodeid)
    return counts, problems


def _cluster_env(cluster):
    env = {listener_env_name(name): bootstrap
           for name, bootstrap in cluster.listeners.items()}
    if cluster.certs is not None:
        env[CERTS_ENV] = cluster.certs.cert_dir
    if cluster.kafka_version:
        env["KAFKA_VERSION"] = cluster.kafka_version
    return env


def _run_suite(run_dir, env):
    """pytest over pykafka's tests in a subprocess (its own session, so a
    timeout can kill it with everything it started)."""
    cmd = [sys.executable, "-m", "pytest", "-c", os.path.join(run_dir, "pytest.ini"),
           "--rootdir", run_dir, "-q", "-rfEX", "-p", "no:cacheprovider", "tests"]
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("pykafka's test suite did not finish in %d s; its output ends with:\n%s"
                    % (SUITE_TIMEOUT_S, out[-5000:]), pytrace=False)
    return proc.returncode, out


def test_pykafka_28_test_suite(tmp_path):
    t0 = time.monotonic()
    _check_test_packages()
    expected = load_expected()
    sdist = sdist_path()
    run_dir = str(tmp_path)
    test_files = _extract_tests(sdist, run_dir)
    shutil.copy(os.path.join(CONFORMANCE, "pykafka_conftest.py"),
                os.path.join(run_dir, "conftest.py"))
    with open(os.path.join(run_dir, "pytest.ini"), "w") as f:
        f.write("[pytest]\ntestpaths = tests\n")
    results_file = os.path.join(run_dir, "results.json")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(pykafka_c.__file__)))
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("BROKERS") or name in (CERTS_ENV, "KAFKA_VERSION", "ZOOKEEPER",
                                                  "KAFKA_BIN"):
            del env[name]
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root, os.path.join(CONFORMANCE, "shims")]
        + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    env["PKC_CONFORMANCE_RESULTS"] = results_file
    t_setup = time.monotonic() - t0

    cluster = None
    try:
        t1 = time.monotonic()
        try:
            cluster = (ExternalCluster.from_environment() if os.environ.get("BROKERS")
                       else KafkaInstance(num_instances=3,
                                          kafka_version=DEFAULT_KAFKA_VERSION))
        except HarnessError as exc:
            pytest.fail("could not start a 3-broker Kafka %s cluster: %s"
                        % (DEFAULT_KAFKA_VERSION, exc), pytrace=False)
        env.update(_cluster_env(cluster))
        t_cluster = time.monotonic() - t1
        t2 = time.monotonic()
        rc, out = _run_suite(run_dir, env)
        t_suite = time.monotonic() - t2
    finally:
        if cluster is not None:
            cluster.terminate()
    if not os.path.exists(results_file):
        pytest.fail("pykafka's test suite wrote no results (exit %d); its output ends "
                    "with:\n%s" % (rc, out[-5000:]), pytrace=False)
    with open(results_file) as f:
        results = json.load(f)
    counts, problems = classify(results, expected, test_files)
    by_reason = collections.Counter(reason for reason, _ in expected.values())
    summary = ("pykafka 2.8.0's test suite on pykafka_c (Kafka %s, 3 brokers): %d tests in "
               "%d files; %s; expected failures by reason: %s; %.0f s (sdist and setup "
               "%.0f s, cluster %.0f s, tests %.0f s)"
               % (env.get("KAFKA_VERSION", "?"), sum(counts.values()), len(test_files),
                  ", ".join("%d %s" % (n, w) for w, n in sorted(counts.items())),
                  ", ".join("%s %d" % (r, by_reason[r]) for r in REASONS),
                  time.monotonic() - t0, t_setup, t_cluster, t_suite))
    print(summary)
    with open(os.path.join(_cache_dir(), "conformance-last-run.txt"), "w") as f:
        f.write(summary + "\n\n" + out[-20000:])
    assert not problems, "%s\n%d problem(s):\n%s\n\nOutput of pykafka's suite (end):\n%s" % (
        summary, len(problems), "\n".join(problems), out[-8000:])
