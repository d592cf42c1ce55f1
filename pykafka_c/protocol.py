"""Kafka protocol objects, as in ``pykafka.protocol``.

:class:`Message` is defined in C (``pykafka_c._core.Message``) so that the
fetch loop can make messages without running Python code; it derives from
:class:`pykafka_c.common.Message`.  Record encoding and decoding live in the
C core: ``_core.decode_records`` and ``_core.encode_record_batch``.  The
namedtuples pykafka returned from its request helpers and the consumer
protocol's metadata and assignment types are re-exported here too.
"""

from ._core import Message
from ._responses import (ApiVersionsSpec, FetchPartitionResponse,
                         OffsetCommitPartitionResponse,
                         OffsetFetchPartitionResponse,
                         OffsetPartitionResponse, PartitionFetchRequest,
                         PartitionOffsetCommitRequest,
                         PartitionOffsetFetchRequest, PartitionOffsetRequest)
from .membershipprotocol import (ConsumerGroupProtocolMetadata,
                                 MemberAssignment)

__all__ = ["Message", "ApiVersionsSpec", "FetchPartitionResponse",
           "OffsetCommitPartitionResponse", "OffsetFetchPartitionResponse",
           "OffsetPartitionResponse", "PartitionFetchRequest",
           "PartitionOffsetCommitRequest", "PartitionOffsetFetchRequest",
           "PartitionOffsetRequest", "ConsumerGroupProtocolMetadata",
           "MemberAssignment"]
