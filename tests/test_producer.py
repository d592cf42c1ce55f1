"""The Producer against real Kafka brokers (fixtures ``kafka`` and
``kafka_cluster3``, both Kafka versions), plus broker-free checks of its
argument handling and of the partitioners.

Messages are read back with a raw Fetch through ``Broker.request`` and
``_core.decode_records`` (independent of the producer's code path), and
by kcat and Kafka's own console consumer for interoperability.
"""

import datetime
import gc
import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import types

import pytest

from pykafka_c import _core
from pykafka_c.broker import ApiKey
from pykafka_c.client import KafkaClient
from pykafka_c.common import CompressionType
from pykafka_c.exceptions import (KafkaException, MessageSizeTooLarge,
                                  ProducerQueueFullError,
                                  ProducerStoppedException)
from pykafka_c.partitioners import (BasePartitioner, GroupHashingPartitioner,
                                    HashingPartitioner, RandomPartitioner,
                                    hashing_partitioner)
from pykafka_c.producer import Producer
from pykafka_c.protocol import Message
from pykafka_c.test.kafka_instance import run_kafka_tool
from pykafka_c.utils import serialize_utf8

CODECS = [("none", CompressionType.NONE), ("gzip", CompressionType.GZIP),
          ("snappy", CompressionType.SNAPPY), ("lz4", CompressionType.LZ4),
          ("zstd", CompressionType.ZSTD)]

EPOCH = datetime.datetime(1970, 1, 1)


# ------------------------------------------------------------------ helpers

