"""A scripted fake Kafka broker on loopback, for connection-level tests.

It exists only to produce what a real broker will not: hostile frame
lengths, truncated frames, wrong correlation ids, TLS bytes on a plaintext
port, hostile SASL and SCRAM answers, silence.  Everything a real broker can
answer is tested against a real broker.  With ``tls=`` (a server-side
``ssl.SSLContext``) every accepted connection is TLS: the handshake runs in
the connection's thread before the script, and a failed handshake is kept
in ``client.handshake_error`` (the script is then not run).

Usage::

    def script(client):              # runs in its own thread per connection
        req = client.read_request()
        client.respond(req.correlation_id, b"body")

    with FakeBroker(script) as broker:
        conn = _core.Connection(broker.host, broker.port)

An exception raised by a script is re-raised (as AssertionError) when the
``with`` block ends, so a script can assert on what it received.
"""

import socket
import struct
import threading
import time
from dataclasses import dataclass

__all__ = ["FakeBroker", "FakeClient", "Request", "SilentListener",
           "answer_api_versions", "free_port"]

API_VERSIONS = 18


@dataclass
class Request:
    """One request frame as the broker received it."""

    size: int
    api_key: int
    api_version: int
    correlation_id: int
    client_id: bytes | None
    tagged_fields: bytes | None  # raw header tag section (flexible only)
    body: bytes                  # after the request header
    frame: bytes                 # the whole frame, size prefix included


def _read_uvarint(data, pos):
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


class FakeClient:
    """The broker side of one accepted connection."""

    def __init__(self, sock, addr):
        self.sock = sock
        self.addr = addr
        self.handshake_error = None

    def recv_exactly(self, n, timeout=10.0):
        self.sock.settimeout(timeout)
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise EOFError("client closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_request(self, flexible=False, timeout=10.0):
        """Read one request frame.  With ``flexible`` the header is v2 and
        its tagged-field section is split off; ``flexible="auto"`` decides
        from the request's API key and version."""
        head = self.recv_exactly(4, timeout)
        (size,) = struct.unpack(">i", head)
        data = self.recv_exactly(size, timeout)
        api_key, api_version, corr, cid_len = struct.unpack_from(">hhih", data)
        if flexible == "auto":
            from pykafka_c import _core
            flexible = _core.request_header_version(api_key, api_version) == 2
        pos = 10
        client_id = None
        if cid_len >= 0:
            client_id = data[pos:pos + cid_len]
            pos += cid_len
        tags = None
        if flexible:
            start = pos
            count, pos = _read_uvarint(data, pos)
            for _ in range(count):
                _tag, pos = _read_uvarint(data, pos)
                length, pos = _read_uvarint(data, pos)
                pos += length
            tags = data[start:pos]
        return Request(size, api_key, api_version, corr, client_id, tags,
                       data[pos:], head + data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        """Send payload with a correct size prefix."""
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def respond(self, correlation_id, body, header_version=0, tags=b"\x00"):
        """Send a response: header v0 (CorrelationId) or v1 (plus the raw
        tagged-field section ``tags``), then body."""
        header = struct.pack(">i", correlation_id)
        if header_version >= 1:
            header += tags
        self.send_frame(header + body)

    def wait_closed(self, timeout=10.0):
        """Block until the client closes its side; returns the bytes that
        arrived meanwhile."""
        self.sock.settimeout(timeout)
        got = []
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got.append(chunk)
        return b"".join(got)

    def shutdown(self):
        """End the connection both ways without closing the descriptor, so
        a thread blocked in recv() on it wakes up with EOF (closing a
        descriptor another thread is using is a race)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        self.shutdown()
        self.sock.close()


class FakeBroker:
    """A loopback listener running ``script(client)`` in a thread for each
    accepted connection (``script=None``: accept and stay silent)."""

    def __init__(self, script=None, host="127.0.0.1", backlog=16, tls=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.script = script
        self.tls = tls
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(backlog)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self.clients = []
        self.errors = []
        self.accepted = threading.Semaphore(0)
        self._threads = []
        self._stopping = False
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          name="fakebroker-accept",
                                          daemon=True)

    def start(self):
        self._acceptor.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is None and self.errors:
            raise AssertionError("fake broker script failed") \
                from self.errors[0]

    def _accept_loop(self):
        while True:
            try:
                sock, addr = self.listener.accept()
            except OSError:
                return
            client = FakeClient(sock, addr)
            with self._lock:
                if self._stopping:
                    client.close()
                    return
                self.clients.append(client)
                # Started under the lock, so stop() only ever joins
                # started threads.
                t = threading.Thread(target=self._run, args=(client,),
                                     name="fakebroker-client", daemon=True)
                t.start()
                self._threads.append(t)
            self.accepted.release()

    def _run(self, client):
        if self.tls is not None:
            try:
                client.sock.settimeout(10.0)
                client.sock = self.tls.wrap_socket(client.sock,
                                                   server_side=True)
            except (OSError, ValueError) as exc:  # the client refused us
                client.handshake_error = exc
                return
        if self.script is None:
            return
        try:
            self.script(client)
        except BaseException as exc:  # reported by __exit__
            if not self._stopping:
                self.errors.append(exc)

    def wait_accepted(self, timeout=10.0):
        if not self.accepted.acquire(timeout=timeout):
            raise AssertionError("fake broker: no connection accepted")

    def stop(self):
        with self._lock:
            self._stopping = True
            clients = list(self.clients)
            threads = list(self._threads)
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        if self._acceptor.ident is not None:  # started
            self._acceptor.join(10)
        self.listener.close()
        # Wake the client threads first and close their sockets only once
        # they are done with them.
        for client in clients:
            client.shutdown()
        for t in threads:
            t.join(10)
        for client in clients:
            client.close()


def answer_api_versions(client, ranges, timeout=10.0):
    """Read the ApiVersions request a client opens with (any version) and
    answer it at that version, listing ``ranges`` ({api_key: (min, max)},
    ApiVersions 0-3 added when absent).  Returns the request."""
    from pykafka_c import _core
    req = client.read_request(flexible="auto", timeout=timeout)
    assert req.api_key == API_VERSIONS, req
    ranges = dict(ranges)
    ranges.setdefault(API_VERSIONS, (0, 3))
    body = _core.encode_response(API_VERSIONS, req.api_version, {
        "error_code": 0, "throttle_time_ms": 0,
        "api_keys": [{"api_key": k, "min_version": lo, "max_version": hi}
                     for k, (lo, hi) in sorted(ranges.items())]})
    client.respond(req.correlation_id, body)  # header v0, always
    return req


class SilentListener:
    """A loopback address that does not answer SYNs: a listening socket
    with backlog 0 whose accept queue is already full (two connects nobody
    accepts).  Linux drops a SYN to a listener with a full accept queue,
    so a connect to it stays in progress until the client gives up, like
    a connect to a machine that is down or a blackholed address."""

    def __enter__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.host, self.port = self.sock.getsockname()
        self.fill = []
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((self.host, self.port))
            self.fill.append(s)
        time.sleep(0.05)
        # Check the premise: one more connect gets no answer.
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.3)
        try:
            try:
                probe.connect((self.host, self.port))
            except socket.timeout:
                pass
            else:
                raise AssertionError("the silent listener answered a SYN")
        finally:
            probe.close()
        return self

    def __exit__(self, *exc):
        for s in self.fill:
            s.close()
        self.sock.close()


def free_port(host="127.0.0.1"):
    """A port nothing listens on (bound, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
