"""Kafka protocol objects, as in ``pykafka.protocol`` (a package since
pykafka 2.8, with the submodules base, admin, fetch, group_membership,
message, metadata, offset, offset_commit and produce).

:class:`Message` is defined in C (``pykafka_c._core.Message``) so that the
fetch loop can make messages without running Python code; it derives from
:class:`pykafka_c.common.Message`.  Requests are descriptions with
pykafka's constructors that :class:`~pykafka_c.broker.Broker` encodes with
the C codec at the negotiated version; responses are dicts (the decoded
response, Kafka's snake_case field names) with pykafka's attributes.  See
:mod:`pykafka_c.protocol.base`.
"""

from __future__ import annotations

from .admin import (ApiVersionsRequest, ApiVersionsResponse,
                    ApiVersionsResponseV1, CreateTopicRequest,
                    CreateTopicsRequest, CreateTopicsResponse,
                    DeleteTopicsRequest, DeleteTopicsResponse,
                    DescribeGroupResponse, DescribeGroupsRequest,
                    DescribeGroupsResponse, GroupListing, GroupMember,
                    ListGroupsRequest, ListGroupsResponse)
from .base import (API_VERSIONS_080, API_VERSIONS_090, ApiVersionsSpec,
                   ConsumerGroupProtocolMetadata, MemberAssignment, Request,
                   Response)
from .fetch import (FetchPartitionResponse, FetchRequest, FetchResponse,
                    FetchResponseV1, FetchResponseV2, PartitionFetchRequest)
from .group_membership import (HeartbeatRequest, HeartbeatResponse,
                               JoinGroupRequest, JoinGroupResponse,
                               LeaveGroupRequest, LeaveGroupResponse,
                               SyncGroupRequest, SyncGroupResponse)
from .message import Message, MessageSet
from .metadata import (BrokerMetadata, BrokerMetadataV1, MetadataRequest,
                       MetadataRequestV1, MetadataRequestV2,
                       MetadataRequestV3, MetadataRequestV4,
                       MetadataRequestV5, MetadataResponse,
                       MetadataResponseV1, MetadataResponseV2,
                       MetadataResponseV3, MetadataResponseV4,
                       MetadataResponseV5, PartitionMetadata,
                       PartitionMetadataV5, TopicMetadata, TopicMetadataV1)
from .offset import (ListOffsetRequest, ListOffsetRequestV1,
                     ListOffsetResponse, ListOffsetResponseV1,
                     OffsetPartitionResponse, OffsetPartitionResponseV1,
                     PartitionOffsetRequest)
from .offset_commit import (GroupCoordinatorRequest,
                            GroupCoordinatorResponse,
                            OffsetCommitPartitionResponse,
                            OffsetCommitRequest, OffsetCommitResponse,
                            OffsetFetchPartitionResponse, OffsetFetchRequest,
                            OffsetFetchRequestV1, OffsetFetchRequestV2,
                            OffsetFetchResponse, OffsetFetchResponseV1,
                            OffsetFetchResponseV2,
                            PartitionOffsetCommitRequest,
                            PartitionOffsetFetchRequest)
from .produce import ProducePartitionResponse, ProduceRequest, ProduceResponse

# pykafka 2.8's pykafka.protocol.__all__, in its order
__all__ = ["MetadataRequest", "MetadataResponse", "ProduceRequest",
           "ProduceResponse", "PartitionFetchRequest", "FetchRequest",
           "FetchPartitionResponse", "FetchResponse", "ListOffsetRequest",
           "ListOffsetResponse", "GroupCoordinatorRequest",
           "GroupCoordinatorResponse", "PartitionOffsetCommitRequest",
           "OffsetCommitRequest", "OffsetCommitPartitionResponse",
           "OffsetCommitResponse", "PartitionOffsetFetchRequest",
           "OffsetFetchRequest", "OffsetFetchPartitionResponse",
           "OffsetFetchResponse", "JoinGroupRequest", "JoinGroupResponse",
           "SyncGroupRequest", "SyncGroupResponse", "HeartbeatRequest",
           "HeartbeatResponse", "LeaveGroupRequest", "LeaveGroupResponse",
           "ListGroupsRequest", "ListGroupsResponse",
           "DescribeGroupsRequest", "DescribeGroupsResponse", "Message",
           "MessageSet", "ApiVersionsRequest", "ApiVersionsResponse",
           "CreateTopicsRequest", "CreateTopicsResponse",
           "DeleteTopicsRequest", "DeleteTopicsResponse",
           "PartitionOffsetRequest", "API_VERSIONS_080", "API_VERSIONS_090",
           "ConsumerGroupProtocolMetadata", "MemberAssignment",
           "FetchResponseV1", "FetchResponseV2", "MetadataResponseV1",
           "MetadataRequestV1", "CreateTopicRequest",
           "ProducePartitionResponse", "ListOffsetRequestV1",
           "ListOffsetResponseV1", "OffsetFetchRequestV1",
           "OffsetFetchResponseV1", "OffsetFetchRequestV2",
           "OffsetFetchResponseV2", "MetadataRequestV2",
           "MetadataResponseV2", "MetadataRequestV3", "MetadataResponseV3",
           "MetadataRequestV4", "MetadataResponseV4", "MetadataRequestV5",
           "MetadataResponseV5",
           # also exported by pykafka_c (pykafka had them in submodules or
           # in its protocol.py before 2.8)
           "ApiVersionsSpec", "OffsetPartitionResponse"]
