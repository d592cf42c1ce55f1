"""Shared pytest fixtures: real Kafka clusters from pykafka_c.test.

* ``kafka``: a single-broker cluster, session-scoped and parametrized over
  both Kafka versions (ids ``kafka4`` and ``kafka39``), so every test that
  uses it runs on 4.x and on 3.9 in one pytest run.  pytest groups the tests
  by version, so only one single-broker cluster runs at a time.
* ``kafka_cluster3``: a 3-broker cluster (same versions and ids).
* ``topic_name``: a fresh, unique topic name per test.
* ``old_kafka`` (in tests/test_old_brokers.py, not here): one Kafka 2.1
  broker in ZooKeeper mode for that module only.

``PKC_KAFKA_VERSIONS`` (comma list of ids or versions, e.g. ``kafka4`` or
``4.4.0,3.9.2``) restricts the versions for local runs.  With ``BROKERS``
set (``host:port,...``) both fixtures use that running cluster instead
(id ``external``; its TLS and SASL listeners and certificates come from
``BROKERS_SSL`` and the like and ``PKC_TEST_CERTS``, as
``python -m pykafka_c.test.kafka_instance --export-hosts`` writes them).

Tests that use a cluster fixture are marked ``integration`` (and
``cluster3``) automatically; tests that use none are marked ``unit``, so
``pytest -m unit`` runs only broker-free tests.  Cluster fixtures never skip:
a missing java or mvn, or a broker that does not start, fails the tests
that need it with the reason.  A failing integration test shows the tail of
its brokers' logs.
"""

import os
import re
import signal
import uuid

import pytest

from pykafka_c.test.kafka_instance import (DEFAULT_KAFKA_VERSION, KAFKA_39_VERSION,
                                           HarnessError, KafkaInstance)
from pykafka_c.test.utils import ExternalCluster

# Under scripts/tsan-tests.sh this interpreter runs with the ThreadSanitizer
# runtime preloaded.  Its children must not inherit it (bash and the JVM
# crash under it); a test that starts a Python importing this build of
# pykafka_c puts it back with cbuild.python_env().
if os.environ.get("PKC_TSAN", "") not in ("", "0") and \
        "LD_PRELOAD" in os.environ:
    os.environ["PKC_SANITIZER_PRELOAD"] = os.environ.pop("LD_PRELOAD")

# old_kafka is defined in tests/test_old_brokers.py (one Kafka 2.1 cluster for
# that module); listed here so its tests are marked and show its log tails.
CLUSTER_FIXTURES = ("kafka", "kafka_cluster3", "old_kafka")
LOG_TAIL_LINES = 60
_KNOWN = {"kafka4": DEFAULT_KAFKA_VERSION, "kafka39": KAFKA_39_VERSION}


def _version_params():
    """[(id, version)] from $PKC_KAFKA_VERSIONS (default: both pinned versions)."""
    if os.environ.get("BROKERS"):
        return [("external", None)]
    raw = os.environ.get("PKC_KAFKA_VERSIONS", "").strip()
    if not raw:
        return list(_KNOWN.items())
    out = []
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        if item in _KNOWN:
            out.append((item, _KNOWN[item]))
        elif re.fullmatch(r"\d+\.\d+\.\d+", item):
            ids = [k for k, v in _KNOWN.items() if v == item]
            out.append((ids[0] if ids else "kafka-" + item, item))
        else:
            raise pytest.UsageError("PKC_KAFKA_VERSIONS: %r is neither one of %s nor a "
                                    "version like 4.4.0" % (item, sorted(_KNOWN)))
    if not out:
        raise pytest.UsageError("PKC_KAFKA_VERSIONS=%r names no version" % raw)
    return out


_PARAMS = _version_params()


def _start(version, num_instances):
    try:
        if version is None:
            return ExternalCluster.from_environment()
        return KafkaInstance(num_instances=num_instances, kafka_version=version)
    except HarnessError as exc:
        reason = str(exc)
    pytest.fail("could not start a %d-broker Kafka %s cluster: %s"
                % (num_instances, version or "(external)", reason), pytrace=False)


@pytest.fixture(scope="session", params=[v for _, v in _PARAMS], ids=[i for i, _ in _PARAMS])
def kafka(request):
    """Single-broker cluster (KafkaInstance), one per Kafka version."""
    cluster = _start(request.param, 1)
    yield cluster
    cluster.terminate()


@pytest.fixture(scope="session", params=[v for _, v in _PARAMS], ids=[i for i, _ in _PARAMS])
def kafka_cluster3(request):
    """3-broker cluster (KafkaInstance), one per Kafka version.  Tests that
    stop a broker must start it again before they return."""
    cluster = _start(request.param, 3)
    yield cluster
    cluster.terminate()


@pytest.fixture(autouse=True)
def _restart_stopped_brokers(request):
    """After a test that used a cluster fixture, start again any broker the
    test stopped (and did not restart), so later tests get a whole cluster."""
    yield
    funcargs = getattr(request.node, "funcargs", {}) or {}
    for name in CLUSTER_FIXTURES:
        cluster = funcargs.get(name)
        if not isinstance(cluster, KafkaInstance):
            continue
        for i in range(cluster.num_instances):
            if not cluster.is_running(i):
                cluster.start_broker(i)


@pytest.fixture
def topic_name(request):
    """A topic name unique to this test (not created)."""
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name).strip("-.")[:60]
    return "pkc-%s-%s" % (base or "t", uuid.uuid4().hex[:8])


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & set(CLUSTER_FIXTURES):
            item.add_marker(pytest.mark.integration)
            if "kafka_cluster3" in names:
                item.add_marker(pytest.mark.cluster3)
        elif item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.failed:
        funcargs = getattr(item, "funcargs", {}) or {}
        for name in CLUSTER_FIXTURES:
            cluster = funcargs.get(name)
            if cluster is not None and hasattr(cluster, "log_tails"):
                try:
                    text = cluster.log_tails(lines=LOG_TAIL_LINES)
                except Exception as exc:     # never hide the real failure
                    text = "(could not read the broker logs: %r)" % (exc,)
                rep.sections.append(("Kafka broker log tail (%s, %s)" % (name, cluster),
                                     text))
    return rep


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config):
    # A SIGTERM to pytest (a CI timeout, say) should still tear the clusters
    # down: turn it into the KeyboardInterrupt pytest cleans up after.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
