"""Constants shared across pykafka_c, as in ``pykafka.common``."""

import datetime as _dt

__all__ = ["Message", "CompressionType", "OffsetType", "EPOCH"]


class Message(object):
    """Base class of messages (pykafka's empty slotted base class).

    Messages handed out by consumers are instances of
    :class:`pykafka_c.protocol.Message`, which derives from this class.
    """

    __slots__ = []


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
EPOCH = _dt.datetime(1970, 1, 1)
