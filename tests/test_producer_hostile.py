"""The producer against a scripted fake broker: hostile, broken and silent
Produce responses, and brokers that are gone.

A real broker never sends a truncated or self-contradicting Produce
response, so these cases need a fake.  The fake answers ApiVersions and
Metadata properly (encoded by the C codec) so that a normal Cluster and
Topic work against it; only its Produce answers are scripted.  Everything
a real broker can do is tested against a real broker in test_producer.py.

What every test checks besides its own point: each message produced gets
exactly one delivery report, within a bounded time.
"""

import logging
import queue
import struct
import threading
import time

import pytest

from pykafka_c import _core
from pykafka_c.cluster import Cluster
from pykafka_c.exceptions import (InvalidRecord, LeaderNotAvailable,
                                  MessageSizeTooLarge,
                                  NotLeaderForPartition, ProduceFailureError,
                                  ProtocolDecodeError, ERROR_CODES,
                                  SocketDisconnectedError, UnknownError)
from pykafka_c.producer import Producer

from fakebroker import FakeBroker, SilentListener, free_port

pytestmark = pytest.mark.unit

TOPIC = "t"
_API = _core.api_versions_table()

# What the fake advertises: enough for Broker/Cluster and the sender.
_RANGES = {0: (3, 9), 3: (1, 12), 18: (0, 3)}


def _read_uvarint(data, pos):
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


class FakeKafka(object):
    """One fake broker (node 0) leading every partition of topic ``t``.

    ``produce(fk, client, corr, version, request_dict)`` answers Produce
    requests (default: success).  ``self.produce_requests`` records each
    decoded Produce request; ``self.log`` the accepted records per
    partition.
    """

    def __init__(self, partitions=1, produce=None, leader_port=None,
                 other_leaders=None, host="127.0.0.1"):
        self.partitions = partitions
        self.produce_handler = produce or FakeKafka.accept
        self.produce_requests = []
        self.metadata_requests = 0
        self.log = {p: [] for p in range(partitions)}
        self.lock = threading.Lock()
        self.broker = FakeBroker(self._script, host=host)
        self.leader_port = leader_port
        # {partition: (host, port)} led by node 1 at that address instead
        # of node 0 (this fake).
        self.other_leaders = dict(other_leaders or {})
        # Partitions the metadata gives no leader (leader_id -1).
        self.leaderless = set()
        self.produce_peers = set()
        # InitProducerId (api 22): advertised and answered only when a
        # handler is set: init_pid(fk, client, corr, version, request).
        self.ranges = dict(_RANGES)
        self.init_pid = None
        self.init_pid_requests = []

    # -- plumbing

    def __enter__(self):
        self.broker.start()
        return self

    def __exit__(self, *exc):
        self.broker.stop()

    @property
    def hosts(self):
        return "%s:%d" % (self.broker.host, self.broker.port)

    def _read(self, client, timeout=30.0):
        head = client.recv_exactly(4, timeout)
        (size,) = struct.unpack(">i", head)
        data = client.recv_exactly(size, timeout)
        api_key, version, corr, cid_len = struct.unpack_from(">hhih", data)
        pos = 10 + max(cid_len, 0)
        flex_from = _API[api_key][3]
        if flex_from is not None and flex_from >= 0 and version >= flex_from:
            count, pos = _read_uvarint(data, pos)
            for _ in range(count):
                _tag, pos = _read_uvarint(data, pos)
                length, pos = _read_uvarint(data, pos)
                pos += length
        return api_key, version, corr, data[pos:]

    @staticmethod
    def header_version(api_key, version):
        flex_from = _API[api_key][3]
        return 1 if (api_key != 18 and flex_from is not None and
                     flex_from >= 0 and version >= flex_from) else 0

    def reply(self, client, api_key, version, corr, fields):
        body = _core.encode_response(api_key, version, fields)
        client.respond(corr, body, self.header_version(api_key, version))

    def _script(self, client):
        while True:
            try:
                api_key, version, corr, body = self._read(client)
            except (EOFError, OSError):
                return
            if api_key == 18:
                self.reply(client, 18, version, corr, {
                    "error_code": 0,
                    "api_keys": [{"api_key": k, "min_version": lo,
                                  "max_version": hi}
                                 for k, (lo, hi) in self.ranges.items()]})
            elif api_key == 3:
                with self.lock:
                    self.metadata_requests += 1
                self.reply(client, 3, version, corr, self.metadata())
            elif api_key == 22 and self.init_pid is not None:
                req = _core.decode_request(22, version, body)
                with self.lock:
                    self.init_pid_requests.append(req)
                if self.init_pid(self, client, corr, version,
                                 req) == "close":
                    client.close()
                    return
            elif api_key == 0:
                req = _core.decode_request(0, version, body)
                with self.lock:
                    self.produce_requests.append(req)
                    self.produce_peers.add(client.addr[0])
                if self.produce_handler(self, client, corr, version,
                                        req) == "close":
                    client.close()
                    return
            else:
                client.close()
                return

    def metadata(self):
        port = self.leader_port or self.broker.port
        brokers = [{"node_id": 0, "host": self.broker.host, "port": port,
                    "rack": None}]
        for host, oport in set(self.other_leaders.values()):
            brokers.append({"node_id": 1, "host": host, "port": oport,
                            "rack": None})
        leader = {p: 1 if p in self.other_leaders else 0
                  for p in range(self.partitions)}
        for p in self.leaderless:
            leader[p] = -1
        return {
            "brokers": brokers,
            "cluster_id": "fake", "controller_id": 0,
            "topics": [{
                "error_code": 0, "name": TOPIC, "is_internal": False,
                "partitions": [{"error_code": 0, "partition_index": p,
                                "leader_id": leader[p], "leader_epoch": 0,
                                "replica_nodes": [leader[p]],
                                "isr_nodes": [leader[p]],
                                "offline_replicas": []}
                               for p in range(self.partitions)]}]}

    # -- Produce helpers

    @staticmethod
    def records_of(req):
        """[(partition, [Message])] of a decoded Produce request."""
        out = []
        for t in req["topic_data"]:
            for p in t["partition_data"]:
                out.append((p["index"], _core.decode_records(
                    p["records"], p["index"])))
        return out

    def append(self, req):
        """Store the request's records; [(partition, base_offset)]."""
        res = []
        with self.lock:
            for pid, msgs in self.records_of(req):
                base = len(self.log[pid])
                self.log[pid].extend(msgs)
                res.append((pid, base))
        return res

    def answer(self, client, corr, version, req, errors=None, base=None):
        """A well-formed answer: per-partition error codes from ``errors``
        ({pid: code}, default 0), appending the accepted records."""
        errors = errors or {}
        parts = []
        accepted = {}
        for pid, msgs in self.records_of(req):
            code = errors.get(pid, 0)
            off = -1
            if code == 0:
                with self.lock:
                    off = len(self.log[pid])
                    self.log[pid].extend(msgs)
            accepted[pid] = off
            parts.append({"index": pid, "error_code": code,
                          "base_offset": off if base is None else base,
                          "log_append_time_ms": -1, "log_start_offset": 0})
        self.reply(client, 0, version, corr, {
            "responses": [{"name": TOPIC, "partition_responses": parts}],
            "throttle_time_ms": 0})
        return accepted

    @staticmethod
    def accept(fk, client, corr, version, req):
        fk.answer(client, corr, version, req)


