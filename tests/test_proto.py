"""Tests of the table-driven protocol codec (csrc/wire/proto.c and its glue
csrc/py/proto.c): byte-exact known answers for every API and version,
golden vectors, hypothesis round trips, truncation and hostile input."""

import os
import socket
import struct
import sys
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykafka_c  # noqa: F401  (registers the exception classes)
from pykafka_c import _core
from pykafka_c.exceptions import ProtocolDecodeError, UnsupportedApiVersionError

sys.path.insert(0, os.path.dirname(__file__))
import proto_kat as kat  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "csrc", "gen"))
import gen_proto  # noqa: E402  (spec loader only: JSON + snake_case)

EXAMPLES = int(os.environ.get("PKC_HYPOTHESIS_EXAMPLES", "12"))


def encode(key, kind, v, d):
    fn = _core.encode_request if kind == "request" else _core.encode_response
    return fn(key, v, d)


def decode(key, kind, v, data):
    fn = _core.decode_request if kind == "request" else _core.decode_response
    return fn(key, v, data)


# ------------------------------------------------------------ version table


def test_api_versions_table_matches_specs():
    table = _core.api_versions_table()
    assert table == {k: (name, lo, hi, ff)
                     for k, (name, lo, hi, ff) in kat.APIS.items()}


@pytest.mark.parametrize("key", sorted(kat.APIS))
def test_header_versions(key):
    _name, lo, hi, ff = kat.APIS[key]
    for v in range(lo, hi + 1):
        flex = ff is not None and v >= ff
        assert _core.request_header_version(key, v) == (2 if flex else 1)
        want = 0 if key == 18 else (1 if flex else 0)
        assert _core.response_header_version(key, v) == want


def test_header_version_unknown_api():
    with pytest.raises(ValueError, match="api key 4"):
        _core.request_header_version(4, 0)


# ------------------------------------------------------- known answers


@pytest.mark.parametrize("key,kind,v", kat.all_versions())
def test_known_answer(key, kind, v):
    expected, d = kat.build(key, kind, v)
    assert encode(key, kind, v, d) == expected
    assert decode(key, kind, v, expected) == d


def test_key_versions_are_covered():
    """The versions that matter (4.x minimum, highest common with 3.9,
    first flexible, last non-flexible) are all among the tested ones."""
    tested = set(kat.all_versions())
    for key, vs in kat.key_versions():
        for v in vs:
            assert (key, "request", v) in tested
            assert (key, "response", v) in tested


# Golden vectors for non-flexible versions, written out byte by byte.
GOLDEN = [
    # Metadata v0 request, topics ["test"]: int32 count 1, int16 len 4.
    (3, "request", 0, {"topics": [{"name": "test"}]},
     "00000001" "0004" "74657374"),
    # Metadata v1 request, all topics: null array.
    (3, "request", 1, {"topics": None}, "ffffffff"),
    # Metadata v4 request, no topics, allow_auto_topic_creation false.
    (3, "request", 4, {"topics": [], "allow_auto_topic_creation": False},
     "00000000" "00"),
    # ApiVersions v0 request: empty body.
    (18, "request", 0, {}, ""),
    # Heartbeat v0 request: group "g", generation 2, member "m".
    (12, "request", 0, {"group_id": "g", "generation_id": 2,
                        "member_id": "m"},
     "0001" "67" "00000002" "0001" "6d"),
    # FindCoordinator v1 request: key "grp", key_type 0 (group).
    (10, "request", 1, {"key": "grp", "key_type": 0}, "0003" "677270" "00"),
    # ListOffsets v1 request: replica -1, topic "t", partition 0, LATEST.
    (2, "request", 1, {"replica_id": -1, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0,
                                      "timestamp": -1}]}]},
     "ffffffff" "00000001" "0001" "74" "00000001" "00000000"
     "ffffffffffffffff"),
    # SaslHandshake v1 response: no error, ["PLAIN"].
    (17, "response", 1, {"error_code": 0, "mechanisms": ["PLAIN"]},
     "0000" "00000001" "0005" "504c41494e"),
    # SyncGroup v0 response: no error, assignment b"\x00\x01".
    (14, "response", 0, {"error_code": 0, "assignment": b"\x00\x01"},
     "0000" "00000002" "0001"),
    # Produce v3 request: no transactional id, acks 1, timeout 1000,
    # topic "t" partition 0 with a 3-byte records blob.
    (0, "request", 3, {"transactional_id": None, "acks": 1,
                       "timeout_ms": 1000, "topic_data": [
                           {"name": "t", "partition_data": [
                               {"index": 0, "records": b"abc"}]}]},
     "ffff" "0001" "000003e8" "00000001" "0001" "74" "00000001" "00000000"
     "00000003" "616263"),
]


