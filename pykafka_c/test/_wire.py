"""The harness's own tiny Kafka client: just enough protocol to start, probe
and administer a test cluster.

It deliberately shares nothing with pykafka_c's client (which is what the
tests test).  Only classic (non-flexible) request versions are spoken, all of
which Kafka 2.1, 3.9 and 4.x accept:

* ApiVersions v0 (the readiness probe; also tells which versions to use),
* Metadata v1..v5,
* CreateTopics v2..v4 and DeleteTopics v1..v3,
* SaslHandshake v1 and SaslAuthenticate v1 (for single-message mechanisms:
  PLAIN, OAUTHBEARER), to check the brokers' SASL listeners.

A connection can run over TLS (``ssl_context``), so the same requests check
the brokers' TLS listeners.

Every read from a response is bounds-checked; a malformed response raises
:class:`WireError` instead of returning garbage.
"""

import socket
import struct

API_LIST_OFFSETS = 2
API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19
API_DELETE_TOPICS = 20
API_SASL_AUTHENTICATE = 36

# Versions this module can encode/decode, per API key.
SUPPORTED = {
    API_API_VERSIONS: (0, 0),
    API_LIST_OFFSETS: (1, 1),
    API_METADATA: (1, 5),
    API_CREATE_TOPICS: (2, 4),
    API_DELETE_TOPICS: (1, 3),
    API_SASL_HANDSHAKE: (1, 1),
    API_SASL_AUTHENTICATE: (1, 1),
}

MAX_RESPONSE = 64 * 1024 * 1024   # no harness response comes near this

# The few error codes the harness interprets by name.
ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_LEADER_NOT_AVAILABLE = 5
ERR_TOPIC_ALREADY_EXISTS = 36
ERR_NOT_CONTROLLER = 41


class WireError(Exception):
    """A malformed, truncated or unexpected response, or a lost connection."""


class KafkaErrorCode(Exception):
    """A request the broker answered with a non-zero error code."""

    def __init__(self, api, code, message=None, name=None):
        self.api = api
        self.code = code
        self.error_message = message
        self.name = name
        text = "%s failed with Kafka error code %d" % (api, code)
        if name:
            text += " for %r" % (name,)
        if message:
            text += ": %s" % (message,)
        super().__init__(text)