def sent_counts(fk):
    """{value: times sent} over every Produce request the fake saw."""
    counts = {}
    for req in fk.produce_requests:
        for _, msgs in FakeKafka.records_of(req):
            for m in msgs:
                counts[m.value] = counts.get(m.value, 0) + 1
    return counts


def make_producer(fk, socket_timeout_ms=3000, source_address="", **kwargs):
    cluster = Cluster(fk.hosts, socket_timeout_ms=socket_timeout_ms,
                      source_address=source_address)
    topic = cluster.topics[TOPIC]
    kwargs.setdefault("delivery_reports", True)
    kwargs.setdefault("linger_ms", 0)
    kwargs.setdefault("retry_backoff_ms", 20)
    # Most tests here count attempts: pykafka's max_retries rule, unless a
    # test sets a delivery timeout.
    kwargs.setdefault("delivery_timeout_ms", 0)
    return cluster, Producer(cluster, topic, **kwargs)


def drain(producer, n, timeout=20.0):
    """Exactly n reports (then none for a moment): [(msg, exc)]."""
    deadline = time.monotonic() + timeout
    got = []
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("only %d of %d delivery reports after "
                                 "%.0f s" % (len(got), n, timeout))
        try:
            got.append(producer.get_delivery_report(True, min(left, 0.5)))
        except queue.Empty:
            continue
    time.sleep(0.2)
    with pytest.raises(queue.Empty):
        producer.get_delivery_report(block=False)
    return got


def timed_reports(cluster, p, n):
    """Produce n messages, take their n reports, stop: (messages,
    reports, seconds from the first produce() to the last report)."""
    t0 = time.monotonic()
    msgs = [p.produce(b"x%d" % i) for i in range(n)]
    reports = drain(p, n)
    waited = time.monotonic() - t0
    p.stop()
    cluster.disconnect()
    return msgs, reports, waited


def produce_one(answer, **kwargs):
    """Produce one message to a FakeKafka answering Produce with
    ``answer``: (the message, its report's exception, the fake, seconds
    from produce() to the report)."""
    with FakeKafka(produce=answer) as fk:
        cluster, p = make_producer(fk, **kwargs)
        t0 = time.monotonic()
        msg = p.produce(b"x")
        (m, exc), = drain(p, 1)
        waited = time.monotonic() - t0
        p.stop()
        cluster.disconnect()
    assert m is msg
    return m, exc, fk, waited


def test_success_reports_offsets_and_headers():
    with FakeKafka(partitions=2) as fk:
        cluster, p = make_producer(fk)
        sent = [p.produce(b"v%d" % i, b"k%d" % i,
                          headers=[("h", b"%d" % i)]) for i in range(20)]
        assert p.flush(10) == 0
        reports = drain(p, 20)
        p.stop()
        cluster.disconnect()
    assert all(exc is None for _, exc in reports)
    assert {id(m) for m, _ in reports} == {id(m) for m in sent}
    for m, _ in reports:
        stored = fk.log[m.partition_id][m.offset]
        assert (stored.value, stored.partition_key) == (m.value,
                                                        m.partition_key)
        assert stored.headers == [("h", m.value[1:])]


