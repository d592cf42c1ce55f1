"""_core.Connection against the scripted fake broker (tests/fakebroker.py).

The fake broker is used only for what a real broker will not send: hostile
lengths, truncation, wrong correlation ids, TLS bytes, silence.  Round trips
with a real broker are in test_connection_broker.py.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pykafka_c  # noqa: F401  (registers the exception classes)
from pykafka_c import _core
from pykafka_c.exceptions import ProtocolDecodeError, SocketDisconnectedError

from fakebroker import FakeBroker, free_port

pytestmark = pytest.mark.unit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RBUF_INITIAL = 64 * 1024  # PKC_CONN_RBUF_INITIAL in net.h


def _echo(client):
    """Answer every request with header v0 and body = its own body."""
    while True:
        try:
            req = client.read_request()
        except (EOFError, OSError):
            return
        client.respond(req.correlation_id, req.body)


# ------------------------------------------------------------- connecting


def test_connect_refused_is_quick_and_names_the_broker():
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(SocketDisconnectedError) as ei:
        _core.Connection("127.0.0.1", port, timeout_ms=5000)
    assert time.monotonic() - t0 < 1.0
    msg = str(ei.value)
    assert f"127.0.0.1:{port}" in msg
    assert "refused" in msg.lower()


def test_connect_timeout_when_the_listen_backlog_is_full():
    # A listener that never accepts, with its accept queue filled: further
    # SYNs are dropped, so connect() stays pending until our deadline.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.1)
        t0 = time.monotonic()
        with pytest.raises(SocketDisconnectedError) as ei:
            _core.Connection("127.0.0.1", port, timeout_ms=400)
        elapsed = time.monotonic() - t0
        assert 0.35 <= elapsed < 2.0, elapsed
        assert "timed out" in str(ei.value)
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_connect_by_host_name():
    with FakeBroker(_echo) as broker:
        with _core.Connection("localhost", broker.port) as conn:
            assert conn.host == "localhost"
            assert conn.request(18, 0, b"hi") == b"hi"


def test_connect_ipv6_loopback():
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as exc:
        pytest.fail(f"this machine has no IPv6 loopback (::1): {exc}")
    with FakeBroker(_echo, host="::1") as broker:
        with _core.Connection("::1", broker.port) as conn:
            assert conn.request(18, 0, b"v6") == b"v6"
            assert broker.clients[0].addr[0] == "::1"


def test_unresolvable_host():
    with pytest.raises(SocketDisconnectedError) as ei:
        _core.Connection("no-such-host.invalid", 9092, timeout_ms=5000)
    assert "no-such-host.invalid" in str(ei.value)


def test_source_address_is_used():
    src_port = free_port()
    with FakeBroker(_echo) as broker:
        with _core.Connection("127.0.0.1", broker.port,
                              source_host="127.0.0.1",
                              source_port=src_port) as conn:
            assert conn.request(3, 12, b"x") == b"x"
            assert broker.clients[0].addr == ("127.0.0.1", src_port)


@pytest.mark.parametrize("kwargs", [
    dict(port=0), dict(port=65536), dict(max_frame_bytes=3),
    dict(max_frame_bytes=2**31), dict(timeout_ms=-1),
    dict(source_port=-1), dict(client_id="x" * 32768),
])
def test_bad_arguments(kwargs):
    args = dict(host="127.0.0.1", port=9)
    args.update(kwargs)
    with pytest.raises((ValueError, OverflowError)):
        _core.Connection(args.pop("host"), args.pop("port"), **args)


def test_properties_and_close():
    with FakeBroker(_echo) as broker:
        conn = _core.Connection("127.0.0.1", broker.port)
        assert conn.connected
        assert conn.host == "127.0.0.1"
        assert conn.port == broker.port
        assert conn.fileno() >= 0
        assert conn.in_flight == 0
        assert "open" in repr(conn)
        conn.close()
        assert not conn.connected
        assert conn.fileno() == -1
        conn.close()  # twice is fine
        with pytest.raises(SocketDisconnectedError):
            conn.send(18, 0, b"")
        with pytest.raises(SocketDisconnectedError):
            conn.recv()


# ------------------------------------------------------------- framing


def test_request_header_v1_bytes():
    seen = []

    def script(client):
        req = client.read_request()
        seen.append(req)
        client.respond(req.correlation_id, b"\x00\x01reply")

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port,
                              client_id="my-client") as conn:
            body = conn.request(3, 12, b"\xde\xad\xbe\xef")
    assert body == b"\x00\x01reply"
    (req,) = seen
    expected_header = (struct.pack(">hhih", 3, 12, req.correlation_id, 9)
                       + b"my-client")
    assert req.frame == (struct.pack(">i", len(expected_header) + 4)
                         + expected_header + b"\xde\xad\xbe\xef")


def test_null_client_id():
    seen = []

    def script(client):
        req = client.read_request()
        seen.append(req)
        client.respond(req.correlation_id, b"")

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port,
                              client_id=None) as conn:
            assert conn.request(3, 12, b"") == b""
    assert seen[0].client_id is None
    assert seen[0].frame[12:14] == b"\xff\xff"


def test_flexible_request_header_v2_and_response_header_v1():
    seen = []

    def script(client):
        req = client.read_request(flexible=True)
        seen.append(req)
        # Response header v1 carrying one tagged field (tag 7, 3 bytes)
        # that the reader must skip.
        client.respond(req.correlation_id, b"BODY", header_version=1,
                       tags=b"\x01\x07\x03abc")

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            body = conn.request(3, 12, b"req", flexible=True)
    assert body == b"BODY"
    (req,) = seen
    # ClientId stays an int16-length string in header v2, then one 0x00
    # (empty tagged fields), then the body.
    assert req.frame[4:] == (struct.pack(">hhih", 3, 12, req.correlation_id,
                                         7) + b"pykafka" + b"\x00" + b"req")
    assert req.tagged_fields == b"\x00"


def test_flexible_api_versions_response_uses_header_v0():
    def script(client):
        req = client.read_request(flexible=True)
        # ApiVersions: response header v0 even for flexible versions; the
        # body's first byte must not be taken for a tag count.
        client.respond(req.correlation_id, b"\x05\x00rest", header_version=0)

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            assert conn.request(18, 3, b"", flexible=True) == b"\x05\x00rest"


def test_malformed_response_header_v1():
    def script(client):
        req = client.read_request(flexible=True)
        # tag count 3 with nothing after it
        client.send_frame(struct.pack(">i", req.correlation_id) + b"\x03")

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            with pytest.raises(ProtocolDecodeError):
                conn.request(3, 12, b"", flexible=True)
            assert not conn.connected


def test_pipelining_ten_requests_answered_in_order():
    got_all = threading.Event()

    def script(client):
        reqs = [client.read_request() for _ in range(10)]
        got_all.set()
        for req in reqs:
            client.respond(req.correlation_id, b"r" + req.body)

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            ids = [conn.send(3, 12, b"%d" % i) for i in range(10)]
            assert len(set(ids)) == 10
            assert conn.in_flight == 10
            assert got_all.wait(5)
            for i, cid in enumerate(ids):
                assert conn.recv() == (cid, b"r%d" % i)
            assert conn.in_flight == 0


def test_no_response_expected_for_acks_0():
    received = []

    def script(client):
        received.append(client.read_request())
        req = client.read_request()
        client.respond(req.correlation_id, b"after")

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            conn.send(0, 3, b"produce", expect_response=False)
            assert conn.in_flight == 0
            with pytest.raises(RuntimeError):
                conn.recv()
            assert conn.request(3, 12, b"") == b"after"
    assert received[0].api_key == 0 and received[0].body == b"produce"


def test_request_refuses_while_sends_are_pending():
    def script(client):
        req = client.read_request()
        client.respond(req.correlation_id, b"1")

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            cid = conn.send(3, 12, b"")
            with pytest.raises(RuntimeError):
                conn.request(3, 12, b"")
            assert conn.recv() == (cid, b"1")


def test_large_response_split_into_small_writes():
    big = bytes(range(256)) * (5 * 1024 * 4)  # 5 MiB

    def script(client):
        req = client.read_request()
        frame = struct.pack(">ii", len(big) + 4, req.correlation_id) + big
        # The first bytes trickle in, then the rest in big chunks.
        for i in range(0, 16):
            client.send_raw(frame[i:i + 1])
            time.sleep(0.001)
        for i in range(16, len(frame), 1 << 20):
            client.send_raw(frame[i:i + (1 << 20)])
        for i in range(3):
            req = client.read_request()
            client.respond(req.correlation_id, b"small%d" % i)

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            assert conn.request(1, 12, b"") == big
            assert conn._recv_buffer_peak >= len(big)
            for i in range(3):
                assert conn.request(3, 12, b"") == b"small%d" % i


def test_several_responses_in_one_segment():
    def script(client):
        reqs = [client.read_request() for _ in range(3)]
        blob = b"".join(struct.pack(">ii", 4 + len(b"x%d" % i), r.correlation_id)
                        + b"x%d" % i for i, r in enumerate(reqs))
        client.send_raw(blob)

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            ids = [conn.send(3, 12, b"") for _ in range(3)]
            assert [conn.recv() for _ in range(3)] == [
                (ids[0], b"x0"), (ids[1], b"x1"), (ids[2], b"x2")]


def test_max_frame_boundary():
    def script(client):
        req = client.read_request()
        client.respond(req.correlation_id, b"a" * 1020)  # frame length 1024
        req = client.read_request()
        client.respond(req.correlation_id, b"a" * 1021)  # 1025

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port,
                              max_frame_bytes=1024) as conn:
            assert conn.request(3, 12, b"") == b"a" * 1020
            with pytest.raises(ProtocolDecodeError) as ei:
                conn.request(3, 12, b"")
            assert "1025" in str(ei.value)
            assert not conn.connected


def test_threads_cannot_interleave_frames():
    with FakeBroker(_echo) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            errors = []

            def worker(tag):
                try:
                    for i in range(50):
                        body = b"%s-%d-" % (tag, i) + tag * 3000
                        assert conn.request(3, 12, body) == body
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=worker, args=(t,))
                       for t in (b"a", b"b", b"c")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []


# ------------------------------------------------------------- hostile input


@pytest.mark.parametrize("length", [2**31 - 1, -1, 0, 3, 1024 * 1024 + 1],
                         ids=["2^31-1", "-1", "0", "3", "max+1"])
def test_hostile_frame_length(length):
    def script(client):
        client.read_request()
        client.send_raw(struct.pack(">i", length) + b"\x00" * 64)
        client.wait_closed()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port,
                              max_frame_bytes=1024 * 1024) as conn:
            with pytest.raises(ProtocolDecodeError) as ei:
                conn.request(3, 12, b"")
            assert str(length) in str(ei.value)
            assert f"127.0.0.1:{broker.port}" in str(ei.value)
            assert not conn.connected
            # Nothing was allocated for the announced frame.
            assert conn._recv_buffer_peak == RBUF_INITIAL


def test_tls_alert_on_plaintext_port():
    # What an SSL listener sends to a plaintext client: a TLS alert record
    # (content type 21, version 3.3, length 2, fatal, decode_error).
    def script(client):
        client.read_request()
        client.send_raw(b"\x15\x03\x03\x00\x02\x02\x32")
        client.wait_closed()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            with pytest.raises(ProtocolDecodeError) as ei:
                conn.request(18, 0, b"")
            assert "TLS" in str(ei.value)
            assert not conn.connected
            assert conn._recv_buffer_peak == RBUF_INITIAL


RSS_SCRIPT = r"""
import resource, struct, sys
sys.path.insert(0, sys.argv[1])
import pykafka_c
from pykafka_c import _core
from pykafka_c.exceptions import ProtocolDecodeError
from fakebroker import FakeBroker

