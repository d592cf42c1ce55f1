"""pykafka's ``pykafka.utils.compression``, backed by pykafka_c's C codecs
(``_core.compress`` / ``_core.decompress``, csrc/wire/compress.c over zlib,
libsnappy and liblz4), so no python-snappy, lz4 or xxhash package is
needed.  The compression and decompression run without the GIL.

Differences from pykafka, all on the lenient side:

* every decoder accepts what its codec's Kafka producers write: gzip with
  concatenated members, raw or xerial-framed snappy (either
  ``decode_snappy``), any LZ4 frame (content size, checksums, several
  frames) and LZ4 frames with old Kafka's header checksum (``decode_lz4``
  reads them too, where lz4.frame would refuse them);
* decompressed output is capped at :data:`MAX_DECOMPRESSED_SIZE` bytes
  (``CompressionError`` beyond it) instead of being unbounded;
* corrupt input raises :class:`pykafka_c.exceptions.CompressionError`
  rather than each library's own exception type.
"""

from __future__ import annotations

import struct

from .. import _core
from .._typing import BytesLike

__all__ = ["encode_gzip", "decode_gzip", "encode_snappy", "decode_snappy",
           "encode_lz4", "decode_lz4", "decode_lz4f", "encode_lz4_old_kafka",
           "decode_lz4_old_kafka"]

_GZIP, _SNAPPY, _LZ4 = 1, 2, 3

#: Cap on the size of any decompressed result, in bytes (1 GiB: more than a
#: Kafka message set can hold at the brokers' default limits).  A module
#: attribute, so an application may raise or lower it.
MAX_DECOMPRESSED_SIZE = 1 << 30

#: gzip level pykafka used (``gzip.GzipFile``'s default).
_GZIP_LEVEL = 9

# snappy-java's stream header: magic, version 1, compatible version 1.
_XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack("!ii", 1, 1)

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_LZ4_FLG_CONTENT_SIZE = 0x08


def encode_gzip(buff: BytesLike) -> bytes:
    """encode_gzip(buff) -> bytes --

    gzip ``buff`` (one RFC 1952 member, level 9 as pykafka's GzipFile)."""
    return _core.compress(_GZIP, buff, _GZIP_LEVEL)


def decode_gzip(buff: BytesLike) -> bytes:
    """decode_gzip(buff) -> bytes --

    Decompress gzip data (concatenated members too)."""
    return _core.decompress(_GZIP, buff, MAX_DECOMPRESSED_SIZE)


def encode_snappy(buff: BytesLike, xerial_compatible: bool = False,
                  xerial_blocksize: int = 32 * 1024) -> bytes:
    """encode_snappy(buff, xerial_compatible=False, xerial_blocksize=32768) -> bytes --

    Snappy-compress ``buff``.  By default one raw snappy block (what
    pykafka and librdkafka send).  With ``xerial_compatible`` the xerial
    (snappy-java) stream: a 16-byte header (``\\x82SNAPPY\\0``, version 1,
    compatible version 1), then for every ``xerial_blocksize`` bytes of
    input a big-endian int32 length and one raw snappy block."""
    if not xerial_compatible:
        return _core.snappy_compress_raw(buff)
    if xerial_blocksize <= 0:
        raise ValueError("xerial_blocksize must be positive, not %r"
                         % (xerial_blocksize,))
    view = memoryview(buff).cast("B")
    parts = [_XERIAL_HEADER]
    for start in range(0, len(view), xerial_blocksize):
        block = _core.snappy_compress_raw(view[start:start + xerial_blocksize])
        parts.append(struct.pack("!i", len(block)))
        parts.append(block)
    return b"".join(parts)


def decode_snappy(buff: BytesLike) -> bytes:
    """decode_snappy(buff) -> bytes --

    Decompress snappy data, raw or xerial-framed (detected by the xerial
    header)."""
    return _core.decompress(_SNAPPY, buff, MAX_DECOMPRESSED_SIZE)