def test_truncated_response_is_a_decode_error_after_retries():
    def truncated(fk, client, corr, version, req):
        body = _core.encode_response(0, version, {
            "responses": [{"name": TOPIC, "partition_responses": [
                {"index": 0, "error_code": 0, "base_offset": 0}]}]})
        client.respond(corr, body[:len(body) // 2],
                       fk.header_version(0, version))

    with FakeKafka(produce=truncated) as fk:
        cluster, p = make_producer(fk, max_retries=2)
        msgs = [p.produce(b"x%d" % i) for i in range(5)]
        reports = drain(p, 5)
        p.stop()
        cluster.disconnect()
    for m, exc in reports:
        assert isinstance(exc, ProtocolDecodeError), exc
        assert m.offset == -1
    assert {id(m) for m, _ in reports} == {id(m) for m in msgs}
    # max_retries=2: every record was sent three times.
    assert sent_counts(fk) == {m.value: 3 for m in msgs}


def test_missing_partition_in_response_is_retried_then_fails():
    def missing(fk, client, corr, version, req):
        fk.reply(client, 0, version, corr, {
            "responses": [{"name": TOPIC, "partition_responses": [
                {"index": 7, "error_code": 0, "base_offset": 3}]},
                {"name": "other", "partition_responses": [
                    {"index": 0, "error_code": 0, "base_offset": 3}]}]})

    with FakeKafka(produce=missing) as fk:
        cluster, p = make_producer(fk, max_retries=1)
        p.produce(b"a")
        (m, exc), = drain(p, 1)
        p.stop()
        cluster.disconnect()
    assert isinstance(exc, ProtocolDecodeError)
    assert "no result for partition 0" in str(exc)
    assert len(fk.produce_requests) == 2


# A retriable error, then success.  NOT_LEADER_OR_FOLLOWER,
# REPLICA_NOT_AVAILABLE, UNKNOWN_TOPIC_ID are Kafka's stale-metadata errors
# (the same predicate as the fetch loop's): a metadata refresh first.
# REQUEST_TIMED_OUT and UNKNOWN_LEADER_EPOCH are retried without one.
@pytest.mark.parametrize("code,refresh", [
    (6, True), (9, True), (100, True), (7, False), (75, False)])
def test_retriable_error_then_success(code, refresh):
    calls = []

    def flaky(fk, client, corr, version, req):
        calls.append(1)
        fk.answer(client, corr, version, req,
                  errors={0: code} if len(calls) == 1 else None)

    with FakeKafka(produce=flaky) as fk:
        cluster, p = make_producer(fk, max_retries=3)
        before = fk.metadata_requests
        msg = p.produce(b"payload")
        (m, exc), = drain(p, 1)
        stats = p._core.stats()
        p.stop()
        cluster.disconnect()
    assert m is msg and exc is None and m.offset == 0
    assert m.produce_attempt == 1
    assert stats["retries"] == 1
    if refresh:
        assert stats["metadata_requests"] >= 1
        assert fk.metadata_requests > before
    else:
        assert stats["metadata_requests"] == 0
    assert [x.value for x in fk.log[0]] == [b"payload"]


def test_retries_exhausted_gives_the_kafka_exception():
    def always(fk, client, corr, version, req):
        fk.answer(client, corr, version, req, errors={0: 6})

    m, exc, fk, _ = produce_one(always, max_retries=2)
    assert type(exc) is NotLeaderForPartition
    assert len(fk.produce_requests) == 3


def test_delivery_timeout_retries_beyond_max_retries_until_it_passes():
    """A retriable error that never ends: with a delivery timeout the batch
    is retried past max_retries, and fails once the timeout has passed
    since the message was produced, with the last error's class and a
    message that says why it was given up."""
    def always(fk, client, corr, version, req):
        fk.answer(client, corr, version, req, errors={0: 6})

    m, exc, fk, waited = produce_one(always, max_retries=1,
                                     retry_backoff_ms=50,
                                     delivery_timeout_ms=1500)
    assert type(exc) is NotLeaderForPartition
    assert "delivery_timeout_ms=1500 passed" in str(exc), str(exc)
    assert len(fk.produce_requests) > 2  # more than max_retries + 1
    assert m.produce_attempt == len(fk.produce_requests)
    assert 1.4 <= waited < 15, waited


def test_delivery_timeout_rides_through_a_long_run_of_errors():
    """More retriable errors in a row than max_retries allows, then
    success: delivered once, in the log once."""
    calls = []

    def flaky(fk, client, corr, version, req):
        calls.append(1)
        fk.answer(client, corr, version, req,
                  errors={0: 6} if len(calls) <= 6 else None)

    m, exc, fk, _ = produce_one(flaky, max_retries=2, retry_backoff_ms=20,
                                delivery_timeout_ms=30000)
    assert exc is None and m.offset == 0
    assert m.produce_attempt == 6
    assert [x.value for x in fk.log[0]] == [b"x"]


@pytest.mark.parametrize("code,exc_type", [(87, InvalidRecord),
                                           (10, MessageSizeTooLarge)])
def test_permanent_error_fails_at_once_within_the_delivery_timeout(
        code, exc_type):
    def refuse(fk, client, corr, version, req):
        fk.answer(client, corr, version, req, errors={0: code})

    m, exc, fk, _ = produce_one(refuse, delivery_timeout_ms=120000)
    assert type(exc) is exc_type
    assert len(fk.produce_requests) == 1


def test_delivery_timeout_bounds_the_wait_for_a_leader():
    """A partition that loses its leader keeps its messages until their
    delivery timeout (not leader_wait_ms), asking for metadata meanwhile;
    then each fails with LeaderNotAvailable saying why."""
    def deposed(fk, client, corr, version, req):
        # Once partition 0 has no leader, this broker no longer leads it.
        fk.answer(client, corr, version, req,
                  errors={0: 6} if 0 in fk.leaderless else None)

    with FakeKafka(partitions=2, produce=deposed) as fk:
        cluster, p = make_producer(fk, delivery_timeout_ms=1500,
                                   partitioner=lambda parts, key: parts[0])
        p.produce(b"first")
        assert drain(p, 1)[0][1] is None
        fk.leaderless.add(0)
        before = fk.metadata_requests
        msgs, reports, waited = timed_reports(cluster, p, 3)
    assert {id(m) for m, _ in reports} == {id(m) for m in msgs}
    for m, exc in reports:
        assert type(exc) is LeaderNotAvailable, exc
        assert "delivery_timeout_ms=1500 passed" in str(exc), str(exc)
        assert "has had no leader" in str(exc), str(exc)
    assert fk.metadata_requests > before + 1
    assert 1.4 <= waited < 15, waited


def test_non_retriable_error_fails_at_once():
    def invalid(fk, client, corr, version, req):
        fk.answer(client, corr, version, req, errors={0: 87})

    with FakeKafka(produce=invalid) as fk:
        cluster, p = make_producer(fk, max_retries=5)
        for i in range(3):
            p.produce(b"x%d" % i)
        reports = drain(p, 3)
        p.stop()
        cluster.disconnect()
    assert all(type(exc) is InvalidRecord for _, exc in reports)
    assert sent_counts(fk) == {b"x%d" % i: 1 for i in range(3)}


def test_unknown_error_code_maps_to_a_class_not_keyerror():
    def weird(fk, client, corr, version, req):
        fk.answer(client, corr, version, req, errors={0: 32000})

    with FakeKafka(produce=weird) as fk:
        cluster, p = make_producer(fk)
        p.produce(b"x")
        (m, exc), = drain(p, 1)
        p.stop()
        cluster.disconnect()
    assert isinstance(exc, UnknownError)
    assert type(exc) is ERROR_CODES[32000]


def test_message_too_large_splits_the_batch():
    # The broker refuses any batch of more than 3 records.
    def small_only(fk, client, corr, version, req):
        n = sum(len(msgs) for _, msgs in fk.records_of(req))
        fk.answer(client, corr, version, req,
                  errors={0: 10} if n > 3 else None)

    with FakeKafka(produce=small_only) as fk:
        cluster, p = make_producer(fk, linger_ms=60000,
                                   min_queued_messages=100000)
        msgs = [p.produce(b"m%02d" % i) for i in range(16)]
        assert p.flush(10) == 0
        reports = drain(p, 16)
        stats = p._core.stats()
        p.stop()
        cluster.disconnect()
    assert all(exc is None for _, exc in reports)
    # Split in halves until every batch fitted, order kept.
    assert [x.value for x in fk.log[0]] == [m.value for m in msgs]
    assert sorted(m.offset for m, _ in reports) == list(range(16))
    assert all(fk.log[0][m.offset].value == m.value for m, _ in reports)
    assert stats["splits"] >= 3 and stats["retries"] == 0


def test_single_record_too_large_fails_with_message_size_too_large():
    def refuse(fk, client, corr, version, req):
        fk.answer(client, corr, version, req, errors={0: 10})

    with FakeKafka(produce=refuse) as fk:
        cluster, p = make_producer(fk, sync=True)
        with pytest.raises(MessageSizeTooLarge):
            p.produce(b"x" * 100)
        p.stop()
        cluster.disconnect()
    assert len(fk.produce_requests) == 1


def test_larger_than_max_request_size_fails_locally():
    with FakeKafka() as fk:
        cluster, p = make_producer(fk, max_request_size=1000)
        small = p.produce(b"s")
        big = p.produce(b"b" * 5000)
        reports = dict((id(m), (m, e)) for m, e in drain(p, 2))
        p.stop()
        cluster.disconnect()
    assert reports[id(small)][1] is None
    assert isinstance(reports[id(big)][1], MessageSizeTooLarge)
    assert all(len(msgs) == 1 and msgs[0].value == b"s"
               for req in fk.produce_requests
               for _, msgs in FakeKafka.records_of(req))


def test_huge_array_count_is_a_bounded_decode_error():
    def hostile(fk, client, corr, version, req):
        # responses: an array count of 2**31-1 and nothing behind it.
        if version >= 9:
            body = b"\xff\xff\xff\xff\x07"
        else:
            body = struct.pack(">i", 0x7FFFFFFF)
        client.respond(corr, body, fk.header_version(0, version))

    with FakeKafka(produce=hostile) as fk:
        cluster, p = make_producer(fk, max_retries=0)
        p.produce(b"x")
        (m, exc), = drain(p, 1)
        p.stop()
        cluster.disconnect()
    assert isinstance(exc, ProtocolDecodeError)


def test_wrong_correlation_id_drops_the_connection_and_retries():
    calls = []

    def wrong_id(fk, client, corr, version, req):
        calls.append(1)
        if len(calls) == 1:
            client.respond(corr + 1000, b"", fk.header_version(0, version))
            return
        fk.answer(client, corr, version, req)

    with FakeKafka(produce=wrong_id) as fk:
        cluster, p = make_producer(fk, max_retries=2)
        msg = p.produce(b"x")
        (m, exc), = drain(p, 1)
        p.stop()
        cluster.disconnect()
    assert m is msg and exc is None
    assert len(fk.produce_requests) == 2


def test_connection_closed_mid_request_is_retried():
    calls = []

    def close_first(fk, client, corr, version, req):
        calls.append(1)
        if len(calls) == 1:
            client.send_raw(b"\x00\x00\x01\x00\x00\x00")  # half a frame
            return "close"
        fk.answer(client, corr, version, req)

    with FakeKafka(produce=close_first) as fk:
        cluster, p = make_producer(fk, max_retries=1)
        p.produce(b"x")
        (m, exc), = drain(p, 1)
        p.stop()
        cluster.disconnect()
    assert exc is None and m.offset == 0


def test_silent_broker_times_out_with_one_report_each():
    def silent(fk, client, corr, version, req):
        pass

    with FakeKafka(produce=silent) as fk:
        # request timeout = max(socket timeout, ack_timeout_ms + 5 s)
        cluster, p = make_producer(fk, socket_timeout_ms=1000,
                                   ack_timeout_ms=0, max_retries=0)
        t0 = time.monotonic()
        for i in range(4):
            p.produce(b"x%d" % i)
        reports = drain(p, 4, timeout=30)
        elapsed = time.monotonic() - t0
        p.stop()
        cluster.disconnect()
    assert all(isinstance(exc, SocketDisconnectedError)
               for _, exc in reports)
    assert 4.0 < elapsed < 20.0


def test_every_broker_down_fails_every_message_in_bounded_time():
    dead = free_port()
    with FakeKafka(leader_port=dead) as fk:
        cluster, p = make_producer(fk, max_retries=3, retry_backoff_ms=50)
        t0 = time.monotonic()
        msgs = [p.produce(b"x%d" % i) for i in range(50)]
        reports = drain(p, 50, timeout=20)
        elapsed = time.monotonic() - t0
        p.stop()
        cluster.disconnect()
    assert {id(m) for m, _ in reports} == {id(m) for m in msgs}
    assert all(isinstance(exc, SocketDisconnectedError)
               for _, exc in reports)
    assert elapsed < 10


def test_queue_full_while_broker_down_unblocks():
    dead = free_port()
    with FakeKafka(leader_port=dead) as fk:
        cluster, p = make_producer(fk, max_retries=1, retry_backoff_ms=50,
                                   max_queued_messages=5,
                                   block_on_queue_full=True)
        t0 = time.monotonic()
        for i in range(30):   # blocks until failures free the queue
            p.produce(b"x%d" % i)
        reports = drain(p, 30, timeout=30)
        p.stop()
        cluster.disconnect()
    assert time.monotonic() - t0 < 25
    assert all(isinstance(exc, SocketDisconnectedError)
               for _, exc in reports)


def test_stop_reports_pending_messages_and_warns(caplog):
    def silent(fk, client, corr, version, req):
        pass

    with FakeKafka(produce=silent) as fk:
        cluster, p = make_producer(fk, pending_timeout_ms=300)
        msgs = [p.produce(b"x%d" % i) for i in range(7)]
        time.sleep(0.3)
        with caplog.at_level(logging.WARNING, logger="pykafka_c.producer"):
            t0 = time.monotonic()
            p.stop()
            took = time.monotonic() - t0
        reports = drain(p, 7)
        cluster.disconnect()
    assert took < 3
    assert {id(m) for m, _ in reports} == {id(m) for m in msgs}
    assert all(type(exc) is ProduceFailureError for _, exc in reports)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("7 message(s)" in r.getMessage() for r in warnings)


def test_reports_off_failures_are_logged_not_silent(caplog):
    dead = free_port()
    with FakeKafka(leader_port=dead) as fk:
        with caplog.at_level(logging.WARNING, logger="pykafka_c.producer"):
            cluster, p = make_producer(fk, delivery_reports=False,
                                       max_retries=0)
            for i in range(3):
                p.produce(b"x%d" % i)
            p.flush(10)
            p.stop()
            cluster.disconnect()
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "could not be delivered" in text and "SocketDisconnectedError" \
        in text


def test_acks_zero_sends_no_response_expected():
    def must_not_answer(fk, client, corr, version, req):
        assert req["acks"] == 0
        fk.append(req)

    with FakeKafka(produce=must_not_answer) as fk:
        cluster, p = make_producer(fk, required_acks=0)
        msgs = [p.produce(b"x%d" % i) for i in range(5)]
        reports = drain(p, 5)
        p.stop()
        cluster.disconnect()
    assert all(exc is None and m.offset == -1 for m, exc in reports)
    deadline = time.monotonic() + 5
    while len(fk.log[0]) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [x.value for x in fk.log[0]] == [m.value for m in msgs]


def test_message_references_are_released():
    import gc
    import sys

    # What getrefcount gives for an object held by one local only: 2 up to
    # Python 3.13, 1 from 3.14, whose interpreter passes a local to a call
    # as a borrowed reference.
    alone = object()
    base = sys.getrefcount(alone)
    with FakeKafka() as fk:
        cluster, p = make_producer(fk)
        m = p.produce(b"ref")
        # The engine holds the Message (and its queue) until the report.
        assert sys.getrefcount(m) == base + 1
        (rm, exc), = drain(p, 1)
        assert rm is m and exc is None
        del rm
        gc.collect()
        assert sys.getrefcount(m) == base
        p.stop()
        cluster.disconnect()

        cluster, p = make_producer(fk, delivery_reports=False)
        m = p.produce(b"no reports")
        assert sys.getrefcount(m) == base
        assert p.flush(10) == 0
        assert sys.getrefcount(m) == base
        p.stop()
        cluster.disconnect()


def test_dropping_a_producer_flushes_it():
    import gc

    with FakeKafka() as fk:
        cluster, p = make_producer(fk, delivery_reports=False,
                                   linger_ms=60000)
        for i in range(5):
            p.produce(b"d%d" % i)
        del p
        gc.collect()
        cluster.disconnect()
        assert [m.value for m in fk.log[0]] == [b"d%d" % i for i in range(5)]


def test_corrupted_responses_never_crash_or_lose_reports():
    import random
    from pykafka_c.exceptions import KafkaException

    rng = random.Random(20261126)

    def corrupt(fk, client, corr, version, req):
        body = _core.encode_response(0, version, {
            "responses": [{"name": TOPIC, "partition_responses": [
                {"index": pid, "error_code": 0, "base_offset": 5,
                 "log_append_time_ms": -1, "log_start_offset": 0}
                for pid, _ in fk.records_of(req)]}],
            "throttle_time_ms": 0})
        kind = rng.randrange(4)
        data = bytearray(body)
        if kind == 0 and data:
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[rng.randrange(len(data) + 1):]
        elif kind == 2:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(9)))
        else:
            data = bytearray(rng.randrange(256)
                             for _ in range(rng.randrange(64)))
        client.respond(corr, bytes(data), fk.header_version(0, version))

    with FakeKafka(partitions=2, produce=corrupt) as fk:
        cluster, p = make_producer(fk, max_retries=0)
        outcomes = []
        for i in range(60):
            m = p.produce(b"c%d" % i)
            (rm, exc), = drain(p, 1)
            assert rm is m
            assert exc is None or isinstance(exc, KafkaException), exc
            outcomes.append(exc is None)
        p.stop()
        cluster.disconnect()
    # The corruption hit both ways: some answers still decoded, some not.
    assert any(outcomes) and not all(outcomes)