class Reader:
    """Bounds-checked big-endian reader over one response body."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def remaining(self):
        return len(self.data) - self.pos

    def _take(self, n):
        if n < 0 or n > self.remaining():
            raise WireError("truncated response: need %d bytes at offset %d, %d left"
                            % (n, self.pos, self.remaining()))
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def _unpack(self, fmt, size):
        return struct.unpack(fmt, self._take(size))[0]

    def int8(self):
        return self._unpack(">b", 1)

    def int16(self):
        return self._unpack(">h", 2)

    def int32(self):
        return self._unpack(">i", 4)

    def int64(self):
        return self._unpack(">q", 8)

    def boolean(self):
        return self.int8() != 0

    def _length(self, read, size, what):
        """A length prefix (``read`` of ``size`` bytes): None for -1 (null),
        a WireError for any other negative value."""
        n = read()
        if n == -1:
            return None
        if n < 0:
            raise WireError("negative %s length %d at offset %d" % (what, n, self.pos - size))
        return n

    def nullable_string(self):
        n = self._length(self.int16, 2, "string")
        if n is None:
            return None
        raw = self._take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError("string is not UTF-8: %s" % exc) from None

    def string(self):
        s = self.nullable_string()
        if s is None:
            raise WireError("null where a string is required (offset %d)" % (self.pos - 2))
        return s

    def array(self, read_item, min_item_size, nullable=False):
        n = self.int32()
        if n == -1 and nullable:
            return None
        if n < 0:
            raise WireError("negative array length %d at offset %d" % (n, self.pos - 4))
        # Cheap sanity cap: every element needs at least min_item_size bytes.
        if n * min_item_size > self.remaining():
            raise WireError("array of %d elements cannot fit in %d remaining bytes"
                            % (n, self.remaining()))
        return [read_item(self) for _ in range(n)]

    def nullable_bytes(self):
        n = self._length(self.int32, 4, "bytes")
        return None if n is None else self._take(n)

    def int32_array(self):
        return self.array(Reader.int32, 4)

    def expect_end(self, what):
        if self.remaining():
            raise WireError("%d unexpected trailing bytes after %s" % (self.remaining(), what))


# ----------------------------------------------------------------- encoding

def _i8(v):
    return struct.pack(">b", v)


def _i16(v):
    return struct.pack(">h", v)


def _i32(v):
    return struct.pack(">i", v)


def _string(s):
    if s is None:
        return _i16(-1)
    raw = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    if len(raw) > 0x7FFF:
        raise ValueError("string too long for the protocol: %d bytes" % len(raw))
    return _i16(len(raw)) + raw


def _bytes(b):
    return _i32(len(b)) + bytes(b)


def _array(items, encode):
    if items is None:
        return _i32(-1)
    items = list(items)
    return _i32(len(items)) + b"".join(encode(i) for i in items)


def encode_request(api_key, api_version, correlation_id, client_id, body):
    """Size-prefixed request with request header v1 (classic, non-flexible)."""
    payload = _i16(api_key) + _i16(api_version) + _i32(correlation_id) + _string(client_id) + body
    return _i32(len(payload)) + payload


# ------------------------------------------------------------------ decoding

def decode_api_versions_v0(r):
    """ApiVersions v0 body -> (error_code, {api_key: (min, max)})."""
    error = r.int16()

    def entry(rr):
        return rr.int16(), rr.int16(), rr.int16()

    entries = r.array(entry, 6)
    r.expect_end("ApiVersions v0 response")
    return error, {k: (lo, hi) for k, lo, hi in entries}


class PartitionMetadata:
    __slots__ = ("error", "id", "leader", "replicas", "isr", "offline")

    def __init__(self, error, id_, leader, replicas, isr, offline):
        self.error = error
        self.id = id_
        self.leader = leader
        self.replicas = replicas
        self.isr = isr
        self.offline = offline

    def __repr__(self):
        return ("PartitionMetadata(id=%d, error=%d, leader=%d, replicas=%r, isr=%r)"
                % (self.id, self.error, self.leader, self.replicas, self.isr))


class TopicMetadata:
    __slots__ = ("error", "name", "internal", "partitions")

    def __init__(self, error, name, internal, partitions):
        self.error = error
        self.name = name
        self.internal = internal
        self.partitions = partitions     # {partition id: PartitionMetadata}

    def __repr__(self):
        return ("TopicMetadata(name=%r, error=%d, partitions=%r)"
                % (self.name, self.error, list(self.partitions.values())))


class ClusterMetadata:
    __slots__ = ("brokers", "controller_id", "cluster_id", "topics")

    def __init__(self, brokers, controller_id, cluster_id, topics):
        self.brokers = brokers            # {node id: (host, port)}
        self.controller_id = controller_id
        self.cluster_id = cluster_id
        self.topics = topics              # {name: TopicMetadata}

    def __repr__(self):
        return ("ClusterMetadata(brokers=%r, controller_id=%r, topics=%r)"
                % (self.brokers, self.controller_id, sorted(self.topics)))


def encode_metadata(version, topics=None):
    """Metadata v1..v5 request body; ``topics=None`` asks for all topics
    (and never auto-creates one)."""
    body = _array(topics, _string)
    if version >= 4:
        body += _i8(0)   # allow_auto_topic_creation = false
    return body


def decode_metadata(r, version):
    if version >= 3:
        r.int32()                        # throttle_time_ms

    def broker(rr):
        node_id = rr.int32()
        host = rr.string()
        port = rr.int32()
        rr.nullable_string()             # rack (v1+)
        return node_id, (host, port)

    brokers = dict(r.array(broker, 12))
    cluster_id = r.nullable_string() if version >= 2 else None
    controller_id = r.int32()

    def partition(rr):
        error = rr.int16()
        pid = rr.int32()
        leader = rr.int32()
        replicas = rr.int32_array()
        isr = rr.int32_array()
        offline = rr.int32_array() if version >= 5 else []
        return PartitionMetadata(error, pid, leader, replicas, isr, offline)

    def topic(rr):
        error = rr.int16()
        name = rr.string()
        internal = rr.boolean()
        parts = rr.array(partition, 18 + (4 if version >= 5 else 0))
        return TopicMetadata(error, name, internal, {p.id: p for p in parts})

    topics = r.array(topic, 11)
    r.expect_end("Metadata v%d response" % version)
    return ClusterMetadata(brokers, controller_id, cluster_id, {t.name: t for t in topics})


def encode_create_topics(version, name, num_partitions, replication_factor,
                         configs=None, timeout_ms=30000):
    """CreateTopics v2..v4 request body for a single topic."""
    cfg = sorted((configs or {}).items())

    def config(kv):
        return _string(str(kv[0])) + _string(None if kv[1] is None else str(kv[1]))

    topic = (_string(name) + _i32(num_partitions) + _i16(replication_factor)
             + _array([], None) + _array(cfg, config))
    return _array([topic], lambda t: t) + _i32(timeout_ms) + _i8(0)


def decode_create_topics(r, version):
    """-> [(name, error_code, error_message)]"""
    r.int32()                            # throttle_time_ms (v2+)

    def result(rr):
        return rr.string(), rr.int16(), rr.nullable_string()

    out = r.array(result, 6)
    r.expect_end("CreateTopics v%d response" % version)
    return out


def encode_delete_topics(version, names, timeout_ms=30000):
    """DeleteTopics v1..v3 request body."""
    return _array(names, _string) + _i32(timeout_ms)


def decode_delete_topics(r, version):
    """-> [(name, error_code)]"""
    r.int32()                            # throttle_time_ms (v1+)

    def result(rr):
        return rr.string(), rr.int16()

    out = r.array(result, 4)
    r.expect_end("DeleteTopics v%d response" % version)
    return out


def encode_list_offsets(version, topic, partitions, timestamp=-1):
    """ListOffsets v1 request body: one topic, ``partitions`` (ids), each
    asked for ``timestamp`` (-1 latest, -2 earliest)."""
    def part(pid):
        return _i32(pid) + struct.pack(">q", timestamp)
    return _i32(-1) + _array([topic], lambda t: _string(t) + _array(partitions, part))


def decode_list_offsets(r, version):
    """-> {(topic, partition): (error_code, offset)}"""
    out = {}

    def topic(rr):
        name = rr.string()

        def part(pr):
            pid, err = pr.int32(), pr.int16()
            pr.int64()                   # timestamp
            out[(name, pid)] = (err, pr.int64())
        rr.array(part, 22)

    r.array(topic, 6)
    r.expect_end("ListOffsets v%d response" % version)
    return out


def decode_sasl_handshake(r):
    """SaslHandshake v0/v1 body -> (error_code, [enabled mechanisms])."""
    error = r.int16()
    mechanisms = r.array(Reader.string, 2)
    r.expect_end("SaslHandshake response")
    return error, mechanisms


def decode_sasl_authenticate_v1(r):
    """SaslAuthenticate v1 body -> (error_code, error_message, auth_bytes,
    session_lifetime_ms)."""
    error = r.int16()
    message = r.nullable_string()
    auth = r.nullable_bytes()
    lifetime = r.int64()
    r.expect_end("SaslAuthenticate v1 response")
    return error, message, auth, lifetime


# ---------------------------------------------------------------- connection

def _recv_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise WireError("connection closed by the broker")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class Connection:
    """One blocking connection to one broker.  Use as a context manager.

    With ``ssl_context`` (an ``ssl.SSLContext``) the socket is wrapped and
    the TLS handshake done before the constructor returns;
    ``server_hostname`` (default: ``host``) is the name sent as SNI and
    checked against the certificate when the context checks host names.
    TLS errors are raised as they come (``ssl.SSLError`` and subclasses)."""

    def __init__(self, host, port, timeout=10.0, client_id="pkc-harness", ssl_context=None,
                 server_hostname=None):
        self.host = host
        self.port = port
        self.client_id = client_id
        self._corr = 0
        self._versions = None
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.settimeout(timeout)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(
                    sock, server_hostname=host if server_hostname is None else server_hostname)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, api_key, api_version, body):
        """Send one request and return a :class:`Reader` over the response body."""
        self._corr = (self._corr + 1) & 0x7FFFFFFF
        corr = self._corr
        try:
            self.sock.sendall(encode_request(api_key, api_version, corr, self.client_id, body))
            size = struct.unpack(">i", _recv_exact(self.sock, 4))[0]
            if size < 4 or size > MAX_RESPONSE:
                raise WireError("implausible response size %d" % size)
            data = _recv_exact(self.sock, size)
        except OSError as exc:
            raise WireError("%s:%d: %s" % (self.host, self.port, exc)) from None
        r = Reader(data)
        got = r.int32()
        if got != corr:
            raise WireError("correlation id mismatch: sent %d, got %d" % (corr, got))
        return r

    def api_versions(self):
        """ApiVersions v0 -> {api_key: (min, max)}; raises on a non-zero error."""
        error, versions = decode_api_versions_v0(self.request(API_API_VERSIONS, 0, b""))
        if error != ERR_NONE:
            raise KafkaErrorCode("ApiVersions", error)
        self._versions = versions
        return versions

    def sasl_login(self, mechanism, auth_bytes):
        """SaslHandshake v1 for ``mechanism``, then one SaslAuthenticate v1
        with ``auth_bytes`` (mechanisms with one client message: PLAIN,
        OAUTHBEARER).  Returns the session lifetime in ms (0: none).  A
        refusal raises :class:`KafkaErrorCode` with the broker's message
        (for OAUTHBEARER after the ``0x01`` the RFC 7628 failure exchange
        wants: the broker answers a bad token with error 0 and a JSON
        status, and with error 58 only to that byte)."""
        error, mechanisms = decode_sasl_handshake(self.request(
            API_SASL_HANDSHAKE, 1, _string(mechanism)))
        if error != ERR_NONE:
            raise KafkaErrorCode("SaslHandshake", error, "enabled mechanisms: %s"
                                 % ",".join(mechanisms), mechanism)
        error, message, auth, lifetime = decode_sasl_authenticate_v1(self.request(
            API_SASL_AUTHENTICATE, 1, _bytes(auth_bytes)))
        if error == ERR_NONE and auth and mechanism == "OAUTHBEARER":
            error, message, _, _ = decode_sasl_authenticate_v1(self.request(
                API_SASL_AUTHENTICATE, 1, _bytes(b"\x01")))
        if error != ERR_NONE:
            raise KafkaErrorCode("SaslAuthenticate", error, message, mechanism)
        return lifetime

    def pick_version(self, api_key):
        """Highest version both this module and the broker support."""
        if self._versions is None:
            self.api_versions()
        lo, hi = SUPPORTED[api_key]
        if api_key not in self._versions:
            raise WireError("broker does not support API key %d" % api_key)
        blo, bhi = self._versions[api_key]
        v = min(hi, bhi)
        if v < max(lo, blo):
            raise WireError("no common version for API key %d: harness %d-%d, broker %d-%d"
                            % (api_key, lo, hi, blo, bhi))
        return v

    def metadata(self, topics=None):
        v = self.pick_version(API_METADATA)
        return decode_metadata(self.request(API_METADATA, v, encode_metadata(v, topics)), v)

    def list_offsets(self, topic, partitions, timestamp=-1):
        """ListOffsets v1 -> {partition: (error_code, offset)} (errors are
        returned, not raised)."""
        v = self.pick_version(API_LIST_OFFSETS)
        got = decode_list_offsets(self.request(
            API_LIST_OFFSETS, v, encode_list_offsets(v, topic, partitions, timestamp)), v)
        return {pid: res for (t, pid), res in got.items() if t == topic}

    def create_topic(self, name, num_partitions, replication_factor, configs=None,
                     timeout_ms=30000):
        v = self.pick_version(API_CREATE_TOPICS)
        body = encode_create_topics(v, name, num_partitions, replication_factor, configs,
                                    timeout_ms)
        for tname, error, message in decode_create_topics(
                self.request(API_CREATE_TOPICS, v, body), v):
            if error != ERR_NONE:
                raise KafkaErrorCode("CreateTopics", error, message, tname)

    def delete_topics(self, names, timeout_ms=30000):
        v = self.pick_version(API_DELETE_TOPICS)
        body = encode_delete_topics(v, names, timeout_ms)
        for tname, error in decode_delete_topics(self.request(API_DELETE_TOPICS, v, body), v):
            if error != ERR_NONE:
                raise KafkaErrorCode("DeleteTopics", error, None, tname)
