"""_core.Connection against real Kafka brokers (the conftest ``kafka``
fixture: 4.x and 3.9): request/response round trips with header v1 and v2
requests and response headers v0 and v1."""

import struct

import pytest

import pykafka_c  # noqa: F401  (registers the exception classes)
from pykafka_c import _core
from pykafka_c.exceptions import SocketDisconnectedError

pytestmark = pytest.mark.integration

API_VERSIONS = 18
METADATA = 3


class Reader:
    """A strict little reader for checking response bodies."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise AssertionError("response truncated at byte %d" % self.pos)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        value = shift = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def done(self):
        assert self.pos == len(self.data), \
            "%d trailing bytes" % (len(self.data) - self.pos)


def _address(kafka):
    """(host, port) of the first broker of the fixture's bootstrap list."""
    host, _, port = kafka.brokers.split(",")[0].strip().rpartition(":")
    return host.strip("[]"), int(port)


def _parse_api_versions_v0(body):
    r = Reader(body)
    error = r.i16()
    ranges = {}
    for _ in range(r.i32()):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        ranges[key] = (lo, hi)
    r.done()
    return error, ranges


def _api_versions_v3_body(name=b"pykafka-c", version=b"0.1.0"):
    # ClientSoftwareName, ClientSoftwareVersion (compact strings), tags
    return (bytes([len(name) + 1]) + name + bytes([len(version) + 1])
            + version + b"\x00")


def _parse_api_versions_v3(body):
    r = Reader(body)
    error = r.i16()
    ranges = {}
    for _ in range(r.uvarint() - 1):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        r.tags()
        ranges[key] = (lo, hi)
    throttle = r.i32()
    r.tags()
    r.done()
    return error, ranges, throttle


def test_api_versions_v0_round_trip(kafka):
    with _core.Connection(*_address(kafka)) as conn:
        error, ranges = _parse_api_versions_v0(conn.request(API_VERSIONS, 0,
                                                            b""))
    assert error == 0
    assert ranges[API_VERSIONS][0] == 0 and ranges[API_VERSIONS][1] >= 3
    assert METADATA in ranges


def test_api_versions_v3_flexible_round_trip(kafka):
    # Request header v2 (flexible) with compact ClientSoftwareName/Version;
    # the response uses header v0 although v3 is flexible.  A strict parse
    # of the whole body proves nothing was stripped or left over.
    with _core.Connection(*_address(kafka)) as conn:
        body = conn.request(API_VERSIONS, 3, _api_versions_v3_body(),
                            flexible=True)
        assert conn.connected
        _, ranges_v0 = _parse_api_versions_v0(conn.request(API_VERSIONS, 0,
                                                           b""))
    error, ranges, throttle = _parse_api_versions_v3(body)
    assert error == 0
    assert throttle == 0
    assert ranges == ranges_v0  # same broker, same answer in both formats
    assert ranges[METADATA][1] >= 12


def test_api_versions_too_new_answers_in_v0_format(kafka):
    with _core.Connection(*_address(kafka)) as conn:
        body = conn.request(API_VERSIONS, 127, _api_versions_v3_body(),
                            flexible=True)
    error, ranges = _parse_api_versions_v0(body)
    assert error == 35  # UNSUPPORTED_VERSION
    # only the ApiVersions range (KIP-511), to retry with its maximum
    assert list(ranges) == [API_VERSIONS]
    assert ranges[API_VERSIONS][0] == 0 and ranges[API_VERSIONS][1] >= 3


def test_metadata_v12_response_header_v1(kafka):
    # Metadata v12 is flexible: request header v2, response header v1 (with
    # a tagged-field section the connection strips).
    request = (b"\x00"    # Topics: null (all topics)
               b"\x00"    # AllowAutoTopicCreation
               b"\x00"    # IncludeTopicAuthorizedOperations
               b"\x00")   # TaggedFields
    with _core.Connection(*_address(kafka)) as conn:
        body = conn.request(METADATA, 12, request, flexible=True)
    r = Reader(body)
    assert r.i32() == 0  # ThrottleTimeMs
    brokers = []
    for _ in range(r.uvarint() - 1):
        node_id, host, port = r.i32(), r.compact_string(), r.i32()
        r.compact_string()  # Rack
        r.tags()
        brokers.append((node_id, host, port))
    cluster_id = r.compact_string()
    # The harness's own (independent, non-flexible) Metadata client is the
    # reference.
    reference = kafka.metadata()
    assert {b[0]: (b[1], b[2]) for b in brokers} == reference.brokers
    assert _address(kafka)[1] in [port for _, _, port in brokers]
    assert cluster_id and cluster_id == reference.cluster_id


def test_pipelined_requests_on_a_real_broker(kafka):
    with _core.Connection(*_address(kafka)) as conn:
        ids = [conn.send(API_VERSIONS, v % 4, _api_versions_v3_body()
                         if v % 4 == 3 else b"", flexible=(v % 4 == 3))
               for v in range(8)]
        assert conn.in_flight == 8
        for v, cid in enumerate(ids):
            got_id, body = conn.recv()
            assert got_id == cid
            if v % 4 == 3:
                assert _parse_api_versions_v3(body)[0] == 0
            else:
                # v1 and v2 add ThrottleTimeMs after the array
                assert struct.unpack_from(">h", body)[0] == 0
        assert conn.in_flight == 0


def test_unsupported_version_closes_the_connection(kafka):
    # A non-ApiVersions request at a version the broker does not know: the
    # broker closes the socket without answering (KIP-896 behaviour).
    with _core.Connection(*_address(kafka)) as conn:
        with pytest.raises(SocketDisconnectedError):
            conn.request(METADATA, 99, b"\x00\x00\x00\x00", timeout_ms=10000)
        assert not conn.connected