def _rebind(fk, port):
    """Make a not yet started FakeKafka listen on `port` instead."""
    import socket

    fk.broker.listener.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    fk.broker.listener = s
    fk.broker.port = port


def test_producer_resumes_after_the_broker_comes_back():
    fk = FakeKafka()
    fk.__enter__()
    port = fk.broker.port
    try:
        cluster, p = make_producer(fk, max_retries=1, retry_backoff_ms=50)
        first = p.produce(b"before")
        (m, exc), = drain(p, 1)
        assert m is first and exc is None
    finally:
        fk.__exit__(None, None, None)
    # The broker is gone: messages fail, the producer keeps running.
    lost = p.produce(b"while down")
    (m, exc), = drain(p, 1)
    assert m is lost and isinstance(exc, SocketDisconnectedError)
    # It comes back on the same address: delivery resumes by itself.
    fk2 = FakeKafka()
    _rebind(fk2, port)
    with fk2:
        back = p.produce(b"after")
        (m, exc), = drain(p, 1)
        p.stop()
        cluster.disconnect()
    assert m is back and exc is None
    assert [x.value for x in fk2.log[0]] == [b"after"]


# ------------------------------------------------------------ idempotence

def _producer_fields(records):
    """(producer id, epoch, base sequence, count) of a one-batch records
    field."""
    h = records[:61]
    return (struct.unpack_from(">q", h, 43)[0],
            struct.unpack_from(">h", h, 51)[0],
            struct.unpack_from(">i", h, 53)[0],
            struct.unpack_from(">i", h, 57)[0])


