"""The C fetch loop (_core.Fetcher) against a scripted fake broker that
answers Fetch with what a real broker never sends: hostile counts and
lengths, truncated and corrupt record batches, compression bombs, errors,
dropped connections.  Every case must end in a typed pykafka_c exception
from consume() (or in no message at all), never in a crash or a hang.

The fake broker speaks ApiVersions v0 (advertising Fetch v4 only) and
Fetch v4 (non-flexible, hand-built here).  What a real broker answers is
tested against real brokers in test_simpleconsumer.py.
"""

import socket
import struct
import threading
import time

import pytest

import pykafka_c  # noqa: F401  (registers the exception classes)
from pykafka_c import _core
from pykafka_c.exceptions import (ERROR_CODES, CompressionError,
                                  CorruptRecordError,
                                  OffsetOutOfRangeError, ProtocolDecodeError,
                                  SocketDisconnectedError,
                                  TopicAuthorizationFailed,
                                  UnsupportedApiVersionError)

from fakebroker import (FakeBroker, SilentListener, answer_api_versions,
                        free_port)

pytestmark = pytest.mark.unit

TOPIC = b"hostile"
FETCH = 1


def answer_versions(client, fetch_range=(4, 4)):
    """Answer the fetch engine's ApiVersions (asked at v3) listing Fetch
    ``fetch_range``."""
    answer_api_versions(client, {FETCH: fetch_range})


def fetch_v4(parts, topic=TOPIC):
    """Fetch v4 response body; parts: (partition, error, hw, records or None,
    aborted list or None)."""
    b = struct.pack(">i", 0)  # ThrottleTimeMs
    b += struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic
    b += struct.pack(">i", len(parts))
    for pid, err, hw, recs, aborted in parts:
        b += struct.pack(">ihqq", pid, err, hw, hw)
        if aborted is None:
            b += struct.pack(">i", -1)
        else:
            b += struct.pack(">i", len(aborted)) + b"".join(
                struct.pack(">qq", p, f) for p, f in aborted)
        if recs is None:
            b += struct.pack(">i", -1)
        else:
            b += struct.pack(">i", len(recs)) + recs
    return b


def batch(values, base_offset=0, compression=0):
    """A valid RecordBatch v2 (from the records code) at base_offset."""
    raw = bytearray(_core.encode_record_batch(
        [(v, None, 1000 + i, []) for i, v in enumerate(values)],
        compression))
    raw[0:8] = struct.pack(">q", base_offset)
    return bytes(raw)


def refresh_crc(raw):
    """Recompute a RecordBatch v2 CRC-32C (attributes .. end) after an
    edit, so that the edit itself is what the decoder meets."""
    raw = bytearray(raw)
    raw[17:21] = struct.pack(">I", _core.crc32c(bytes(raw[21:])))
    return bytes(raw)


class Script:
    """Answer ApiVersions, then each Fetch with the next body (the last one
    repeats).  A body may be a callable taking the request."""

    def __init__(self, *bodies, close_after_versions=False):
        self.bodies = list(bodies)
        self.fetches = 0
        self.close_after_versions = close_after_versions
        self.requests = []

    def __call__(self, client):
        answer_versions(client)
        if self.close_after_versions:
            client.close()
            return
        while True:
            try:
                req = client.read_request(timeout=30)
            except (EOFError, OSError):
                return
            assert req.api_key == 1 and req.api_version == 4, req
            self.requests.append(req)
            body = self.bodies[min(self.fetches, len(self.bodies) - 1)]
            self.fetches += 1
            if callable(body):
                body = body(req)
            if body is None:
                client.close()
                return
            try:
                client.respond(req.correlation_id, body)
            except OSError:
                return


def fetcher_for(broker, **kw):
    kw.setdefault("backoff_ms", 50)
    kw.setdefault("socket_timeout_ms", 5000)
    kw.setdefault("fetch_wait_max_ms", 10)
    f = _core.Fetcher(TOPIC, **kw)
    f.add_partition(0, None)
    f.set_leader(0, 1, broker.host, broker.port)
    f.start()
    return f


def consume_raises(f, exc_type, timeout=10.0):
    """consume() until it raises; the exception must be exc_type."""
    deadline = time.monotonic() + timeout
    with pytest.raises(exc_type) as info:
        while time.monotonic() < deadline:
            f.consume(block=False)
            time.sleep(0.01)
    return info.value