@pytest.mark.parametrize("key,kind,v,d,hexbytes", GOLDEN)
def test_golden(key, kind, v, d, hexbytes):
    raw = bytes.fromhex(hexbytes)
    assert encode(key, kind, v, d) == raw
    decoded = decode(key, kind, v, raw)
    for name, value in d.items():
        assert decoded[name] == value


def test_flexible_golden_api_versions_v3_request():
    raw = _core.encode_request(18, 3, {"client_software_name": "pkc",
                                       "client_software_version": "1"})
    # compact strings (len+1 varint) and an empty tagged-field section
    assert raw == b"\x04pkc" b"\x021" b"\x00"


def test_flexible_golden_metadata_v12_response_tagged_and_null():
    d = {"throttle_time_ms": 0, "brokers": [], "cluster_id": None,
         "controller_id": -1, "topics": [{"error_code": 3, "name": None,
                                          "topic_id": bytes(16),
                                          "is_internal": False,
                                          "partitions": [],
                                          "topic_authorized_operations": 0}]}
    raw = _core.encode_response(3, 12, d)
    assert raw == (b"\x00\x00\x00\x00" b"\x01" b"\x00" b"\xff\xff\xff\xff"
                   b"\x02" b"\x00\x03" b"\x00" + bytes(16) + b"\x00" b"\x01"
                   b"\x00\x00\x00\x00" b"\x00" b"\x00")


def test_defaults_for_missing_fields():
    # Metadata v12 request: topics [] / allow_auto_topic_creation true /
    # include_topic_authorized_operations false / empty tags
    assert _core.encode_request(3, 12, {}) == b"\x01\x01\x00\x00"
    # JoinGroup v5: rebalance_timeout_ms defaults to -1, group_instance_id
    # to null
    raw = _core.encode_request(11, 5, {"group_id": "g",
                                       "session_timeout_ms": 1,
                                       "member_id": "", "protocol_type": "c",
                                       "protocols": []})
    assert raw == (b"\x00\x01g" b"\x00\x00\x00\x01" b"\xff\xff\xff\xff"
                   b"\x00\x00" b"\xff\xff" b"\x00\x01c" b"\x00\x00\x00\x00")
    # CreateTopics default timeout 60000
    raw = _core.encode_request(19, 2, {"topics": []})
    assert raw == b"\x00\x00\x00\x00" + struct.pack(">i", 60000) + b"\x00"


def test_tagged_fields_written_only_when_not_default():
    base = {"error_code": 0, "api_keys": [], "throttle_time_ms": 0}
    plain = _core.encode_response(18, 3, base)
    assert plain == b"\x00\x00" b"\x01" b"\x00\x00\x00\x00" b"\x00"
    same = _core.encode_response(18, 3, dict(base,
                                             finalized_features_epoch=-1,
                                             zk_migration_ready=False,
                                             supported_features=[]))
    assert same == plain
    tagged = _core.encode_response(18, 3, dict(base, zk_migration_ready=True,
                                               finalized_features_epoch=1))
    # two tags, ascending: 1 (int64), 3 (bool)
    assert tagged == (b"\x00\x00" b"\x01" b"\x00\x00\x00\x00" b"\x02"
                      b"\x01\x08" + struct.pack(">q", 1) + b"\x03\x01\x01")


