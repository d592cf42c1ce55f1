"""Produce (``pykafka.protocol.produce``)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import _core
from .._constants import ApiKey as _ApiKey
from ..common import CompressionType
from .._typing import Decoded
from .base import Request, Response, _b, _s
from .message import Message, MessageSet

__all__ = ["ProduceRequest", "ProduceResponse", "ProducePartitionResponse"]

class ProducePartitionResponse(NamedTuple):
    """Produce result for one partition: the error code and the base
    offset of the batch."""
    err: int
    offset: int


class ProduceRequest(Request):
    """ProduceRequest(compression_type=0, required_acks=1, timeout=10000,
    broker_version='0.9.0') --

    Messages to produce, grouped into one MessageSet per topic and
    partition (``msets``).  The Broker sends each partition's messages as
    one RecordBatch v2 compressed with ``compression_type`` (zstd, 4, is
    allowed too); ``required_acks`` 0 means no response."""

    API_KEY = _ApiKey.PRODUCE

    def __init__(self, compression_type: int = CompressionType.NONE,
                 required_acks: int = 1, timeout: int = 10000,
                 broker_version: str = "0.9.0") -> None:
        self.msets: defaultdict[bytes, defaultdict[int, MessageSet]] = \
            defaultdict(lambda: defaultdict(
            lambda: MessageSet(compression_type=compression_type,
                               broker_version=broker_version)))
        self.compression_type = compression_type
        self.required_acks = required_acks
        self.timeout = timeout
        self._message_count = 0

    @property
    def messages(self) -> Iterator[Message]:
        """Every message of the request."""
        return itertools.chain.from_iterable(
            mset.messages for parts in self.msets.values()
            for mset in parts.values())

    def add_message(self, message: Message, topic_name: bytes,
                    partition_id: int) -> None:
        """add_message(message, topic_name, partition_id) --

        Queue ``message`` (a Message) for ``topic_name`` / ``partition_id``."""
        self.msets[topic_name][partition_id].messages.append(message)
        self._message_count += 1

    def message_count(self) -> int:
        """message_count() --

        The number of messages in the request."""
        return self._message_count

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        topic_data = []
        for topic, parts in self.msets.items():
            pdata = []
            for pid, mset in parts.items():
                batch = _core.encode_record_batch(mset.messages,
                                                  mset.compression_type)
                pdata.append({"index": pid, "records": batch})
            topic_data.append({"name": _s(topic), "partition_data": pdata})
        return {"transactional_id": None, "acks": self.required_acks,
                "timeout_ms": self.timeout, "topic_data": topic_data}


class ProduceResponse(Response):
    """Produce response: ``topics`` is ``{name (bytes): {partition id:
    ProducePartitionResponse(err, offset)}}`` (``offset`` the base offset
    of the batch); ``throttle_time_ms``."""

    API_KEY = _ApiKey.PRODUCE
    API_VERSION = 3

    def _populate(self) -> None:
        self.throttle_time_ms: int = self.get("throttle_time_ms", 0)
        self.topics: dict[bytes, dict[int, ProducePartitionResponse]] = {}
        for t in self.get("responses") or []:
            parts = self.topics.setdefault(_b(t["name"]), {})
            for p in t.get("partition_responses") or []:
                parts[p["index"]] = ProducePartitionResponse(
                    p["error_code"], p["base_offset"])
