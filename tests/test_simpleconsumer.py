"""SimpleConsumer against real brokers (Kafka 4.x and 3.9, see conftest).

Messages are written with a small Produce helper below: pykafka_c's
RecordBatch v2 encoder (_core.encode_record_batch) sent with Broker.request,
so each test controls partitions, keys, headers, timestamps and compression
exactly without depending on the Producer class.  One test writes with
Kafka's own console producer, and offsets are checked against Kafka's
ConsumerGroupCommand in both directions.
"""

import datetime as dt
import gc
import os
import threading
import time

import pytest

import pykafka_c  # noqa: F401
from pykafka_c import _core
from pykafka_c.broker import ApiKey
from pykafka_c.client import KafkaClient
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import (ConsumerStoppedException, KafkaException,
                                  NoBrokersAvailableError,
                                  SocketDisconnectedError)
from pykafka_c.protocol import Message
from pykafka_c.simpleconsumer import OwnedPartition, SimpleConsumer
from pykafka_c.test.kafka_instance import run_kafka_tool
from pykafka_c.utils import deserialize_utf8

EARLIEST, LATEST = OffsetType.EARLIEST, OffsetType.LATEST


# ------------------------------------------------------------------ helpers

@pytest.fixture
def client(kafka):
    c = KafkaClient(kafka.brokers)
    yield c
    c.close()


def make_topic(cluster, client, name, partitions=1, replication_factor=1,
               configs=None):
    cluster.create_topic(name, num_partitions=partitions,
                         replication_factor=replication_factor,
                         configs=configs)
    client.update_cluster()
    return client.topics[name]


def produce(client, topic, pid, records, compression=0, timeout=60.0):
    """Write one batch of ``records`` (value bytes, or (value, key,
    timestamp_ms, headers) tuples) to partition ``pid``; returns the base
    offset.  Retries leader changes and disconnects."""
    recs = [r if isinstance(r, tuple) else (r, None, None, [])
            for r in records]
    batch = _core.encode_record_batch(recs, compression)
    deadline = time.monotonic() + timeout
    name = topic.name.decode()
    while True:
        err = None
        part = topic.partitions[pid]
        try:
            if part.leader is None:
                raise KafkaException("no leader for partition %d" % pid)
            resp = part.leader.request(ApiKey.PRODUCE, {
                "transactional_id": None, "acks": -1, "timeout_ms": 30000,
                "topic_data": [{"name": name, "partition_data": [
                    {"index": pid, "records": batch}]}]})
            pr = resp["responses"][0]["partition_responses"][0]
            if pr["error_code"] == 0:
                return pr["base_offset"]
            err = "error %d" % pr["error_code"]
        except (KafkaException, OSError) as exc:
            err = str(exc)
        if time.monotonic() > deadline:
            raise AssertionError("could not produce to %s[%d]: %s"
                                 % (name, pid, err))
        time.sleep(0.3)
        try:
            client.update_cluster()
        except KafkaException:
            pass


def values(prefix, n):
    return [b"%s-%d" % (prefix, i) for i in range(n)]


def consume_n(consumer, n, timeout=30.0):
    """n messages from consumer (blocking with a deadline)."""
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


def committed(topic, cluster, group):
    """{partition_id: committed offset} read without moving anything."""
    reader = SimpleConsumer(topic, cluster, consumer_group=group,
                            auto_start=False, reset_offset_on_fetch=False)
    try:
        return {pid: r.offset for pid, r in reader.fetch_offsets()}
    finally:
        reader.stop()


# --------------------------------------------------------------- consuming

def test_consume_all_1000_messages_over_3_partitions(kafka, client,
                                                     topic_name):
    topic = make_topic(kafka, client, topic_name, partitions=3)
    counts = {0: 334, 1: 333, 2: 333}
    for pid, n in counts.items():
        produce(client, topic, pid, values(b"p%d" % pid, n))
    consumer = topic.get_simple_consumer(consumer_timeout_ms=2000)
    try:
        # The fetch thread queues each partition's records as it decodes
        # them, so consume() may start on partition 0 before partition 2
        # is queued.  Wait until everything is queued, so that the order
        # checked below is the consumer's round robin, not a race.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pos = consumer._fetcher.positions()
            if all(pos[pid][1] == n for pid, n in counts.items()):
                break
            time.sleep(0.01)
        assert {pid: pos[pid][1] for pid in counts} == counts
        msgs = list(consumer)
    finally:
        consumer.stop()
    assert len(msgs) == 1000
    by_part = {0: [], 1: [], 2: []}
    for m in msgs:
        assert isinstance(m, Message)
        assert m.partition is topic.partitions[m.partition_id]
        by_part[m.partition_id].append(m)
    for pid, n in counts.items():
        assert [m.offset for m in by_part[pid]] == list(range(n))
        assert [m.value for m in by_part[pid]] == values(b"p%d" % pid, n)
    # Partitions are served in turn while all have messages queued.
    first = [m.partition_id for m in msgs[:30]]
    assert set(first) == {0, 1, 2}
    assert max(first.count(pid) for pid in counts) <= 20
    assert consumer.held_offsets == {0: 333, 1: 332, 2: 332}