def test_unknown_tags_are_skipped_and_known_decoded():
    body = (b"\x00\x00" b"\x01" b"\x00\x00\x00\x00"
            b"\x03"                       # three tagged fields
            b"\x01\x08" + struct.pack(">q", 7) +
            b"\x09\x02zz"                 # unknown tag 9, 2 bytes
            b"\x7f\x00")                  # unknown tag 127, empty
    d = _core.decode_response(18, 3, body)
    assert d["finalized_features_epoch"] == 7
    assert d["zk_migration_ready"] is False
    assert d["supported_features"] == [] and d["finalized_features"] == []


def test_ignorable_field_dropped_when_version_lacks_it():
    with_extra = _core.encode_response(3, 0, {"throttle_time_ms": 5,
                                              "brokers": [], "topics": [],
                                              "cluster_id": "x"})
    assert with_extra == _core.encode_response(3, 0, {"brokers": [],
                                                      "topics": []})


def test_non_ignorable_field_missing_from_version():
    # default values are fine, others are an error naming the field
    assert _core.encode_request(3, 3, {"allow_auto_topic_creation": True}) \
        == _core.encode_request(3, 3, {})
    with pytest.raises(ValueError, match="allow_auto_topic_creation"):
        _core.encode_request(3, 3, {"allow_auto_topic_creation": False})


def test_encode_errors_name_the_field():
    with pytest.raises(ValueError, match=r"unknown field\(s\) 'topcs'"):
        _core.encode_request(3, 12, {"topcs": []})
    with pytest.raises(ValueError, match=r"'bogus'.*MetadataRequestTopic"):
        _core.encode_request(3, 12, {"topics": [{"name": "a", "bogus": 1}]})
    with pytest.raises(TypeError, match=r"'topics\[1\]\.name'.*got int"):
        _core.encode_request(3, 12, {"topics": [{"name": "a"},
                                                {"name": 5}]})
    with pytest.raises(TypeError, match=r"'topics'.*got str"):
        _core.encode_request(3, 12, {"topics": "abc"})
    with pytest.raises(TypeError, match=r"'group_id'.*got None"):
        _core.encode_request(12, 0, {"group_id": None})
    with pytest.raises(TypeError, match=r"'brokers\[0\]'.*got int"):
        _core.encode_response(3, 1, {"brokers": [7]})
    with pytest.raises(TypeError, match=r"'auth_bytes'.*got str"):
        _core.encode_request(36, 0, {"auth_bytes": "text"})
    with pytest.raises(ValueError, match=r"'error_code'.*out of range"):
        _core.encode_response(12, 0, {"error_code": 40000})
    with pytest.raises(ValueError, match=r"'producer_id'.*out of range"):
        _core.encode_request(22, 3, {"transactional_id": None,
                                     "transaction_timeout_ms": 1,
                                     "producer_id": 2**64})
    with pytest.raises(ValueError, match="16 bytes"):
        _core.encode_request(3, 10, {"topics": [{"name": "a",
                                                 "topic_id": b"short"}]})
    with pytest.raises(ValueError, match="32767"):
        _core.encode_request(17, 1, {"mechanism": "x" * 40000})
    with pytest.raises(TypeError, match="must be a dict"):
        _core.encode_request(3, 12, [])


def test_encode_accepts_bytes_like_values():
    a = _core.encode_request(36, 0, {"auth_bytes": b"xyz"})
    assert _core.encode_request(36, 0, {"auth_bytes": bytearray(b"xyz")}) == a
    assert _core.encode_request(36, 0,
                                {"auth_bytes": memoryview(b"xyz")}) == a
    # string fields take str or bytes (UTF-8)
    assert _core.encode_request(17, 0, {"mechanism": b"PLAIN"}) == \
        _core.encode_request(17, 0, {"mechanism": "PLAIN"})
    # arrays take lists or tuples
    assert _core.encode_request(15, 0, {"groups": ("a", "b")}) == \
        _core.encode_request(15, 0, {"groups": ["a", "b"]})


def test_unsupported_version_and_api():
    with pytest.raises(UnsupportedApiVersionError, match=r"Metadata v14.*0-13"):
        _core.encode_request(3, 14, {})
    with pytest.raises(UnsupportedApiVersionError, match="Produce v2"):
        _core.decode_response(0, 2, b"")
    with pytest.raises(ValueError, match="api key 4"):
        _core.encode_request(4, 0, {})


# --------------------------------------------------------- decode failures


