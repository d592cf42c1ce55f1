"""Small result types that pykafka exposes from ``pykafka.protocol``.

They are namedtuples with pykafka's field names, re-exported by
:mod:`pykafka_c.protocol`.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, NamedTuple

__all__ = [
    "OffsetPartitionResponse",
    "OffsetFetchPartitionResponse",
    "OffsetCommitPartitionResponse",
    "PartitionOffsetRequest",
    "PartitionOffsetCommitRequest",
    "PartitionOffsetFetchRequest",
    "PartitionFetchRequest",
    "FetchPartitionResponse",
    "ApiVersionsSpec",
    "GroupMembershipResponse",
]

class OffsetPartitionResponse(NamedTuple):
    """ListOffsets result for one partition: ``offset`` is a list of
    ints (empty when there is none), ``err`` the Kafka error code."""
    offset: list[int]
    err: int


class OffsetFetchPartitionResponse(NamedTuple):
    """OffsetFetch result for one partition."""
    offset: int
    metadata: bytes | None
    err: int


class OffsetCommitPartitionResponse(NamedTuple):
    """OffsetCommit result for one partition."""
    err: int


class PartitionOffsetRequest(NamedTuple):
    """A ListOffsets request for one partition."""
    topic_name: bytes
    partition_id: int
    offsets_before: int
    max_offsets: int


class PartitionOffsetCommitRequest(NamedTuple):
    """An OffsetCommit request for one partition."""
    topic_name: bytes
    partition_id: int
    offset: int
    timestamp: int
    metadata: bytes | str | None


class PartitionOffsetFetchRequest(NamedTuple):
    """An OffsetFetch request for one partition."""
    topic_name: bytes
    partition_id: int


class PartitionFetchRequest(namedtuple(
        "PartitionFetchRequest",
        ["topic_name", "partition_id", "offset", "max_bytes"])):
    """pykafka's: fields ``topic_name, partition_id, offset, max_bytes``,
    made as ``PartitionFetchRequest(topic, partition, offset,
    max_bytes=1048576)``."""

    __slots__ = ()

    topic_name: bytes
    partition_id: int
    offset: int
    max_bytes: int

    def __new__(cls, topic: bytes, partition: int, offset: int,
                max_bytes: int = 1024 * 1024) -> PartitionFetchRequest:
        return super(PartitionFetchRequest, cls).__new__(
            cls, topic, partition, offset, max_bytes)


class FetchPartitionResponse(NamedTuple):
    """pykafka's Fetch result for one partition: the high watermark,
    the decoded messages and the Kafka error code."""
    max_offset: int
    messages: list[Any]
    err: int


class ApiVersionsSpec(NamedTuple):
    """One API's version range."""
    key: int
    min: int
    max: int


class GroupMembershipResponse(NamedTuple):
    """A JoinGroup/SyncGroup summary."""
    error_code: int
    generation_id: int
    leader_id: Any
    member_id: Any
    members: Any