def maxrss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

payloads = [struct.pack(">i", 2**31 - 1), struct.pack(">i", -1),
            struct.pack(">i", 0), struct.pack(">i", 100 * 1024 * 1024 + 1),
            b"\x15\x03\x03\x00\x02\x02\x32"]

def script(client):
    req = client.read_request()
    if req.body == b"warm":
        client.respond(req.correlation_id, b"ok")
        req = client.read_request()
    client.send_raw(payloads[int(req.body)] + b"\x00" * 4096)
    client.wait_closed()

with FakeBroker(script) as broker:
    # warm up: one real round trip allocates the buffers once
    conn = _core.Connection("127.0.0.1", broker.port)
    assert conn.request(3, 12, b"warm") == b"ok"
    before = maxrss_kb()
    for i in range(len(payloads)):
        if i:
            conn = _core.Connection("127.0.0.1", broker.port)
        try:
            conn.request(3, 12, b"%d" % i)
        except ProtocolDecodeError:
            pass
        else:
            raise SystemExit("no ProtocolDecodeError for case %d" % i)
        assert conn._recv_buffer_peak == 64 * 1024, conn._recv_buffer_peak
    after = maxrss_kb()
print(after - before)
"""


def test_hostile_lengths_keep_rss_flat():
    # ru_maxrss is a peak, so a fresh process shows any transient growth.
    proc = subprocess.run([sys.executable, "-c", RSS_SCRIPT, HERE],
                          capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    growth_kb = int(proc.stdout.strip().splitlines()[-1])
    assert growth_kb < 1024, f"RSS grew by {growth_kb} KiB"


def test_truncated_frame_then_eof():
    def script(client):
        req = client.read_request()
        client.send_raw(struct.pack(">ii", 100, req.correlation_id) + b"abc")
        client.close()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            with pytest.raises(SocketDisconnectedError) as ei:
                conn.request(3, 12, b"")
            msg = str(ei.value)
            assert "closed" in msg and "11 of 104 bytes" in msg
            assert not conn.connected


def test_eof_inside_the_length_prefix():
    def script(client):
        client.read_request()
        client.send_raw(b"\x00\x00")
        client.close()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            with pytest.raises(SocketDisconnectedError):
                conn.request(3, 12, b"")
            assert not conn.connected


def test_eof_before_any_response():
    def script(client):
        client.read_request()
        client.close()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            with pytest.raises(SocketDisconnectedError) as ei:
                conn.request(3, 12, b"")
            assert f"127.0.0.1:{broker.port}" in str(ei.value)
            assert not conn.connected


def test_wrong_correlation_id_closes_the_connection():
    closed = threading.Event()

    def script(client):
        req = client.read_request()
        client.respond(req.correlation_id + 1000, b"not yours")
        client.wait_closed()
        closed.set()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            cid = conn.send(3, 12, b"")
            with pytest.raises(ProtocolDecodeError) as ei:
                conn.recv()
            assert str(cid) in str(ei.value)
            assert str(cid + 1000) in str(ei.value)
            assert not conn.connected
            assert conn.in_flight == 0
            with pytest.raises(SocketDisconnectedError):
                conn.send(3, 12, b"")
            assert closed.wait(5), "broker did not see the connection close"


def test_unsolicited_response_is_detected():
    def script(client):
        req = client.read_request()
        client.respond(req.correlation_id, b"one")
        client.respond(req.correlation_id, b"unsolicited")
        req = client.read_request()
        client.respond(req.correlation_id, b"two")

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            assert conn.request(3, 12, b"") == b"one"
            with pytest.raises(ProtocolDecodeError):
                conn.request(3, 12, b"")
            assert not conn.connected


def test_silent_broker_timeout_is_respected():
    def script(client):
        client.read_request()
        client.wait_closed()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            t0 = time.monotonic()
            with pytest.raises(SocketDisconnectedError) as ei:
                conn.request(3, 12, b"", timeout_ms=300)
            elapsed = time.monotonic() - t0
            assert 0.29 <= elapsed < 1.5, elapsed
            assert "timed out" in str(ei.value)
            assert not conn.connected


def test_default_timeout_from_constructor():
    def script(client):
        client.read_request()
        client.wait_closed()

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port,
                              timeout_ms=200) as conn:
            conn.send(3, 12, b"")
            t0 = time.monotonic()
            with pytest.raises(SocketDisconnectedError):
                conn.recv()
            assert 0.19 <= time.monotonic() - t0 < 1.5


# ------------------------------------------------------------- GIL, signals


def test_gil_is_released_while_blocked_in_recv():
    ticks = []

    def script(client):
        req = client.read_request()
        time.sleep(0.6)
        client.respond(req.correlation_id, b"late")

    def ticker():
        for _ in range(10):
            time.sleep(0.02)
            ticks.append(time.monotonic())

    with FakeBroker(script) as broker:
        with _core.Connection("127.0.0.1", broker.port) as conn:
            cid = conn.send(3, 12, b"")
            t = threading.Thread(target=ticker)
            t0 = time.monotonic()
            t.start()
            assert conn.recv() == (cid, b"late")
            t1 = time.monotonic()
            t.join()
    assert len(ticks) == 10
    assert all(t0 < tick < t1 for tick in ticks)


def _signal_main_thread(signum):
    # Aim at the main thread: that is where a blocked poll() gets EINTR and
    # where Python runs signal handlers.
    signal.pthread_kill(threading.main_thread().ident, signum)


def test_signal_handler_that_returns_resumes_the_recv():
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
    sent = threading.Event()

    def script(client):
        req = client.read_request()
        assert sent.wait(5)
        time.sleep(0.1)
        client.respond(req.correlation_id, b"resumed")

    def kicker():
        time.sleep(0.2)
        _signal_main_thread(signal.SIGUSR1)
        sent.set()

    try:
        with FakeBroker(script) as broker:
            with _core.Connection("127.0.0.1", broker.port) as conn:
                t = threading.Thread(target=kicker)
                t.start()
                assert conn.request(3, 12, b"", timeout_ms=5000) == b"resumed"
                t.join()
                assert conn.connected
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert hits == [1]


class _Interrupted(Exception):
    pass


def _raise_interrupted(*args):
    raise _Interrupted()


def test_interrupted_request_keeps_the_connection_usable():
    # A handler that raises ends the blocked request; the late answer to it
    # is read and dropped, and the next request gets its own answer.
    old = signal.signal(signal.SIGUSR1, _raise_interrupted)
    answer_first = threading.Event()

    def script(client):
        first = client.read_request()
        assert answer_first.wait(5)
        client.respond(first.correlation_id, b"late answer to the first")
        second = client.read_request()
        client.respond(second.correlation_id, b"second")

    try:
        with FakeBroker(script) as broker:
            with _core.Connection("127.0.0.1", broker.port) as conn:
                threading.Timer(0.2, _signal_main_thread,
                                (signal.SIGUSR1,)).start()
                t0 = time.monotonic()
                with pytest.raises(_Interrupted):
                    conn.request(3, 12, b"first", timeout_ms=5000)
                assert time.monotonic() - t0 < 1.0
                assert conn.connected
                assert conn.in_flight == 0
                answer_first.set()
                assert conn.request(3, 12, b"second") == b"second"
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_interrupted_recv_can_be_retried():
    old = signal.signal(signal.SIGUSR1, _raise_interrupted)
    answer = threading.Event()

    def script(client):
        req = client.read_request()
        assert answer.wait(5)
        client.respond(req.correlation_id, b"answer")

    try:
        with FakeBroker(script) as broker:
            with _core.Connection("127.0.0.1", broker.port) as conn:
                cid = conn.send(3, 12, b"")
                threading.Timer(0.2, _signal_main_thread,
                                (signal.SIGUSR1,)).start()
                with pytest.raises(_Interrupted):
                    conn.recv(timeout_ms=5000)
                assert conn.in_flight == 1
                answer.set()
                assert conn.recv() == (cid, b"answer")
    finally:
        signal.signal(signal.SIGUSR1, old)


# The child makes SIGINT a KeyboardInterrupt itself: started from a shell
# without job control (a background job, some CI runners) it would inherit
# SIGINT ignored, and Python then leaves it ignored.
CTRL_C_SCRIPT = r"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import pykafka_c
from pykafka_c import _core
conn = _core.Connection("127.0.0.1", int(sys.argv[1]), timeout_ms=60000)
conn.send(3, 12, b"block")
print("ready", flush=True)
try:
    conn.recv()
except KeyboardInterrupt:
    print("KeyboardInterrupt in recv", time.monotonic(), flush=True)
    raise
"""