class IdemKafka(FakeKafka):
    """A fake that hands out producer ids and checks sequences the way a
    Kafka leader does, per (producer id, partition): an older epoch gets
    INVALID_PRODUCER_EPOCH, a newer one (and the producer's first batch)
    must start at sequence 0, then replaces the state; within an epoch
    the next expected sequence is appended, a repeat of one of the last
    five batches gets its original offset, an older one
    DUPLICATE_SEQUENCE_NUMBER, anything else OUT_OF_ORDER_SEQUENCE_NUMBER.
    ``hook(fk, n, partition, batch_fields)`` may return an error code to
    answer the n-th batch with instead
    (``("after", code)``: append, then answer the error).  Producer ids
    are granted from ``next_pid`` with epoch ``first_epoch``."""

    def __init__(self, hook=None, first_epoch=0, **kwargs):
        FakeKafka.__init__(self, produce=IdemKafka.idem_produce, **kwargs)
        self.ranges[22] = (0, 4)
        self.init_pid = IdemKafka.grant
        self.next_pid = 1000
        self.first_epoch = first_epoch
        # (pid, partition) -> [epoch, next_seq, [(first, last, offset)]]
        self.state = {}
        self.hook = hook
        self.batches = 0
        self.producer_ids = set()
        self.written = []     # (partition, pid, epoch, seq, count) appended

    @staticmethod
    def grant(fk, client, corr, version, req):
        with fk.lock:
            pid = fk.next_pid
            fk.next_pid += 1
        fk.reply(client, 22, version, corr, {
            "throttle_time_ms": 0, "error_code": 0, "producer_id": pid,
            "producer_epoch": fk.first_epoch})

    @staticmethod
    def idem_produce(fk, client, corr, version, req):
        parts = []
        for t in req["topic_data"]:
            for pd in t["partition_data"]:
                pid_ = pd["index"]
                msgs = _core.decode_records(pd["records"], pid_)
                fields = _producer_fields(pd["records"])
                with fk.lock:
                    n = fk.batches
                    fk.batches += 1
                    fk.producer_ids.add(fields[0])
                forced = fk.hook(fk, n, pid_, fields) if fk.hook else None
                code, off = fk._check(pid_, fields, msgs, forced)
                parts.append({"index": pid_, "error_code": code,
                              "base_offset": off, "log_append_time_ms": -1,
                              "log_start_offset": 0})
        fk.reply(client, 0, version, corr, {
            "responses": [{"name": TOPIC, "partition_responses": parts}],
            "throttle_time_ms": 0})

    def _append(self, partition, fields, msgs):
        off = len(self.log[partition])
        self.log[partition].extend(msgs)
        self.written.append((partition,) + tuple(fields))
        return off

    def _check(self, partition, fields, msgs, forced):
        pid, epoch, seq, count = fields
        after = None
        if isinstance(forced, tuple):
            after, forced = forced[1], None
        if forced:
            return forced, -1
        with self.lock:
            if pid == -1:  # not idempotent: no checks
                return after or 0, self._append(partition, fields, msgs)
            st = self.state.get((pid, partition))
            if st is not None and epoch < st[0]:
                return 47, -1
            if st is None or epoch > st[0]:
                # A producer's first batch, and a new epoch's, start at 0.
                if seq != 0:
                    return 45, -1
                st = self.state[(pid, partition)] = [epoch, 0, []]
            for first, last, off in st[2]:
                if (first, last) == (seq, seq + count - 1):
                    return after or 0, off
            if seq < st[1]:
                return 46, -1
            if seq != st[1]:
                return 45, -1
            off = self._append(partition, fields, msgs)
            st[1] = seq + count
            st[2] = (st[2] + [(seq, seq + count - 1, off)])[-5:]
        return after or 0, off


