"""pykafka_c against an old broker: Kafka 2.1 (issue 3, version negotiation).

Kafka 2.1 (Nov 2018) predates flexible request versions (2.4, KIP-482) and
the ApiVersions error response carrying the broker's own range (2.4,
KIP-511), and runs in ZooKeeper mode.  Every request pykafka_c sends to it
is a classic, non-flexible version, so these tests reach the codec's and the
negotiation's non-flexible paths against a real broker, which the 3.9 and
4.x clusters of the rest of the suite never do.

One cluster for the whole module (the module-scoped ``old_kafka`` fixture;
it is not part of the ``kafka`` fixture's parametrization, which would run the
whole suite once more).  ``PKC_OLD_KAFKA_VERSION`` picks another version
(2.1.0 or newer; ZooKeeper mode below 3.3).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from pykafka_c import _core
from pykafka_c.broker import SUPPORTED_VERSIONS, ApiKey, api_name, \
    is_flexible
from pykafka_c.client import KafkaClient
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import (ConsumerStoppedException,
                                  UnsupportedApiVersionError)
from pykafka_c.partitioners import hashing_partitioner
from pykafka_c.simpleconsumer import SimpleConsumer
from pykafka_c.test.kafka_instance import (KAFKA_OLD_VERSION, HarnessError,
                                           KafkaInstance, _parse_version)
from pykafka_c.test.utils import ExternalCluster

pytestmark = pytest.mark.integration

OLD_VERSION = os.environ.get("PKC_OLD_KAFKA_VERSION") or KAFKA_OLD_VERSION

# What a Kafka 2.1 broker advertises for the APIs pykafka_c uses (from
# Kafka 2.1's ApiKeys / the *Request.json history); checked only when the
# broker is a 2.1.x.
KAFKA_21_RANGES = {
    ApiKey.PRODUCE: (0, 7), ApiKey.FETCH: (0, 10),
    ApiKey.LIST_OFFSETS: (0, 4), ApiKey.METADATA: (0, 7),
    ApiKey.OFFSET_COMMIT: (0, 6), ApiKey.OFFSET_FETCH: (0, 5),
    ApiKey.FIND_COORDINATOR: (0, 2), ApiKey.JOIN_GROUP: (0, 3),
    ApiKey.HEARTBEAT: (0, 2), ApiKey.LEAVE_GROUP: (0, 2),
    ApiKey.SYNC_GROUP: (0, 2), ApiKey.DESCRIBE_GROUPS: (0, 2),
    ApiKey.LIST_GROUPS: (0, 2), ApiKey.SASL_HANDSHAKE: (0, 1),
    ApiKey.API_VERSIONS: (0, 2), ApiKey.CREATE_TOPICS: (0, 3),
    ApiKey.DELETE_TOPICS: (0, 3), ApiKey.INIT_PRODUCER_ID: (0, 1),
    ApiKey.DESCRIBE_CONFIGS: (0, 2), ApiKey.SASL_AUTHENTICATE: (0, 0),
}


@pytest.fixture(scope="module")
def old_kafka():
    """A single-broker Kafka 2.1 cluster (ZooKeeper mode) for this module.
    Module-scoped: the one cluster is stopped as soon as the module is done,
    rather than running beside the 4.x and 3.9 clusters for the rest of the
    session."""
    try:
        cluster = KafkaInstance(num_instances=1, kafka_version=OLD_VERSION)
    except HarnessError as exc:
        pytest.fail("could not start a Kafka %s broker: %s"
                    % (OLD_VERSION, exc), pytrace=False)
    yield cluster
    cluster.terminate()


@pytest.fixture
def client(old_kafka):
    c = KafkaClient(old_kafka.brokers)
    yield c
    c.close()


@pytest.fixture
def topic_name(request):
    return "pkc-old-%s-%s" % (request.node.name[:40].replace("[", "-")
                              .replace("]", ""), uuid.uuid4().hex[:8])


def make_topic(cluster, client, name, partitions=1):
    cluster.create_topic(name, num_partitions=partitions)
    client.update_cluster()
    return client.topics[name]


def consume_n(consumer, n, timeout=30.0):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        assert time.monotonic() < deadline, \
            "got %d of %d messages in %.0f s" % (len(out), n, timeout)
        m = consumer.consume(block=False)
        if m is None:
            time.sleep(0.01)
            continue
        out.append(m)
    return out


def to_partition(pid):
    """Partitioner sending everything to partition ``pid``."""
    def partitioner(partitions, key=None):
        return [p for p in partitions if p.id == pid][0]
    return partitioner


def by_key_number(partitions, key):
    """Partitioner: partition (int(key) mod count)."""
    ordered = sorted(partitions, key=lambda p: p.id)
    return ordered[int(key) % len(ordered)]


def is_pre_flexible(version):
    return _parse_version(version) < (2, 4, 0)


# ----------------------------------------------------------- negotiation

def test_broker_is_the_old_version_in_zookeeper_mode(old_kafka):
    assert old_kafka.broker_version(0) == OLD_VERSION
    if _parse_version(OLD_VERSION) < (3, 3, 0):
        assert old_kafka.zookeeper_mode and old_kafka.zookeeper


def test_negotiated_versions(old_kafka, client):
    """Every API pykafka_c uses: the negotiated version lies in both ranges
    and is the highest both support; before 2.4 none is flexible."""
    broker = client.brokers[old_kafka.node_ids[0]]
    broker.connect()
    ranges = broker.api_versions
    # pykafka_c's ApiVersions fallback (v3 refused with an empty list, then
    # v0) decodes the same table as the harness's independent client.
    assert ranges == old_kafka.api_versions()
    if OLD_VERSION.startswith("2.1."):
        assert {k: ranges[k] for k in KAFKA_21_RANGES} == KAFKA_21_RANGES
    if is_pre_flexible(OLD_VERSION):
        # v3 was refused with an empty list (no KIP-511 before 2.4), so the
        # exchange ended on v0, and the next connection starts there.
        assert broker._api_versions_version == 0
        assert broker.connect_offsets_channel()
        assert broker._api_versions_version == 0
    print("\nKafka %s: api, broker range, pykafka_c range, negotiated"
          % OLD_VERSION)
    # KIP-848's ConsumerGroupHeartbeat came with Kafka 3.7 (opt-in, the
    # group_protocol="consumer" keyword): the only API an old broker lacks.
    assert set(SUPPORTED_VERSIONS) - set(ranges) == {
        ApiKey.CONSUMER_GROUP_HEARTBEAT}
    for key in sorted(set(SUPPORTED_VERSIONS) & set(ranges)):
        ours = SUPPORTED_VERSIONS[key]
        theirs = ranges[key]
        v = broker.api_version(key)
        print("  %-16s broker v%d-v%d  pykafka_c v%d-v%d  -> v%d%s"
              % (api_name(key), theirs[0], theirs[1], ours[0], ours[1], v,
                 " (flexible)" if is_flexible(key, v) else ""))
        assert ours[0] <= v <= ours[1]
        assert theirs[0] <= v <= theirs[1]
        assert v == min(ours[1], theirs[1])
        if is_pre_flexible(OLD_VERSION):
            assert not is_flexible(key, v), api_name(key)


def test_admin_requests_at_negotiated_versions(old_kafka, client,
                                               topic_name):
    """CreateTopics, DescribeConfigs, InitProducerId and DeleteTopics through
    Broker at the versions negotiated with the old broker."""
    broker = client.brokers[old_kafka.node_ids[0]]
    resp = broker.create_topics([{"name": topic_name, "num_partitions": 2,
                                  "replication_factor": 1}], timeout=30000)
    assert [(t["name"], t["error_code"]) for t in resp["topics"]] == \
        [(topic_name, 0)]
    resp = broker.request(ApiKey.DESCRIBE_CONFIGS, {"resources": [
        {"resource_type": 2, "resource_name": topic_name,
         "configuration_keys": ["cleanup.policy"]}]})
    res = resp["results"][0]
    assert res["error_code"] == 0
    assert [(c["name"], c["value"]) for c in res["configs"]] == \
        [("cleanup.policy", "delete")]
    resp = broker.request(ApiKey.INIT_PRODUCER_ID, {
        "transactional_id": None, "transaction_timeout_ms": 60000})
    assert resp["error_code"] == 0 and resp["producer_id"] >= 0
    resp = broker.delete_topics([topic_name], timeout=30000)
    assert [(t["name"], t["error_code"]) for t in resp["responses"]] == \
        [(topic_name, 0)]


# ------------------------------------------------------- metadata, offsets

def test_metadata_topics_partitions(old_kafka, client, topic_name):
    topic = make_topic(old_kafka, client, topic_name, partitions=4)
    assert sorted(client.brokers) == old_kafka.node_ids
    b = client.brokers[old_kafka.node_ids[0]]
    assert (b.host, b.port) == ("127.0.0.1", old_kafka.broker_ports[0])
    assert topic_name.encode() in client.topics
    assert sorted(topic.partitions) == [0, 1, 2, 3]
    for p in topic.partitions.values():
        assert p.leader is b
        assert [r.id for r in p.replicas] == [b.id]
        assert [r.id for r in p.isr] == [b.id]


def test_offset_limits(old_kafka, client, topic_name):
    topic = make_topic(old_kafka, client, topic_name, partitions=2)
    t0 = 1700000000000
    with topic.get_producer(sync=True, linger_ms=0,
                            partitioner=to_partition(1)) as prod:
        for i in range(6):
            prod.produce(b"v%d" % i, timestamp=t0 + i * 1000)
    latest = topic.latest_available_offsets()
    assert {k: (r.offset, r.err) for k, r in latest.items()} == \
        {0: ([0], 0), 1: ([6], 0)}
    earliest = topic.earliest_available_offsets()
    assert {k: (r.offset, r.err) for k, r in earliest.items()} == \
        {0: ([0], 0), 1: ([0], 0)}
    part = topic.partitions[1]
    assert part.earliest_available_offset() == 0
    assert part.latest_available_offset() == 6
    # By timestamp: the first offset whose timestamp is at or after it.
    assert part.fetch_offset_limit(t0) == [0]
    assert part.fetch_offset_limit(t0 + 2500) == [3]
    assert part.fetch_offset_limit(t0 + 5000) == [5]
    assert part.fetch_offset_limit(t0 + 5001) == []
    by_ts = topic.fetch_offset_limits(t0 + 1000)
    assert {k: (r.offset, r.err) for k, r in by_ts.items()} == \
        {0: ([], 0), 1: ([1], 0)}


# ----------------------------------------------------- producer, consumer

CODECS = [0, 1, 2, 3, 4]
CODEC_IDS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_producer_and_consume_all(old_kafka, client, topic_name, codec, sync):
    """Producer (every codec: zstd needs Produce v7, which 2.1 has) and a
    SimpleConsumer reading everything back with keys, timestamps and
    headers."""
    if not _core.codec_available(codec):
        pytest.fail("this build lacks codec %d" % codec)
    topic = make_topic(old_kafka, client, topic_name, partitions=2)
    t0 = 1700000000000
    sent = []
    with topic.get_producer(sync=sync, compression=codec, linger_ms=5,
                            delivery_reports=not sync,
                            partitioner=hashing_partitioner,
                            required_acks=-1) as prod:
        for i in range(40):
            key = b"key-%d" % (i % 4)
            value = (b"value-%d-" % i) * (1 + i % 7)
            headers = [("n", b"%d" % i), ("empty", b"")] if i % 3 else []
            prod.produce(value, partition_key=key, timestamp=t0 + i,
                         headers=headers)
            sent.append((key, value, t0 + i, headers))
        if not sync:
            prod.flush()
            for _ in sent:
                msg, exc = prod.get_delivery_report(block=True, timeout=60)
                assert exc is None, exc
        # The send loop's own ApiVersions exchange picked the highest common
        # Produce version (v7 on Kafka 2.1).
        node = old_kafka.node_ids[0]
        assert prod._core.produce_version(node) == \
            min(SUPPORTED_VERSIONS[ApiKey.PRODUCE][1],
                old_kafka.api_versions()[ApiKey.PRODUCE][1])
    consumer = topic.get_simple_consumer(
        auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=3000)
    try:
        got = consume_n(consumer, len(sent))
        assert consumer.consume(block=False) is None
    finally:
        consumer.stop()
    got_rows = sorted((m.partition_key, m.value, m.timestamp, m.headers)
                      for m in got)
    assert got_rows == sorted(sent)
    # Per key, one partition and the produce order.
    for key in {s[0] for s in sent}:
        msgs = [m for m in got if m.partition_key == key]
        assert len({m.partition_id for m in msgs}) == 1
        assert [m.timestamp for m in msgs] == sorted(m.timestamp for m in msgs)
        assert [m.offset for m in msgs] == sorted(m.offset for m in msgs)


def test_commit_offsets_then_new_consumer_resumes(old_kafka, client,
                                                  topic_name):
    topic = make_topic(old_kafka, client, topic_name, partitions=2)
    group = topic_name + "-g"
    with topic.get_producer(sync=True, partitioner=by_key_number) as prod:
        for i in range(20):
            prod.produce(b"m%d" % i, partition_key=b"%d" % (i % 2))
    consumer = topic.get_simple_consumer(consumer_group=group,
                                         auto_offset_reset=OffsetType.EARLIEST)
    try:
        first = consume_n(consumer, 8)
        consumer.commit_offsets()
        held = dict(consumer.held_offsets)
    finally:
        consumer.stop()
    reader = SimpleConsumer(topic, client.cluster, consumer_group=group,
                            auto_start=False, reset_offset_on_fetch=False)
    try:
        # Kafka's convention: the committed offset is the next one to read.
        assert {pid: r.offset for pid, r in reader.fetch_offsets()} == \
            {pid: off + 1 for pid, off in held.items()}
    finally:
        reader.stop()
    again = topic.get_simple_consumer(consumer_group=group,
                                      auto_offset_reset=OffsetType.EARLIEST)
    try:
        rest = consume_n(again, 12)
    finally:
        again.stop()
    seen = [(m.partition_id, m.offset) for m in first + rest]
    assert len(set(seen)) == 20
    assert sorted(m.value for m in first + rest) == \
        sorted(b"m%d" % i for i in range(20))


# ------------------------------------------------------------------ groups

class Drain(threading.Thread):
    def __init__(self, consumer):
        super().__init__(daemon=True)
        self.consumer = consumer
        self.got = []
        self.error = None
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                m = self.consumer.consume(block=True)
            except ConsumerStoppedException:
                return
            except Exception as exc:  # reported by the test
                self.error = exc
                return
            if m is not None:
                self.got.append((m.partition_id, m.offset, m.value))

    def finish(self):
        self.halt.set()
        self.join(15)
        assert not self.is_alive(), "consumer thread did not stop"
        if self.error is not None:
            raise self.error


def wait_for(check, timeout, what, consumers=()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for c in consumers:
            c._raise_worker_exceptions()
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)"
                         % (timeout, what, last))


def test_balanced_pair_splits_and_consumes_each_message_once(
        old_kafka, client, topic_name):
    topic = make_topic(old_kafka, client, topic_name, partitions=4)
    group = topic_name + "-g"
    opts = dict(managed=True, heartbeat_interval_ms=500,
                session_timeout_ms=6000, consumer_timeout_ms=300,
                auto_offset_reset=OffsetType.EARLIEST,
                auto_commit_enable=True, auto_commit_interval_ms=1000)
    consumers, drains = [], []
    try:
        for _ in range(2):
            c = topic.get_balanced_consumer(group, **opts)
            consumers.append(c)

        def settled():
            sets = [set(c.partitions) for c in consumers]
            if sets[0] & sets[1] or sets[0] | sets[1] != {0, 1, 2, 3}:
                return False
            if len({c.generation_id for c in consumers}) != 1 or any(
                    c._rebalancing_in_progress.is_set() for c in consumers):
                return False
            return sets
        sets = wait_for(settled, 45, "two consumers to split 4 partitions",
                        consumers)
        assert sorted(len(s) for s in sets) == [2, 2]
        for c in consumers:
            d = Drain(c)
            d.start()
            drains.append(d)
        expected = set()
        with topic.get_producer(linger_ms=5, delivery_reports=True,
                                partitioner=by_key_number,
                                required_acks=-1) as prod:
            for i in range(200):
                v = b"msg-%d" % i
                prod.produce(v, partition_key=b"%d" % i)
                expected.add(v)
            prod.flush()
            for _ in expected:
                _, exc = prod.get_delivery_report(block=True, timeout=60)
                assert exc is None, exc

        def complete():
            return sum(len(d.got) for d in drains) >= len(expected)
        wait_for(complete, 60, "every message to be consumed", consumers)
        time.sleep(1.0)           # anything consumed twice shows up now
        for c, d in zip(consumers, drains):
            owned = set(c.partitions)
            assert {pid for pid, _, _ in d.got} <= owned
        values = [v for d in drains for _, _, v in d.got]
        assert len(values) == len(expected)
        assert set(values) == expected

        # The group as the broker (the coordinator of a one-broker cluster)
        # sees it: ListGroups and DescribeGroups through Broker.request.
        b = client.brokers[old_kafka.node_ids[0]]
        resp = b.request(ApiKey.LIST_GROUPS, {})
        assert resp["error_code"] == 0
        assert (group, "consumer") in [(g["group_id"], g["protocol_type"])
                                       for g in resp["groups"]]
        resp = b.request(ApiKey.DESCRIBE_GROUPS, {"groups": [group]})
        (g,) = resp["groups"]
        assert g["error_code"] == 0 and g["group_id"] == group
        assert g["group_state"] == "Stable"
        assert g["protocol_type"] == "consumer"
        assert sorted(m["member_id"] for m in g["members"]) == \
            sorted(c.consumer_id.decode() if isinstance(c.consumer_id, bytes)
                   else c.consumer_id for c in consumers)
    finally:
        for c in consumers:
            try:
                c.stop()
            except Exception:
                pass
        for d in drains:
            d.halt.set()
            d.join(15)


def test_static_membership_needs_join_group_v5(old_kafka, client,
                                               topic_name):
    # group_instance_id (KIP-345) came with JoinGroup v5 in Kafka 2.3
    topic = make_topic(old_kafka, client, topic_name, partitions=2)
    c = topic.get_balanced_consumer(topic_name + "-g", managed=True,
                                    group_instance_id="static-1",
                                    heartbeat_interval_ms=500,
                                    session_timeout_ms=6000,
                                    consumer_timeout_ms=100)
    try:
        if _parse_version(OLD_VERSION) >= (2, 3, 0):
            assert set(c.partitions) == {0, 1}
            return
        with pytest.raises(ConsumerStoppedException) as info:
            c.consume()
        cause = info.value.__cause__
        assert isinstance(cause, UnsupportedApiVersionError)
        text = str(cause)
        assert "group_instance_id='static-1'" in text
        assert "JoinGroup v5" in text and "Kafka 2.3" in text
    finally:
        c.stop()


def test_consumer_group_protocol_needs_consumer_group_heartbeat(
        old_kafka, client, topic_name):
    # group_protocol="consumer" (KIP-848) needs ConsumerGroupHeartbeat,
    # which Kafka 2.1 does not list at all
    topic = make_topic(old_kafka, client, topic_name, partitions=2)
    with pytest.raises(UnsupportedApiVersionError) as info:
        topic.get_balanced_consumer(topic_name + "-g", managed=True,
                                    group_protocol="consumer")
    text = str(info.value)
    assert "group_protocol='consumer' (KIP-848)" in text
    assert "does not support ConsumerGroupHeartbeat at any version" in text


# ------------------------------------------------- command line, 2 brokers

@pytest.mark.slow
def test_command_line_two_old_brokers(tmp_path):
    """``python -m pykafka_c.test.kafka_instance 2 --kafka-version 2.1.1``:
    ZooKeeper plus two brokers, ready only once each broker's Metadata lists
    both; pykafka_c round-trips an RF=2 topic; SIGTERM stops everything and
    removes the data."""
    hosts = tmp_path / "hosts"
    err_path = tmp_path / "stderr"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pykafka_c.test.kafka_instance", "2",
             "--kafka-version", OLD_VERSION, "--export-hosts", str(hosts)],
            cwd=root, stdout=subprocess.DEVNULL, stderr=err,
            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not hosts.exists():
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.25)
        info = dict(line.split("=", 1) for line in hosts.read_text().split())
        assert info["KAFKA_VERSION"] == OLD_VERSION
        brokers = info["BROKERS"]
        zk_port = int(info["ZOOKEEPER"].rsplit(":", 1)[1])
        ports = [int(hp.rsplit(":", 1)[1]) for hp in brokers.split(",")]
        assert len(ports) == 2
        client = KafkaClient(brokers)
        try:
            assert sorted(client.brokers) == [0, 1]
            name = "pkc-old-cli-rf2"
            # In ZooKeeper mode only the controller creates topics.
            controller = client.cluster.controller_broker
            assert controller is not None and controller.id in (0, 1)
            resp = controller.create_topics(
                [{"name": name, "num_partitions": 2,
                  "replication_factor": 2}], timeout=30000)
            assert [(t["name"], t["error_code"]) for t in resp["topics"]] \
                == [(name, 0)]

            def in_sync():
                client.update_cluster()
                if name.encode() not in client.topics:
                    return False
                parts = client.topics[name].partitions.values()
                return len(parts) == 2 and all(len(p.isr) == 2
                                               for p in parts)
            wait_for(in_sync, 60, "the RF=2 topic to be in sync")
            # The harness's own admin client finds the controller too.
            admin = ExternalCluster(brokers, OLD_VERSION)
            admin.create_topic(name + "-h", num_partitions=2,
                               replication_factor=2)
            admin.delete_topic(name + "-h")
            topic = client.topics[name]
            assert {p.leader.id for p in topic.partitions.values()} == {0, 1}
            with topic.get_producer(sync=True, required_acks=-1,
                                    partitioner=by_key_number) as prod:
                for i in range(10):
                    prod.produce(b"cli-%d" % i, partition_key=b"%d" % i)
            consumer = topic.get_simple_consumer(
                auto_offset_reset=OffsetType.EARLIEST)
            try:
                got = consume_n(consumer, 10)
            finally:
                consumer.stop()
            assert sorted(m.value for m in got) == \
                sorted(b"cli-%d" % i for i in range(10))
        finally:
            client.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    stderr = err_path.read_text()
    assert rc == 0, stderr
    m = re.search(r"data in (\S+?)\. ", stderr)
    assert m, stderr
    assert not os.path.exists(m.group(1)), "data folder left behind"
    for port in ports + [zk_port]:
        with socket.socket() as s:
            s.settimeout(1.0)
            assert s.connect_ex(("127.0.0.1", port)) != 0, port