def test_error_message_names_path_and_offset():
    d = kat.SAMPLES[(3, "response")]
    raw, _ = kat.build(3, "response", 12, d)
    # find where topics[0].partitions[1].leader_id starts: re-encode up to
    # there by hand with the kat encoder and compare offsets
    w = kat.W(12, True)
    w.i32("throttle_time_ms", d["throttle_time_ms"])
    w.arr("brokers", d["brokers"], lambda c, b: (
        c.i32("node_id", b["node_id"]), c.str("host", b["host"]),
        c.i32("port", b["port"]), c.str("rack", b["rack"])))
    w.str("cluster_id", d["cluster_id"]).i32("controller_id", 2)
    t0 = d["topics"][0]
    w.buf += kat.uvar(3)  # two topics
    w.buf += struct.pack(">h", 0) + kat.p_str("t0", True) + t0["topic_id"]
    w.buf += b"\x00" + kat.uvar(3)  # is_internal, two partitions
    p0 = t0["partitions"][0]
    w.buf += struct.pack(">hiii", 0, 0, 1, 5)
    w.buf += kat.uvar(3) + struct.pack(">ii", 1, 2)
    w.buf += kat.uvar(2) + struct.pack(">i", 1)
    w.buf += kat.uvar(2) + struct.pack(">i", 2) + b"\x00"
    w.buf += struct.pack(">hi", 9, 1)  # partitions[1]: error, index
    off = len(w.buf)
    assert raw[:off] == bytes(w.buf)
    cut = raw[:off + 2]
    with pytest.raises(ProtocolDecodeError) as ei:
        _core.decode_response(3, 12, cut)
    assert str(ei.value) == (
        "Metadata v12 response: truncated in field "
        "'topics[0].partitions[1].leader_id' at byte %d of %d"
        % (off, off + 2))
    del p0


@pytest.mark.parametrize("key,kind,v", kat.all_versions())
def test_every_prefix_fails(key, kind, v):
    raw, _ = kat.build(key, kind, v)
    for n in range(len(raw)):
        with pytest.raises(ProtocolDecodeError):
            decode(key, kind, v, raw[:n])


@pytest.mark.parametrize("key,kind,v", kat.all_versions())
def test_trailing_bytes_fail(key, kind, v):
    raw, _ = kat.build(key, kind, v)
    with pytest.raises(ProtocolDecodeError, match="trailing"):
        decode(key, kind, v, raw + b"\x00")


def bounded(fn, limit=256 * 1024):
    """Run fn under tracemalloc; return the peak bytes allocated."""
    tracemalloc.start()
    try:
        fn()
    finally:
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < limit, peak
    return peak