def test_iteration_equals_consume_and_consume_batch(kafka, client,
                                                    topic_name):
    topic = make_topic(kafka, client, topic_name, partitions=2)
    produce(client, topic, 0, values(b"a", 50))
    produce(client, topic, 1, values(b"b", 50))
    consumer = topic.get_simple_consumer(consumer_timeout_ms=1000)
    try:
        got = []
        while len(got) < 100:
            batch = consumer.consume_batch(30, timeout_ms=5000)
            assert batch, "consume_batch timed out with %d of 100" % len(got)
            assert len(batch) <= 30
            got.extend(batch)
        assert consumer.consume_batch(10, timeout_ms=200) == []
    finally:
        consumer.stop()
    assert sorted((m.partition_id, m.offset) for m in got) == \
        [(p, o) for p in (0, 1) for o in range(50)]


def _wait_for(what, deadline_s=30.0):
    deadline = time.monotonic() + deadline_s
    while not what():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


#: Partition 0 of the reserve tests: four batches of 1000 records, about
#: 30 KB each, one per answer with fetch_message_max_bytes=40000.
FOUR_BATCHES = [[b"%d-%017d" % (k, i) for i in range(1000)] for k in range(4)]


def _four_batches_consumer(kafka, client, topic_name, partitions, **kwargs):
    """A consumer of partition 0's FOUR_BATCHES (the other partitions are
    empty) that keeps at most 100 messages queued by pykafka's rule; the
    consumer, partition 0's OwnedPartition and the fetcher's stats()."""
    topic = make_topic(kafka, client, topic_name, partitions=partitions)
    for batch in FOUR_BATCHES:
        produce(client, topic, 0, batch)
    consumer = topic.get_simple_consumer(queued_max_messages=100,
                                         fetch_message_max_bytes=40000,
                                         **kwargs)
    return consumer, consumer._partitions_by_id[0], consumer._fetcher.stats


def test_one_answer_in_reserve(kafka, client, topic_name):
    """A partition is fetched again while fewer records are queued than
    queued_max_messages or than its last answer brought: the next answer
    is on its way while the application reads this one, and the queue
    holds at most two answers."""
    consumer, op, stats = _four_batches_consumer(kafka, client, topic_name, 1)
    try:
        # The first answer (one batch): 1000 queued, at least its own size,
        # so no second Fetch while nothing is consumed.
        _wait_for(lambda: op.message_count == 1000)
        time.sleep(0.5)
        assert op.message_count == 1000
        assert stats()["fetches_sent"] == 1
        # One record taken: fewer than the last answer brought, so the next
        # answer comes while 999 are still queued (pykafka waited for 99).
        assert consumer.consume().value == b"0-%017d" % 0
        _wait_for(lambda: op.message_count == 1999)
        time.sleep(0.5)
        assert op.message_count == 1999
        assert stats()["fetches_sent"] == 2
        # Read down to 1000 queued: still not below the reserve.
        got = [consumer.consume().value for _ in range(999)]
        time.sleep(0.5)
        assert op.message_count == 1000
        assert stats()["fetches_sent"] == 2
        # One more: the third answer.
        got.append(consumer.consume().value)
        _wait_for(lambda: op.message_count == 1999)
        assert stats()["fetches_sent"] == 3
        got += [consumer.consume().value for _ in range(2000)]
        assert got == sum(FOUR_BATCHES, [])[1:3001]
    finally:
        consumer.stop()


def test_busy_partition_is_not_stuck_behind_a_long_poll(kafka, client,
                                                       topic_name):
    """A Fetch that names only partitions at their end long-polls for
    fetch_wait_max_ms, and the broker serves one request per connection
    at a time: it is held while a partition with data behind its full
    queue will soon want more, and both go together."""
    consumer, busy, stats = _four_batches_consumer(
        kafka, client, topic_name, 2, fetch_wait_max_ms=5000)
    try:
        _wait_for(lambda: busy.message_count == 1000)
        # Partition 1 is at its end and wants more, partition 0 holds a
        # full queue: no Fetch for partition 1 alone.
        time.sleep(0.5)
        assert stats()["fetches_sent"] == 1
        got, longest = [], 0.0
        for _ in range(4000):
            t0 = time.monotonic()
            m = consumer.consume()
            longest = max(longest, time.monotonic() - t0)
            got.append((m.partition_id, m.value))
        assert got == [(0, v) for v in sum(FOUR_BATCHES, [])]
        # Behind a long poll, each of the three later answers would have
        # waited up to 5 s.
        assert longest < 2.5, "a consume() waited %.1f s" % longest
    finally:
        consumer.stop()


