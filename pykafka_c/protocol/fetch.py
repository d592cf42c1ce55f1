"""Fetch (``pykafka.protocol.fetch``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .. import _core
from .._constants import ApiKey as _ApiKey
from .._responses import FetchPartitionResponse, PartitionFetchRequest
from .._typing import Decoded
from .base import Request, Response, _b, _s

__all__ = ["PartitionFetchRequest", "FetchRequest", "FetchPartitionResponse",
           "FetchResponse", "FetchResponseV1", "FetchResponseV2"]


class FetchRequest(Request):
    """FetchRequest(partition_requests=[], timeout=1000, min_bytes=1024,
    api_version=0) --

    A Fetch of PartitionFetchRequest(topic_name, partition_id, offset,
    max_bytes) entries; ``timeout`` is the broker's max wait in ms.
    ``api_version`` is kept for compatibility: the Broker sends the version
    it negotiated."""

    API_KEY = _ApiKey.FETCH

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: FetchRequest, 1: FetchRequest}

    def __init__(self,
                 partition_requests: Iterable[PartitionFetchRequest] = [],
                 timeout: int = 1000, min_bytes: int = 1024,
                 api_version: int = 0) -> None:
        self.timeout = timeout
        self.min_bytes = min_bytes
        self.api_version = api_version
        self._reqs: defaultdict[bytes, dict[int, tuple[int, int]]] = \
            defaultdict(dict)
        for req in partition_requests:
            self.add_request(req)

    def add_request(self, partition_request: PartitionFetchRequest) -> None:
        """add_request(partition_request) --

        Add a PartitionFetchRequest (a later one for the same partition
        replaces the earlier)."""
        pr = partition_request
        self._reqs[pr.topic_name][pr.partition_id] = (pr.offset,
                                                      pr.max_bytes)

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        topics = []
        total = 0
        for topic, parts in self._reqs.items():
            plist = []
            for pid, (offset, max_bytes) in parts.items():
                total += max_bytes
                plist.append({"partition": pid, "fetch_offset": offset,
                              "partition_max_bytes": max_bytes,
                              "current_leader_epoch": -1,
                              "log_start_offset": -1})
            topics.append({"topic": _s(topic), "partitions": plist})
        return {"replica_id": -1, "max_wait_ms": self.timeout,
                "min_bytes": self.min_bytes,
                "max_bytes": max(1, min(total, 0x7fffffff)),
                "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                "topics": topics, "forgotten_topics_data": [],
                "rack_id": ""}

    def _fetch_offsets(self) -> dict[tuple[bytes, int], int]:
        return {(_b(t), pid): off for t, parts in self._reqs.items()
                for pid, (off, _) in parts.items()}


class FetchResponse(Response):
    """Fetch response: ``topics`` is ``{name (bytes): {partition id:
    FetchPartitionResponse(max_offset, messages, err)}}``; ``max_offset``
    is the high watermark and ``messages`` a list of
    :class:`~pykafka_c.protocol.Message` decoded from the partition's
    records (RecordBatch v2 or legacy, decompressed, CRC-checked) by
    ``_core.decode_records``, starting at the requested offset when
    ``fetch_offsets`` ``{(topic bytes, partition id): offset}`` is given.
    ``throttle_time`` as pykafka's V1+.  pykafka's signature: the body
    starts at ``offset`` in ``buff``; ``broker_version`` is accepted for
    compatibility; ``version`` (keyword) is the version to decode.  Modern versions (4+) only: pykafka_c does not decode
    Fetch v0-v3."""

    API_KEY = _ApiKey.FETCH
    API_VERSION = 4

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: FetchResponse, 1: FetchResponseV1, 2: FetchResponseV2}

    def __init__(self, buff: Any = None, offset: int = 0,
                 broker_version: str = "0.9.0",
                 fetch_offsets: dict[tuple[bytes, int], int] | None = None,
                 version: int | None = None,
                 raise_errors: bool | None = None) -> None:
        # pykafka's signature: the response starts at ``offset`` in buff.
        if offset and buff is not None and not isinstance(buff, dict):
            buff = memoryview(buff)[offset:]
        self._fetch_offsets = fetch_offsets or {}
        super(FetchResponse, self).__init__(buff, version,
                                            raise_errors=raise_errors)

    def _populate(self) -> None:
        self.throttle_time: int = self.get("throttle_time_ms", 0)
        self.topics: defaultdict[bytes, dict[int, FetchPartitionResponse]] \
            = defaultdict(dict)
        for t in self.get("responses") or []:
            name = _b(t.get("topic"))
            for p in t.get("partitions") or []:
                pid = p["partition_index"]
                records = p.get("records") or b""
                start = self._fetch_offsets.get((name, pid), 0)
                messages = (_core.decode_records(records, pid, start)
                            if records else [])
                self.topics[name][pid] = FetchPartitionResponse(
                    p["high_watermark"], messages, p["error_code"])


class FetchResponseV1(FetchResponse):
    pass


class FetchResponseV2(FetchResponseV1):
    pass
