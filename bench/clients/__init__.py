"""Per-client workload code, run inside :mod:`bench.worker` processes.

Each module has ``run(spec, timer) -> dict``.  ``spec["op"]`` is
``consume`` (per-message API), ``consume_batch`` (batch API) or
``produce``; the module starts the timer just before the consumer or the
first ``produce()`` and stops it at the N-th message received or when every
message is acknowledged.  The returned dict has ``count`` and ``bytes`` of
what was read or sent, and ``crcsum`` when ``spec["checksum"]`` asked for
the full checksum (see :mod:`bench.payloads`).
"""

import time
import zlib

MASK = (1 << 64) - 1


class Deadline(Exception):
    """A run did not finish within its time limit."""


def crc_of(values_iter):
    s = 0
    crc32 = zlib.crc32
    for v in values_iter:
        s += crc32(v)
    return s & MASK


class Stall:
    """Raises Deadline when no message came for ``limit`` seconds; checked
    only when a poll returned nothing, so it costs nothing per message."""

    def __init__(self, limit):
        self.limit = limit
        self.count = -1
        self.since = time.monotonic()

    def check(self, count):
        now = time.monotonic()
        if count != self.count:
            self.count, self.since = count, now
        elif now - self.since > self.limit:
            raise Deadline("no message for %.0f s after %d" % (self.limit, count))