def _idem_run(fk, n=120, **kwargs):
    kwargs.setdefault("max_request_size", 600)
    cluster, p = make_producer(fk, **kwargs)
    sent = [p.produce(b"m%04d" % i + b"." * 40) for i in range(n)]
    assert p.flush(20) == 0
    reports = drain(p, n)
    stats = p._core.stats()
    p.stop()
    cluster.disconnect()
    assert {id(m) for m, _ in reports} == {id(m) for m in sent}
    return sent, reports, stats


def test_idempotent_pipelines_in_order():
    with IdemKafka() as fk:
        sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert [m.offset for m in sent] == list(range(len(sent)))
    assert stats["producer_id"] == 1000 and fk.producer_ids == {1000}
    assert 1 < stats["max_partition_in_flight"] <= 5
    assert len(fk.init_pid_requests) == 1
    req = fk.init_pid_requests[0]
    assert req["transactional_id"] is None


def test_idempotent_retry_of_a_refused_batch_keeps_order():
    """The 3rd batch is refused (NOT_LEADER_OR_FOLLOWER, not written); the
    batches in flight behind it are refused as out of order; all are
    retried in order, each message is written once."""
    def hook(fk, n, partition, fields):
        return 6 if n == 2 else None

    with IdemKafka(hook=hook) as fk:
        sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert [m.offset for m in sent] == list(range(len(sent)))
    assert stats["retries"] >= 1
    assert fk.producer_ids == {1000}


def test_idempotent_retry_of_a_written_batch_is_not_duplicated():
    """The 2nd batch is written but answered REQUEST_TIMED_OUT: its retry
    is recognised by its sequence, so nothing is written twice."""
    def hook(fk, n, partition, fields):
        return ("after", 7) if n == 1 else None

    with IdemKafka(hook=hook) as fk:
        sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert stats["retries"] >= 1
    assert sorted(m.offset for m in sent) == list(range(len(sent)))


def test_duplicate_sequence_number_is_a_success():
    def hook(fk, n, partition, fields):
        return 46 if n == 0 else None

    with IdemKafka(hook=hook) as fk:
        sent, reports, stats = _idem_run(fk, n=1, max_request_size=1000012)
    (m, exc), = reports
    assert exc is None and m.offset == -1
    assert stats["duplicates"] == 1 and stats["failed"] == 0


