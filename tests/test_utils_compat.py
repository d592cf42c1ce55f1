"""Unit tests of pykafka's utility modules as pykafka_c provides them:
utils (Serializable, ApiVersionAware, msg_protocol_version), utils.compression,
utils.struct_helpers, utils.error_handlers, utils.socket, handlers, and
pykafka_c.test.utils.retry.

Interop checks use producers other than the code under test: Python's gzip
module, libsnappy through ctypes, the ``lz4`` command line tool, and Kafka's
own Java LZ4 output for message format v0 (the fuzz seed
``java-kafka440-lz4-magic0-20lines``, see tests/test_compress.py)."""

import ctypes
import ctypes.util
import gzip
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections import namedtuple

import pytest

from pykafka_c import _core
from pykafka_c.exceptions import (CompressionError, LeaderNotAvailable,
                                  SocketDisconnectedError)
from pykafka_c.utils import compression as comp
from pykafka_c.utils.struct_helpers import unpack_from

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "csrc" / "fuzz" / "corpus" / "decompress"
XERIAL_HEADER = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"


def sample(n):
    """Compressible text of exactly n bytes."""
    line = b"record %06d value=%d\n"
    out = b"".join(line % (i, i * 7919 % 100000) for i in range(n // 20 + 1))
    return out[:n]


def java_text(lines):
    return "".join("record %06d value=%d\n" % (i, (i * 7919) % 100000)
                   for i in range(lines)).encode()


def libsnappy():
    name = ctypes.util.find_library("snappy")
    assert name, "libsnappy is needed for the snappy interop tests"
    lib = ctypes.CDLL(name)
    lib.snappy_uncompressed_length.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    lib.snappy_uncompress.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_size_t)]
    return lib


def snappy_uncompress(block):
    lib = libsnappy()
    n = ctypes.c_size_t(0)
    assert lib.snappy_uncompressed_length(block, len(block), ctypes.byref(n)) == 0
    buf = ctypes.create_string_buffer(max(n.value, 1))
    assert lib.snappy_uncompress(block, len(block), buf, ctypes.byref(n)) == 0
    return buf.raw[:n.value]


def lz4_tool(args, data):
    path = shutil.which("lz4")
    assert path, "the lz4 command is needed for this interop test (apt-get install lz4)"
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return subprocess.run([path] + args, input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=True, env=env).stdout


# ------------------------------------------------------------- compression

SIZES = [0, 1, 100, 32 * 1024, 32 * 1024 + 1, 200 * 1024]


@pytest.mark.parametrize("size", SIZES)
def test_gzip_round_trip_and_stdlib_interop(size):
    data = sample(size)
    enc = comp.encode_gzip(data)
    assert enc[:2] == b"\x1f\x8b"
    assert comp.decode_gzip(enc) == data
    assert gzip.decompress(enc) == data
    assert comp.decode_gzip(gzip.compress(data)) == data


