"""Small result types that pykafka exposes from ``pykafka.protocol``.

They are namedtuples with pykafka's field names, re-exported by
:mod:`pykafka_c.protocol`.
"""

from collections import namedtuple

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

#: ListOffsets result for one partition: ``offset`` is a list of ints.
OffsetPartitionResponse = namedtuple("OffsetPartitionResponse",
                                     ["offset", "err"])
#: OffsetFetch result for one partition.
OffsetFetchPartitionResponse = namedtuple("OffsetFetchPartitionResponse",
                                          ["offset", "metadata", "err"])
OffsetCommitPartitionResponse = namedtuple("OffsetCommitPartitionResponse",
                                           ["err"])
PartitionOffsetRequest = namedtuple(
    "PartitionOffsetRequest",
    ["topic_name", "partition_id", "offsets_before", "max_offsets"])
PartitionOffsetCommitRequest = namedtuple(
    "PartitionOffsetCommitRequest",
    ["topic_name", "partition_id", "offset", "timestamp", "metadata"])
PartitionOffsetFetchRequest = namedtuple("PartitionOffsetFetchRequest",
                                         ["topic_name", "partition_id"])
class PartitionFetchRequest(namedtuple(
        "PartitionFetchRequest",
        ["topic_name", "partition_id", "offset", "max_bytes"])):
    """pykafka's: fields ``topic_name, partition_id, offset, max_bytes``,
    made as ``PartitionFetchRequest(topic, partition, offset,
    max_bytes=1048576)``."""

    __slots__ = ()

    def __new__(cls, topic, partition, offset, max_bytes=1024 * 1024):
        return super(PartitionFetchRequest, cls).__new__(
            cls, topic, partition, offset, max_bytes)
FetchPartitionResponse = namedtuple("FetchPartitionResponse",
                                    ["max_offset", "messages", "err"])
ApiVersionsSpec = namedtuple("ApiVersionsSpec", ["key", "min", "max"])
GroupMembershipResponse = namedtuple(
    "GroupMembershipResponse",
    ["error_code", "generation_id", "leader_id", "member_id", "members"])