def test_valid_answer_is_consumed():
    script = Script(fetch_v4([(0, 0, 3, batch([b"a", b"b", b"c"]), None)]),
                    fetch_v4([(0, 0, 3, b"", None)]))
    with FakeBroker(script) as broker:
        f = fetcher_for(broker, consumer_timeout_ms=2000)
        try:
            got = [(m.offset, m.value) for m in f]
        finally:
            f.stop()
    assert got == [(0, b"a"), (1, b"b"), (2, b"c")]
    # The second Fetch asked for offset 3 (after the batch).
    req = script.requests[1]
    assert struct.unpack_from(">q", req.body, len(req.body) - 12)[0] == 3


def test_bad_crc_is_corrupt_record_error():
    raw = bytearray(batch([b"hello", b"world"]))
    raw[-1] ^= 0xFF  # a byte of the last record's headers count
    with FakeBroker(Script(fetch_v4([(0, 0, 2, bytes(raw), None)]))) as b:
        f = fetcher_for(b)
        try:
            exc = consume_raises(f, CorruptRecordError)
        finally:
            f.stop()
    assert "partition 0" in str(exc)


def test_huge_partition_count_is_decode_error():
    body = struct.pack(">i", 0) + struct.pack(">i", 1) + \
        struct.pack(">h", len(TOPIC)) + TOPIC + struct.pack(">i", 0x7FFFFFFF)
    with FakeBroker(Script(body)) as b:
        f = fetcher_for(b)
        try:
            exc = consume_raises(f, ProtocolDecodeError)
        finally:
            f.stop()
    assert "Fetch v4 response" in str(exc)


def test_huge_topic_count_is_decode_error():
    body = struct.pack(">ii", 0, 0x7FFFFFF0)
    with FakeBroker(Script(body)) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, ProtocolDecodeError)
        finally:
            f.stop()


def test_records_length_past_the_end_is_decode_error():
    good = fetch_v4([(0, 0, 1, batch([b"x"]), None)])
    # Claim 1 GiB of records.
    body = good[:-len(batch([b"x"])) - 4] + struct.pack(">i", 1 << 30) + \
        batch([b"x"])
    with FakeBroker(Script(body)) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, ProtocolDecodeError)
        finally:
            f.stop()


def test_huge_aborted_transaction_count_is_decode_error():
    body = fetch_v4([(0, 0, 1, batch([b"x"]), None)])
    # The AbortedTransactions count sits right after the partition header.
    head = struct.pack(">i", 0) + struct.pack(">i", 1) + \
        struct.pack(">h", len(TOPIC)) + TOPIC + struct.pack(">i", 1) + \
        struct.pack(">ihqq", 0, 0, 1, 1)
    assert body.startswith(head + struct.pack(">i", -1))
    body = head + struct.pack(">i", 0x7FFFFFFF) + body[len(head) + 4:]
    with FakeBroker(Script(body)) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, ProtocolDecodeError)
        finally:
            f.stop()


def test_huge_record_count_in_batch_is_an_error():
    raw = bytearray(batch([b"a", b"b"]))
    raw[57:61] = struct.pack(">i", 0x7FFFFFFF)  # recordsCount
    raw = refresh_crc(raw)
    with FakeBroker(Script(fetch_v4([(0, 0, 2, raw, None)]))) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, ProtocolDecodeError)
        finally:
            f.stop()


def test_negative_batch_length_is_an_error():
    raw = bytearray(batch([b"a"]))
    raw[8:12] = struct.pack(">i", -5)
    with FakeBroker(Script(fetch_v4([(0, 0, 1, bytes(raw), None)]))) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, ProtocolDecodeError)
        finally:
            f.stop()


