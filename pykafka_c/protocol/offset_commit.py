"""Group coordinator lookup, OffsetCommit and OffsetFetch
(``pykafka.protocol.offset_commit``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .._constants import ApiKey as _ApiKey
from .._constants import CoordinatorType
from .._responses import (OffsetCommitPartitionResponse,
                          OffsetFetchPartitionResponse,
                          PartitionOffsetCommitRequest,
                          PartitionOffsetFetchRequest)
from .._typing import Decoded
from .base import Request, Response, _b, _s

__all__ = ["GroupCoordinatorRequest", "GroupCoordinatorResponse",
           "PartitionOffsetCommitRequest", "OffsetCommitRequest",
           "OffsetCommitPartitionResponse", "OffsetCommitResponse",
           "PartitionOffsetFetchRequest", "OffsetFetchRequest",
           "OffsetFetchRequestV1", "OffsetFetchRequestV2",
           "OffsetFetchPartitionResponse", "OffsetFetchResponse",
           "OffsetFetchResponseV1", "OffsetFetchResponseV2"]


class GroupCoordinatorRequest(Request):
    """GroupCoordinatorRequest(consumer_group) --

    FindCoordinator for a consumer group."""

    API_KEY = _ApiKey.FIND_COORDINATOR

    def __init__(self, consumer_group: bytes | str) -> None:
        self.consumer_group = consumer_group

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        return {"key": _s(self.consumer_group),
                "key_type": CoordinatorType.GROUP}


class GroupCoordinatorResponse(Response):
    """FindCoordinator response: ``coordinator_id``, ``coordinator_host``
    (bytes), ``coordinator_port``.  As in pykafka, a non-zero error code
    raises its exception from the constructor unless
    ``raise_errors=False`` (Broker.find_coordinator passes that, leaving
    retries to its caller, and ``error_code`` tells)."""

    API_KEY = _ApiKey.FIND_COORDINATOR
    API_VERSION = 0
    RAISES = True

    def _populate(self) -> None:
        self.error_code: int = self.get("error_code", 0)
        self.coordinator_id: int | None = self.get("node_id")
        self.coordinator_host: bytes | None = _b(self.get("host"))
        self.coordinator_port: int | None = self.get("port")

    def _raise_errors(self) -> None:
        if self.error_code:
            self.raise_error(self.error_code, dict(self))


class OffsetCommitRequest(Request):
    """OffsetCommitRequest(consumer_group, consumer_group_generation_id,
    consumer_id, partition_requests=[]) --

    OffsetCommit of PartitionOffsetCommitRequest(topic_name, partition_id,
    offset, timestamp, metadata) entries (``timestamp`` is ignored by
    OffsetCommit v2+)."""

    API_KEY = _ApiKey.OFFSET_COMMIT

    def __init__(self, consumer_group: bytes | str,
                 consumer_group_generation_id: int,
                 consumer_id: bytes | str,
                 partition_requests: Iterable[PartitionOffsetCommitRequest]
                 = []) -> None:
        self.consumer_group = consumer_group
        self.consumer_group_generation_id = consumer_group_generation_id
        self.consumer_id = consumer_id
        self._reqs: defaultdict[bytes, dict[int, tuple[int, int, Any]]] = \
            defaultdict(dict)
        for t in partition_requests:
            self._reqs[t.topic_name][t.partition_id] = (t.offset,
                                                        t.timestamp,
                                                        t.metadata)

    def _fields(self, version: int, group_instance_id: str | None = None,
                **kwargs: Any) -> Decoded:
        topics = []
        for t, parts in self._reqs.items():
            plist = []
            for pid, (offset, _, metadata) in parts.items():
                if isinstance(metadata, (bytes, bytearray)):
                    metadata = bytes(metadata).decode("utf-8", "replace")
                plist.append({"partition_index": pid,
                              "committed_offset": offset,
                              "committed_leader_epoch": -1,
                              "committed_metadata": metadata})
            topics.append({"name": _s(t), "partitions": plist})
        return {"group_id": _s(self.consumer_group),
                "generation_id_or_member_epoch":
                    self.consumer_group_generation_id,
                "member_id": _s(self.consumer_id or b""),
                "group_instance_id": group_instance_id,
                "retention_time_ms": -1, "topics": topics}


class OffsetCommitResponse(Response):
    """OffsetCommit response: ``topics`` is ``{name (bytes): {partition
    id: OffsetCommitPartitionResponse(err)}}``."""

    API_KEY = _ApiKey.OFFSET_COMMIT
    API_VERSION = 2

    def _populate(self) -> None:
        self.topics: dict[bytes, dict[int, OffsetCommitPartitionResponse]] \
            = {}
        for t in self.get("topics") or []:
            parts = self.topics.setdefault(_b(t["name"]), {})
            for p in t.get("partitions") or []:
                parts[p["partition_index"]] = OffsetCommitPartitionResponse(
                    p["error_code"])


class OffsetFetchRequest(Request):
    """OffsetFetchRequest(consumer_group, partition_requests=[]) --

    OffsetFetch of PartitionOffsetFetchRequest(topic_name, partition_id)
    entries; with none, V2 (and pykafka_c's Broker) asks for every
    topic."""

    API_KEY = _ApiKey.OFFSET_FETCH
    API_VERSION = 0

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: OffsetFetchRequest, 1: OffsetFetchRequestV1,
                2: OffsetFetchRequestV2}

    def __init__(self, consumer_group: bytes | str,
                 partition_requests: Iterable[PartitionOffsetFetchRequest]
                 = []) -> None:
        self.consumer_group = consumer_group
        self._reqs: defaultdict[bytes, list[int]] = defaultdict(list)
        for t in partition_requests:
            self._reqs[t.topic_name].append(t.partition_id)

    def _fields(self, version: int, require_stable: bool = False,
                all_topics: bool | None = None, **kwargs: Any) -> Decoded:
        """``all_topics`` None: pykafka's rule (no partitions means every
        topic from v2, when the null array exists); True / False force
        it."""
        topics = [{"name": _s(t), "partition_indexes": list(p)}
                  for t, p in self._reqs.items()]
        if all_topics is None:
            all_topics = not topics and version >= 2
        return {"group_id": _s(self.consumer_group),
                "topics": None if all_topics else topics,
                "require_stable": require_stable}


class OffsetFetchRequestV1(OffsetFetchRequest):
    API_VERSION = 1


class OffsetFetchRequestV2(OffsetFetchRequestV1):
    API_VERSION = 2


class OffsetFetchResponse(Response):
    """OffsetFetch response: ``topics`` is ``{name (bytes): {partition id:
    OffsetFetchPartitionResponse(offset, metadata (bytes), err)}}``; V2+
    adds the top-level ``err``."""

    API_KEY = _ApiKey.OFFSET_FETCH
    API_VERSION = 1

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: OffsetFetchResponse, 1: OffsetFetchResponseV1,
                2: OffsetFetchResponseV2}

    def _populate(self) -> None:
        self.topics: dict[bytes, dict[int, OffsetFetchPartitionResponse]] \
            = {}
        for t in self.get("topics") or []:
            parts = self.topics.setdefault(_b(t["name"]), {})
            for p in t.get("partitions") or []:
                parts[p["partition_index"]] = OffsetFetchPartitionResponse(
                    p["committed_offset"], _b(p.get("metadata")),
                    p["error_code"])
        if self.api_version >= 2:
            self.err: int = self.get("error_code", 0)


class OffsetFetchResponseV1(OffsetFetchResponse):
    API_VERSION = 1


class OffsetFetchResponseV2(OffsetFetchResponseV1):
    API_VERSION = 2