def encode_lz4(buff: BytesLike) -> bytes:
    """encode_lz4(buff) -> bytes --

    One LZ4 frame with independent blocks (Kafka refuses linked ones),
    64 KiB blocks, no content size and no checksums: Kafka >= 0.10's LZ4."""
    return _core.compress(_LZ4, buff)


def decode_lz4(buff: BytesLike) -> bytes:
    """decode_lz4(buff) -> bytes --

    Decompress LZ4 frame data (one or several frames)."""
    return _core.decompress(_LZ4, buff, MAX_DECOMPRESSED_SIZE)


def decode_lz4f(buff: BytesLike) -> bytes:
    """decode_lz4f(buff) -> bytes --

    pykafka's decoder through the lz4f package; here the same as
    :func:`decode_lz4` (incomplete input raises CompressionError)."""
    return _core.decompress(_LZ4, buff, MAX_DECOMPRESSED_SIZE)


# ------------------------------------------------------- xxHash32 (seed 0)
# Only the LZ4 frame descriptor checksum needs it (a few bytes), so a
# Python version from the xxHash specification is enough.

_P1, _P2, _P3, _P4, _P5 = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F,
                           0x165667B1)
_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _xxh32(data: BytesLike) -> int:
    data = bytes(data)
    n = len(data)
    pos = 0
    if n >= 16:
        acc = [(_P1 + _P2) & _M32, _P2, 0, (-_P1) & _M32]
        while pos + 16 <= n:
            for i in range(4):
                lane = int.from_bytes(data[pos:pos + 4], "little")
                acc[i] = (_rotl((acc[i] + lane * _P2) & _M32, 13) * _P1) & _M32
                pos += 4
        h = (_rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) +
             _rotl(acc[3], 18)) & _M32
    else:
        h = _P5
    h = (h + n) & _M32
    while pos + 4 <= n:
        lane = int.from_bytes(data[pos:pos + 4], "little")
        h = (_rotl((h + lane * _P3) & _M32, 17) * _P4) & _M32
        pos += 4
    while pos < n:
        h = (_rotl((h + data[pos] * _P5) & _M32, 11) * _P1) & _M32
        pos += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


def _descriptor_end(frame: BytesLike) -> int:
    """Offset of the header checksum byte of an LZ4 frame."""
    if len(frame) < 7 or bytes(frame[:4]) != _LZ4_MAGIC:
        from ..exceptions import CompressionError
        raise CompressionError("not an LZ4 frame (bad magic or too short)")
    end = 6
    if frame[4] & _LZ4_FLG_CONTENT_SIZE:
        end += 8
    if len(frame) <= end:
        from ..exceptions import CompressionError
        raise CompressionError("truncated LZ4 frame header")
    return end


def encode_lz4_old_kafka(buff: BytesLike) -> bytes:
    """encode_lz4_old_kafka(buff) -> bytes --

    An LZ4 frame as Kafka before 0.10 (message format v0) reads and writes
    it: no content size, and the header checksum computed the way Kafka's
    KafkaLZ4BlockOutputStream did, over the magic number as well as the
    frame descriptor (byte 1 of xxHash32 of the first six bytes)."""
    frame = bytearray(_core.compress(_LZ4, buff))
    end = _descriptor_end(frame)
    if end != 6:  # old Kafka cannot read a content size: drop it
        del frame[6:end]
        frame[4] &= ~_LZ4_FLG_CONTENT_SIZE & 0xFF
    frame[6] = (_xxh32(frame[0:6]) >> 8) & 0xFF
    return bytes(frame)


def decode_lz4_old_kafka(buff: BytesLike) -> bytes:
    """decode_lz4_old_kafka(buff) -> bytes --

    Decompress an LZ4 frame written by old Kafka (header checksum over the
    magic too): the checksum is recomputed the standard way (over the
    descriptor only) and the frame decoded.  A frame with a correct
    checksum decodes as well, as in pykafka."""
    frame = bytearray(buff)
    end = _descriptor_end(frame)
    frame[end] = (_xxh32(frame[4:end]) >> 8) & 0xFF
    return _core.decompress(_LZ4, frame, MAX_DECOMPRESSED_SIZE)
