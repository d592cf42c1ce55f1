"""ListOffsets (``pykafka.protocol.offset``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from .._constants import ApiKey as _ApiKey
from .._responses import OffsetPartitionResponse, PartitionOffsetRequest
from .._typing import Decoded
from .base import Request, Response, _b, _s

__all__ = ["PartitionOffsetRequest", "ListOffsetRequest",
           "ListOffsetRequestV1", "OffsetPartitionResponse",
           "OffsetPartitionResponseV1", "ListOffsetResponse",
           "ListOffsetResponseV1"]

class OffsetPartitionResponseV1(NamedTuple):
    """ListOffsets v1 result for one partition: one offset."""
    offset: int
    timestamp: int
    err: int


class ListOffsetRequest(Request):
    """ListOffsetRequest(partition_requests) --

    ListOffsets for PartitionOffsetRequest(topic_name, partition_id,
    offsets_before, max_offsets) entries (``offsets_before`` -1 latest, -2
    earliest, else a timestamp in ms).  Modern brokers return one offset
    per partition whatever ``max_offsets`` says."""

    API_KEY = _ApiKey.LIST_OFFSETS
    API_VERSION = 0

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: ListOffsetRequest, 1: ListOffsetRequest}

    def __init__(self, partition_requests: Iterable[PartitionOffsetRequest]
                 ) -> None:
        self._reqs: defaultdict[bytes, dict[int, tuple[int, int]]] = \
            defaultdict(dict)
        for t in partition_requests:
            self._reqs[t.topic_name][t.partition_id] = (t.offsets_before,
                                                        t.max_offsets)

    def _fields(self, version: int, isolation_level: int = 0,
                **kwargs: Any) -> Decoded:
        return {"replica_id": -1, "isolation_level": isolation_level,
                "topics": [{"name": _s(t), "partitions": [
                    {"partition_index": pid, "timestamp": int(before),
                     "current_leader_epoch": -1}
                    for pid, (before, _) in parts.items()]}
                    for t, parts in self._reqs.items()]}


class ListOffsetRequestV1(ListOffsetRequest):
    """ListOffsetRequestV1(partition_requests) --"""

    API_VERSION = 1

    def __init__(self, partition_requests: Iterable[PartitionOffsetRequest]
                 ) -> None:
        self._reqs = defaultdict(dict)
        for t in partition_requests:
            self._reqs[t.topic_name][t.partition_id] = (t.offsets_before,
                                                        1)


class ListOffsetResponse(Response):
    """ListOffsets response: ``topics`` is ``{name (bytes): {partition id:
    OffsetPartitionResponse(offset, err)}}`` with ``offset`` a list of ints
    (one offset from ListOffsets v1+, or the v0 list), as in pykafka."""

    API_KEY = _ApiKey.LIST_OFFSETS
    API_VERSION = 1

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: ListOffsetResponse, 1: ListOffsetResponse}

    def _offsets(self, p: Decoded) -> list[int]:
        if "old_style_offsets" in p and p.get("old_style_offsets") is not None \
                and self.api_version == 0:
            return list(p["old_style_offsets"])
        return [p["offset"]] if "offset" in p else []

    def _populate(self) -> None:
        self.topics: dict[bytes, dict[int, Any]] = {}
        for t in self.get("topics") or []:
            parts = self.topics.setdefault(_b(t["name"]), {})
            for p in t.get("partitions") or []:
                parts[p["partition_index"]] = self._partition(p)

    def _partition(self, p: Decoded) -> Any:
        return OffsetPartitionResponse(self._offsets(p), p["error_code"])


class ListOffsetResponseV1(ListOffsetResponse):
    """As ListOffsetResponse with OffsetPartitionResponseV1(offset,
    timestamp, err), ``offset`` an int."""

    API_VERSION = 1

    def _partition(self, p: Decoded) -> Any:
        return OffsetPartitionResponseV1(p.get("offset", -1),
                                         p.get("timestamp", -1),
                                         p["error_code"])