def fetch_partition(client, topic_name, pid, timeout=30.0):
    """Every message of one partition, by raw Fetch requests to its leader
    and _core.decode_records.  Returns (messages, raw record-batch bytes)."""
    name = topic_name.decode() if isinstance(topic_name, bytes) \
        else topic_name
    deadline = time.monotonic() + timeout
    out, raw, offset = [], [], 0
    while True:
        client.update_cluster()
        leader = client.topics[name].partitions[pid].leader
        resp = leader.request(ApiKey.FETCH, {
            "replica_id": -1, "max_wait_ms": 50, "min_bytes": 1,
            "max_bytes": 64 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": name, "partitions": [{
                "partition": pid, "fetch_offset": offset,
                "partition_max_bytes": 16 << 20,
                "current_leader_epoch": -1, "log_start_offset": -1}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        part = resp["responses"][0]["partitions"][0]
        if part["error_code"] == 0:
            records = part["records"] or b""
            msgs = _core.decode_records(records, pid, offset)
            if records:
                raw.append(records)
            out.extend(msgs)
            if msgs:
                offset = msgs[-1].offset + 1
            if offset >= part["high_watermark"]:
                return out, b"".join(raw)
        if time.monotonic() > deadline:
            raise AssertionError("fetch of %s/%d: error %d at offset %d"
                                 % (name, pid, part["error_code"], offset))
        time.sleep(0.1)


def fetch_topic(client, topic_name, n_partitions):
    return {pid: fetch_partition(client, topic_name, pid)[0]
            for pid in range(n_partitions)}


def drain(producer, n, timeout=60.0):
    """Exactly n delivery reports, and no more."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("%d of %d delivery reports" % (len(got), n))
        try:
            got.append(producer.get_delivery_report(True, min(left, 1.0)))
        except queue.Empty:
            pass
    with pytest.raises(queue.Empty):
        producer.get_delivery_report(True, 0.2)
    return got


def batch_codecs(raw):
    """Codec of every RecordBatch in raw Fetch records (attributes & 7)."""
    codecs, pos = [], 0
    while pos + 61 <= len(raw):
        length = int.from_bytes(raw[pos + 8:pos + 12], "big")
        codecs.append(int.from_bytes(raw[pos + 21:pos + 23], "big") & 7)
        pos += 12 + length
    return codecs


@pytest.fixture
def client(request):
    clients = []

    def make(cluster):
        c = KafkaClient(cluster.brokers)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.close()


def sha1_partition(key, ids):
    """pykafka's rule, computed independently: sorted partitions indexed by
    abs(sha1(key) as a big-endian integer) % count."""
    digest = int.from_bytes(hashlib.sha1(key).digest(), "big")
    return sorted(ids)[abs(digest) % len(ids)]


# ------------------------------------------------------ broker-free checks

class _Part(object):
    def __init__(self, id_):
        self.id = id_

    def __lt__(self, other):
        return self.id < other.id


@pytest.mark.unit
def test_hashing_partitioner_follows_the_sha1_rule():
    parts = [_Part(i) for i in (3, 0, 5, 1, 4, 2)]  # unsorted on purpose
    keys = [b"", b"a", b"key-1", b"key-2", b"\x00\xff" * 9, b"user:42",
            "ünïcode".encode("utf-8"), os.urandom(0) + b"z" * 300]
    for key in keys:
        want = sha1_partition(key, [p.id for p in parts])
        assert hashing_partitioner(parts, key).id == want
        assert HashingPartitioner()(list(parts), key).id == want
    with pytest.raises(ValueError):
        hashing_partitioner(parts, None)
    custom = HashingPartitioner(hash_func=lambda k: len(k))
    assert custom(parts, b"abcdefgh").id == sorted(p.id for p in parts)[2]


@pytest.mark.unit
def test_random_partitioner_is_round_robin_from_index_one():
    parts = [_Part(i) for i in range(4)]
    rp = RandomPartitioner()
    assert [rp(parts).id for _ in range(6)] == [1, 2, 3, 0, 1, 2]


@pytest.mark.unit
def test_group_hashing_and_base_partitioner_rules():
    with pytest.raises(ValueError):
        GroupHashingPartitioner(None)
    with pytest.raises(ValueError):
        GroupHashingPartitioner(len, group_size=0)
    parts = [_Part(i) for i in range(5)]
    g = GroupHashingPartitioner(lambda k: 7, group_size=2)
    assert {g(parts, b"k").id for _ in range(200)} <= {2, 3}
    with pytest.raises(ValueError):
        g(parts, None)
    with pytest.raises(ValueError):
        GroupHashingPartitioner(len, group_size=9)(parts, b"k")
    with pytest.raises(NotImplementedError):
        BasePartitioner()(parts, b"k")


def _offline_producer(**kwargs):
    cluster = types.SimpleNamespace(_socket_timeout_ms=1000, brokers={})
    topic = types.SimpleNamespace(name=b"t", partitions={})
    kwargs.setdefault("auto_start", False)
    return Producer(cluster, topic, **kwargs)


@pytest.mark.unit
@pytest.mark.parametrize("kwargs, exc", [
    ({"retry_backoff_ms": 0}, ValueError),
    ({"min_queued_messages": 0}, ValueError),
    ({"max_request_size": 0}, ValueError),
    ({"linger_ms": -1}, ValueError),
    ({"max_retries": -1}, ValueError),
    ({"max_queued_messages": -1}, ValueError),
    ({"ack_timeout_ms": -5}, ValueError),
    ({"max_retries": "3"}, TypeError),
    ({"compression": 9}, ValueError),
    ({"serializer": 42}, TypeError),
])
def test_constructor_validation(kwargs, exc):
    with pytest.raises(exc):
        _offline_producer(**kwargs)


@pytest.mark.unit
def test_constructor_accepts_pykafkas_edge_values():
    p = _offline_producer(queue_empty_timeout_ms=-1, required_acks=-1,
                          max_retries=0, ack_timeout_ms=0, linger_ms=0,
                          sync=True, min_queued_messages=0)
    assert p._min_queued_messages == 1


@pytest.mark.unit
def test_produce_checks_before_starting():
    p = _offline_producer(delivery_reports=False)
    for bad in ("str", bytearray(b"x"), 5, memoryview(b"x")):
        with pytest.raises(TypeError):
            p.produce(bad)
        with pytest.raises(TypeError):
            p.produce(b"ok", partition_key=bad)
    with pytest.raises(ProducerStoppedException):
        p.produce(b"ok")
    with pytest.raises(ProducerStoppedException):
        p.produce(None, partition_key=None)
    with pytest.raises(KafkaException, match="disabled"):
        p.get_delivery_report(block=False)
    with p as same:
        assert same is p
    q = _offline_producer(delivery_reports=True)
    with pytest.raises(queue.Empty):
        q.get_delivery_report(block=False)


# ------------------------------------------------------------ real broker

def _cases():
    """(value, key, headers, timestamp) covering nulls, empties, sizes."""
    big = (b"compressible " * 8000)[:100000]
    base_ts = 1500000000000
    return [
        (None, b"null-value", [], base_ts),
        (b"", b"empty-value", [], base_ts + 1),
        (b"v", None, [("a", b"1")], base_ts + 2),
        (b"v2", b"", [("dup", b"x"), ("dup", None), ("e", b"")], None),
        (big, b"big", [("k", b"v" * 300)],
         datetime.datetime(2020, 5, 17, 12, 30, 1, 250000)),
        (os.urandom(777), b"rand", [("bin", os.urandom(40))],
         base_ts + 3.9),
    ] + [(b"m%03d" % i, b"k%d" % (i % 7), [("i", b"%d" % i)], base_ts + i)
         for i in range(60)]


def _expected_ts(ts, t0, t1):
    if ts is None:
        return (t0, t1)
    if isinstance(ts, datetime.datetime):
        ms = int((ts - EPOCH).total_seconds() * 1000)
        return (ms, ms)
    return (int(ts), int(ts))


@pytest.mark.parametrize("codec", [c for _, c in CODECS],
                         ids=[n for n, _ in CODECS])
def test_roundtrip_every_codec(kafka, topic_name, client, codec):
    kafka.create_topic(topic_name, num_partitions=3)
    c = client(kafka)
    topic = c.topics[topic_name]
    p = topic.get_producer(compression=codec, delivery_reports=True,
                           linger_ms=20)
    cases = _cases()
    t0 = int(time.time() * 1000) - 1
    sent = [p.produce(v, k, ts, headers=h) for v, k, h, ts in cases]
    # they hold the delivery-report queue (a GC object): tracked
    assert all(gc.is_tracked(m) for m in sent)
    assert p.flush(30) == 0
    t1 = int(time.time() * 1000) + 1
    reports = drain(p, len(cases))
    p.stop()
    assert all(exc is None for _, exc in reports), reports
    assert {id(m) for m, _ in reports} == {id(m) for m in sent}

    by_pos = {(m.partition_id, m.offset): m for m, _ in reports}
    assert len(by_pos) == len(cases)
    got = 0
    for pid in range(3):
        msgs, raw = fetch_partition(c, topic_name, pid)
        assert set(batch_codecs(raw)) <= {codec}
        if msgs:
            assert set(batch_codecs(raw)) == {codec}
        for m in msgs:
            want = by_pos[(pid, m.offset)]
            idx = next(i for i, s in enumerate(sent) if s is want)
            value, key, headers, ts = cases[idx]
            assert m.value == value and m.partition_key == key
            assert m.headers == [(hk, hv) for hk, hv in headers]
            lo, hi = _expected_ts(ts, t0, t1)
            assert lo <= m.timestamp <= hi
            assert want.timestamp == m.timestamp
            got += 1
    assert got == len(cases)


@pytest.mark.parametrize("acks", [0, 1, -1])
def test_required_acks(kafka, topic_name, client, acks):
    kafka.create_topic(topic_name, num_partitions=2)
    c = client(kafka)
    if acks == 0:
        # An acks=0 request that reaches a leader not ready yet (a topic
        # just created) is dropped with no answer, by design: wait until
        # both leaders answer ListOffsets without error first.
        offsets = c.topics[topic_name].latest_available_offsets()
        assert {pid: r.err for pid, r in offsets.items()} == {0: 0, 1: 0}
    p = c.topics[topic_name].get_producer(required_acks=acks,
                                          delivery_reports=True, linger_ms=5)
    sent = [p.produce(b"acks%d-%d" % (acks, i)) for i in range(50)]
    assert p.flush(30) == 0
    reports = drain(p, 50)
    p.stop()
    assert all(exc is None for _, exc in reports)
    if acks == 0:
        assert all(m.offset == -1 for m, _ in reports)
    else:
        for pid in range(2):
            offs = sorted(m.offset for m, _ in reports if m.partition_id == pid)
            assert offs == list(range(len(offs)))
    want = sorted(m.value for m in sent)
    stored = fetch_topic(c, topic_name, 2)
    if acks == 0:
        # Nothing tells an acks=0 producer when the broker has appended a
        # request it wrote; give the broker a bounded time to do so.
        deadline = time.monotonic() + 20
        while sorted(m.value for ms in stored.values() for m in ms) != want \
                and time.monotonic() < deadline:
            time.sleep(0.2)
            stored = fetch_topic(c, topic_name, 2)
    assert sorted(m.value for ms in stored.values() for m in ms) == want
    if acks != 0:
        for m, _ in reports:
            assert stored[m.partition_id][m.offset].value == m.value


def test_sync_producer_raises_message_size_too_large(kafka, topic_name,
                                                     client):
    kafka.create_topic(topic_name, configs={"max.message.bytes": "2000"})
    c = client(kafka)
    p = c.topics[topic_name].get_sync_producer()
    ok = p.produce(b"small")
    assert ok.offset == 0
    with pytest.raises(MessageSizeTooLarge):
        p.produce(b"x" * 5000)
    # A message over max_request_size fails locally, the same way.
    p2 = c.topics[topic_name].get_sync_producer(max_request_size=1000)
    with pytest.raises(MessageSizeTooLarge):
        p2.produce(b"y" * 1500)
    after = p.produce(b"still works")
    p.stop()
    p2.stop()
    assert after.offset == 1
    assert [m.value for m in fetch_partition(c, topic_name, 0)[0]] == \
        [b"small", b"still works"]


def test_queue_full_without_blocking(kafka, topic_name, client):
    kafka.create_topic(topic_name)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(
        max_queued_messages=10, block_on_queue_full=False, linger_ms=60000,
        delivery_reports=True)
    sent = [p.produce(b"q%d" % i) for i in range(10)]
    with pytest.raises(ProducerQueueFullError):
        p.produce(b"one too many")
    assert p.flush(30) == 0
    sent.append(p.produce(b"room again"))
    assert p.flush(30) == 0
    reports = drain(p, 11)
    p.stop()
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fetch_partition(c, topic_name, 0)[0]] == \
        [m.value for m in sent]


def test_queue_full_blocks_until_room(kafka, topic_name, client):
    kafka.create_topic(topic_name)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(
        max_queued_messages=10, block_on_queue_full=True, linger_ms=50,
        delivery_reports=False)
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], p._core.stats()["unsent"])
            time.sleep(0.001)

    w = threading.Thread(target=watch)
    w.start()
    t0 = time.monotonic()
    for i in range(200):
        p.produce(b"b%03d" % i)
    elapsed = time.monotonic() - t0
    done.set()
    w.join()
    assert p.flush(30) == 0
    p.stop()
    assert 0 < peak[0] <= 10
    # 200 messages through a 10-message queue that drains every linger_ms.
    assert elapsed > 0.3
    assert [m.value for m in fetch_partition(c, topic_name, 0)[0]] == \
        [b"b%03d" % i for i in range(200)]


def test_context_manager_delivers_on_exit(kafka, topic_name, client):
    # As pykafka's: leaving the block lets the batches linger as usual
    # (here 1.5 s), then waits for their acknowledgements.
    kafka.create_topic(topic_name, num_partitions=2)
    c = client(kafka)
    with c.topics[topic_name].get_producer(linger_ms=1500) as p:
        for i in range(30):
            p.produce(b"cm%d" % i)
        t0 = time.monotonic()
    assert 1.2 < time.monotonic() - t0 < 10
    with pytest.raises(ProducerStoppedException):
        p.produce(b"after exit")
    stored = fetch_topic(c, topic_name, 2)
    assert sorted(m.value for ms in stored.values() for m in ms) == \
        sorted(b"cm%d" % i for i in range(30))


def test_batches_split_by_max_request_size(kafka, topic_name, client):
    kafka.create_topic(topic_name)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(
        max_request_size=4096, linger_ms=60000, min_queued_messages=300,
        delivery_reports=True)
    values = [b"%04d" % i + b"." * 96 for i in range(300)]
    for v in values:
        p.produce(v)
    assert p.flush(30) == 0
    stats = p._core.stats()
    reports = drain(p, 300)
    p.stop()
    assert all(exc is None for _, exc in reports)
    # ~33 KB of records in requests of at most 4 KB.
    assert stats["requests"] >= 9 and stats["batches_sent"] >= 9
    assert stats["bytes_sent"] / stats["batches_sent"] <= 4096
    assert [m.value for m in fetch_partition(c, topic_name, 0)[0]] == values


def test_hashing_partitioner_on_a_real_topic(kafka, topic_name, client):
    kafka.create_topic(topic_name, num_partitions=5)
    c = client(kafka)
    topic = c.topics[topic_name]
    p = topic.get_producer(partitioner=hashing_partitioner,
                           delivery_reports=True, linger_ms=5)
    keys = [b"user-%d" % i for i in range(40)]
    for k in keys:
        p.produce(b"value of " + k, partition_key=k)
    p.flush(30)
    reports = drain(p, 40)
    p.stop()
    ids = list(topic.partitions)
    for m, exc in reports:
        assert exc is None
        assert m.partition_id == sha1_partition(m.partition_key, ids)
    stored = fetch_topic(c, topic_name, 5)
    for pid, msgs in stored.items():
        for m in msgs:
            assert sha1_partition(m.partition_key, ids) == pid


def test_serializer_and_any_callable_partitioner(kafka, topic_name, client):
    kafka.create_topic(topic_name, num_partitions=3)
    c = client(kafka)
    seen = []

    def last_partition(partitions, key):
        seen.append((len(partitions), key))
        return max(partitions, key=lambda part: part.id)

    p = c.topics[topic_name].get_producer(
        serializer=serialize_utf8, partitioner=last_partition,
        delivery_reports=True, linger_ms=5)
    m = p.produce("héllo", partition_key="clé")
    assert m.value == "héllo".encode() and m.partition_key == "clé".encode()
    p.flush(30)
    (rm, exc), = drain(p, 1)
    p.stop()
    assert rm is m and exc is None and m.partition_id == 2
    assert seen == [(3, "clé".encode())]
    assert fetch_partition(c, topic_name, 2)[0][0].value == "héllo".encode()


def test_reports_go_to_the_producing_thread(kafka, topic_name, client):
    kafka.create_topic(topic_name)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(delivery_reports=True,
                                          linger_ms=5)
    results = {}

    def worker(tag):
        mine = [p.produce(b"%s-%d" % (tag, i)) for i in range(20)]
        p.flush(30)
        got = drain(p, 20)
        results[tag] = ({id(m) for m in mine}, {id(m) for m, _ in got})

    threads = [threading.Thread(target=worker, args=(t,))
               for t in (b"a", b"b", b"c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(queue.Empty):
        p.get_delivery_report(block=False)
    p.stop()
    for mine, got in results.values():
        assert mine == got


@pytest.mark.parametrize("codec", [c for _, c in CODECS],
                         ids=[n for n, _ in CODECS])
def test_kcat_reads_what_we_produce(kafka, topic_name, client, codec):
    kafka.create_topic(topic_name)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(compression=codec, linger_ms=5)
    rows = [("value-%d" % i, "key-%d" % i, [("h1", "x%d" % i), ("h2", "y")],
             1600000000000 + i) for i in range(25)]
    for v, k, h, ts in rows:
        p.produce(v.encode(), k.encode(), ts,
                  headers=[(hk, hv.encode()) for hk, hv in h])
    p.stop()
    out = subprocess.run(
        ["kcat", "-C", "-b", kafka.brokers, "-t", topic_name, "-e", "-J",
         "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
        check=True, text=True).stdout
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [(g["payload"], g["key"], g["ts"]) for g in got] == \
        [(v, k, ts) for v, k, _, ts in rows]
    for g, (_, _, h, _) in zip(got, rows):
        assert g["headers"] == [x for pair in h for x in pair]


def test_console_consumer_reads_headers_and_zstd(kafka, topic_name, client):
    kafka.create_topic(topic_name)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(
        compression=CompressionType.ZSTD, linger_ms=5)
    for i in range(10):
        p.produce(b"java-%d" % i, b"k%d" % i, headers=[("hk", b"hv%d" % i)])
    p.stop()
    proc = run_kafka_tool(
        "console-consumer",
        ["--bootstrap-server", kafka.brokers, "--topic", topic_name,
         "--partition", "0", "--offset", "earliest",   # no group needed
         "--max-messages", "10", "--timeout-ms",
         "60000", "--property", "print.key=true", "--property",
         "print.headers=true", "--property", "key.separator=|",
         "--property", "headers.separator=,"],
        kafka_version=kafka.kafka_version or "4.4.0", timeout=120)
    lines = [line for line in proc.stdout.splitlines() if "java-" in line]
    assert lines == ["hk:hv%d|k%d|java-%d" % (i, i, i) for i in range(10)]


def replicated_topic(cluster, client, topic_name, partitions, **configs):
    """A topic with replication factor 3 and min.insync.replicas 2 (and
    any other topic ``configs``), every replica in sync: (client, topic,
    the node id leading partition 0)."""
    configs["min.insync.replicas"] = "2"
    cluster.create_topic(topic_name, num_partitions=partitions,
                         replication_factor=3, configs=configs)
    cluster.wait_in_sync([topic_name])
    c = client(cluster)
    topic = c.topics[topic_name]
    return c, topic, topic.partitions[0].leader.id


class KillRun(object):
    """What produce_through_a_kill saw."""
    sent = ()          # the produced Messages, in order
    killed_at = None   # len(sent) when the victim was killed
    restarted_at = None
    reports = ()       # [(Message, exception or None)]
    stats = None       # the engine's counters before stop()
    flushed = None     # flush()'s result


def produce_through_a_kill(cluster, p, victim, value, seconds, min_count=0,
                           pause=0.004, restart_after=None, timeout=120):
    """Produce ``value(i)`` every ``pause`` s for ``seconds`` (and at least
    ``min_count`` messages); SIGKILL broker ``victim`` after 3 s, and
    start it again after ``restart_after`` s if given.  Then flush, collect
    every delivery report and stop the producer.  The victim is running
    again when this returns."""
    run = KillRun()
    run.sent = []
    try:
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds or i < min_count:
            run.sent.append(p.produce(value(i)))
            i += 1
            now = time.monotonic() - t0
            if run.killed_at is None and now > 3:
                cluster.stop_broker(victim)
                run.killed_at = len(run.sent)
            elif (restart_after is not None and run.restarted_at is None
                  and run.killed_at is not None and now > restart_after):
                cluster.start_broker(victim)
                run.restarted_at = len(run.sent)
            time.sleep(pause)
        run.flushed = p.flush(timeout)
        run.reports = drain(p, len(run.sent), timeout=timeout)
        run.stats = p._core.stats()
        p.stop()
    finally:
        if not cluster.is_running(victim):
            cluster.start_broker(victim)
    return run


def kill_and_restart(cluster, p, victim, value, min_count, label):
    """produce_through_a_kill for 16 s (and at least ``min_count``
    messages), the victim started again after 9 s; checks that it was
    killed and restarted and that every message got exactly one report."""
    run = produce_through_a_kill(cluster, p, victim, value, 16,
                                 min_count=min_count, pause=0.002,
                                 restart_after=9, timeout=180)
    print("%s: %d sent, killed at %s, restarted at %s; stats %s"
          % (label, len(run.sent), run.killed_at, run.restarted_at,
             run.stats))
    assert run.killed_at is not None and run.restarted_at is not None
    assert {id(m) for m, _ in run.reports} == {id(m) for m in run.sent}
    return run


def test_leader_killed_mid_produce(kafka_cluster3, topic_name, client):
    """RF 3, min.insync.replicas 2, acks=-1; the partition leader is
    SIGKILLed while producing.  Every message gets exactly one report;
    every success is in the log afterwards; the producer carries on with
    the new leader."""
    cluster = kafka_cluster3
    c, topic, victim = replicated_topic(cluster, client, topic_name, 1)
    p = topic.get_producer(required_acks=-1, delivery_reports=True,
                           linger_ms=10, max_retries=30,
                           retry_backoff_ms=300, min_queued_messages=50)
    run = produce_through_a_kill(cluster, p, victim,
                                 lambda i: b"m%06d" % i, 14, min_count=1500)
    sent, killed_at, reports = run.sent, run.killed_at, run.reports
    assert killed_at is not None
    assert {id(m) for m, _ in reports} == {id(m) for m in sent}
    ok = [m for m, exc in reports if exc is None]
    failed = [(m, exc) for m, exc in reports if exc is not None]
    assert all(isinstance(exc, KafkaException) for _, exc in failed)
    stored, _ = fetch_partition(c, topic_name, 0, timeout=60)
    print("leader kill: %d sent, %d delivered, %d failed (%s), %d stored; "
          "stats %s" % (len(sent), len(ok), len(failed),
                        sorted({type(e).__name__ for _, e in failed}),
                        len(stored), p._core.stats()))
    by_offset = {m.offset: m.value for m in stored}
    for m in ok:
        assert by_offset.get(m.offset) == m.value, m.offset
    after_kill = {id(m) for m in sent[killed_at:]}
    assert any(id(m) in after_kill for m in ok), \
        "no message produced after the kill was delivered"


def test_leader_killed_with_default_settings_fails_nothing(
        kafka_cluster3, topic_name, client):
    """The same leader kill with every retry setting at pykafka's default
    (max_retries=3, retry_backoff_ms=100, linger_ms=5000) and the
    delivery timeout at its default: no message fails (the election is
    ridden out), and the partition's log holds every message exactly once,
    in produce order.  Only acks=-1 (so that an acknowledged message
    survives the kill at all) and delivery reports (to see each outcome)
    are set."""
    cluster = kafka_cluster3
    c, topic, victim = replicated_topic(cluster, client, topic_name, 1)
    p = topic.get_producer(required_acks=-1, delivery_reports=True)
    run = produce_through_a_kill(cluster, p, victim,
                                 lambda i: b"d%06d" % i, 12, timeout=150)
    sent, reports = run.sent, run.reports
    print("default-settings leader kill: %d sent, killed at %s; stats %s"
          % (len(sent), run.killed_at, run.stats))
    assert run.killed_at is not None and run.flushed == 0
    assert {id(m) for m, _ in reports} == {id(m) for m in sent}
    failed = [(m.value, exc) for m, exc in reports if exc is not None]
    assert failed == []
    stored, _ = fetch_partition(c, topic_name, 0, timeout=60)
    assert [m.value for m in stored] == [m.value for m in sent]


def test_all_brokers_down_every_message_fails_once_at_the_delivery_timeout(
        kafka, topic_name, client):
    """Every broker down: each message produced meanwhile gets exactly one
    report, a typed failure that names the delivery timeout, and not
    before the timeout has passed."""
    kafka.create_topic(topic_name)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(delivery_reports=True,
                                          linger_ms=0,
                                          delivery_timeout_ms=4000)
    p.produce(b"before")
    assert drain(p, 1)[0][1] is None
    kafka.stop_broker(0)
    try:
        t0 = time.monotonic()
        sent = [p.produce(b"down-%d" % i) for i in range(50)]
        reports = [p.get_delivery_report(True, 90)]
        first_after = time.monotonic() - t0
        reports += drain(p, len(sent) - 1, timeout=90)
        p.stop()
    finally:
        kafka.start_broker(0)
    assert {id(m) for m, _ in reports} == {id(m) for m in sent}
    for m, exc in reports:
        assert isinstance(exc, KafkaException), exc
        assert "delivery_timeout_ms=4000 passed" in str(exc), str(exc)
    assert first_after >= 3.9, first_after


def test_interpreter_exit_flushes_a_running_producer(kafka, topic_name,
                                                     client):
    kafka.create_topic(topic_name)
    script = (
        "import sys\n"
        "from pykafka_c.client import KafkaClient\n"
        "c = KafkaClient(sys.argv[1])\n"
        "p = c.topics[sys.argv[2]].get_producer(linger_ms=600000)\n"
        "for i in range(25):\n"
        "    p.produce(b'exit-%d' % i)\n"
        "keep = p  # no stop(): atexit must flush\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", script, kafka.brokers, topic_name],
                   check=True, timeout=120, cwd=root,
                   env=dict(os.environ, PYTHONPATH=root))
    assert time.monotonic() - t0 < 60
    c = client(kafka)
    assert [m.value for m in fetch_partition(c, topic_name, 0)[0]] == \
        [b"exit-%d" % i for i in range(25)]


def batch_producer_fields(raw):
    """(producer id, epoch, base sequence, records count) of every
    RecordBatch in raw Fetch records."""
    out, pos = [], 0
    while pos + 61 <= len(raw):
        length = int.from_bytes(raw[pos + 8:pos + 12], "big")
        h = raw[pos:pos + 61]
        out.append((int.from_bytes(h[43:51], "big", signed=True),
                    int.from_bytes(h[51:53], "big", signed=True),
                    int.from_bytes(h[53:57], "big", signed=True),
                    int.from_bytes(h[57:61], "big", signed=True)))
        pos += 12 + length
    return out


@pytest.mark.parametrize("idempotent", [True, False])
def test_batches_in_flight_keep_partition_order(kafka, topic_name, client,
                                                idempotent):
    """Small batches of 1 KiB messages to 2 partitions: idempotent, several
    batches per partition are in flight, numbered from 0 under one producer
    id; otherwise one.  Either way every message gets exactly one report
    and each partition's log holds the messages in produce order, once."""
    kafka.create_topic(topic_name, num_partitions=2)
    c = client(kafka)
    p = c.topics[topic_name].get_producer(
        max_request_size=20000, linger_ms=5, delivery_reports=True,
        min_queued_messages=1000, compression=CompressionType.LZ4,
        enable_idempotence=idempotent)
    n = 3000
    sent = [p.produce(b"%05d" % i + os.urandom(512).hex().encode()[:1019])
            for i in range(n)]
    assert p.flush(60) == 0
    stats = p._core.stats()
    reports = drain(p, n)
    p.stop()
    assert all(exc is None for _, exc in reports), reports[:3]
    assert sorted(id(m) for m, _ in reports) == sorted(id(m) for m in sent)
    print("stats", stats)
    assert 0 < stats["busy_us"] and stats["backlog_us"] <= stats["busy_us"]
    if idempotent:
        assert stats["producer_id"] >= 0
        assert stats["max_partition_in_flight"] > 1
        assert stats["max_partition_in_flight"] <= 5
        assert stats["backlog_us"] > 0      # two requests at the broker at once
    else:
        assert stats["producer_id"] == -1
        assert stats["max_partition_in_flight"] == 1
    assert stats["batches_sent"] >= n * 1024 // 20000
    for pid in range(2):
        want = [m for m in sent if m.partition_id == pid]
        msgs, raw = fetch_partition(c, topic_name, pid)
        assert [m.value for m in msgs] == [m.value for m in want]
        assert [m.offset for m in msgs] == [m.offset for m in want]
        fields = batch_producer_fields(raw)
        if idempotent:
            assert {f[0] for f in fields} == {stats["producer_id"]}
            seq = 0
            for _, epoch, base_seq, count in fields:
                assert epoch >= 0 and base_seq == seq
                seq += count
        else:
            assert {f[:3] for f in fields} == {(-1, -1, -1)}


def test_idempotent_producer_survives_a_broker_kill_and_restart(
        kafka_cluster3, topic_name, client):
    """RF 3, min.insync.replicas 2, acks=-1, idempotent, 1 KiB messages to
    2 partitions with several batches in flight: the leader of partition 0
    is SIGKILLed while producing and started again later.  Every message is
    delivered (retries are plenty), each partition's log holds every
    message exactly once, in produce order, and the reported offsets are
    where the messages are."""
    cluster = kafka_cluster3
    c, topic, victim = replicated_topic(cluster, client, topic_name, 2)
    p = topic.get_producer(required_acks=-1, delivery_reports=True,
                           linger_ms=5, max_retries=60,
                           retry_backoff_ms=250, min_queued_messages=100,
                           max_request_size=30000)
    pad = b"x" * 1000
    run = kill_and_restart(cluster, p, victim, lambda i: b"m%06d" % i + pad,
                           4000, "kill/restart")
    sent, reports, stats = run.sent, run.reports, run.stats
    assert run.flushed == 0
    failed = [(m.value[:7], exc) for m, exc in reports if exc is not None]
    assert failed == []
    assert stats["producer_id"] >= 0
    assert stats["max_partition_in_flight"] > 1
    for pid in range(2):
        want = [m for m in sent if m.partition_id == pid]
        stored, _ = fetch_partition(c, topic_name, pid, timeout=60)
        assert [m.value for m in stored] == [m.value for m in want]
        by_offset = {m.offset: m.value for m in stored}
        # A batch answered DUPLICATE_SEQUENCE_NUMBER has no offset (-1).
        unknown = [m for m in want if m.offset == -1]
        assert not unknown or stats["duplicates"] > 0
        assert all(by_offset.get(m.offset) == m.value
                   for m in want if m.offset != -1)


def epoch_runs(raw):
    """The RecordBatch producer fields of a partition's log grouped into
    runs of one (producer id, epoch): [(pid, epoch, [(base seq, count)])],
    in log order."""
    runs = []
    for pid, epoch, seq, count in batch_producer_fields(raw):
        if not runs or runs[-1][:2] != (pid, epoch):
            runs.append((pid, epoch, []))
        runs[-1][2].append((seq, count))
    return runs


def test_leader_kill_with_refused_batches_bumps_the_epoch_not_the_id(
        kafka_cluster3, topic_name, client):
    """KIP-360 on a real cluster.  RF 3, min.insync.replicas 2, acks=-1,
    idempotent, 2 partitions with several batches in flight; the leader of
    partition 0 is SIGKILLed while producing and started again later.
    Every 301st message is larger than the topic's max.message.bytes, so
    the leader refuses its batch for good (MESSAGE_TOO_LARGE) and the
    batches behind it as out of order: each time the producer bumps the
    epoch of its one producer id and restarts that partition's sequences
    at 0, also around the kill, with batches of the other partition (and
    possibly written ones of this) still being retried.  Exactly the large
    messages fail; the log holds every other message exactly once, in
    produce order (0 duplicates, 0 losses); each epoch's batches are
    numbered from 0 without a gap, epochs only grow; no second producer id
    is asked for."""
    cluster = kafka_cluster3
    c, topic, victim = replicated_topic(cluster, client, topic_name, 2,
                                        **{"max.message.bytes": "10000"})
    p = topic.get_producer(required_acks=-1, delivery_reports=True,
                           linger_ms=5, retry_backoff_ms=250,
                           min_queued_messages=20, max_request_size=12000)

    def value(i):
        if i % 301 == 300:  # to both partitions in turn
            return b"big%06d" % i + b"B" * 11000
        return b"m%06d" % i + b"x" * 90

    run = kill_and_restart(cluster, p, victim, value, 3000, "KIP-360 kill")
    sent, reports, stats = run.sent, run.reports, run.stats
    failed = {id(m) for m, exc in reports if exc is not None}
    big = {id(m) for m in sent if m.value.startswith(b"big")}
    assert failed == big
    assert all(isinstance(exc, MessageSizeTooLarge)
               for _, exc in reports if exc is not None)
    assert stats["producer_id"] >= 0 and stats["producer_id_requests"] == 1
    assert stats["epoch_bumps"] >= 1
    assert stats["sequence_resets"] >= len(big)
    assert stats["producer_epoch"] >= 1
    after_kill = [m for m in sent[run.killed_at:] if id(m) in big]
    assert after_kill, "no large message after the kill"
    for pid in range(2):
        want = [m for m in sent
                if m.partition_id == pid and id(m) not in big]
        stored, raw = fetch_partition(c, topic_name, pid, timeout=60)
        assert [m.value for m in stored] == [m.value for m in want]
        runs = epoch_runs(raw)
        assert {r[0] for r in runs} == {stats["producer_id"]}
        epochs = [r[1] for r in runs]
        assert epochs == sorted(set(epochs)), epochs
        assert len(runs) > 1
        for _, epoch, batches in runs:
            seq = 0
            for base, count in batches:
                assert base == seq, (epoch, base, seq)
                seq += count