HOSTILE = [
    # (api, version, body, reason) - Metadata v0 response: brokers array
    (3, 0, struct.pack(">i", 2**31 - 1), "truncated"),
    (3, 0, struct.pack(">i", -2), "invalid"),
    (3, 0, struct.pack(">i", -1), "invalid"),  # not nullable
    (3, 0, struct.pack(">i", 1) + struct.pack(">i", 1) +
     struct.pack(">h", 0x7FFF) + b"ab" + bytes(8),
     r"truncated in field 'brokers\[0\]\.host'"),
    (3, 0, struct.pack(">i", 1) + struct.pack(">i", 1) +
     struct.pack(">h", -2) + bytes(8),
     r"invalid .* in field 'brokers\[0\]\.host'"),
    # Metadata v9 response (flexible): compact array count 2^32-1
    (3, 9, b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff\x0f", "invalid"),
    # compact count 1000 with 3 bytes behind it
    (3, 9, b"\x00\x00\x00\x00" + b"\xe9\x07" + bytes(3), "truncated"),
    # overlong varint count (6 bytes)
    (3, 9, b"\x00\x00\x00\x00" + b"\x80\x80\x80\x80\x80\x01",
     "overlong varint"),
    # tagged-field section with a huge count
    (18, 3, b"\x00\x00\x01\x00\x00\x00\x00" + b"\xff\xff\xff\xff\x0f",
     "truncated"),
    # tagged field with a size past the end
    (18, 3, b"\x00\x00\x01\x00\x00\x00\x00" + b"\x01\x01\xff\xff\x03",
     "truncated"),
    # known tagged field whose size does not match its value
    (18, 3, b"\x00\x00\x01\x00\x00\x00\x00" + b"\x01\x01\x09" + bytes(9),
     "invalid"),
    # duplicate known tag
    (18, 3, b"\x00\x00\x01\x00\x00\x00\x00" + b"\x02" + b"\x03\x01\x01" +
     b"\x03\x01\x00", "invalid"),
    # records length INT32_MAX in a Fetch v4 response
    (1, 4, struct.pack(">ii", 0, 1) + struct.pack(">h", 1) + b"t" +
     struct.pack(">i", 1) + struct.pack(">ihqq", 0, 0, 0, 0) +
     struct.pack(">i", -1) + struct.pack(">i", 2**31 - 1), "truncated"),
    # invalid UTF-8 in a string
    (17, 0, b"\x00\x00" + struct.pack(">i", 1) + b"\x00\x02\xff\xfe",
     "invalid"),
]


@pytest.mark.parametrize("key,v,body,reason", HOSTILE)
def test_hostile_input(key, v, body, reason):
    def run():
        with pytest.raises(ProtocolDecodeError, match=reason):
            _core.decode_response(key, v, body)
    bounded(run)


def test_hostile_count_with_bytes_behind_it_stays_bounded():
    # INT32_MAX replica_nodes with 64 KiB of data: the count is checked
    # against the bytes left before anything is allocated
    body = (struct.pack(">i", 0) + struct.pack(">i", 1) +
            struct.pack(">h", 0) + struct.pack(">h", 1) + b"t" +
            struct.pack(">i", 1) + struct.pack(">hii", 0, 0, 0) +
            struct.pack(">i", 2**31 - 1) + bytes(65536))
    bounded(lambda: pytest.raises(ProtocolDecodeError,
                                  _core.decode_response, 3, 0, body))


# ----------------------------------------------------- hypothesis round trip

INT_BOUNDS = {
    "int8": (-2**7, 2**7 - 1), "int16": (-2**15, 2**15 - 1),
    "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1),
    "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1),
}


def _vers(text):
    return gen_proto.parse_versions(text, "test") or (0, -1)


def _in(v, rng):
    return rng[0] <= v <= rng[1]


def _load_specs():
    specs = {}
    for fn in os.listdir(os.path.join(ROOT, "csrc", "gen", "message")):
        if not fn.endswith(".json"):
            continue
        spec = gen_proto.load_spec(os.path.join(ROOT, "csrc", "gen",
                                                "message", fn))
        if spec["type"] in ("request", "response"):
            specs[(spec["apiKey"], spec["type"])] = spec
    return specs


SPECS = _load_specs()


def strategy_for(spec, v, flex):
    common = {c["name"]: c["fields"] for c in spec.get("commonStructs", [])}
    known = {}

    def struct_(fields):
        d = {}
        for f in fields:
            if _in(v, _vers(f["versions"])):
                d[gen_proto.snake(f["name"])] = field(f)
        return st.fixed_dictionaries(d)

    def value(base, f):
        if base in INT_BOUNDS:
            return st.integers(*INT_BOUNDS[base])
        if base == "bool":
            return st.booleans()
        if base == "float64":
            return st.floats(allow_nan=False)
        if base == "uuid":
            return st.binary(min_size=16, max_size=16)
        if base == "string":
            return st.text(max_size=12)
        if base in ("bytes", "records"):
            return st.binary(max_size=24)
        if "fields" in f:
            known[base] = f["fields"]
            return struct_(f["fields"])
        return struct_(known.get(base) or common[base])

    def field(f):
        t = f["type"]
        nullable = _in(v, _vers(f.get("nullableVersions")))
        if t.startswith("[]"):
            s = st.lists(value(t[2:], f), max_size=3)
        else:
            s = value(t, f)
        if nullable:
            s = st.none() | s
        return s

    return struct_(spec["fields"])


def _hypothesis_cases():
    return kat.all_versions()


@pytest.mark.parametrize("key,kind,v", _hypothesis_cases())
def test_round_trip(key, kind, v):
    strat = strategy_for(SPECS[(key, kind)], v, kat.is_flexible(key, v))

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(strat)
    def check(d):
        raw = encode(key, kind, v, d)
        back = decode(key, kind, v, raw)
        assert back == d
        assert encode(key, kind, v, back) == raw

    check()


@pytest.mark.parametrize("key,kind,v", [
    (3, "response", 0), (3, "response", 12), (1, "response", 4),
    (1, "response", 16), (18, "response", 3), (9, "response", 8),
    (19, "response", 5), (0, "response", 10)])
def test_random_bytes_never_crash(key, kind, v):
    @settings(max_examples=EXAMPLES * 20, deadline=None, database=None)
    @given(st.binary(max_size=96))
    def check(data):
        try:
            d = decode(key, kind, v, data)
        except ProtocolDecodeError:
            return
        # whatever decodes must re-encode to a message that decodes the
        # same way
        assert decode(key, kind, v, encode(key, kind, v, d)) == d

    check()


def test_decode_accepts_buffers():
    raw, d = kat.build(3, "response", 12)
    assert _core.decode_response(3, 12, bytearray(raw)) == d
    assert _core.decode_response(3, 12, memoryview(raw)) == d


def _fetch_v12(records):
    return _core.encode_response(1, 12, {
        "throttle_time_ms": 0, "error_code": 0, "session_id": 0,
        "responses": [{"topic": "t", "partitions": [
            {"partition_index": i, "error_code": 0, "high_watermark": 5,
             "last_stable_offset": 5, "log_start_offset": 0,
             "aborted_transactions": None, "preferred_read_replica": -1,
             "records": r} for i, r in enumerate(records)]}]})


def test_records_are_views_of_bytes_input():
    blob = _core.encode_record_batch([(b"v%d" % i, None, 1000, [])
                                      for i in range(3)])
    raw = _fetch_v12([blob, b"", None, blob[:10]])
    parts = _core.decode_response(1, 12, raw)["responses"][0]["partitions"]
    recs = [p["records"] for p in parts]
    assert recs[2] is None
    for r, want in zip(recs[:2] + recs[3:], [blob, b"", blob[:10]]):
        assert isinstance(r, memoryview) and r.readonly and r.obj is raw
        assert r == want and bytes(r) == want
    # it is the very memory of the input: no copy, and it keeps it alive
    where = raw.index(blob)
    assert recs[0] == memoryview(raw)[where:where + len(blob)]
    del raw, parts
    assert [m.value for m in _core.decode_records(recs[0])] == [
        b"v0", b"v1", b"v2"]
    # a Produce request decoded for tests: the same
    req = _core.encode_request(0, 3, {
        "transactional_id": None, "acks": 1, "timeout_ms": 1000,
        "topic_data": [{"name": "t", "partition_data": [
            {"index": 0, "records": blob}]}]})
    got = _core.decode_request(0, 3, req)
    r = got["topic_data"][0]["partition_data"][0]["records"]
    assert isinstance(r, memoryview) and r.obj is req and r == blob


def test_records_of_mutable_input_are_copies():
    blob = _core.encode_record_batch([(b"v", None, 1000, [])])
    raw = bytearray(_fetch_v12([blob]))
    for data in (raw, memoryview(raw)):
        r = _core.decode_response(1, 12, data)[
            "responses"][0]["partitions"][0]["records"]
        assert type(r) is bytes and r == blob
    raw[:] = bytes(len(raw))
    assert r == blob


def test_no_reference_leaks():
    raw, d = kat.build(1, "response", 12)
    gettotal = getattr(sys, "gettotalrefcount", None)
    for _ in range(50):
        _core.decode_response(1, 12, raw)
        _core.encode_response(1, 12, d)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(2000):
            _core.decode_response(1, 12, raw)
            _core.encode_response(1, 12, d)
            try:
                _core.decode_response(1, 12, raw[:-3])
            except ProtocolDecodeError:
                pass
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 64 * 1024, growth
    if gettotal is not None:  # debug builds: exact
        t0 = gettotal()
        for _ in range(100):
            _core.decode_response(1, 12, raw)
        assert gettotal() - t0 < 50


# ---------------------------------------------------------- real broker
# Plain sockets (the Connection type lives elsewhere): frame = int32 size,
# request header v1/v2 (client_id is always a classic int16 string, v2 adds
# an empty tagged-field section), body from _core.encode_request.


def _exchange(sock, key, v, body, corr):
    cid = b"pykafka_c-test"
    header = struct.pack(">hhih", key, v, corr, len(cid)) + cid
    if _core.request_header_version(key, v) == 2:
        header += b"\x00"
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)

    def recv_exact(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "broker closed the connection"
            buf += chunk
        return bytes(buf)

    (size,) = struct.unpack(">i", recv_exact(4))
    resp = recv_exact(size)
    assert struct.unpack(">i", resp[:4])[0] == corr
    off = 4
    if _core.response_header_version(key, v) == 1:
        assert resp[4] == 0  # brokers send no header tags
        off = 5
    return resp[off:]


def _api_versions(sock):
    """KIP-511 negotiation: ask at our highest version; a broker that does
    not know it answers in v0 with UNSUPPORTED_VERSION (35) and its own
    ApiVersions range; ask again at the highest common version."""
    ours = _core.api_versions_table()[18]
    v = ours[2]
    body = _core.encode_request(18, v, {
        "client_software_name": "pykafka-c",
        "client_software_version": "0.1.0"})
    raw = _exchange(sock, 18, v, body, 1)
    try:
        resp = _core.decode_response(18, v, raw)
    except ProtocolDecodeError:
        resp = _core.decode_response(18, 0, raw)
    if resp["error_code"] == 35:
        theirs = {k["api_key"]: k for k in resp["api_keys"]}[18]
        v = min(v, theirs["max_version"])
        body = _core.encode_request(18, v, {
            "client_software_name": "pykafka-c",
            "client_software_version": "0.1.0"})
        resp = _core.decode_response(18, v, _exchange(sock, 18, v, body, 2))
    assert resp["error_code"] == 0
    return v, resp


def test_api_versions_and_metadata_against_broker(kafka, topic_name):
    host, port = kafka.brokers.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        av_version, resp = _api_versions(sock)
        broker = {k["api_key"]: (k["min_version"], k["max_version"])
                  for k in resp["api_keys"]}
        ours = _core.api_versions_table()
        # negotiated the highest ApiVersions version both sides know (on
        # 3.9 through the v0 UNSUPPORTED_VERSION answer)
        assert av_version == min(ours[18][2], broker[18][1])
        # every API pykafka_c has a spec for overlaps the broker's range
        for key, (name, lo, hi, _ff) in ours.items():
            assert key in broker, name
            assert max(lo, broker[key][0]) <= min(hi, broker[key][1]), name
        if av_version >= 3:
            assert isinstance(resp["supported_features"], list)
            assert resp["finalized_features_epoch"] >= -1

        mv = min(ours[3][2], broker[3][1])
        deadline = time.monotonic() + 60
        corr = 10
        while True:
            corr += 1
            body = _core.encode_request(3, mv, {
                "topics": [{"name": topic_name}],
                "allow_auto_topic_creation": True})
            md = _core.decode_response(3, mv,
                                       _exchange(sock, 3, mv, body, corr))
            (topic,) = md["topics"]
            if topic["error_code"] == 0 and topic["partitions"] and \
                    topic["partitions"][0]["leader_id"] >= 0:
                break
            assert time.monotonic() < deadline, md
            time.sleep(0.5)
        assert [b["port"] for b in md["brokers"]] == [int(port)]
        assert isinstance(md["cluster_id"], str) and md["cluster_id"]
        assert topic["name"] == topic_name
        assert len(topic["topic_id"]) == 16 and topic["topic_id"] != bytes(16)
        part = topic["partitions"][0]
        assert part["leader_id"] == md["brokers"][0]["node_id"]
        assert part["replica_nodes"] == [part["leader_id"]]
        assert part["isr_nodes"] == [part["leader_id"]]
        # what we decoded re-encodes to what the broker sent
        raw = _exchange(sock, 3, mv, body, corr + 1)
        again = _core.decode_response(3, mv, raw)
        assert _core.encode_response(3, mv, again) == raw
