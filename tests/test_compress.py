"""Tests of the record-batch codecs: _core.compress / decompress /
codec_available / available_codecs (csrc/py/compress.c over
csrc/wire/compress.c).

Interop vectors come from other producers: Python's gzip module, libsnappy
(through ctypes) and hand-made snappy blocks, the lz4 and zstd command line
tools, and Kafka's own Java codecs.  The Java vectors are the
``java-kafka440-*`` files of the fuzz seed corpus
(csrc/fuzz/corpus/decompress/, first byte = codec id): the output of
kafka-clients 4.4.0 ``Compression.<codec>().build().wrapForOutput(buffer,
magic)`` (magic 2; magic 0 for the lz4 frame with the old header checksum)
over ``java_text(lines)`` below.  The reverse direction (Kafka's
``wrapForInput`` reading our output) was checked when they were made; the
broker interop tests repeat it end to end.

The plain-C tests (tests/c/test_compress.c) are compiled and run from here,
once with every codec and once with none but gzip.
"""

import ctypes
import ctypes.util
import gzip
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cbuild
from pykafka_c import _core
from pykafka_c.exceptions import CodecUnavailableError, CompressionError

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "csrc" / "fuzz" / "corpus" / "decompress"

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
CODECS = {"none": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
COMPRESSED = [GZIP, SNAPPY, LZ4, ZSTD]
ALL = [NONE] + COMPRESSED
NAMES = {v: k for k, v in CODECS.items()}

KiB = 1024
MiB = 1024 * 1024
XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + b"\x00\x00\x00\x01\x00\x00\x00\x01"


def java_text(lines):
    """The text the Java vectors were made from."""
    return "".join(
        "record %06d value=%d\n" % (i, (i * 7919) % 100000) for i in range(lines)
    ).encode()


def text(n):
    """Text-like data of exactly n bytes."""
    lines = n // 20 + 1
    return java_text(lines)[:n]


def tool_env():
    """Environment for external tools: without the sanitizer preload that
    scripts/sanitize-tests.sh puts in place for Python."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def need_tool(name):
    path = shutil.which(name)
    assert path, (
        "the %r command is needed for this interop test: "
        "apt-get install %s" % (name, name)
    )
    return path


def run_tool(args, data=None):
    need_tool(args[0])
    return subprocess.run(
        args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        check=True, env=tool_env(),
    ).stdout


def libsnappy():
    name = ctypes.util.find_library("snappy")
    assert name, "libsnappy is needed for the snappy interop tests (libsnappy1v5)"
    lib = ctypes.CDLL(name)
    lib.snappy_max_compressed_length.restype = ctypes.c_size_t
    lib.snappy_max_compressed_length.argtypes = [ctypes.c_size_t]
    lib.snappy_compress.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_size_t)]
    lib.snappy_uncompress.argtypes = lib.snappy_compress.argtypes
    lib.snappy_uncompressed_length.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    return lib


def snappy_raw(lib, data):
    n = ctypes.c_size_t(lib.snappy_max_compressed_length(len(data)))
    buf = ctypes.create_string_buffer(n.value)
    assert lib.snappy_compress(data, len(data), buf, ctypes.byref(n)) == 0
    return buf.raw[: n.value]


def snappy_unraw(lib, block):
    n = ctypes.c_size_t(0)
    assert lib.snappy_uncompressed_length(block, len(block), ctypes.byref(n)) == 0
    buf = ctypes.create_string_buffer(max(n.value, 1))
    assert lib.snappy_uncompress(block, len(block), buf, ctypes.byref(n)) == 0
    return buf.raw[: n.value]


def xerial_chunks(stream):
    """Split our xerial stream into its raw chunks (checking the framing)."""
    assert stream[:16] == XERIAL_HEADER
    pos, chunks = 16, []
    while pos < len(stream):
        n = int.from_bytes(stream[pos:pos + 4], "big")
        assert 0 < n <= len(stream) - pos - 4
        chunks.append(stream[pos + 4:pos + 4 + n])
        pos += 4 + n
    return chunks


# ------------------------------------------------------------ availability


@pytest.mark.unit
def test_every_codec_is_built():
    # The development and CI images have zlib, libsnappy, liblz4 and libzstd
    # headers; a build that silently lost one would fail here.
    assert _core.available_codecs() == ("none", "gzip", "snappy", "lz4", "zstd"), (
        "install zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev and rebuild")
    for name, cid in CODECS.items():
        assert _core.codec_available(cid) is True
        assert _core.codec_available(name) is True
    # a missing codec is a CompressionError too, so one except clause covers both
    assert issubclass(CodecUnavailableError, CompressionError)


@pytest.mark.unit
def test_unknown_codecs():
    for cid in (-1, 5, 7, 2**40):
        assert _core.codec_available(cid) is False
    with pytest.raises(ValueError, match="unknown compression codec 'brotli'"):
        _core.codec_available("brotli")
    with pytest.raises(ValueError, match="unknown compression codec 5"):
        _core.compress(5, b"x")
    with pytest.raises(ValueError, match="unknown compression codec 7"):
        _core.decompress(7, b"x")
    with pytest.raises(TypeError):
        _core.compress(1.0, b"x")
    with pytest.raises(TypeError):
        _core.compress(GZIP, "not bytes")
    with pytest.raises(ValueError, match="max_size"):
        _core.decompress(GZIP, b"x", max_size=-1)


@pytest.mark.unit
def test_signatures():
    import inspect

    assert str(inspect.signature(_core.compress)) == "(codec, data, level=-1)"
    assert str(inspect.signature(_core.decompress)) == (
        "(codec, data, max_size=%d)" % _core.DECOMPRESS_MAX_DEFAULT)
    assert str(inspect.signature(_core.codec_available)) == "(codec, /)"
    assert str(inspect.signature(_core.available_codecs)) == "()"
    assert _core.DECOMPRESS_MAX_DEFAULT == 64 * MiB


# -------------------------------------------------------------- round trips

SIZES = [0, 1, 100, 32 * KiB - 1, 32 * KiB, 32 * KiB + 1,
         64 * KiB - 1, 64 * KiB, 64 * KiB + 1, MiB]


@pytest.mark.unit
@pytest.mark.parametrize("codec", ALL, ids=NAMES.get)
@pytest.mark.parametrize("size", SIZES)
def test_roundtrip_sizes(codec, size):
    for data in (text(size), os.urandom(size)):
        z = _core.compress(codec, data)
        assert type(z) is bytes
        # the cap exactly at the size, and one above, succeed
        assert _core.decompress(codec, z, max_size=size) == data
        assert _core.decompress(codec, z, max_size=size + 1) == data
        assert _core.decompress(codec, z) == data
        if size:
            with pytest.raises(CompressionError, match="limit of %d bytes" % (size - 1)):
                _core.decompress(codec, z, max_size=size - 1)


@pytest.mark.unit
@pytest.mark.parametrize("codec", ALL, ids=NAMES.get)
def test_names_work_like_ids_and_buffers_are_accepted(codec):
    data = text(5000)
    name = NAMES[codec]
    z = _core.compress(name, bytearray(data))
    assert _core.decompress(codec, memoryview(z)) == data
    assert _core.decompress(name, bytearray(z)) == data
    assert _core.compress(codec, memoryview(data)[:100]) == _core.compress(codec, data[:100])
    with pytest.raises((TypeError, BufferError)):
        _core.compress(codec, memoryview(data)[::2])


@pytest.mark.unit
def test_incompressible_data_round_trips_for_every_codec():
    data = os.urandom(300 * KiB)
    for codec in ALL:
        z = _core.compress(codec, data)
        # incompressible data must not blow up: stored blocks / raw chunks
        assert len(z) < len(data) * 1.01 + 64, (NAMES[codec], len(z))
        assert _core.decompress(codec, z, max_size=len(data)) == data


def compressible():
    """Byte strings with repeats, up to ~300 KiB."""
    part = st.tuples(st.binary(min_size=1, max_size=64), st.integers(1, 400))
    return st.lists(part, max_size=12).map(lambda ps: b"".join(p * n for p, n in ps))


@pytest.mark.unit
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(codec=st.sampled_from(ALL),
       data=st.one_of(st.binary(max_size=70000), compressible()),
       level=st.sampled_from([-1, 1, 3, 9]))
def test_roundtrip_property(codec, data, level):
    z = _core.compress(codec, data, level=level)
    assert _core.decompress(codec, z, max_size=len(data)) == data
    if data:
        with pytest.raises(CompressionError):
            _core.decompress(codec, z, max_size=len(data) - 1)


# ------------------------------------------------------------------ levels


@pytest.mark.unit
def test_gzip_levels_are_zlib_levels_and_default_is_6():
    data = text(200 * KiB)

    def zlib_gzip(level):
        co = zlib.compressobj(level, zlib.DEFLATED, 31)
        return co.compress(data) + co.flush()

    assert zlib.ZLIB_RUNTIME_VERSION  # same shared libz as the extension
    for level in range(1, 10):
        assert _core.compress(GZIP, data, level) == zlib_gzip(level)
    # Kafka's default is Deflater.DEFAULT_COMPRESSION, which zlib runs as 6
    assert _core.compress(GZIP, data) == zlib_gzip(6)
    assert _core.compress(GZIP, data, level=-1) == zlib_gzip(6)
    for bad in (0, 10, -2):
        with pytest.raises(ValueError, match="gzip: compression level out of range"):
            _core.compress(GZIP, data, bad)


@pytest.mark.unit
def test_lz4_levels_follow_kafka():
    data = text(300 * KiB)
    fast = _core.compress(LZ4, data)
    # Kafka's default lz4 level (9) is lz4-java's fast compressor
    assert _core.compress(LZ4, data, 9) == fast
    hc = _core.compress(LZ4, data, 10)
    assert hc != fast and len(hc) < len(fast)
    for level in (1, 12, 17):
        assert _core.decompress(LZ4, _core.compress(LZ4, data, level)) == data
    for bad in (0, 18, -3):
        with pytest.raises(ValueError, match="lz4: compression level out of range"):
            _core.compress(LZ4, data, bad)


@pytest.mark.unit
def test_zstd_levels_and_default_3():
    data = text(300 * KiB)
    assert _core.compress(ZSTD, data) == _core.compress(ZSTD, data, 3)
    assert _core.compress(ZSTD, data, 1) != _core.compress(ZSTD, data, 3)
    for level in (-5, 1, 19, 22):
        assert _core.decompress(ZSTD, _core.compress(ZSTD, data, level)) == data
    with pytest.raises(ValueError, match="zstd: compression level out of range"):
        _core.compress(ZSTD, data, 23)


# ----------------------------------------------------------- our framings


@pytest.mark.unit
def test_gzip_output_is_rfc1952():
    data = text(100 * KiB)
    z = _core.compress(GZIP, data)
    assert z[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(z) == data


@pytest.mark.unit
def test_snappy_output_is_xerial_with_32k_chunks():
    lib = libsnappy()
    data = text(100 * KiB)
    chunks = xerial_chunks(_core.compress(SNAPPY, data))
    plain = [snappy_unraw(lib, c) for c in chunks]
    assert [len(p) for p in plain] == [32 * KiB, 32 * KiB, 32 * KiB, 4 * KiB]
    assert b"".join(plain) == data
    # no data: the header alone, as snappy-java writes it
    assert _core.compress(SNAPPY, b"") == XERIAL_HEADER


@pytest.mark.unit
def test_lz4_output_is_a_kafka_frame():
    data = text(200 * KiB)
    z = _core.compress(LZ4, data)
    assert z[:4] == b"\x04\x22\x4d\x18"  # magic 0x184D2204, little-endian
    # FLG: version 01, independent blocks, no block checksum, no content size,
    # no content checksum, no dictionary id; BD: 64 KiB blocks
    assert z[4] == 0x60 and z[5] == 0x40
    assert z[-4:] == b"\x00\x00\x00\x00"  # end mark, no content checksum
    assert run_tool(["lz4", "-d", "-c", "-q"], z) == data


@pytest.mark.unit
def test_zstd_output_decodes_with_the_cli():
    data = text(200 * KiB)
    assert run_tool(["zstd", "-d", "-c", "-q"], _core.compress(ZSTD, data)) == data


# ------------------------------------------------- other producers' framing


@pytest.mark.unit
def test_java_kafka_vectors_decode():
    files = sorted(CORPUS.glob("java-kafka440-*"))
    names = {f.name for f in files}
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        for lines in (0, 20, 3000):
            assert "java-kafka440-%s-%dlines" % (codec, lines) in names
    assert "java-kafka440-lz4-magic0-20lines" in names
    for f in files:
        raw = f.read_bytes()
        lines = int(f.name.rsplit("-", 1)[1][: -len("lines")])
        want = java_text(lines)
        assert _core.decompress(raw[0], raw[1:], max_size=len(want)) == want, f.name


@pytest.mark.unit
def test_java_snappy_vector_is_xerial_and_lz4_magic0_has_old_checksum():
    snappy = (CORPUS / "java-kafka440-snappy-3000lines").read_bytes()[1:]
    assert len(xerial_chunks(snappy)) == 3
    lz4_v2 = (CORPUS / "java-kafka440-lz4-20lines").read_bytes()[1:]
    lz4_v0 = (CORPUS / "java-kafka440-lz4-magic0-20lines").read_bytes()[1:]
    # same frame except the header checksum byte
    assert lz4_v2[:6] == lz4_v0[:6] and lz4_v2[6] != lz4_v0[6]
    assert lz4_v2[7:] == lz4_v0[7:]
    # the CLI (a strict frame reader) refuses the old checksum that we accept
    with pytest.raises(subprocess.CalledProcessError):
        run_tool(["lz4", "-d", "-c", "-q"], lz4_v0)
    assert _core.decompress(LZ4, lz4_v0) == java_text(20)


@pytest.mark.unit
def test_every_seed_decodes():
    seeds = sorted(CORPUS.iterdir())
    assert len(seeds) >= 30
    for f in seeds:
        raw = f.read_bytes()
        assert raw[0] in ALL, f.name
        _core.decompress(raw[0], raw[1:], max_size=MiB)


@pytest.mark.unit
def test_gzip_from_python_including_concatenated_members():
    a, b = text(70 * KiB), os.urandom(10 * KiB)
    assert _core.decompress(GZIP, gzip.compress(a)) == a
    assert _core.decompress(GZIP, gzip.compress(a) + gzip.compress(b)) == a + b
    members = b"".join(gzip.compress(bytes([i]) * 1000) for i in range(50))
    assert _core.decompress(GZIP, members) == b"".join(bytes([i]) * 1000 for i in range(50))
    # optional header fields (FNAME, MTIME) and an empty member
    bio = io.BytesIO()
    with gzip.GzipFile(filename="batch.bin", mode="wb", fileobj=bio, mtime=1234567890) as f:
        f.write(a)
    assert _core.decompress(GZIP, bio.getvalue() + gzip.compress(b"")) == a
    # our output read back by Python, concatenated with Python's
    assert gzip.decompress(_core.compress(GZIP, a) + gzip.compress(b)) == a + b
    # zlib wrapping and raw deflate are not gzip
    with pytest.raises(CompressionError, match="gzip: corrupt"):
        _core.decompress(GZIP, zlib.compress(a))
    with pytest.raises(CompressionError):
        _core.decompress(GZIP, gzip.compress(a) + b"trailing")


@pytest.mark.unit
def test_snappy_raw_and_xerial_from_libsnappy():
    lib = libsnappy()
    data = text(100 * KiB)
    # raw, as librdkafka writes it
    assert _core.decompress(SNAPPY, snappy_raw(lib, data)) == data
    # xerial built here, 10 KiB chunks, then a second concatenated stream
    stream = XERIAL_HEADER
    for i in range(0, len(data), 10 * KiB):
        block = snappy_raw(lib, data[i:i + 10 * KiB])
        stream += len(block).to_bytes(4, "big") + block
    tail = snappy_raw(lib, b"tail")
    stream += XERIAL_HEADER + len(tail).to_bytes(4, "big") + tail
    assert _core.decompress(SNAPPY, stream) == data + b"tail"
    # hand-made raw blocks: a literal, and a literal plus a copy
    assert _core.decompress(SNAPPY, bytes([3, 0x08]) + b"abc") == b"abc"
    assert _core.decompress(SNAPPY, bytes([12, 0x08]) + b"abc" + bytes([0x15, 0x03])) == b"abc" * 4
    # an empty raw block is one byte
    assert _core.decompress(SNAPPY, b"\x00") == b""


@pytest.mark.unit
@pytest.mark.parametrize("flags", [
    [], ["--content-size"], ["-BD"], ["-BX"], ["--no-frame-crc"], ["-B4"],
    ["-B5", "-9"], ["-BD", "-BX", "--content-size", "-12"],
], ids=lambda f: " ".join(f) or "default")
def test_lz4_frames_from_the_cli(flags):
    data = text(600 * KiB)
    z = run_tool(["lz4", "-c", "-q"] + flags, data)
    assert _core.decompress(LZ4, z, max_size=len(data)) == data
    with pytest.raises(CompressionError, match="limit"):
        _core.decompress(LZ4, z, max_size=len(data) - 1)
    # two frames back to back
    assert _core.decompress(LZ4, z + z) == data + data


@pytest.mark.unit
def test_lz4_legacy_format_is_refused():
    z = run_tool(["lz4", "-l", "-c", "-q"], text(10 * KiB))
    assert z[:4] == b"\x02\x21\x4c\x18"
    with pytest.raises(CompressionError, match="lz4: corrupt"):
        _core.decompress(LZ4, z)


@pytest.mark.unit
@pytest.mark.parametrize("flags", [
    [], ["--no-check"], ["-1"], ["-19"], ["--long=27"],
], ids=lambda f: " ".join(f) or "default")
def test_zstd_frames_from_the_cli(flags, tmp_path):
    data = text(200 * KiB)
    # from stdin the frame has no content size (as the Java client writes it)
    piped = run_tool(["zstd", "-c", "-q"] + flags, data)
    assert _core.decompress(ZSTD, piped, max_size=len(data)) == data
    # from a file it records the content size
    f = tmp_path / "data"
    f.write_bytes(data)
    filed = run_tool(["zstd", "-c", "-q"] + flags + [str(f)])
    assert _core.decompress(ZSTD, filed, max_size=len(data)) == data
    for z in (piped, filed):
        with pytest.raises(CompressionError, match="limit"):
            _core.decompress(ZSTD, z, max_size=len(data) - 1)
    assert _core.decompress(ZSTD, piped + filed) == data + data


@pytest.mark.unit
def test_zstd_level22_stream_from_stdin_decodes_with_a_small_cap():
    # --ultra -22 from stdin declares a 128 MiB window, like the Java
    # client's level-22 stream; a small batch must still decode under a
    # small cap.
    data = text(5000)
    z = run_tool(["zstd", "-c", "-q", "--ultra", "-22"], data)
    assert z[4] & 0x20 == 0  # not single-segment: a window descriptor follows
    assert 10 + (z[5] >> 3) == 27 and z[5] & 7 == 0
    assert _core.decompress(ZSTD, z, max_size=5000) == data


# --------------------------------------------------- truncated and corrupt


def sample(codec):
    return _core.compress(codec, text(3000 if codec != SNAPPY else 70 * KiB))


@pytest.mark.unit
@pytest.mark.parametrize("codec", COMPRESSED, ids=NAMES.get)
def test_truncated_input_raises(codec):
    streams = [sample(codec)]
    streams += [f.read_bytes()[1:] for f in CORPUS.glob("java-kafka440-%s-*lines" % NAMES[codec])]
    for z in streams:
        step = max(1, len(z) // 300)
        for cut in list(range(0, len(z), step)) + [len(z) - 1]:
            if codec == SNAPPY and z.startswith(XERIAL_MAGIC) and cut >= 16:
                # a cut exactly between xerial chunks is a shorter valid stream
                pos, ends = 16, {16}
                while pos < len(z):
                    pos += 4 + int.from_bytes(z[pos:pos + 4], "big")
                    ends.add(pos)
                if cut in ends:
                    continue
            with pytest.raises(CompressionError, match="corrupt or truncated"):
                _core.decompress(codec, z[:cut])


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(codec=st.sampled_from(COMPRESSED), where=st.floats(0, 1, exclude_max=True),
       xor=st.integers(1, 255))
def test_corrupt_input_raises_or_decodes_never_crashes(codec, where, xor):
    z = bytearray(sample(codec))
    i = int(where * len(z))
    z[i] ^= xor
    try:
        out = _core.decompress(codec, bytes(z), max_size=200 * KiB)
    except CompressionError as e:
        assert NAMES[codec] in str(e)
    else:
        assert type(out) is bytes and len(out) <= 200 * KiB
        # gzip's CRC32 and ISIZE catch any change after the 10-byte header,
        # except in the padding bits of the last deflate byte
        assert not (codec == GZIP and i >= 10 and i != len(z) - 9), (i, len(z))


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(codec=st.sampled_from(ALL), data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(codec, data):
    for prefix in (b"", XERIAL_HEADER, b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd", b"\x1f\x8b\x08\x00"):
        try:
            out = _core.decompress(codec, prefix + data, max_size=64 * KiB)
        except CompressionError:
            pass
        else:
            assert len(out) <= 64 * KiB


# ------------------------------------------------------------------- bombs

BOMB_CHILD = r"""
import json, sys, time
from pykafka_c import _core
from pykafka_c.exceptions import CompressionError

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])

