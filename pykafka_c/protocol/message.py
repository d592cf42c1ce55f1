"""Messages and message sets (``pykafka.protocol.message``).

:class:`Message` is the C type ``pykafka_c._core.Message`` (the one the
consumers hand out); its ``pack_into`` / ``decode`` / ``len()`` use the
legacy magic 0/1 format, as pykafka's.  :class:`MessageSet` is pykafka's
legacy message set (``[Offset MessageSize Message]``) built on them.
Produce requests sent by pykafka_c carry RecordBatch v2, not MessageSets;
a MessageSet is for code that works with the legacy format itself.
"""

from __future__ import annotations

import struct
from typing import Any

from .. import _core
from .._core import Message
from ..common import CompressionType
from .._typing import BytesLike
from ..exceptions import MessageSetDecodeFailure
from ..utils import Serializable

__all__ = ["Message", "MessageSet"]

_ENTRY = struct.Struct(">qi")


class MessageSet(Serializable):
    """MessageSet(compression_type=0, messages=None, broker_version='0.9.0')
    --

    A legacy message set.  With a compression type, the messages are
    packed into one compressed wrapper message (magic = the highest
    protocol_version of the messages), as pykafka did; LZ4 uses the
    standard frame format whatever ``broker_version`` says (pykafka wrote
    the broken pre-0.10 framing for older brokers, which pykafka_c does not
    speak to).
    """

    def __init__(self, compression_type: int = CompressionType.NONE,
                 messages: list[Message] | None = None,
                 broker_version: str = "0.9.0") -> None:
        self.compression_type = compression_type
        self._messages: list[Message] = messages or []
        self._compressed: Message | None = None
        self._broker_version = broker_version

    @property
    def messages(self) -> list[Message]:
        # the caller may change the list: forget the compressed wrapper
        self._compressed = None
        return self._messages

    def _entries(self) -> list[Message]:
        if self.compression_type == CompressionType.NONE:
            return self._messages
        if self._compressed is None:
            self._compressed = self._get_compressed()
        return [self._compressed]

    def _get_compressed(self) -> Message:
        plain = MessageSet(messages=self._messages)
        buff = bytearray(len(plain))
        plain.pack_into(buff, 0)
        value = _core.compress(self.compression_type, bytes(buff))
        version = max([m.protocol_version for m in self._messages] or [0])
        return Message(value, compression_type=self.compression_type,
                       protocol_version=version)

    def __len__(self) -> int:
        """Encoded size, without the int32 MessageSetSize that precedes a
        message set in requests."""
        entries = self._entries()
        return _ENTRY.size * len(entries) + sum(len(m) for m in entries)

    def pack_into(self, buff: bytearray, offset: int) -> None:
        """pack_into(buff, offset) --

        Write the set into ``buff`` at ``offset`` (offsets written as -1,
        as a producer does)."""
        for message in self._entries():
            size = len(message)
            _ENTRY.pack_into(buff, offset, -1, size)
            offset += _ENTRY.size
            message.pack_into(buff, offset)
            offset += size

    @classmethod
    def decode(cls, buff: BytesLike, partition_id: int = -1) -> MessageSet:
        """decode(buff, partition_id=-1) -> MessageSet --

        Decode a legacy message set.  A truncated trailing entry is
        ignored (fetch responses are cut at a byte limit); if not even one
        whole message is present, MessageSetDecodeFailure.  Compressed
        wrappers are returned as they are (``compression_type`` set, value
        compressed), as in pykafka; ``_core.decode_records`` decompresses
        them.  Malformed messages raise ProtocolDecodeError, CRC
        mismatches CorruptRecordError."""
        view = memoryview(buff).cast("B")
        messages: list[Message] = []
        pos, end = 0, len(view)
        size = 0
        attempted = False
        while end - pos >= _ENTRY.size:
            msg_offset, size = _ENTRY.unpack_from(view, pos)
            pos += _ENTRY.size
            attempted = True
            if size < 0 or end - pos < size:
                break
            messages.append(Message.decode(view[pos:pos + size], msg_offset,
                                           partition_id=partition_id))
            pos += size
        if not messages and attempted:
            raise MessageSetDecodeFailure(size)
        return cls(messages=messages)