def test_truncated_batch_alone_is_refetched_not_an_error():
    whole = batch([b"v" * 100] * 5)
    part = whole[:len(whole) // 2]
    script = Script(fetch_v4([(0, 0, 5, part, None)]))
    with FakeBroker(script) as b:
        f = fetcher_for(b)
        try:
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                assert f.consume(block=False) is None
                time.sleep(0.02)
            info = f.partition_info(0)
        finally:
            f.stop()
    # Asked again and again from offset 0, never an error.
    assert script.fetches >= 3
    assert info["fetch_offset"] == 0 and info["state"] == "active"
    assert not info["event_pending"]


def test_truncated_trailing_batch_is_dropped_then_refetched():
    first = batch([b"a", b"b"])
    second = batch([b"c", b"d"], base_offset=2)

    def answer(req):
        offset = struct.unpack_from(">q", req.body, len(req.body) - 12)[0]
        if offset == 0:
            return fetch_v4([(0, 0, 4, first + second[:20], None)])
        if offset == 2:
            return fetch_v4([(0, 0, 4, second, None)])
        return fetch_v4([(0, 0, 4, b"", None)])

    with FakeBroker(Script(answer)) as b:
        f = fetcher_for(b, consumer_timeout_ms=2000)
        try:
            got = [(m.offset, m.value) for m in f]
        finally:
            f.stop()
    assert got == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d")]


def test_garbage_compressed_payload_is_compression_error():
    raw = bytearray(batch([b"x" * 50]))
    raw[22] = (raw[22] & ~0x07) | 1  # attributes: gzip
    raw = refresh_crc(raw)
    with FakeBroker(Script(fetch_v4([(0, 0, 1, raw, None)]))) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, CompressionError)
        finally:
            f.stop()


def test_decompression_bomb_is_capped():
    bomb = batch([b"\0" * (4 << 20)], compression=1)  # gzip, 4 MiB of zeros
    assert len(bomb) < 64 << 10
    with FakeBroker(Script(fetch_v4([(0, 0, 1, bomb, None)]))) as b:
        f = fetcher_for(b, max_decompressed=1 << 20)
        try:
            exc = consume_raises(f, CompressionError)
        finally:
            f.stop()
    assert exc is not None


def test_partition_error_code_raises_its_class():
    with FakeBroker(Script(fetch_v4([(0, 29, -1, None, None)]))) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, TopicAuthorizationFailed)
            # The partition stays paused: no more events, no messages.
            time.sleep(0.2)
            assert f.consume(block=False) is None
            assert f.partition_info(0)["state"] == "paused"
        finally:
            f.stop()


# Kafka's stale-metadata errors (NOT_LEADER_OR_FOLLOWER,
# REPLICA_NOT_AVAILABLE, UNKNOWN_TOPIC_ID, INCONSISTENT_TOPIC_ID) make the
# partition wait for a new leader; the others (REQUEST_TIMED_OUT,
# UNKNOWN_LEADER_EPOCH: retriable without a refresh) pause it.  The same
# table decides the producer's metadata refresh.
@pytest.mark.parametrize("code,state", [
    (6, "wait_leader"), (9, "wait_leader"), (100, "wait_leader"),
    (103, "wait_leader"), (7, "paused"), (75, "paused")])
def test_partition_error_state_follows_the_table(code, state):
    with FakeBroker(Script(fetch_v4([(0, code, -1, None, None)]))) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, ERROR_CODES[code])
            assert f.partition_info(0)["state"] == state
        finally:
            f.stop()


def test_offset_out_of_range_without_handler_raises():
    with FakeBroker(Script(fetch_v4([(0, 1, 10, None, None)]))) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, OffsetOutOfRangeError)
        finally:
            f.stop()


def test_unrequested_partition_and_wrong_topic_are_ignored():
    body = fetch_v4([(7, 0, 1, batch([b"stray"]), None)])
    other = fetch_v4([(0, 0, 1, batch([b"other"]), None)], topic=b"other")
    script = Script(body, other)
    with FakeBroker(script) as b:
        f = fetcher_for(b)
        try:
            # Both answers were taken in (a Fetch after each proves
            # it), and neither gave the consumer a message.
            deadline = time.monotonic() + 10
            while script.fetches < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert f.consume(block=False) is None
        finally:
            f.stop()
    assert script.fetches >= 3


def test_connection_closed_by_broker_is_socket_disconnected():
    with FakeBroker(Script(None)) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, SocketDisconnectedError)
        finally:
            f.stop()


def test_hostile_frame_length_is_socket_disconnected():
    def script(client):
        answer_versions(client)
        req = client.read_request()
        client.send_raw(struct.pack(">i", 0x7FFFFFFF))
        client.wait_closed()

    with FakeBroker(script) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, SocketDisconnectedError)
        finally:
            f.stop()