codec, path, cap = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
_core.decompress(0, b"warm up")
# reset the peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
t0 = time.monotonic()
try:
    out = _core.decompress(codec, data, max_size=cap)
    outcome = "ok %d" % len(out)
    del out
except CompressionError as e:
    outcome = "%s: %s" % (type(e).__name__, e)
elapsed = time.monotonic() - t0
print(json.dumps({"outcome": outcome, "grew_kb": status("VmHWM") - before,
                  "elapsed": elapsed}))
"""


def run_bomb(codec, bomb, cap, tmp_path):
    path = tmp_path / ("bomb-%d" % codec)
    path.write_bytes(bomb)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(
        [sys.executable, "-c", BOMB_CHILD, str(codec), str(path), str(cap)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, env=env,
        cwd=str(ROOT),
    )
    return json.loads(res.stdout.decode().strip().splitlines()[-1])


def shell_bomb(cmd):
    need_tool(cmd.split()[0])
    return subprocess.run(
        "head -c %d /dev/zero | %s" % (256 * MiB, cmd), shell=True,
        stdout=subprocess.PIPE, check=True, env=tool_env()).stdout


@pytest.fixture(scope="module")
def bombs():
    """Small inputs that inflate to 128-256 MiB of zeros."""
    out = {}
    co = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = bytes(MiB)
    out["gzip-one-member"] = (GZIP, b"".join(co.compress(chunk) for _ in range(256)) + co.flush())
    out["gzip-members"] = (GZIP, gzip.compress(chunk, 9) * 256)
    one = _core.compress(SNAPPY, bytes(32 * KiB))
    out["snappy-xerial"] = (SNAPPY, XERIAL_HEADER + one[16:] * 4200)
    frame = _core.compress(LZ4, bytes(64 * KiB))
    out["lz4-ours"] = (LZ4, frame[:7] + frame[7:-4] * 4096 + frame[-4:])
    out["lz4-cli"] = (LZ4, shell_bomb("lz4 -c -q"))
    out["zstd-cli-stream"] = (ZSTD, shell_bomb("zstd -c -q"))
    out["zstd-cli-sized"] = (ZSTD, shell_bomb("zstd -c -q --stream-size=%d" % (256 * MiB)))
    for name, (codec, z) in out.items():
        assert len(z) < 8 * MiB, name
    return out


BOMB_NAMES = ["gzip-one-member", "gzip-members", "snappy-xerial", "lz4-ours",
              "lz4-cli", "zstd-cli-stream", "zstd-cli-sized"]


@pytest.mark.unit
@pytest.mark.parametrize("name", BOMB_NAMES)
def test_bomb_fails_fast_with_bounded_memory(name, bombs, tmp_path):
    codec, z = bombs[name]
    r = run_bomb(codec, z, MiB, tmp_path)
    assert r["outcome"].startswith("CompressionError: ") and "limit of 1048576 bytes" in r["outcome"], r
    assert r["grew_kb"] < 16 * 1024, r
    assert r["elapsed"] < 5, r


@pytest.mark.unit
def test_bomb_memory_measurement_sees_growth(bombs, tmp_path):
    # Control for the test above: the same measurement, with a 96 MiB cap,
    # shows the output being built (so a small growth there means something).
    codec, z = bombs["gzip-members"]
    r = run_bomb(codec, z, 96 * MiB, tmp_path)
    assert r["outcome"].startswith("CompressionError: ") and "limit of %d bytes" % (96 * MiB) in r["outcome"], r
    assert r["grew_kb"] > 80 * 1024, r


@pytest.mark.unit
def test_claimed_sizes_are_refused_without_decoding():
    # raw snappy claiming 4 GiB - 1, an LZ4 frame and a zstd frame claiming
    # 2^40 bytes
    with pytest.raises(CompressionError, match="limit"):
        _core.decompress(SNAPPY, b"\xff\xff\xff\xff\x0f\x00a")
    zstd_huge = bytes.fromhex("28b52ffd e0 0000000000010000 290000") + b"hello"
    with pytest.raises(CompressionError, match="limit"):
        _core.decompress(ZSTD, zstd_huge)
    hostile_xerial = XERIAL_HEADER + b"\x7f\xff\xff\xff" + b"\x00" * 10
    with pytest.raises(CompressionError, match="corrupt"):
        _core.decompress(SNAPPY, hostile_xerial)


@pytest.mark.unit
@pytest.mark.parametrize("codec", ALL, ids=NAMES.get)
def test_results_at_and_just_under_the_cap(codec):
    for n in (MiB - 1, MiB):
        data = text(n)
        z = _core.compress(codec, data)
        assert _core.decompress(codec, z, max_size=MiB) == data
    assert _core.decompress(codec, _core.compress(codec, b""), max_size=0) == b""


# --------------------------------------------------------------------- GIL


def progress_during(call):
    """Run call() while another thread ticks every millisecond; return the
    ticks seen in the middle half of the call."""
    stamps, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            stamps.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        time.sleep(0.02)
        t0 = time.monotonic()
        call()
        t1 = time.monotonic()
    finally:
        stop.set()
        t.join()
    assert t1 - t0 > 0.05, "call too short (%.3fs) to observe the GIL" % (t1 - t0)
    lo, hi = t0 + (t1 - t0) / 4, t1 - (t1 - t0) / 4
    return sum(lo <= s <= hi for s in stamps)


@pytest.mark.unit
def test_gil_is_released_while_compressing():
    data = text(4 * MiB)
    assert progress_during(lambda: _core.compress(GZIP, data, 9)) >= 5


@pytest.mark.unit
def test_gil_is_released_while_decompressing():
    z = gzip.compress(bytes(MiB), 9) * 256

    def call():
        with pytest.raises(CompressionError, match="limit"):
            _core.decompress(GZIP, z, max_size=128 * MiB)

    assert progress_during(call) >= 5


# ------------------------------------------------------------- plain C tests


def build_c_test(tmp_path, with_codecs):
    without = () if with_codecs else ("PKC_HAVE_SNAPPY", "PKC_HAVE_LZ4",
                                      "PKC_HAVE_ZSTD")
    sanitize = os.environ.get("PKC_SANITIZE", "") not in ("", "0")
    out_dir = tmp_path / ("codecs" if with_codecs else "nocodecs")
    out_dir.mkdir()
    return cbuild.build("test_compress", out_dir, sanitize=sanitize,
                        without=without)


@pytest.mark.unit
@pytest.mark.cprogram
@pytest.mark.parametrize("with_codecs", [True, False], ids=["all-codecs", "gzip-only"])
def test_c_unit_tests(tmp_path, with_codecs):
    exe = build_c_test(tmp_path, with_codecs)
    res = subprocess.run([str(exe)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=tool_env(), timeout=300)
    out = res.stdout.decode()
    assert res.returncode == 0, out
    assert ", 0 failures" in out, out


# ---------------------------------------- build without optional libraries


@pytest.mark.slow
def test_build_without_optional_libraries(tmp_path):
    """A build without snappy, lz4, zstd and OpenSSL: gzip still works,
    and asking for a missing codec, for TLS or for SCRAM raises a clear
    error that names the library to install (PLAIN needs none)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "setup.py", src)
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "csrc", src / "csrc",
                    ignore=shutil.ignore_patterns("build", "crashes", "corpus"))
    shutil.copytree(ROOT / "pykafka_c", src / "pykafka_c",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = tool_env()
    env.pop("PKC_SANITIZE", None)
    env.update(PKC_NO_SNAPPY="1", PKC_NO_LZ4="1", PKC_NO_ZSTD="1",
               PKC_NO_OPENSSL="1", PKC_WERROR="1")
    res = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                         cwd=str(src), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    assert res.returncode == 0, res.stdout.decode()
    probe = r"""
import json, pykafka_c
from pykafka_c import _core
from pykafka_c.exceptions import CodecUnavailableError, CompressionError
out = {"file": pykafka_c.__file__, "codecs": list(_core.available_codecs()),
       "available": [_core.codec_available(c) for c in range(5)], "errors": {}}
assert _core.decompress(1, _core.compress(1, b"still works")) == b"still works"
for c in (2, 3, 4):
    for call in (lambda: _core.compress(c, b"x"), lambda: _core.decompress(c, b"x")):
        try:
            call()
        except CodecUnavailableError as e:
            assert isinstance(e, CompressionError)
            out["errors"].setdefault(str(c), []).append(str(e))
from pykafka_c import KafkaClient, SslConfig
from pykafka_c.exceptions import SslUnavailableError
out["have_tls"] = _core.HAVE_TLS
out["tls_errors"] = []
for kwargs in ({"ssl_config": SslConfig(None)},
               {"sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "u",
                "sasl_password": "p"}):
    try:
        KafkaClient(hosts="127.0.0.1:1", **kwargs)
    except SslUnavailableError as e:
        assert isinstance(e, NotImplementedError)
        out["tls_errors"].append(str(e))
out["plain"] = repr(_core.Security(sasl_mechanism="PLAIN",
                                   sasl_username="u", sasl_password="p"))
print(json.dumps(out))
"""
    env = tool_env()
    env["PYTHONPATH"] = str(src)
    res = subprocess.run([sys.executable, "-c", probe], cwd=str(src), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert res.returncode == 0, res.stdout.decode()
    out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    assert out["file"].startswith(str(src))
    assert out["codecs"] == ["none", "gzip"]
    assert out["available"] == [True, True, False, False, False]
    want = {
        "2": "snappy support was not built: install libsnappy-dev and rebuild pykafka_c",
        "3": "lz4 support was not built: install liblz4-dev and rebuild pykafka_c",
        "4": "zstd support was not built: install libzstd-dev and rebuild pykafka_c",
    }
    assert out["errors"] == {c: [m, m] for c, m in want.items()}
    assert out["have_tls"] == 0
    assert len(out["tls_errors"]) == 2
    assert all("OpenSSL" in e and "libssl-dev" in e for e in out["tls_errors"])
    assert "sasl=PLAIN" in out["plain"]