def _epochs_written(fk, partition=0):
    """[(producer id, epoch, base sequence)] of the batches appended to
    ``partition``, in log order."""
    return [w[1:4] for w in fk.written if w[0] == partition]


def _check_numbering(fk, partition=0):
    """Within each (producer id, epoch) the appended batches of the
    partition are numbered from where that epoch started, without gaps."""
    expect = {}
    for part, pid, epoch, seq, count in fk.written:
        if part != partition:
            continue
        want = expect.get((pid, epoch), seq)
        assert seq == want, (pid, epoch, seq, want)
        expect[(pid, epoch)] = seq + count


@pytest.mark.parametrize("nth", [0, 2])
@pytest.mark.parametrize("code", [59, 45])
def test_refused_sequences_bump_the_epoch_of_the_same_producer_id(code, nth):
    """UNKNOWN_PRODUCER_ID / OUT_OF_ORDER_SEQUENCE_NUMBER on the earliest
    batch in flight (the first batch, or the third with more behind it,
    which the fake then refuses as out of order): KIP-360.  No new
    InitProducerId: the same producer id with the next epoch, the
    partition's sequences from 0 again, every message delivered once and
    in order."""
    hit = []

    def hook(fk, n, partition, fields):
        if n == nth and not hit:
            hit.append(fields)
            return code
        return None

    with IdemKafka(hook=hook) as fk:
        sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert len(fk.init_pid_requests) == 1
    assert fk.producer_ids == {1000}
    assert stats["producer_id"] == 1000 and stats["producer_epoch"] == 1
    assert stats["epoch_bumps"] == 1 and stats["sequence_resets"] == 1
    written = _epochs_written(fk)
    epochs = [e for _, e, _ in written]
    assert epochs == sorted(epochs) and set(epochs) == ({1} if nth == 0
                                                       else {0, 1})
    assert [s for _, e, s in written if e == 1][0] == 0
    _check_numbering(fk)


def test_invalid_producer_epoch_gets_a_new_producer_id():
    """INVALID_PRODUCER_EPOCH (the leader knows a newer epoch of our id):
    a new InitProducerId; the partition restarts under the new id, every
    message delivered once and in order."""
    def hook(fk, n, partition, fields):
        return 47 if n == 0 else None

    with IdemKafka(hook=hook) as fk:
        sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert len(fk.init_pid_requests) == 2
    assert stats["producer_id"] == 1001 and stats["epoch_bumps"] == 0
    assert {pid for pid, _, _ in _epochs_written(fk)} == {1001}
    _check_numbering(fk)


def test_exhausted_epoch_gets_a_new_producer_id():
    """A refused sequence when the epoch is already 32767: no bump is
    possible, so a new producer id (InitProducerId) takes over."""
    def hook(fk, n, partition, fields):
        return 45 if n == 1 else None

    with IdemKafka(hook=hook, first_epoch=32767) as fk:
        sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert len(fk.init_pid_requests) == 2
    assert stats["producer_id"] == 1001 and stats["epoch_bumps"] == 0
    assert stats["sequence_resets"] == 1
    pids = [pid for pid, _, _ in _epochs_written(fk)]
    assert pids[0] == 1000 and pids[-1] == 1001 and pids == sorted(pids)
    _check_numbering(fk)


def test_permanent_failure_bumps_the_epoch():
    """A batch refused for good (INVALID_RECORD) leaves a gap: its
    messages fail, the next batch is refused as out of order, and the
    later messages are delivered under the same producer id with the next
    epoch, in order."""
    def hook(fk, n, partition, fields):
        return 87 if n == 1 else None

    with IdemKafka(hook=hook) as fk:
        sent, reports, stats = _idem_run(fk)
    failed = [m for m, exc in reports if exc is not None]
    assert failed and all(isinstance(exc, InvalidRecord)
                          for _, exc in reports if exc is not None)
    ok = [m.value for m in sent if m not in failed]
    assert [m.value for m in fk.log[0]] == ok
    assert len(fk.init_pid_requests) == 1
    assert stats["epoch_bumps"] == 1 and fk.producer_ids == {1000}
    _check_numbering(fk)


def test_a_reset_never_renumbers_a_batch_that_may_be_written():
    """Two partitions in one request: partition 0's batch is written but
    answered REQUEST_TIMED_OUT (its outcome unknown to the producer),
    partition 1's is refused as out of order (its sequences restart under
    a bumped epoch).  Partition 0's retry keeps the numbers of its first
    attempt, so the leader recognises it: nothing is written twice (under
    a new producer id, as before KIP-360, it was)."""
    hit = {}

    def hook(fk, n, partition, fields):
        if n < 4 or partition in hit:
            return None
        hit[partition] = fields
        return ("after", 7) if partition == 0 else 45

    with IdemKafka(hook=hook, partitions=2) as fk:
        cluster, p = make_producer(fk, partitioner=by_key,
                                   max_request_size=1200)
        sent = [p.produce(b"m%04d" % i + b"." * 40,
                          partition_key=b"%d" % (i % 2))
                for i in range(200)]
        assert p.flush(20) == 0
        reports = drain(p, 200)
        stats = p._core.stats()
        p.stop()
        cluster.disconnect()
    assert set(hit) == {0, 1}
    assert all(exc is None for _, exc in reports)
    for part in (0, 1):
        want = [m.value for m in sent if m.partition_id == part]
        assert [m.value for m in fk.log[part]] == want
        _check_numbering(fk, part)
    assert stats["epoch_bumps"] == 1 and stats["sequence_resets"] == 1
    assert fk.producer_ids == {1000}
    assert {e for _, e, _ in _epochs_written(fk, 0)} == {0}
    assert {e for _, e, _ in _epochs_written(fk, 1)} == {0, 1}


def _init_pid_answer(body_fields=None, raw=None):
    def answer(fk, client, corr, version, req):
        if raw is not None:
            client.respond(corr, raw, fk.header_version(22, version))
        else:
            fk.reply(client, 22, version, corr, body_fields)
    return answer


