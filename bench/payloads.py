"""Deterministic message values and the checksums that verify them.

Every value is printable ASCII without a newline (so Kafka's line-based
tools and kcat can write and read it), starts with its own index, and is
otherwise a slice of a fixed text made of words, so the codecs see data
that compresses roughly like text (neither random bytes nor one repeated
letter).

Checksum of a set of messages: ``(count, total bytes, sum of zlib.crc32 of
each value mod 2**64)``.  The sum does not depend on order, so messages
read from several partitions in any interleaving give the same answer.
"""

import random
import zlib

__all__ = ["make_value", "iter_values", "produce_pool", "expected_consume",
           "expected_produce", "Checksum", "POOL_SIZE"]

_MASK = (1 << 64) - 1
#: Distinct values a producer cycles through (message i sends pool[i % POOL_SIZE]).
POOL_SIZE = 1024
_TEXT_LEN = 1 << 16

_WORDS = ("kafka broker topic partition offset record batch consumer producer "
          "leader replica commit fetch produce message value header timestamp "
          "cluster group coordinator rebalance segment index compaction retention "
          "throughput latency python client socket buffer frame request response "
          "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
          "0 1 2 3 4 5 6 7 8 9 10 42 100 256 1024 65536 ok error retry").split()


def _make_text():
    rng = random.Random(20261126)
    parts = []
    n = 0
    while n < _TEXT_LEN + 4096:
        w = rng.choice(_WORDS)
        parts.append(w)
        n += len(w) + 1
    return " ".join(parts).encode("ascii")


_TEXT = _make_text()


def make_value(i, size):
    """Value of message ``i`` (``size`` bytes, at least 12)."""
    head = b"%010d " % i
    if size < len(head) + 1:
        raise ValueError("values must be at least %d bytes" % (len(head) + 1))
    off = (i * 7919) % _TEXT_LEN
    return head + _TEXT[off:off + size - len(head)]


def iter_values(n, size):
    for i in range(n):
        yield make_value(i, size)


def produce_pool(size):
    """The values a producer run cycles through."""
    return [make_value(i, size) for i in range(POOL_SIZE)]


class Checksum:
    """Accumulates (count, bytes, crc sum) of values."""

    __slots__ = ("count", "nbytes", "crcsum")

    def __init__(self):
        self.count = 0
        self.nbytes = 0
        self.crcsum = 0

    def add(self, value):
        self.count += 1
        self.nbytes += len(value)
        self.crcsum = (self.crcsum + zlib.crc32(value)) & _MASK

    def as_dict(self):
        return {"count": self.count, "bytes": self.nbytes, "crcsum": self.crcsum}


def expected_consume(n, size):
    """Checksum of a topic pre-filled with values 0..n-1."""
    c = Checksum()
    for v in iter_values(n, size):
        c.add(v)
    return c.as_dict()


def expected_produce(n, size):
    """Checksum of n messages sent from :func:`produce_pool` in order."""
    pool = produce_pool(size)
    crcs = [zlib.crc32(v) for v in pool]
    full, rest = divmod(n, POOL_SIZE)
    total = full * sum(crcs) + sum(crcs[:rest])
    return {"count": n, "bytes": n * size, "crcsum": total & _MASK}
