"""Record decoding and encoding: RecordBatch v2 and legacy message sets.

Batches are checked against a reference encoder written below from the
RecordBatch v2 layout (kafka-broker.md section 5) with its own CRC-32C and
Python's zlib/gzip, independently of the C code.  The plain-C unit tests
(tests/c/test_records.c) are compiled and run by test_c_unit_tests.
"""

import gzip
import os
import struct
import subprocess
import sys
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cbuild
from pykafka_c import _core
from pykafka_c.exceptions import (CodecUnavailableError, CompressionError,
                                  CorruptRecordError, KafkaException,
                                  ProtocolDecodeError)
from pykafka_c.protocol import Message

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODECS = [0, 1, 2, 3, 4]
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20

# ------------------------------------------------------------ reference


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_T = _crc32c_table()


def crc32c_ref(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(n):
    u = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def vbytes(b):
    if b is None:
        return varint(-1)
    if isinstance(b, str):
        b = b.encode()
    return varint(len(b)) + b


def ref_record(ts_delta, offset_delta, key, value, headers=()):
    body = (b"\x00" + varint(ts_delta) + varint(offset_delta) + vbytes(key)
            + vbytes(value) + varint(len(headers))
            + b"".join(vbytes(k) + vbytes(v) for k, v in headers))
    return varint(len(body)) + body


def ref_batch(records, base_offset=0, attributes=0, producer_id=-1,
              producer_epoch=-1, base_sequence=-1, last_offset_delta=None,
              max_ts=None, count=None, blob=None, offset_deltas=None):
    """records: (value, key, timestamp, headers) tuples."""
    base_ts = records[0][2] if records else -1
    if blob is None:
        deltas = offset_deltas or range(len(records))
        blob = b"".join(ref_record(r[2] - base_ts, d, r[1], r[0], r[3])
                        for d, r in zip(deltas, records))
        if attributes & 7 == 1:
            blob = gzip.compress(blob)
    if max_ts is None:
        max_ts = max((r[2] for r in records), default=-1)
    if count is None:
        count = len(records)
    if last_offset_delta is None:
        last_offset_delta = count - 1
    after_crc = struct.pack(">hiqqqhii", attributes, last_offset_delta,
                            base_ts, max_ts, producer_id, producer_epoch,
                            base_sequence, count) + blob
    return (struct.pack(">qiib", base_offset, 9 + len(after_crc), -1, 2)
            + struct.pack(">I", crc32c_ref(after_crc)) + after_crc)


def fix_crc(batch):
    b = bytearray(batch)
    b[17:21] = struct.pack(">I", crc32c_ref(bytes(b[21:])))
    return bytes(b)


def lbytes(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def legacy(offset, value, key=None, magic=0, attributes=0, timestamp=0):
    body = struct.pack(">bb", magic, attributes)
    if magic == 1:
        body += struct.pack(">q", timestamp)
    body += lbytes(key) + lbytes(value)
    msg = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", offset, len(msg)) + msg


def summary(msgs):
    return [(m.offset, m.value, m.partition_key, m.timestamp, m.headers)
            for m in msgs]


def expected(records, base_offset=0, log_append_ts=None):
    return [(base_offset + i, r[0], r[1],
             log_append_ts if log_append_ts is not None else r[2],
             [(k, v) for k, v in r[3]])
            for i, r in enumerate(records)]


# ------------------------------------------------------------ strategies

header_key = st.text(alphabet=st.characters(blacklist_categories=("Cs",)),
                     max_size=8)
record = st.tuples(
    st.one_of(st.none(), st.binary(max_size=200)),
    st.one_of(st.none(), st.binary(max_size=40)),
    st.integers(0, 1 << 45),
    st.lists(st.tuples(header_key, st.one_of(st.none(),
                                             st.binary(max_size=20))),
             max_size=4),
)
records_st = st.lists(record, min_size=1, max_size=25)

# ------------------------------------------------------------ C unit tests


@pytest.mark.cprogram
def test_c_unit_tests(tmp_path):
    """Compile tests/c/test_records.c with -Werror and run it."""
    out = cbuild.run(cbuild.build("test_records", tmp_path, sanitize=False),
                     timeout=120)
    assert " 0 failures" in out


# ------------------------------------------------------------ encoding


def test_encode_matches_reference_single():
    recs = [(b"v", b"k", 1000, [])]
    assert _core.encode_record_batch(recs) == ref_batch(recs)


@settings(max_examples=150, deadline=None)
@given(records_st)
def test_encode_matches_reference(recs):
    assert _core.encode_record_batch(recs) == ref_batch(recs)


def test_encode_gzip_matches_reference_after_decompression():
    recs = [(b"value %d" % i, None, 5000 + i, [("h", b"x")])
            for i in range(50)]
    out = _core.encode_record_batch(recs, compression=1)
    assert out[21:23] == b"\x00\x01"
    plain = ref_batch(recs)
    # same header apart from length/crc/attributes, same records when
    # decompressed with Python's gzip
    assert out[23:61] == plain[23:61]
    assert gzip.decompress(out[61:]) == plain[61:]
    assert struct.unpack(">i", out[8:12])[0] == len(out) - 12
    assert struct.unpack(">I", out[17:21])[0] == crc32c_ref(out[21:])


def test_encode_producer_fields():
    out = _core.encode_record_batch([(b"a", None, 7, None)] * 3,
                                    producer_id=42, producer_epoch=5,
                                    base_sequence=17, transactional=True)
    attrs, lod, bts, mts, pid, epoch, seq, count = struct.unpack(
        ">hiqqqhii", out[21:61])
    assert (attrs, lod, bts, mts, pid, epoch, seq, count) == (
        ATTR_TRANSACTIONAL, 2, 7, 7, 42, 5, 17, 3)
    assert out[12:17] == b"\xff\xff\xff\xff\x02"


def test_encode_messages_and_tuples():
    m = Message(b"val", partition_key=b"key", timestamp=1234,
                headers=[("a", b"1"), (b"b", None)])
    m_none = Message(None)  # timestamp None: "now"
    out = _core.encode_record_batch([m, (bytearray(b"x"), memoryview(b"y"),
                                         99.9, None), m_none])
    msgs = _core.decode_records(out)
    assert summary(msgs[:2]) == [
        (0, b"val", b"key", 1234, [("a", b"1"), ("b", None)]),
        (1, b"x", b"y", 99, []),
    ]
    assert msgs[2].value is None and msgs[2].timestamp > 1_600_000_000_000


def test_encode_null_vs_empty():
    out = _core.encode_record_batch([(b"", None, 1, [("k", b"")]),
                                     (None, b"", 1, [("", None)])])
    assert summary(_core.decode_records(out)) == [
        (0, b"", None, 1, [("k", b"")]), (1, None, b"", 1, [("", None)])]


@pytest.mark.parametrize("bad,exc", [
    (["str value", None, 1, None], TypeError),
    ((u"str", None, 1, None), TypeError),
    ((b"v", None, "1", None), TypeError),
    ((b"v", None, 1, [("k",)]), TypeError),
    ((b"v", None, 1, [(None, b"x")]), TypeError),
    ((b"v", None, 1, [("k", 5)]), TypeError),
    ((b"v", None, 1), TypeError),
])
def test_encode_bad_records(bad, exc):
    with pytest.raises(exc):
        _core.encode_record_batch([bad])


def test_encode_arguments():
    with pytest.raises(ValueError):
        _core.encode_record_batch([])  # Kafka refuses empty batches
    with pytest.raises(ValueError):
        _core.encode_record_batch([(b"v", None, 1, None)], compression=9)
    with pytest.raises(ValueError):
        _core.encode_record_batch([(b"v" * 100, None, 1, None)] * 10,
                                  max_size=500)
    assert len(_core.encode_record_batch([(b"v" * 100, None, 1, None)] * 3,
                                         max_size=500)) <= 500


def test_encode_does_not_leak_references():
    value, key = b"some value", b"some key"
    before = (sys.getrefcount(value), sys.getrefcount(key))
    for _ in range(100):
        _core.encode_record_batch([(value, key, 1, [("h", value)])])
    assert (sys.getrefcount(value), sys.getrefcount(key)) == before


# ------------------------------------------------------------ round trips


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(records_st, st.sampled_from(CODECS))
def test_round_trip(recs, codec):
    out = _core.encode_record_batch(recs, compression=codec)
    assert out[22] & 7 == codec
    assert summary(_core.decode_records(out, partition_id=4)) == expected(recs)


@settings(max_examples=100, deadline=None)
@given(records_st, st.integers(0, 1 << 40), st.booleans())
def test_decode_reference_batches(recs, base, log_append):
    attrs = ATTR_LOG_APPEND_TIME if log_append else 0
    data = ref_batch(recs, base_offset=base, attributes=attrs,
                     max_ts=77 if log_append else None)
    msgs = _core.decode_records(data, partition_id=2)
    assert summary(msgs) == expected(recs, base, 77 if log_append else None)
    assert all(m.partition_id == 2 and m.protocol_version == 1
               and m.compression_type == 0 and m.partition is None
               for m in msgs)


def test_decode_buffer_types_and_many_records():
    recs = [(b"%d" % i, None, i, []) for i in range(10000)]
    data = _core.encode_record_batch(recs[:5000]) + \
        ref_batch(recs[5000:], base_offset=5000)
    assert len(data) > 64 * 1024  # decoded without the GIL, in chunks
    for buf in (data, bytearray(data), memoryview(data)):
        msgs = _core.decode_records(buf)
        assert [m.offset for m in msgs] == list(range(10000))
        assert msgs[9999].value == b"9999"
        assert msgs[5000].timestamp == 5000


# ------------------------------------------------------------ fetch rules


def _three_batches():
    a = [(b"a%d" % i, None, 10 + i, []) for i in range(3)]
    b = [(b"b%d" % i, b"k", 20 + i, [("h", b"v")]) for i in range(2)]
    c = [(b"c0", None, 30, [])]
    data = (ref_batch(a, base_offset=100) + ref_batch(b, base_offset=103)
            + ref_batch(c, base_offset=105, attributes=1))
    exp = expected(a, 100) + expected(b, 103) + expected(c, 105)
    return data, exp, [len(ref_batch(a)), len(ref_batch(b))]


def test_every_prefix_yields_whole_batches_only():
    data, exp, (la, lb) = _three_batches()
    ends = [la, la + lb, len(data)]
    for cut in range(len(data) + 1):
        whole = sum(1 for e in ends if e <= cut)
        n = [0, 3, 5, 6][whole]
        assert summary(_core.decode_records(data[:cut])) == exp[:n], cut


def test_fetch_offset_skips_earlier_records():
    data, exp, _ = _three_batches()
    for fetch_offset in range(99, 108):
        got = summary(_core.decode_records(data, fetch_offset=fetch_offset))
        assert got == [e for e in exp if e[0] >= fetch_offset]


def test_empty_batch_after_compaction():
    empty = ref_batch([], base_offset=50, count=0, last_offset_delta=4,
                      blob=b"")
    tail = ref_batch([(b"x", None, 1, [])], base_offset=55)
    assert summary(_core.decode_records(empty + tail)) == expected(
        [(b"x", None, 1, [])], 55)


def test_compacted_batch_with_gaps():
    recs = [(b"a", b"k1", 1, []), (b"b", b"k2", 2, [])]
    data = ref_batch(recs, base_offset=10, last_offset_delta=5,
                     offset_deltas=[1, 5])
    assert [m.offset for m in _core.decode_records(data)] == [11, 15]


def _marker(offset, pid, kind):
    # control record: key = version 0 + type, value = version 0 + epoch
    key = struct.pack(">hh", 0, kind)
    value = struct.pack(">hi", 0, 3)
    return ref_batch([(value, key, 9, [])], base_offset=offset,
                     attributes=ATTR_CONTROL | ATTR_TRANSACTIONAL,
                     producer_id=pid, producer_epoch=0)


def _txn(offset, pid, n, tag):
    recs = [(b"%s%d" % (tag, i), None, 5, []) for i in range(n)]
    return ref_batch(recs, base_offset=offset, attributes=ATTR_TRANSACTIONAL,
                     producer_id=pid, producer_epoch=0, base_sequence=0)


ABORT, COMMIT = 0, 1


def test_control_batches_never_delivered():
    data = _txn(0, 7, 2, b"t") + _marker(2, 7, COMMIT) + \
        ref_batch([(b"p", None, 1, [])], base_offset=3)
    assert [m.offset for m in _core.decode_records(data)] == [0, 1, 3]
    assert [m.offset for m in _core.decode_records(
        data, read_committed=True, aborted_transactions=[])] == [0, 1, 3]


def test_read_committed_drops_aborted_transactions():
    log = (_txn(0, 7, 2, b"x")           # 0-1 aborted
           + _txn(2, 8, 2, b"y")         # 2-3 committed
           + _marker(4, 7, ABORT)
           + _txn(5, 7, 1, b"z")         # 5: pid 7's next transaction
           + _marker(6, 8, COMMIT)
           + _marker(7, 7, COMMIT)
           + ref_batch([(b"n", None, 1, [])], base_offset=8))
    offsets = lambda **kw: [m.offset for m in _core.decode_records(log, **kw)]
    assert offsets() == [0, 1, 2, 3, 5, 8]
    assert offsets(read_committed=True,
                   aborted_transactions=[(7, 0)]) == [2, 3, 5, 8]
    # read_committed is a no-op without aborted transactions
    assert offsets(read_committed=True) == [0, 1, 2, 3, 5, 8]
    # the list is only used with read_committed
    assert offsets(aborted_transactions=[(7, 0)]) == [0, 1, 2, 3, 5, 8]
    # an abort for pid 8 starting at 2, but its marker is COMMIT: dropped
    # until a marker arrives, as the Java consumer does
    assert offsets(read_committed=True,
                   aborted_transactions=[(8, 2), (7, 0)]) == [5, 8]
    with pytest.raises(TypeError):
        _core.decode_records(log, read_committed=True,
                             aborted_transactions=[(7,)])


def test_log_append_time():
    recs = [(b"a", None, 100, []), (b"b", None, 200, [])]
    data = ref_batch(recs, attributes=ATTR_LOG_APPEND_TIME, max_ts=999)
    assert [m.timestamp for m in _core.decode_records(data)] == [999, 999]


# ------------------------------------------------------------ corruption


def test_crc_mismatch_raises_corrupt_record_error():
    data = _core.encode_record_batch([(b"value", b"key", 5, [("h", b"v")])])
    for i in range(21, len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(CorruptRecordError):
            _core.decode_records(bytes(bad))
    bad = bytearray(data)
    bad[17] ^= 1  # the stored CRC
    with pytest.raises(CorruptRecordError) as info:
        _core.decode_records(bytes(bad), partition_id=3)
    assert "partition 3" in str(info.value)
    # partitionLeaderEpoch is not covered by the CRC
    bad = bytearray(data)
    bad[12:16] = b"\x00\x00\x00\x07"
    assert len(_core.decode_records(bytes(bad))) == 1


def raw_rec(body):
    return varint(len(body)) + body


def _hostile_batches():
    good = [(b"value", b"key", 5, [("h", b"v")]), (b"v2", None, 6, [])]
    rec0 = ref_record(0, 0, b"key", b"value", [("h", b"v")])
    yield "count over records", ref_batch(good, count=3, last_offset_delta=2)
    yield "count under records", ref_batch(good, count=1, last_offset_delta=1)
    yield "huge count", ref_batch(good, count=0x7FFFFFFF,
                                  last_offset_delta=0x7FFFFFFE)
    yield "negative count", ref_batch(good, count=-1, last_offset_delta=1)
    yield "count > lastOffsetDelta + 1", ref_batch(good, last_offset_delta=0)
    yield "negative lastOffsetDelta", ref_batch(good, last_offset_delta=-5)
    yield "offsetDelta past lastOffsetDelta", ref_batch(
        good, offset_deltas=[0, 9])
    yield "negative offsetDelta", ref_batch(good, offset_deltas=[0, -1])
    yield "huge record length", ref_batch(
        good, blob=varint(0x7FFFFFFF) + rec0[1:])
    yield "negative record length", ref_batch(good[:1],
                                              blob=varint(-7) + rec0[1:])
    yield "record longer than its fields", ref_batch(
        good[:1], blob=varint(len(rec0)) + rec0[1:] + b"\x00")
    yield "overlong varint", ref_batch(
        good[:1], blob=varint(11) + b"\x00" + b"\xff" * 10)
    yield "key length -2", ref_batch(
        good[:1], blob=raw_rec(b"\x00\x00\x00" + varint(-2) + b"\x00\x00"))
    yield "huge header count", ref_batch(
        good[:1], blob=raw_rec(b"\x00\x00\x00\x01\x01" + varint(1 << 30)))
    yield "null header key", ref_batch(
        good[:1], blob=varint(8) + b"\x00\x00\x00\x01\x01\x02\x01\x01")
    yield "truncated gzip blob", ref_batch(
        good, attributes=1, blob=gzip.compress(rec0)[:-9])
    yield "garbage compressed", ref_batch(good, attributes=4, blob=b"junk" * 9)
    yield "magic 3", fix_crc(ref_batch(good)[:16] + b"\x03"
                             + ref_batch(good)[17:])
    yield "batchLength < header", struct.pack(">qi", 0, 40) + b"\x00" * 4 \
        + b"\x02" + b"\x00" * 36
    yield "batchLength < 14", struct.pack(">qi", 0, 13) + b"\x00" * 13


@pytest.mark.parametrize("name,data", list(_hostile_batches()))
def test_hostile_batches_raise_typed_errors(name, data):
    with pytest.raises((ProtocolDecodeError, CompressionError)) as info:
        _core.decode_records(data)
    assert not isinstance(info.value, CodecUnavailableError)


def test_error_message_names_field_and_offset():
    good = [(b"value", b"key", 5, [])]
    data = ref_batch(good, base_offset=1) + ref_batch(
        good, base_offset=2, offset_deltas=[3])
    with pytest.raises(ProtocolDecodeError) as info:
        _core.decode_records(data, partition_id=9)
    msg = str(info.value)
    assert "offsetDelta" in msg and "offset 2" in msg and "partition 9" in msg


def test_decompression_cap():
    recs = [(b"\x00" * 1000, None, 1, [])] * 1000
    raw = len(ref_batch(recs)) - 61
    for codec in CODECS[1:]:
        data = _core.encode_record_batch(recs, compression=codec)
        assert len(data) < raw // 10
        assert len(_core.decode_records(data, max_decompressed=raw)) == 1000
        with pytest.raises(CompressionError):
            _core.decode_records(data, max_decompressed=raw - 1)
        with pytest.raises(CompressionError):
            _core.decode_records(data + data, max_total_decompressed=raw + 5)
        assert len(_core.decode_records(
            data + data, max_total_decompressed=2 * raw)) == 2000


def test_gzip_bomb_bounded():
    blob = gzip.compress(b"\x00" * (16 << 20), 9)  # 16 MiB of zeros
    data = ref_batch([(b"x", None, 1, [])], attributes=1, blob=blob)
    with pytest.raises(CompressionError):
        _core.decode_records(data, max_decompressed=1 << 20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_crashes(data):
    try:
        msgs = _core.decode_records(data)
    except (ProtocolDecodeError, CompressionError):
        return
    assert isinstance(msgs, list)


@settings(max_examples=300, deadline=None)
@given(records_st, st.sampled_from(CODECS), st.data())
def test_mutated_batches_never_crash(recs, codec, data):
    batch = bytearray(_core.encode_record_batch(recs, compression=codec))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(batch) - 1))
        batch[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        batch = bytearray(fix_crc(bytes(batch)))
    try:
        _core.decode_records(bytes(batch), max_decompressed=1 << 20)
    except KafkaException as e:
        assert isinstance(e, (ProtocolDecodeError, CompressionError))


# ------------------------------------------------------------ legacy


def test_legacy_v0_and_v1():
    data = (legacy(5, b"v", b"k")
            + legacy(6, b"vv", None, magic=1, timestamp=2000)
            + legacy(7, None, b"", magic=1, attributes=ATTR_LOG_APPEND_TIME,
                     timestamp=3000))
    msgs = _core.decode_records(data, partition_id=1)
    assert summary(msgs) == [(5, b"v", b"k", -1, []),
                             (6, b"vv", None, 2000, []),
                             (7, None, b"", 3000, [])]
    assert [m.protocol_version for m in msgs] == [0, 1, 1]
    assert msgs[0].timestamp_dt is None
    # every prefix: the complete messages only, never an error
    sizes = [len(legacy(5, b"v", b"k")),
             len(legacy(6, b"vv", None, magic=1, timestamp=2000))]
    for cut in range(len(data)):
        n = (cut >= sizes[0]) + (cut >= sizes[0] + sizes[1])
        assert len(_core.decode_records(data[:cut])) == n


def test_legacy_crc_checked():
    data = bytearray(legacy(5, b"value", b"k"))
    data[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        _core.decode_records(bytes(data))


def _wrapper(offset, inner, magic, attributes=1, timestamp=0):
    return legacy(offset, gzip.compress(inner), None, magic=magic,
                  attributes=attributes, timestamp=timestamp)


def test_legacy_compressed_magic1_relative_offsets():
    # magic 1: inner offsets 0..n-1, the wrapper holds the last absolute
    inner = b"".join(legacy(i, b"m%d" % i, None, magic=1, timestamp=100 + i)
                     for i in range(3))
    data = _wrapper(12, inner, 1, timestamp=500)
    assert summary(_core.decode_records(data)) == [
        (10, b"m0", None, 100, []), (11, b"m1", None, 101, []),
        (12, b"m2", None, 102, [])]
    assert [m.offset for m in _core.decode_records(data, fetch_offset=11)] \
        == [11, 12]
    # LogAppendTime wrapper: its timestamp for all inner messages
    data = _wrapper(12, inner, 1, attributes=1 | ATTR_LOG_APPEND_TIME,
                    timestamp=500)
    assert [m.timestamp for m in _core.decode_records(data)] == [500] * 3


def test_legacy_compressed_magic0_absolute_offsets():
    inner = b"".join(legacy(20 + i, b"m%d" % i) for i in range(2))
    data = _wrapper(21, inner, 0) + legacy(22, b"after")
    assert [(m.offset, m.value) for m in _core.decode_records(data)] == [
        (20, b"m0"), (21, b"m1"), (22, b"after")]


def test_legacy_nested_compression_refused():
    inner = _wrapper(0, legacy(0, b"x"), 0)
    with pytest.raises(ProtocolDecodeError):
        _core.decode_records(_wrapper(0, inner, 0))


def test_legacy_then_v2():
    data = legacy(1, b"old") + ref_batch([(b"new", None, 9, [])],
                                         base_offset=2)
    assert [(m.offset, m.value) for m in _core.decode_records(data)] == [
        (1, b"old"), (2, b"new")]