@pytest.mark.parametrize("answer", [
    _init_pid_answer({"throttle_time_ms": 0, "error_code": 31,
                      "producer_id": -1, "producer_epoch": -1}),
    _init_pid_answer({"throttle_time_ms": 0, "error_code": 0,
                      "producer_id": -5, "producer_epoch": 0}),
    _init_pid_answer(raw=b"\x00\x00\x00"),
    _init_pid_answer(raw=b"\x00" * 4 + b"\x00\x00" + b"\xff" * 40),
], ids=["cluster-authorization-failed", "negative-id", "truncated",
        "trailing-garbage"])
def test_unusable_init_producer_id_answers_fall_back(answer, caplog):
    """Without a usable producer id the producer works as before: one
    batch per partition in flight, no sequences, and a WARNING."""
    fk = IdemKafka()
    fk.init_pid = answer
    with caplog.at_level(logging.WARNING, logger="pykafka_c.producer"):
        with fk:
            sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert stats["producer_id"] == -1
    assert stats["max_partition_in_flight"] == 1
    assert fk.producer_ids == {-1}
    assert any("without idempotence" in r.getMessage()
               for r in caplog.records)


def refused_once(code, calls):
    """An InitProducerId answer: error ``code`` the first time, then a
    producer id; each call is appended to ``calls``."""
    def answer(fk, client, corr, version, req):
        calls.append(1)
        if len(calls) == 1:
            fk.reply(client, 22, version, corr, {
                "throttle_time_ms": 0, "error_code": code,
                "producer_id": -1, "producer_epoch": -1})
        else:
            IdemKafka.grant(fk, client, corr, version, req)
    return answer


def test_init_producer_id_retried_after_a_retriable_error():
    calls = []
    fk = IdemKafka()
    fk.init_pid = refused_once(15, calls)
    with fk:
        sent, reports, stats = _idem_run(fk)
    assert all(exc is None for _, exc in reports)
    assert len(calls) == 2 and stats["producer_id"] == 1000
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    # Nothing went out before the producer had its id.
    assert fk.producer_ids == {1000}


def test_stop_before_the_producer_id_still_delivers():
    """stop() right after produce(), while the first InitProducerId
    answer was a retriable error: the control thread still fetches the id
    while stop() waits, and every message is delivered with it."""
    fk = IdemKafka()
    fk.init_pid = refused_once(14, [])
    with fk:
        cluster, p = make_producer(fk)
        sent = [p.produce(b"s%d" % i) for i in range(5)]
        p.stop()
        reports = drain(p, 5)
        cluster.disconnect()
    assert [exc for _, exc in reports] == [None] * 5
    assert [m.value for m in fk.log[0]] == [m.value for m in sent]
    assert fk.producer_ids == {1000}


def test_no_producer_id_yet_sends_nothing_and_fails_at_the_deadline():
    """While every InitProducerId is answered COORDINATOR_LOAD_IN_PROGRESS
    the producer sends nothing (a batch without a producer id could be
    written twice by a retry); at the delivery timeout every message
    fails, saying why."""
    def loading(fk, client, corr, version, req):
        fk.reply(client, 22, version, corr, {
            "throttle_time_ms": 0, "error_code": 14, "producer_id": -1,
            "producer_epoch": -1})

    fk = IdemKafka()
    fk.init_pid = loading
    with fk:
        cluster, p = make_producer(fk, delivery_timeout_ms=1500)
        sent, reports, waited = timed_reports(cluster, p, 5)
    assert {id(m) for m, _ in reports} == {id(m) for m in sent}
    for _, exc in reports:
        assert isinstance(exc, ERROR_CODES[14]), exc
        assert "delivery_timeout_ms=1500 passed" in str(exc), str(exc)
        assert "no producer id" in str(exc), str(exc)
    assert fk.produce_requests == []
    assert len(fk.init_pid_requests) >= 2
    assert 1.4 <= waited < 5, waited


def test_idempotence_off_and_acks_zero_ask_for_no_producer_id():
    for kwargs in ({"enable_idempotence": False}, {"required_acks": 0}):
        with IdemKafka() as fk:
            cluster, p = make_producer(fk, **kwargs)
            p.produce(b"x")
            assert p.flush(10) == 0
            stats = p._core.stats()
            p.stop()
            cluster.disconnect()
        assert fk.init_pid_requests == []
        assert stats["producer_id"] == -1


def by_key(partitions, key):
    """A partitioner: partition int(key)."""
    return partitions[int(key)]


def test_unreachable_leader_does_not_delay_other_partitions():
    """While the sender connects to a leader whose host does not answer
    (5 s connect deadline), another broker's partition is delivered at
    once; the silent one's message fails at its deadline."""
    with SilentListener() as silent, \
            FakeKafka(partitions=2,
                      other_leaders={1: (silent.host, silent.port)}) as fk:
        cluster, p = make_producer(fk, socket_timeout_ms=5000,
                                   partitioner=by_key, max_retries=0)
        t0 = time.monotonic()
        p.produce(b"to-the-silent-one", partition_key=b"1")
        time.sleep(0.1)  # its connect is under way
        for i in range(5):
            p.produce(b"v%d" % i, partition_key=b"0")
        first = [p.get_delivery_report(True, 10) for _ in range(5)]
        fast = time.monotonic() - t0
        msg, exc = p.get_delivery_report(True, 15)
        slow = time.monotonic() - t0
        p.stop()
        cluster.disconnect()
    assert [(m.value, e) for m, e in first] == \
        [(b"v%d" % i, None) for i in range(5)]
    assert fast < 2.0, fast
    assert msg.value == b"to-the-silent-one"
    assert isinstance(exc, SocketDisconnectedError) and "timed out" in \
        str(exc), exc
    assert 4.5 <= slow < 8.0, slow


def test_producer_connects_from_source_address():
    """KafkaClient(source_address=...) binds the send thread's connections
    too (it passed an empty address before)."""
    with FakeKafka(partitions=1, host="127.0.0.1") as fk:
        cluster, p = make_producer(fk, source_address="127.0.0.2:0")
        p.produce(b"x")
        msg, exc = p.get_delivery_report(True, 10)
        p.stop()
        cluster.disconnect()
    assert exc is None
    assert fk.produce_peers == {"127.0.0.2"}