def test_truncated_response_body_is_decode_error():
    body = fetch_v4([(0, 0, 1, batch([b"x"]), None)])[:17]
    with FakeBroker(Script(body)) as b:
        f = fetcher_for(b)
        try:
            consume_raises(f, ProtocolDecodeError)
        finally:
            f.stop()


def test_no_common_fetch_version_is_reported():
    """A broker without Fetch v4+: raised once as UnsupportedApiVersionError
    and the partition pauses; the thread does not reconnect in a loop."""
    def script(client):
        answer_versions(client, (0, 3))
        client.wait_closed()

    with FakeBroker(script) as b:
        f = fetcher_for(b)
        try:
            exc = consume_raises(f, UnsupportedApiVersionError)
            assert f.consume(block=False) is None
            time.sleep(0.5)  # ten backoff periods
            assert len(b.clients) == 1
        finally:
            f.stop()
    assert "Fetch v0-v3" in str(exc)


def test_unreachable_broker_is_socket_disconnected():
    f = _core.Fetcher(TOPIC, backoff_ms=50)
    f.add_partition(0, None)
    f.set_leader(0, 1, "127.0.0.1", free_port())
    f.start()
    try:
        consume_raises(f, SocketDisconnectedError)
    finally:
        f.stop()


def test_silent_broker_hits_the_request_timeout():
    def script(client):
        answer_versions(client)
        client.wait_closed(timeout=30)

    with FakeBroker(script) as b:
        f = fetcher_for(b, socket_timeout_ms=300)
        try:
            t0 = time.monotonic()
            exc = consume_raises(f, SocketDisconnectedError)
            assert time.monotonic() - t0 < 5.0
        finally:
            f.stop()
    assert "no answer" in str(exc)


def test_random_corruption_gives_typed_errors_or_intact_messages():
    """Random byte changes in a Fetch answer: each run ends in a typed
    pykafka_c exception, or in messages that are exactly the ones sent (the
    CRC protects the records); never a crash or another exception."""
    import random
    rnd = random.Random(1234)
    good = fetch_v4([(0, 0, 3, batch([b"a", b"b", b"c"]), None)])
    outcomes = {"error": 0, "messages": 0, "nothing": 0}
    for _ in range(40):
        body = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            body[rnd.randrange(len(body))] = rnd.randrange(256)
        with FakeBroker(Script(bytes(body))) as b:
            f = fetcher_for(b, fetch_wait_max_ms=1)
            got = []
            try:
                deadline = time.monotonic() + 0.3
                while time.monotonic() < deadline:
                    try:
                        m = f.consume(block=False)
                    except (pykafka_c.exceptions.KafkaException,
                            MemoryError):
                        outcomes["error"] += 1
                        break
                    if m is not None:
                        got.append((m.offset, m.value))
                    else:
                        time.sleep(0.005)
            finally:
                f.stop()
        if got:
            outcomes["messages"] += 1
            assert set(got) <= {(0, b"a"), (1, b"b"), (2, b"c")}, got
        elif not outcomes["error"]:
            outcomes["nothing"] += 1
    assert outcomes["error"] > 0, outcomes


def test_blocking_consume_is_woken_by_stop():
    with FakeBroker(Script(fetch_v4([(0, 0, 0, b"", None)]))) as b:
        f = fetcher_for(b)
        errors = []

        def consumer():
            try:
                f.consume()
            except Exception as exc:  # collected for the assertion below
                errors.append(exc)

        t = threading.Thread(target=consumer)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        f.stop()
        t.join(5)
        assert not t.is_alive()
        assert time.monotonic() - t0 < 2.0
    assert len(errors) == 1
    assert type(errors[0]).__name__ == "ConsumerStoppedException"


def test_unused_port_reports_host():
    port = free_port()
    f = _core.Fetcher(TOPIC, backoff_ms=50)
    f.add_partition(0, None)
    f.set_leader(0, 3, "127.0.0.1", port)
    f.start()
    try:
        exc = consume_raises(f, SocketDisconnectedError)
    finally:
        f.stop()
    assert "broker 3" in str(exc) and str(port) in str(exc)