@pytest.mark.parametrize("size", SIZES)
def test_snappy_raw_round_trip_is_one_libsnappy_block(size):
    data = sample(size)
    enc = comp.encode_snappy(data)
    assert not enc.startswith(b"\x82SNAPPY")
    assert snappy_uncompress(enc) == data
    assert comp.decode_snappy(enc) == data


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("blocksize", [1000, 32 * 1024])
def test_snappy_xerial_framing_and_round_trip(size, blocksize):
    data = sample(size)
    enc = comp.encode_snappy(data, xerial_compatible=True,
                             xerial_blocksize=blocksize)
    assert enc[:16] == XERIAL_HEADER
    # walk the chunks: each is [int32 length][raw block of <= blocksize]
    pos, out, chunks = 16, b"", 0
    while pos < len(enc):
        n = struct.unpack_from("!i", enc, pos)[0]
        block = enc[pos + 4:pos + 4 + n]
        assert len(block) == n > 0
        piece = snappy_uncompress(block)
        assert 0 < len(piece) <= blocksize
        out += piece
        pos += 4 + n
        chunks += 1
    assert out == data
    assert chunks == -(-size // blocksize)
    assert comp.decode_snappy(enc) == data


def test_snappy_xerial_defaults_and_bad_blocksize():
    data = sample(100000)
    assert comp.encode_snappy(data, True) == comp.encode_snappy(
        data, xerial_compatible=True, xerial_blocksize=32768)
    with pytest.raises(ValueError):
        comp.encode_snappy(data, True, 0)


def test_decode_snappy_reads_core_xerial():
    data = sample(70000)
    assert comp.decode_snappy(_core.compress("snappy", data)) == data


@pytest.mark.parametrize("size", SIZES)
def test_lz4_round_trip_and_frame_interop(size):
    data = sample(size)
    enc = comp.encode_lz4(data)
    assert enc[:4] == b"\x04\x22\x4d\x18"
    # FLG: version 01, independent blocks, no size, no checksums; BD 64 KiB
    assert enc[4:6] == b"\x60\x40"
    assert comp.decode_lz4(enc) == data
    assert comp.decode_lz4f(enc) == data
    assert _core.decompress("lz4", enc) == data
    assert lz4_tool(["-d", "-c", "-q"], enc) == data


def test_decode_lz4_reads_lz4_tool_frames():
    data = sample(150000)
    frame = lz4_tool(["-c", "-q", "--content-size"], data)
    assert comp.decode_lz4(frame) == data
    assert comp.decode_lz4_old_kafka(frame) == data


def test_xxh32_known_answers():
    # xxHash32 (seed 0) reference values
    assert comp._xxh32(b"") == 0x02CC5D05
    assert comp._xxh32(b"a") == 0x550D7456
    assert comp._xxh32(b"abc") == 0x32D153FF
    assert comp._xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F
    # the descriptor checksum of every frame the lz4 tool writes for FLG 0x60
    assert (comp._xxh32(b"\x60\x40") >> 8) & 0xFF == 0x82


def test_lz4_old_kafka_header_matches_kafka_java():
    v0 = (CORPUS / "java-kafka440-lz4-magic0-20lines").read_bytes()[1:]
    v2 = (CORPUS / "java-kafka440-lz4-20lines").read_bytes()[1:]
    data = java_text(20)
    enc = comp.encode_lz4_old_kafka(data)
    # Kafka's own magic-0 header: magic, FLG, BD, the "broken" checksum
    assert enc[:7] == v0[:7]
    assert enc[6] != v2[6]
    assert enc[6] == (comp._xxh32(enc[:6]) >> 8) & 0xFF
    # a strict frame reader refuses it, ours read it
    with pytest.raises(subprocess.CalledProcessError):
        lz4_tool(["-d", "-c", "-q"], enc)
    assert comp.decode_lz4_old_kafka(enc) == data
    assert comp.decode_lz4_old_kafka(v0) == data
    # with the standard checksum restored it is a valid frame again
    fixed = enc[:6] + v2[6:7] + enc[7:]
    assert lz4_tool(["-d", "-c", "-q"], fixed) == data
    # decode_lz4_old_kafka accepts a correct checksum too (as pykafka)
    assert comp.decode_lz4_old_kafka(comp.encode_lz4(data)) == data


@pytest.mark.parametrize("size", SIZES)
def test_lz4_old_kafka_round_trip(size):
    data = sample(size)
    assert comp.decode_lz4_old_kafka(comp.encode_lz4_old_kafka(data)) == data


def test_lz4_old_kafka_drops_content_size(tmp_path, monkeypatch):
    data = sample(5000)
    src = tmp_path / "in"
    src.write_bytes(data)
    frame = lz4_tool(["-c", "-q", "--content-size", "--no-frame-crc",
                      str(src)], None)
    assert frame[4] & 0x08, frame[:16].hex()
    # a frame with a content size read with old Kafka's checksum rule
    broken = bytearray(frame)
    broken[14] = (comp._xxh32(frame[:14]) >> 8) & 0xFF
    assert comp.decode_lz4_old_kafka(bytes(broken)) == data
    # the encoder strips a content size (old Kafka could not read one):
    # feed it such a frame in place of the C codec's output
    real = comp._core

    class Shim(object):
        @staticmethod
        def compress(codec, buff, *a):
            assert codec == 3
            return frame

        decompress = staticmethod(real.decompress)
    monkeypatch.setattr(comp, "_core", Shim)
    enc = comp.encode_lz4_old_kafka(data)
    assert not enc[4] & 0x08
    assert enc[:6] == frame[:4] + bytes([frame[4] & ~0x08]) + frame[5:6]
    assert enc[7:] == frame[15:]
    assert enc[6] == (comp._xxh32(enc[:6]) >> 8) & 0xFF
    assert comp.decode_lz4_old_kafka(enc) == data


def test_corrupt_input_raises_compression_error():
    with pytest.raises(CompressionError):
        comp.decode_gzip(b"\x1f\x8b not gzip at all")
    with pytest.raises(CompressionError):
        comp.decode_snappy(b"\xff\xff\xff\xff\x0f garbage")
    with pytest.raises(CompressionError):
        comp.decode_lz4(b"\x04\x22\x4d\x18\x60\x40\x00garbage")
    with pytest.raises(CompressionError):
        comp.decode_lz4_old_kafka(b"nope")


def test_decompressed_size_is_capped(monkeypatch):
    data = b"\0" * 100000
    monkeypatch.setattr(comp, "MAX_DECOMPRESSED_SIZE", 50000)
    for enc, dec in [(comp.encode_gzip, comp.decode_gzip),
                     (comp.encode_snappy, comp.decode_snappy),
                     (comp.encode_lz4, comp.decode_lz4)]:
        with pytest.raises(CompressionError):
            dec(enc(data))


def test_compression_accepts_bytes_like():
    data = sample(1000)
    for enc, dec in [(comp.encode_gzip, comp.decode_gzip),
                     (comp.encode_snappy, comp.decode_snappy),
                     (comp.encode_lz4, comp.decode_lz4)]:
        assert dec(enc(bytearray(data))) == data
        assert dec(memoryview(enc(memoryview(data)))) == data
    assert comp.decode_snappy(comp.encode_snappy(bytearray(data), True, 100)) == data


# ----------------------------------------------------------- struct_helpers

def test_unpack_from_basics():
    buff = struct.pack("!hhiq", 1, -2, 3, 1 << 40)
    assert unpack_from("hhiq", buff) == (1, -2, 3, 1 << 40)
    assert unpack_from("!h h i", buff) == (1, -2, 3)
    assert unpack_from("iq", buff, 4) == (3, 1 << 40)


def test_unpack_from_strings_and_bytes():
    buff = struct.pack("!h5si3s", 5, b"hello", 3, b"\x00\x01\x02")
    assert unpack_from("SY", buff) == (b"hello", b"\x00\x01\x02")
    assert unpack_from("S", struct.pack("!h", 0)) == (b"",)
    assert unpack_from("SYi", struct.pack("!hii", -1, -1, 7)) == (None, None, 7)


def test_unpack_from_arrays():
    buff = struct.pack("!iiii", 3, 10, 20, 30)
    assert unpack_from("[i]", buff) == [10, 20, 30]
    buff = struct.pack("!ih2sqh1sq", 2, 2, b"ab", 5, 1, b"c", 6)
    assert unpack_from("[Sq]", buff) == [(b"ab", 5), (b"c", 6)]
    buff = struct.pack("!h1sih2sh3s", 1, b"t", 2, 2, b"xy", 3, b"xyz")
    assert unpack_from("S[S]", buff) == (b"t", [b"xy", b"xyz"])
    # nested: topics with partition ids
    buff = struct.pack("!ih1siiih1si", 2, 1, b"a", 2, 0, 1, 1, b"b", 0)
    assert unpack_from("[S[i]]", buff) == [(b"a", [0, 1]), (b"b", [])]
    assert unpack_from("i[i]", struct.pack("!ii", 9, -1)) == (9, [])
    assert unpack_from("[i]", struct.pack("!i", 0)) == []


def test_unpack_from_truncated_and_malformed():
    with pytest.raises(struct.error):
        unpack_from("S", struct.pack("!h", 10) + b"abc")
    with pytest.raises(struct.error):
        unpack_from("Y", struct.pack("!i", -5))
    with pytest.raises(struct.error):
        unpack_from("[i]", struct.pack("!ii", 1000000, 1))
    with pytest.raises(struct.error):
        unpack_from("[i", struct.pack("!ii", 1, 1))
    with pytest.raises(struct.error):
        unpack_from("i]", struct.pack("!ii", 1, 1))


# ----------------------------------------------------------- error_handlers

PRes = namedtuple("PRes", ["err", "offset"])
Resp = namedtuple("Resp", ["topics"])


def test_build_parts_by_error_and_dispatch():
    from pykafka_c.utils.error_handlers import (build_parts_by_error,
                                                handle_partition_responses)
    resp = Resp({b"t": {0: PRes(0, 10), 1: PRes(6, -1), 2: PRes(6, -1),
                        3: PRes(0, 11), 9: PRes(1, -1)}})
    owned = {0: "p0", 1: "p1", 2: "p2", 3: "p3"}
    parts = build_parts_by_error(resp, owned)
    assert dict(parts) == {0: [("p0", PRes(0, 10)), ("p3", PRes(0, 11))],
                           6: [("p1", PRes(6, -1)), ("p2", PRes(6, -1))]}
    seen = {}
    got = handle_partition_responses(
        {6: lambda ps: seen.setdefault(6, ps)},
        response=resp, partitions_by_id=owned,
        success_handler=lambda ps: seen.setdefault(0, ps))
    assert got == parts
    assert seen == {0: parts[0], 6: parts[6]}
    # explicit parts_by_error, no success handler; unknown code -> KeyError
    calls = []
    handle_partition_responses({6: calls.append}, parts_by_error={0: ["x"], 6: ["y"]})
    assert calls == [["y"]]
    with pytest.raises(KeyError):
        handle_partition_responses({}, parts_by_error={5: ["z"]})
    assert dict(build_parts_by_error(resp, None)) == {}


def test_raise_error():
    from pykafka_c.utils.error_handlers import raise_error
    with pytest.raises(LeaderNotAvailable, match="why"):
        raise_error(LeaderNotAvailable, "why")


def test_valid_int_and_its_old_homes():
    from pykafka_c.utils.error_handlers import valid_int
    from pykafka_c import simpleconsumer, balancedconsumer
    assert simpleconsumer.valid_int is valid_int
    assert balancedconsumer._valid_int is valid_int
    assert valid_int(5) == 5
    assert valid_int(2.5) == 2.5
    assert valid_int(0, allow_zero=True) == 0
    assert valid_int(-3, allow_negative=True) == -3
    with pytest.raises(TypeError):
        valid_int("5")
    with pytest.raises(TypeError):
        valid_int(None)
    with pytest.raises(ValueError, match="nonzero"):
        valid_int(0)
    with pytest.raises(ValueError, match="nonnegative"):
        valid_int(-1, allow_zero=True)


# -------------------------------------------------------------------- socket

def test_recvall_into_reads_exactly_and_raises_on_eof():
    from pykafka_c.utils.socket import recvall_into
    a, b = socket.socketpair()
    try:
        buf = bytearray(10)

        def sender():
            for piece in (b"abc", b"defg", b"hij", b"rest"):
                a.sendall(piece)
                time.sleep(0.01)
        t = threading.Thread(target=sender)
        t.start()
        assert recvall_into(b, buf, 10) is buf
        assert buf == b"abcdefghij"
        t.join()
        small = bytearray(2)
        assert recvall_into(b, small, 4) == b"rest"
        a.sendall(b"xy")
        a.close()
        with pytest.raises(SocketDisconnectedError):
            recvall_into(b, bytearray(5), 5)
    finally:
        b.close()
        a.close()


# ------------------------------------------------------------------ handlers

def test_response_future_set_get_error_and_timeout():
    from pykafka_c.handlers import ResponseFuture, ThreadingHandler
    h = ThreadingHandler()
    f = ResponseFuture(h)
    threading.Timer(0.05, f.set_response, args=(b"payload",)).start()
    assert f.get(timeout=5) == b"payload"
    assert f.get(response_cls=lambda r, n: r * n, n=2) == b"payloadpayload"
    f = ResponseFuture(h)
    f.set_error(SocketDisconnectedError("gone"))
    with pytest.raises(SocketDisconnectedError, match="gone"):
        f.get()
    f = ResponseFuture(h)
    t0 = time.monotonic()
    with pytest.raises(AttributeError):
        f.get(timeout=0.05)
    assert time.monotonic() - t0 >= 0.04


def test_threading_handler_primitives_and_spawn():
    from pykafka_c.handlers import Handler, ThreadingHandler
    h = ThreadingHandler()
    assert isinstance(h, Handler)
    with pytest.raises(NotImplementedError):
        Handler().spawn(lambda: None)
    ev = h.Event()
    q = h.Queue()
    lock, rlock, sem = h.Lock(), h.RLock(), h.Semaphore(2)
    with lock, rlock, rlock, sem:
        pass
    t = h.spawn(lambda x: (q.put(x), ev.set()), args=(7,), name="w")
    assert ev.wait(5) and q.get(timeout=5) == 7
    t.join(5)
    assert t.daemon and t.name.endswith(": w")
    assert h.Socket is socket and issubclass(h.GaiError, h.SockErr)
    h.sleep(0)


def test_request_handler_serves_requests_in_order():
    from pykafka_c.handlers import RequestHandler, ThreadingHandler

    class Conn(object):
        host, port = "h", 1

        def __init__(self):
            self.sent = []

        def request(self, req):
            if req == "boom":
                raise SocketDisconnectedError("boom")
            self.sent.append(req)

        def response(self):
            return self.sent[-1] * 2

    conn = Conn()
    rh = RequestHandler(ThreadingHandler(), conn)
    rh.start()
    futures = [rh.request(i) for i in range(5)]
    assert rh.request("quiet", has_response=False) is None
    bad = rh.request("boom")
    assert [f.get(timeout=5) for f in futures] == [0, 2, 4, 6, 8]
    with pytest.raises(SocketDisconnectedError):
        bad.get(timeout=5)
    rh.stop()
    rh.t.join(5)
    assert not rh.t.is_alive()
    assert conn.sent == [0, 1, 2, 3, 4, "quiet"]


# --------------------------------------------------------- utils / retry

def test_api_version_aware_picks_highest_common_version(monkeypatch):
    from pykafka_c import utils
    from pykafka_c._responses import ApiVersionsSpec
    monkeypatch.setattr(utils, "VERSIONS_CACHE", {})

    class V0(object):
        pass

    class V1(object):
        pass

    class V2(object):
        pass

    class Req(utils.ApiVersionAware):
        API_KEY = 1

        @classmethod
        def get_versions(cls):
            return {0: V0, 1: V1, 2: V2}

    class Other(Req):
        pass

    class Third(Req):
        pass

    assert Req.get_version_impl({1: ApiVersionsSpec(1, 0, 1)}) is V1
    assert utils.VERSIONS_CACHE[Req] is V1
    # cached per class, process-wide (pykafka's behaviour)
    assert Req.get_version_impl({1: ApiVersionsSpec(1, 0, 5)}) is V1
    assert Other.get_version_impl({1: (0, 11)}) is V2
    assert Third.get_version_impl(None) is V0

    class Bare(utils.ApiVersionAware):
        pass
    with pytest.raises(AttributeError):
        Bare.get_version_impl({})


def test_serializable_and_msg_protocol_version():
    from pykafka_c.utils import Serializable, msg_protocol_version
    with pytest.raises(NotImplementedError):
        len(Serializable())
    with pytest.raises(NotImplementedError):
        Serializable().pack_into(bytearray(4), 0)
    assert Serializable.__slots__ == []
    for v, want in [("0.8.2", 0), ("0.9.0", 0), ("0.9.0.1", 0), ("0.10", 1),
                    ("0.10.0", 1), ("0.10.1.0", 1), ("1.0.0", 1), ("4.0.0", 1)]:
        assert msg_protocol_version(v) == want, v


def test_serialize_utf8_pair():
    from pykafka_c.utils import deserialize_utf8, serialize_utf8
    assert serialize_utf8("é", "k") == ("é".encode(), b"k")
    assert serialize_utf8(None, b"k") == (None, b"k")
    assert deserialize_utf8("é".encode(), None) == ("é", None)


def test_retry():
    from pykafka_c.test.utils import retry
    calls = []

    def eventually():
        calls.append(1)
        assert len(calls) >= 3
        return "done"

    assert retry(eventually, retry_time=5, wait_between_tries=0.01) == "done"
    assert len(calls) == 3

    def never():
        raise AssertionError("still no")
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="still no"):
        retry(never, retry_time=0.2, wait_between_tries=0.05)
    assert 0.2 <= time.monotonic() - t0 < 2

    def other():
        raise KeyError("x")
    with pytest.raises(KeyError):
        retry(other, retry_time=5)  # not retried
    n = []

    def key_then_ok():
        n.append(1)
        if len(n) < 2:
            raise KeyError("x")
        return len(n)
    assert retry(key_then_ok, retry_time=5, wait_between_tries=0.01,
                 exception_to_retry=KeyError) == 2