def test_ctrl_c_interrupts_a_blocked_recv():
    got_request = threading.Event()

    def script(client):
        client.read_request()
        got_request.set()
        client.wait_closed(timeout=30)

    with FakeBroker(script) as broker:
        proc = subprocess.Popen(
            [sys.executable, "-c", CTRL_C_SCRIPT, str(broker.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT)
        try:
            assert proc.stdout.readline().strip() == "ready"
            assert got_request.wait(10)
            time.sleep(0.3)  # let it settle into poll()
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=5)
            elapsed = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "KeyboardInterrupt in recv" in out, err
    assert "KeyboardInterrupt" in err
    assert proc.returncode != 0
    assert elapsed < 1.0, elapsed


def test_close_from_another_thread_wakes_a_blocked_recv():
    def script(client):
        client.read_request()
        client.wait_closed()

    with FakeBroker(script) as broker:
        conn = _core.Connection("127.0.0.1", broker.port, timeout_ms=20000)
        conn.send(3, 12, b"")
        errors = []

        def reader():
            try:
                conn.recv()
            except SocketDisconnectedError as exc:
                errors.append(exc)

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        conn.close()
        t.join(5)
        assert not t.is_alive()
        assert time.monotonic() - t0 < 1.0
        assert len(errors) == 1 and "close()" in str(errors[0])
        assert not conn.connected