def test_ctrl_c_interrupts_a_blocking_consume():
    """SIGINT during a blocking consume() raises KeyboardInterrupt within a
    wait slice (100 ms)."""
    import os
    import signal
    # SIGINT may be ignored when the suite runs as a background job.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    f = _core.Fetcher(TOPIC)
    f.start()
    try:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            f.consume()
        assert 0.25 <= time.monotonic() - t0 < 0.3 + 0.35
        timer.join()
    finally:
        f.stop()
        signal.signal(signal.SIGINT, previous)


def test_unblock_event_and_timeouts_without_a_broker():
    f = _core.Fetcher(TOPIC, consumer_timeout_ms=300)
    f.start()
    try:
        t0 = time.monotonic()
        assert f.consume() is None          # consumer_timeout_ms > 0
        assert 0.28 <= time.monotonic() - t0 < 0.8
        assert list(f) == []                # iteration ends the same way
        assert f.consume_batch(10, 200) == []
        f.consumer_timeout_ms = 0           # 0: wait forever ...
        ev = threading.Event()
        threading.Timer(0.3, ev.set).start()
        t0 = time.monotonic()
        assert f.consume(True, ev) is None  # ... until the event is set
        assert 0.28 <= time.monotonic() - t0 < 0.3 + 0.35
        t0 = time.monotonic()
        assert f.consume(block=False) is None
        assert time.monotonic() - t0 < 0.05
    finally:
        f.stop()


def two_leader_fetcher(broker, silent, socket_timeout_ms):
    """Partition 0 led by the fake broker (node 1), partition 1 by the
    silent address (node 2)."""
    f = _core.Fetcher(TOPIC, backoff_ms=50, fetch_wait_max_ms=10,
                      socket_timeout_ms=socket_timeout_ms)
    f.add_partition(0, None)
    f.add_partition(1, None)
    f.set_leader(1, 2, silent.host, silent.port)
    f.set_leader(0, 1, broker.host, broker.port)
    return f


def test_connect_to_silent_broker_does_not_stall_the_others():
    """While the fetch thread connects to a broker that does not answer
    (10 s connect deadline), the partition of a working broker is fetched
    and consumed at once; the silent one fails at its deadline with the
    usual connect-failure exception."""
    values = [b"r%d" % i for i in range(5)]
    script = Script(fetch_v4([(0, 0, 5, batch(values), None)]),
                    fetch_v4([(0, 0, 5, b"", None)]))
    with SilentListener() as silent, FakeBroker(script) as broker:
        f = two_leader_fetcher(broker, silent, 10000)
        t0 = time.monotonic()
        f.start()
        try:
            got = []
            while len(got) < len(values) and time.monotonic() - t0 < 3.0:
                m = f.consume(block=False)
                if m is None:
                    time.sleep(0.005)
                else:
                    got.append((m.partition_id, m.offset, m.value))
            assert got == [(0, i, v) for i, v in enumerate(values)]
            assert time.monotonic() - t0 < 3.0
            # The working broker goes on being fetched from meanwhile.
            before = script.fetches
            time.sleep(0.5)
            assert script.fetches > before
            assert f.partition_info(1)["state"] == "active"
            assert f.stats()["connects"] == 1  # the silent one still runs
            exc = consume_raises(f, SocketDisconnectedError, timeout=15.0)
            elapsed = time.monotonic() - t0
        finally:
            f.stop()
    assert 9.5 <= elapsed < 13.0, elapsed
    assert "broker 2" in str(exc) and str(silent.port) in str(exc)
    assert "partition 1" in str(exc) and "timed out" in str(exc)


def test_stop_returns_promptly_while_connecting():
    """stop() does not wait for a connect under way."""
    with SilentListener() as silent:
        f = _core.Fetcher(TOPIC, backoff_ms=50, socket_timeout_ms=10000)
        f.add_partition(0, None)
        f.set_leader(0, 2, silent.host, silent.port)
        f.start()
        time.sleep(0.3)  # the connect is under way
        t0 = time.monotonic()
        f.stop()
        assert time.monotonic() - t0 < 0.5
        assert f.partition_info(0)["state"] == "active"
        assert f.stats()["connects"] == 0
        # Started again, it connects again (and is stopped again at once).
        f.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        f.stop()
        assert time.monotonic() - t0 < 0.5