def test_nonblocking_consume_on_empty_topic_returns_none(kafka, client,
                                                         topic_name):
    topic = make_topic(kafka, client, topic_name)
    consumer = topic.get_simple_consumer()
    try:
        t0 = time.monotonic()
        assert consumer.consume(block=False) is None
        assert time.monotonic() - t0 < 0.5
    finally:
        consumer.stop()


def test_consumer_timeout_ms_ends_iteration(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    produce(client, topic, 0, values(b"t", 5))
    consumer = topic.get_simple_consumer(consumer_timeout_ms=600)
    try:
        # The timeout counts from the wait for the next message, so a
        # first Fetch slower than 600 ms (a loaded CI machine) would end
        # the iteration before anything arrived: wait until all five are
        # queued, then time the iteration.
        op = consumer._partitions_by_id[0]
        deadline = time.monotonic() + 30
        while op.message_count < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert op.message_count == 5
        t0 = time.monotonic()
        got = [m.value for m in consumer]
        elapsed = time.monotonic() - t0
        assert got == values(b"t", 5)
        assert 0.55 <= elapsed < 5.0
        t0 = time.monotonic()
        assert consumer.consume() is None
        assert 0.55 <= time.monotonic() - t0 < 3.0
    finally:
        consumer.stop()


def test_unblock_event_returns_none(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    consumer = topic.get_simple_consumer()  # consumer_timeout_ms=-1
    ev = threading.Event()
    try:
        timer = threading.Timer(0.3, ev.set)
        timer.start()
        t0 = time.monotonic()
        assert consumer.consume(block=True, unblock_event=ev) is None
        elapsed = time.monotonic() - t0
        assert 0.25 <= elapsed < 0.3 + 0.5
    finally:
        consumer.stop()


def _threads():
    return len(os.listdir("/proc/self/task"))


def _sockets_to(port):
    """Open TCP connections of this process to 127.0.0.1:port."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    n = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] in inodes and int(f[2].rsplit(":", 1)[1], 16) == port \
                    and f[3] == "01":  # ESTABLISHED
                n += 1
    return n


def test_stop_joins_the_thread_and_closes_its_sockets(kafka, client,
                                                      topic_name):
    topic = make_topic(kafka, client, topic_name)
    produce(client, topic, 0, values(b"m", 3))
    port = topic.partitions[0].leader.port
    consumer = topic.get_simple_consumer(auto_start=False)
    threads, socks = _threads(), _sockets_to(port)
    consumer.start()
    assert consume_n(consumer, 1)[0].offset == 0
    assert _threads() == threads + 1
    assert _sockets_to(port) == socks + 1
    consumer.stop()
    assert _threads() == threads
    assert _sockets_to(port) == socks
    # Restart: the same again, going on at offset 1.
    consumer.start()
    assert consume_n(consumer, 1)[0].offset == 1
    consumer.stop()
    assert _threads() == threads
    # A consumer dropped without stop() is stopped by its finalizer.
    dropped = topic.get_simple_consumer()
    assert _threads() == threads + 1
    del dropped
    import gc
    gc.collect()
    assert _threads() == threads


def test_stop_raises_consumer_stopped(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    consumer = topic.get_simple_consumer()
    errors = []

    def blocked():
        try:
            consumer.consume()
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.3)
    consumer.stop()
    t.join(5)
    assert not t.is_alive()
    assert [type(e) for e in errors] == [ConsumerStoppedException]
    with pytest.raises(ConsumerStoppedException):
        consumer.consume()
    with pytest.raises(ConsumerStoppedException):
        consumer.consume(block=False)
    with pytest.raises(ConsumerStoppedException):
        next(iter(consumer))
    # auto_start=False: stopped until start().
    idle = topic.get_simple_consumer(auto_start=False)
    with pytest.raises(ConsumerStoppedException):
        idle.consume(block=False)
    idle.start()
    assert idle.consume(block=False) is None
    idle.stop()


def test_concurrent_stop_from_several_threads(kafka, client, topic_name):
    """Threads calling stop() on one consumer at once (a signal handler's
    thread and a ``finally``, say) all return, the fetch thread is joined
    once, the consumer goes on where it was after start(), and a blocked
    consume() sees ConsumerStoppedException."""
    topic = make_topic(kafka, client, topic_name)
    threads_before = _threads()
    consumer = topic.get_simple_consumer(consumer_group=b"g-stop",
                                         auto_commit_enable=True)
    for round_ in range(20):
        produce(client, topic, 0, values(b"m", 2))
        assert [m.offset for m in consume_n(consumer, 2)] == \
            [2 * round_, 2 * round_ + 1]
        barrier = threading.Barrier(8)
        errors = []

        def stopper():
            try:
                barrier.wait(5)
                consumer.stop()
            except Exception as exc:  # collected for the assertion below
                errors.append(exc)

        waiter_errors = []

        def blocked():
            try:
                consumer.consume()
            except Exception as exc:
                waiter_errors.append(type(exc))

        w = threading.Thread(target=blocked)
        w.start()
        stoppers = [threading.Thread(target=stopper) for _ in range(8)]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(20)
        w.join(20)
        assert not any(t.is_alive() for t in stoppers), \
            "a concurrent stop() hung (round %d)" % round_
        assert not w.is_alive()
        assert errors == []
        assert waiter_errors == [ConsumerStoppedException]
        # A joined Python thread's OS task may take a moment to go.
        deadline = time.monotonic() + 5
        while _threads() != threads_before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _threads() == threads_before
        consumer.start()
    consumer.stop()


def test_message_larger_than_fetch_message_max_bytes(kafka, client,
                                                     topic_name):
    topic = make_topic(kafka, client, topic_name, partitions=2)
    big = b"B" * 300000
    produce(client, topic, 0, [b"small-0"])
    produce(client, topic, 0, [big])
    produce(client, topic, 0, [b"small-2"])
    # Partition 1 always has data, so partition 0 is not always first in
    # the Fetch; the big batch must still come through.
    produce(client, topic, 1, values(b"other", 200))
    consumer = topic.get_simple_consumer(fetch_message_max_bytes=1024,
                                         consumer_timeout_ms=3000)
    try:
        msgs = list(consumer)
    finally:
        consumer.stop()
    p0 = [m for m in msgs if m.partition_id == 0]
    assert [m.value for m in p0] == [b"small-0", big, b"small-2"]
    assert len([m for m in msgs if m.partition_id == 1]) == 200


def test_headers_timestamps_keys(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    ts = 1700000000123
    produce(client, topic, 0, [
        (b"v0", b"k0", ts, [("h1", b"x"), ("h2", None), ("h1", b"")]),
        (None, b"k1", ts + 1000, []),
        (b"", None, ts + 2000, [("only", b"1")]),
    ])
    consumer = topic.get_simple_consumer(consumer_timeout_ms=1500)
    try:
        msgs = list(consumer)
    finally:
        consumer.stop()
    assert [(m.value, m.partition_key) for m in msgs] == \
        [(b"v0", b"k0"), (None, b"k1"), (b"", None)]
    # the fetcher sets partition, a Python object: GC-tracked
    assert all(m.partition is not None and gc.is_tracked(m) for m in msgs)
    assert msgs[0].headers == [("h1", b"x"), ("h2", None), ("h1", b"")]
    assert msgs[1].headers == []
    assert msgs[2].headers == [("only", b"1")]
    assert [m.timestamp for m in msgs] == [ts, ts + 1000, ts + 2000]
    assert msgs[0].timestamp_dt == dt.datetime(2023, 11, 14, 22, 13, 20,
                                               123000)


def test_compressed_batches(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    expected = []
    for codec in range(5):
        if not _core.codec_available(codec):
            pytest.fail("this build lacks codec %d" % codec)
        vals = values(b"c%d" % codec, 20)
        produce(client, topic, 0, vals, compression=codec)
        expected += vals
    consumer = topic.get_simple_consumer(consumer_timeout_ms=1500)
    try:
        got = [(m.offset, m.value) for m in consumer]
    finally:
        consumer.stop()
    assert got == list(enumerate(expected))


def test_deserializer(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    produce(client, topic, 0, [("h\u00e9".encode(), None, None, []),
                               (b"x", "k\u00e9".encode(), None, [])])
    # The timeout ends the iteration: generous, since the first fetch of
    # a new consumer can take over a second on a loaded 2-core machine.
    consumer = topic.get_simple_consumer(consumer_timeout_ms=3000,
                                         deserializer=deserialize_utf8)
    try:
        msgs = list(consumer)
        # Not called for the None that ends the iteration (pykafka #965).
        assert consumer.consume(block=False) is None
    finally:
        consumer.stop()
    assert [(m.value, m.partition_key) for m in msgs] == \
        [("h\u00e9", None), ("x", "k\u00e9")]


def test_console_producer_messages(kafka, client, topic_name):
    """Records written by Kafka's own (Java) producer, zstd-compressed."""
    topic = make_topic(kafka, client, topic_name)
    run_kafka_tool("console-producer",
                   ["--bootstrap-server", kafka.brokers, "--topic",
                    topic_name, "--compression-codec", "zstd",
                    "--producer-property", "acks=all"],
                   kafka_version=kafka.kafka_version,
                   input="".join("java-%d\n" % i for i in range(30)))
    consumer = topic.get_simple_consumer(consumer_timeout_ms=1500)
    try:
        got = [(m.offset, m.value) for m in consumer]
    finally:
        consumer.stop()
    assert got == [(i, b"java-%d" % i) for i in range(30)]


# ----------------------------------------------------- starting offsets

@pytest.mark.parametrize("group_state,reset_on_start,auto_reset,expected", [
    ("new", False, EARLIEST, 0),
    ("new", False, LATEST, 10),
    ("new", True, EARLIEST, 0),
    ("new", True, LATEST, 10),
    ("existing", False, EARLIEST, 5),
    ("existing", False, LATEST, 5),
    ("existing", True, EARLIEST, 0),
    ("existing", True, LATEST, 10),
], ids=["new-noreset-earliest", "new-noreset-latest", "new-reset-earliest",
        "new-reset-latest", "existing-noreset-earliest",
        "existing-noreset-latest", "existing-reset-earliest",
        "existing-reset-latest"])
def test_starting_offsets(kafka, client, topic_name, group_state,
                          reset_on_start, auto_reset, expected):
    topic = make_topic(kafka, client, topic_name)
    group = topic_name + "-g"
    produce(client, topic, 0, values(b"m", 10))
    part = topic.partitions[0]
    if group_state == "existing":
        setter = SimpleConsumer(topic, client.cluster, consumer_group=group,
                                auto_start=False)
        setter.commit_offsets([(part, 5)])
        assert committed(topic, client.cluster, group) == {0: 5}
    consumer = SimpleConsumer(topic, client.cluster, consumer_group=group,
                              auto_offset_reset=auto_reset,
                              reset_offset_on_start=reset_on_start)
    try:
        produce(client, topic, 0, [b"m-10"])
        first = consume_n(consumer, 1)[0]
        assert first.offset == expected
        # A reset on start is committed; an existing offset stays.
        assert committed(topic, client.cluster, group) == {0: expected}
    finally:
        consumer.stop()


@pytest.mark.parametrize("reset_on_start,auto_reset,expected", [
    (False, EARLIEST, 0),
    (False, LATEST, 0),   # pykafka's rule 3: no group, no reset -> offset 0
    (True, EARLIEST, 0),
    (True, LATEST, 10),
], ids=["noreset-earliest", "noreset-latest", "reset-earliest",
        "reset-latest"])
def test_starting_offsets_without_group(kafka, client, topic_name,
                                        reset_on_start, auto_reset,
                                        expected):
    topic = make_topic(kafka, client, topic_name)
    produce(client, topic, 0, values(b"m", 10))
    consumer = topic.get_simple_consumer(auto_offset_reset=auto_reset,
                                         reset_offset_on_start=reset_on_start)
    try:
        assert consumer.held_offsets == {0: expected - 1 if expected else
                                         EARLIEST}
        produce(client, topic, 0, [b"m-10"])
        assert consume_n(consumer, 1)[0].offset == expected
    finally:
        consumer.stop()


@pytest.mark.parametrize("auto_reset,expected", [(EARLIEST, 0),
                                                 (LATEST, 10)],
                         ids=["earliest", "latest"])
def test_out_of_range_position_resets(kafka, client, topic_name, auto_reset,
                                      expected):
    topic = make_topic(kafka, client, topic_name)
    produce(client, topic, 0, values(b"m", 10))
    consumer = topic.get_simple_consumer(auto_offset_reset=auto_reset)
    try:
        # Last consumed 1000: the fetch at 1001 is OFFSET_OUT_OF_RANGE.
        consumer.reset_offsets([(topic.partitions[0], 1000)])
        assert consumer.held_offsets == {0: 1000}
        if auto_reset == LATEST:
            deadline = time.monotonic() + 10
            while consumer.held_offsets[0] != 9:
                assert time.monotonic() < deadline, consumer.held_offsets
                assert consumer.consume(block=False) is None
                time.sleep(0.02)
            produce(client, topic, 0, [b"m-10"])
        assert consume_n(consumer, 1)[0].offset == expected
    finally:
        consumer.stop()


# ---------------------------------------------------------------- offsets

def test_commit_and_resume(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    group = topic_name + "-g"
    produce(client, topic, 0, values(b"m", 10))
    consumer = topic.get_simple_consumer(consumer_group=group)
    try:
        msgs = consume_n(consumer, 5)
        assert [m.offset for m in msgs] == [0, 1, 2, 3, 4]
        consumer.commit_offsets()
    finally:
        consumer.stop()
    # Kafka's convention: the committed offset is the next one to read.
    assert committed(topic, client.cluster, group) == {0: 5}
    again = topic.get_simple_consumer(consumer_group=group)
    try:
        assert consume_n(again, 1)[0].offset == 5
        assert again.held_offsets == {0: 5}
    finally:
        again.stop()


def test_commit_explicit_offsets(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name, partitions=2)
    group = topic_name + "-g"
    produce(client, topic, 0, values(b"a", 10))
    produce(client, topic, 1, values(b"b", 10))
    consumer = topic.get_simple_consumer(consumer_group=group)
    try:
        consumer.commit_offsets([(topic.partitions[0], 7),
                                 (topic.partitions[1], 2)])
        assert committed(topic, client.cluster, group) == {0: 7, 1: 2}
        with pytest.raises(KafkaException):
            consumer.commit_offsets([(object(), 1)])
    finally:
        consumer.stop()
    again = topic.get_simple_consumer(consumer_group=group)
    try:
        # 3 left of partition 0 (7-9) and 8 of partition 1 (2-9), then none.
        got = sorted((m.partition_id, m.offset)
                     for m in consume_n(again, 11))
        assert again.consume(block=False) is None
    finally:
        again.stop()
    assert got == [(0, o) for o in range(7, 10)] + \
        [(1, o) for o in range(2, 10)]


def test_commit_needs_a_group(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    consumer = topic.get_simple_consumer()
    try:
        with pytest.raises(Exception, match="consumer group"):
            consumer.commit_offsets()
        with pytest.raises(Exception, match="consumer group"):
            consumer.fetch_offsets()
    finally:
        consumer.stop()


def test_reset_offsets_int_offsettype_timestamp(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    part = topic.partitions[0]
    base = 1700000000000
    produce(client, topic, 0, [(b"m-%d" % i, None, base + i * 1000, [])
                               for i in range(10)])
    consumer = topic.get_simple_consumer()
    try:
        # int: the last consumed offset (pykafka's rule).
        consumer.reset_offsets([(part, 3)])
        assert consume_n(consumer, 1)[0].offset == 4
        consumer.reset_offsets([(part, -1)])  # -1 is OffsetType.LATEST
        produce(client, topic, 0, [(b"m-10", None, base + 10000, [])])
        assert consume_n(consumer, 1)[0].offset == 10
        consumer.reset_offsets([(part, EARLIEST)])
        assert consume_n(consumer, 1)[0].offset == 0
        consumer.reset_offsets([(part, LATEST)])
        assert consumer.held_offsets == {0: 10}
        # A timestamp: the first message at or after it.
        when = dt.datetime(1970, 1, 1) + dt.timedelta(
            milliseconds=base + 4500)
        consumer.reset_offsets([(part, when)])
        assert consume_n(consumer, 1)[0].offset == 5
        # Later than every message: auto_offset_reset (EARLIEST here).
        consumer.reset_offsets([(part, dt.datetime(2100, 1, 1))])
        assert consume_n(consumer, 1)[0].offset == 0
        with pytest.raises(ValueError):
            consumer.reset_offsets([(part, 1.5)])
        with pytest.raises(KafkaException):
            consumer.reset_offsets([(object(), 1)])
    finally:
        consumer.stop()


def test_offsets_interop_with_kafka_consumer_group_command(kafka, client,
                                                           topic_name):
    topic = make_topic(kafka, client, topic_name)
    group = topic_name + "-g"
    produce(client, topic, 0, values(b"m", 10))
    consumer = topic.get_simple_consumer(consumer_group=group)
    try:
        assert [m.offset for m in consume_n(consumer, 7)] == list(range(7))
        consumer.commit_offsets()
    finally:
        consumer.stop()
    # pykafka_c -> Kafka: the tool reads the committed offset.
    out = run_kafka_tool("consumer-groups",
                         ["--bootstrap-server", kafka.brokers, "--describe",
                          "--group", group],
                         kafka_version=kafka.kafka_version).stdout
    rows = [line.split() for line in out.splitlines()
            if topic_name in line.split()]
    assert rows, out
    head = [line.split() for line in out.splitlines()
            if "CURRENT-OFFSET" in line][0]
    row = dict(zip(head, rows[0]))
    assert row["PARTITION"] == "0" and row["CURRENT-OFFSET"] == "7", out
    assert row["LOG-END-OFFSET"] == "10" and row["LAG"] == "3", out
    # Kafka -> pykafka_c: the tool commits 3, pykafka_c starts there.
    run_kafka_tool("consumer-groups",
                   ["--bootstrap-server", kafka.brokers, "--reset-offsets",
                    "--group", group, "--topic", topic_name, "--to-offset",
                    "3", "--execute"],
                   kafka_version=kafka.kafka_version)
    assert committed(topic, client.cluster, group) == {0: 3}
    again = topic.get_simple_consumer(consumer_group=group)
    try:
        assert consume_n(again, 1)[0].offset == 3
    finally:
        again.stop()


def test_auto_commit(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    group = topic_name + "-g"
    produce(client, topic, 0, values(b"m", 10))
    consumer = topic.get_simple_consumer(consumer_group=group,
                                         auto_commit_enable=True,
                                         auto_commit_interval_ms=200)
    try:
        consume_n(consumer, 4)
        deadline = time.monotonic() + 10
        while committed(topic, client.cluster, group) != {0: 4}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        consume_n(consumer, 2)
    finally:
        consumer.stop()   # commits what was consumed
    assert committed(topic, client.cluster, group) == {0: 6}


def test_held_offsets_and_pykafka_private_attributes(kafka, client,
                                                     topic_name):
    """The usage guide's "last N messages" recipe, on _partitions."""
    topic = make_topic(kafka, client, topic_name, partitions=2)
    produce(client, topic, 0, values(b"a", 30))
    produce(client, topic, 1, values(b"b", 30))
    consumer = topic.get_simple_consumer(auto_offset_reset=LATEST,
                                         reset_offset_on_start=True,
                                         consumer_timeout_ms=3000)
    try:
        assert consumer.held_offsets == {0: 29, 1: 29}
        assert set(consumer.partitions) == {0, 1}
        assert all(isinstance(op, OwnedPartition)
                   for op in consumer._partitions.values())
        offsets = [(p, op.last_offset_consumed - 5)
                   for p, op in consumer._partitions.items()]
        offsets = [(p, (o if o > -1 else -2)) for p, o in offsets]
        consumer.reset_offsets(offsets)
        got = sorted((m.partition_id, m.offset) for m in consumer)
        assert got == [(p, o) for p in (0, 1) for o in range(25, 30)]
        op = consumer._partitions_by_id[0]
        assert op.last_offset_consumed == 29 and op.next_offset == 30
        assert op.message_count == 0
    finally:
        consumer.stop()


# --------------------------------------------------------------- failures

def test_all_brokers_gone_then_recovery(kafka, client, topic_name):
    topic = make_topic(kafka, client, topic_name)
    group = topic_name + "-g"
    produce(client, topic, 0, values(b"m", 10))
    grouped = topic.get_simple_consumer(consumer_group=group,
                                        consumer_timeout_ms=500)
    plain = topic.get_simple_consumer(consumer_timeout_ms=500)
    try:
        assert [m.offset for m in consume_n(grouped, 4)] == [0, 1, 2, 3]
        grouped.commit_offsets()
        assert [m.offset for m in consume_n(grouped, 2)] == [4, 5]
        assert [m.offset for m in consume_n(plain, 6)] == list(range(6))
        kafka.stop_broker(0)
        try:
            for consumer in (grouped, plain):
                deadline = time.monotonic() + 60
                raised = None
                while raised is None:
                    assert time.monotonic() < deadline, \
                        "consume() never raised while every broker was down"
                    try:
                        m = consumer.consume()
                    except (SocketDisconnectedError,
                            NoBrokersAvailableError) as exc:
                        raised = exc
                    else:
                        # Messages already queued may still come, in order.
                        assert m is None or m.offset >= 6
        finally:
            kafka.start_broker(0)
        # pykafka's recovery patterns.  stop(); start() without a group
        # goes on after the last message consumed ...
        plain.stop()
        plain.start()
        assert [m.offset for m in consume_n(plain, 4, timeout=60)] == \
            [6, 7, 8, 9]
        # ... and with a group from the committed offset, as does a new
        # consumer of the group.
        grouped.stop()
        grouped.start()
        assert consume_n(grouped, 1, timeout=60)[0].offset == 4
        fresh = topic.get_simple_consumer(consumer_group=group)
        try:
            assert consume_n(fresh, 1, timeout=60)[0].offset == 4
        finally:
            fresh.stop()
    finally:
        grouped.stop()
        plain.stop()


def test_broker_killed_and_restarted_under_consumer(kafka_cluster3,
                                                   topic_name):
    cluster3 = kafka_cluster3
    client3 = KafkaClient(cluster3.brokers)
    try:
        topic = make_topic(cluster3, client3, topic_name, partitions=3,
                           replication_factor=3)
        cluster3.wait_in_sync([topic_name])
        sent = {0: 0, 1: 0, 2: 0}

        def send(n):
            for pid in (0, 1, 2):
                produce(client3, topic, pid,
                        [b"%d-%d" % (pid, sent[pid] + i) for i in range(n)])
                sent[pid] += n

        send(100)
        consumer = topic.get_simple_consumer(fetch_error_backoff_ms=200)
        got = []
        try:
            got += consume_n(consumer, 150)
            victim_id = topic.partitions[0].leader.id
            victim = cluster3.node_ids.index(victim_id)
            cluster3.stop_broker(victim)
            try:
                send(50)  # written to the new leaders
                got += consume_n(consumer, sum(sent.values()) - len(got),
                                 timeout=120)
            finally:
                cluster3.start_broker(victim)
            cluster3.wait_in_sync([topic_name], timeout=120)
            send(20)
            got += consume_n(consumer, sum(sent.values()) - len(got),
                             timeout=120)
            time.sleep(0.5)
            assert consumer.consume(block=False) is None
            # The failure was seen (and handled) by the fetch loop.
            assert consumer._fetcher.stats()["events_posted"] >= 1
        finally:
            consumer.stop()
        for pid in (0, 1, 2):
            offsets = [m.offset for m in got if m.partition_id == pid]
            assert offsets == list(range(sent[pid])), \
                "partition %d: %s" % (pid, offsets)
            assert [m.value for m in got if m.partition_id == pid] == \
                [b"%d-%d" % (pid, i) for i in range(sent[pid])]
    finally:
        client3.close()


# ----------------------------------------------------------- compatibility

def test_signature_and_defaults_are_pykafkas():
    import inspect
    sig = inspect.signature(SimpleConsumer.__init__)
    expected = [
        ("topic", inspect.Parameter.empty), ("cluster", inspect.Parameter.empty),
        ("consumer_group", None), ("partitions", None),
        ("fetch_message_max_bytes", 1048576), ("num_consumer_fetchers", 1),
        ("auto_commit_enable", False), ("auto_commit_interval_ms", 60000),
        ("queued_max_messages", 2000), ("fetch_min_bytes", 1),
        ("fetch_error_backoff_ms", 500), ("fetch_wait_max_ms", 100),
        ("offsets_channel_backoff_ms", 1000),
        ("offsets_commit_max_retries", 5), ("auto_offset_reset", EARLIEST),
        ("consumer_timeout_ms", -1), ("auto_start", True),
        ("reset_offset_on_start", False), ("compacted_topic", False),
        ("generation_id", -1), ("consumer_id", b''), ("deserializer", None),
        ("reset_offset_on_fetch", True),
    ]
    params = list(sig.parameters.values())[1:]
    assert [(p.name, p.default) for p in params[:len(expected)]] == expected
    # pykafka_c extras come after pykafka's parameters only.
    assert [p.name for p in params[len(expected):]] == ["isolation_level"]
    for name in ("start", "stop", "consume", "commit_offsets",
                 "fetch_offsets", "reset_offsets", "fetch", "cleanup",
                 "__iter__", "held_offsets", "partitions", "topic",
                 "consumer_id", "generation_id"):
        assert hasattr(SimpleConsumer, name), name
    assert list(inspect.signature(SimpleConsumer.consume).parameters) == \
        ["self", "block", "unblock_event"]
    assert list(inspect.signature(OwnedPartition.__init__).parameters)[:6] \
        == ["self", "partition", "handler", "semaphore", "compacted_topic",
            "consumer_id"]


class _FakeTopic:
    name = b"t"
    partitions = {}


class _FakeCluster:
    _socket_timeout_ms = 1000


@pytest.mark.parametrize("kwargs,exc", [
    ({"fetch_message_max_bytes": 0}, ValueError),
    ({"fetch_message_max_bytes": "x"}, TypeError),
    ({"queued_max_messages": -1}, ValueError),
    ({"num_consumer_fetchers": 0}, ValueError),
    ({"fetch_min_bytes": 0}, ValueError),
    ({"fetch_wait_max_ms": -1}, ValueError),
    ({"offsets_channel_backoff_ms": 0}, ValueError),
    ({"offsets_commit_max_retries": -1}, ValueError),
    ({"auto_commit_interval_ms": 0}, ValueError),
    ({"consumer_group": "gr\u00fcppe"}, Exception),
])
def test_parameter_validation(kwargs, exc):
    with pytest.raises(exc):
        SimpleConsumer(_FakeTopic(), _FakeCluster(), auto_start=False,
                       **kwargs)


def test_parameters_accepted_without_broker():
    c = SimpleConsumer(_FakeTopic(), _FakeCluster(), auto_start=False,
                       fetch_wait_max_ms=0, consumer_timeout_ms=0,
                       offsets_commit_max_retries=0, generation_id=7,
                       consumer_id=b"me")
    assert c.generation_id == -1 and c.consumer_id == b""  # ignored
    c.generation_id = 3
    c.consumer_id = b"member-1"
    assert (c.generation_id, c.consumer_id) == (3, b"member-1")
    assert c.partitions == {} and c.held_offsets == {}
    # pykafka code sets the private attribute; the C side follows it.
    assert c._consumer_timeout_ms == 0
    c._consumer_timeout_ms = 120
    assert c._fetcher.consumer_timeout_ms == 120
    # the repr says what the consumer holds (tests/test_display.py has more)
    assert repr(c) == ("<pykafka_c.simpleconsumer.SimpleConsumer topic=b't', "
                       "consumer_group=None, partitions=[], running=False, "
                       "held_offsets={}, queued=0>")
    with pytest.raises(ConsumerStoppedException):
        c.consume(block=False)
