"""Constants shared across pykafka_c, as in ``pykafka.common``."""

from __future__ import annotations

import datetime as _dt
from typing import Final

__all__ = ["Message", "CompressionType", "OffsetType", "EPOCH"]


#: Base class of messages (pykafka's empty slotted base class), defined in C
#: so that :class:`pykafka_c.protocol.Message`, also C, can derive from it.
from ._core import MessageBase as Message  # noqa: E402


class CompressionType(object):
    """Compression codecs.  ``ZSTD`` is a pykafka_c addition (Kafka 2.1+)."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class OffsetType(object):
    """Special offsets: the oldest and the next-to-be-written offset."""

    EARLIEST = -2
    LATEST = -1


#: The Unix epoch as a naive UTC datetime, as in pykafka.
EPOCH: Final = _dt.datetime(1970, 1, 1)
