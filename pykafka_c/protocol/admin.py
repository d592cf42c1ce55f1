"""Administrative APIs: ListGroups, DescribeGroups, CreateTopics,
DeleteTopics, ApiVersions (``pykafka.protocol.admin``)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from .._constants import ApiKey as _ApiKey
from .base import (ApiVersionsSpec, ConsumerGroupProtocolMetadata,
                   MemberAssignment, Request, Response, _b, _s)
from .._typing import Decoded
from .group_membership import _decode_consumer

__all__ = ["ListGroupsRequest", "ListGroupsResponse", "GroupListing",
           "DescribeGroupsRequest", "DescribeGroupsResponse", "GroupMember",
           "DescribeGroupResponse", "CreateTopicRequest",
           "CreateTopicsRequest", "CreateTopicsResponse",
           "DeleteTopicsRequest", "DeleteTopicsResponse",
           "ApiVersionsRequest", "ApiVersionsResponse",
           "ApiVersionsResponseV1", "ApiVersionsSpec"]

class GroupListing(NamedTuple):
    """A group ListGroups found."""
    group_id: bytes
    protocol_type: bytes


class GroupMember(NamedTuple):
    """A member of a described group (metadata and assignment decoded for
    consumer groups, raw bytes otherwise)."""
    member_id: bytes
    client_id: bytes
    client_host: bytes
    member_metadata: Any
    member_assignment: Any


class DescribeGroupResponse(NamedTuple):
    """One group of a DescribeGroups answer."""
    error_code: int
    group_id: bytes
    state: bytes
    protocol_type: bytes
    protocol: bytes
    members: dict[bytes, GroupMember]


class ListGroupsRequest(Request):
    """ListGroupsRequest() --"""

    API_KEY = _ApiKey.LIST_GROUPS

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        return {"states_filter": []}


class ListGroupsResponse(Response):
    """ListGroups response: ``error`` and ``groups`` ``{group id (bytes):
    GroupListing(group_id, protocol_type)}``."""

    API_KEY = _ApiKey.LIST_GROUPS
    API_VERSION = 0

    def _populate(self) -> None:
        self.error: int = self.get("error_code", 0)
        self.groups: dict[bytes, GroupListing] = {}
        for g in self.get("groups") or []:
            listing = GroupListing(_b(g["group_id"]), _b(g["protocol_type"]))
            self.groups[listing.group_id] = listing


class DescribeGroupsRequest(Request):
    """DescribeGroupsRequest(group_ids) --"""

    API_KEY = _ApiKey.DESCRIBE_GROUPS

    def __init__(self, group_ids: Iterable[bytes | str]) -> None:
        self.group_ids = group_ids

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        return {"groups": [_s(g) for g in self.group_ids],
                "include_authorized_operations": False}


class DescribeGroupsResponse(Response):
    """DescribeGroups response: ``groups`` ``{group id (bytes):
    DescribeGroupResponse(error_code, group_id, state, protocol_type,
    protocol, members)}`` with ``members`` ``{member id (bytes):
    GroupMember(member_id, client_id, client_host, member_metadata,
    member_assignment)}``; metadata and assignment are decoded as the
    consumer protocol's ConsumerGroupProtocolMetadata / MemberAssignment
    (raw bytes for other protocol types).  Strings are bytes."""

    API_KEY = _ApiKey.DESCRIBE_GROUPS
    API_VERSION = 0

    def _populate(self) -> None:
        self.groups: dict[bytes, DescribeGroupResponse] = {}
        for g in self.get("groups") or []:
            consumer = g.get("protocol_type") == "consumer"
            members: dict[bytes, GroupMember] = {}
            for m in g.get("members") or []:
                meta = m.get("member_metadata")
                assign = m.get("member_assignment")
                if consumer:
                    meta = _decode_consumer(ConsumerGroupProtocolMetadata,
                                            meta)
                    assign = _decode_consumer(MemberAssignment, assign)
                member = GroupMember(_b(m["member_id"]), _b(m["client_id"]),
                                     _b(m["client_host"]), meta, assign)
                members[member.member_id] = member
            group = DescribeGroupResponse(
                g["error_code"], _b(g["group_id"]), _b(g["group_state"]),
                _b(g["protocol_type"]), _b(g["protocol_data"]), members)
            self.groups[group.group_id] = group


_CreateTopicRequest = namedtuple(  # type: ignore[name-match]
    "CreateTopicRequest",
    ["topic_name", "num_partitions", "replication_factor",
     "replica_assignment", "config_entries"])


class CreateTopicRequest(_CreateTopicRequest):
    """CreateTopicRequest(topic_name, num_partitions, replication_factor,
    replica_assignment, config_entries) --

    ``replica_assignment``: (partition id, [broker ids]) pairs (then the
    broker is sent -1 partitions and replication factor, as Kafka
    requires); ``config_entries``: (name, value) pairs."""

    __slots__ = ()

    def __new__(cls, topic_name: bytes | str, num_partitions: int,
                replication_factor: int,
                replica_assignment: Iterable[tuple[int, Iterable[int]]]
                | None,
                config_entries: Iterable[tuple[Any, Any]] | None
                ) -> CreateTopicRequest:
        return super(CreateTopicRequest, cls).__new__(
            cls, topic_name, num_partitions, replication_factor,
            replica_assignment, config_entries)


def _topic_fields(req: Any) -> Decoded:
    """CreatableTopic fields for a CreateTopicRequest, a dict with ``name``,
    ``num_partitions``, ``replication_factor`` and optional ``configs`` (a
    dict or (name, value) pairs) and ``replica_assignment`` (``{partition
    id: [broker ids]}`` or pairs; then the dict's num_partitions and
    replication_factor must be -1), or an object with those attributes."""
    if isinstance(req, CreateTopicRequest):
        assignments = [{"partition_index": p, "broker_ids": list(b)}
                       for p, b in (req.replica_assignment or [])]
        return {"name": _s(req.topic_name),
                "num_partitions": -1 if assignments else req.num_partitions,
                "replication_factor": (-1 if assignments
                                       else req.replication_factor),
                "assignments": assignments,
                "configs": [{"name": _s(k), "value": _s(v)}
                            for k, v in (req.config_entries or [])]}
    get: Callable[..., Any]
    if isinstance(req, dict):
        get = req.get
    else:
        def get(key: str, default: Any = None) -> Any:
            return getattr(req, key, default)
    configs = get("configs") or {}
    if not isinstance(configs, dict):
        configs = dict(configs)
    assignment = get("replica_assignment") or {}
    if isinstance(assignment, dict):
        assignment = assignment.items()
    return {"name": _s(get("name")),
            "num_partitions": get("num_partitions", -1),
            "replication_factor": get("replication_factor", -1),
            "assignments": [{"partition_index": int(pid),
                             "broker_ids": [int(b) for b in ids]}
                            for pid, ids in assignment],
            "configs": [{"name": _s(k), "value": _s(v)}
                        for k, v in configs.items()]}


class CreateTopicsRequest(Request):
    """CreateTopicsRequest(topic_requests, timeout=0) --

    ``topic_requests``: CreateTopicRequest tuples (or pykafka_c's dicts
    with ``name``, ``num_partitions``, ``replication_factor``,
    ``configs``)."""

    API_KEY = _ApiKey.CREATE_TOPICS

    def __init__(self, topic_requests: Iterable[Any],
                 timeout: int = 0) -> None:
        self.topic_requests = topic_requests
        self.timeout = timeout

    def _fields(self, version: int, validate_only: bool = False,
                **kwargs: Any) -> Decoded:
        return {"topics": [_topic_fields(r) for r in self.topic_requests],
                "timeout_ms": self.timeout, "validate_only": validate_only}


def _first_error(entries: Iterable[Decoded] | None) -> Decoded | None:
    for entry in entries or []:
        if entry.get("error_code"):
            return entry
    return None


class CreateTopicsResponse(Response):
    """CreateTopics response: as in pykafka, the first topic error raises
    its exception from the constructor (``raise_errors=False`` keeps it in
    the dict)."""

    API_KEY = _ApiKey.CREATE_TOPICS
    API_VERSION = 2
    RAISES = True

    def _raise_errors(self) -> None:
        bad = _first_error(self.get("topics"))
        if bad is not None:
            self.raise_error(bad["error_code"], dict(self))


class DeleteTopicsRequest(Request):
    """DeleteTopicsRequest(topics, timeout=0) --"""

    API_KEY = _ApiKey.DELETE_TOPICS

    def __init__(self, topics: Iterable[bytes | str],
                 timeout: int = 0) -> None:
        self.topics = topics
        self.timeout = timeout

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        return {"topic_names": [_s(t) for t in self.topics],
                "timeout_ms": self.timeout}


class DeleteTopicsResponse(Response):
    """DeleteTopics response: as in pykafka, the first topic error raises
    its exception from the constructor (``raise_errors=False`` keeps it in
    the dict)."""

    API_KEY = _ApiKey.DELETE_TOPICS
    API_VERSION = 1
    RAISES = True

    def _raise_errors(self) -> None:
        bad = _first_error(self.get("responses"))
        if bad is not None:
            self.raise_error(bad["error_code"], dict(self))


class ApiVersionsRequest(Request):
    """ApiVersionsRequest() --"""

    API_KEY = _ApiKey.API_VERSIONS

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        return {}


class ApiVersionsResponse(Response):
    """ApiVersions response: ``api_versions`` ``{api key:
    ApiVersionsSpec(key, min, max)}``; V1+ ``throttle_time``."""

    API_KEY = _ApiKey.API_VERSIONS
    API_VERSION = 0

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: ApiVersionsResponse, 1: ApiVersionsResponseV1}

    def _populate(self) -> None:
        self.api_versions: dict[int, ApiVersionsSpec] = {}
        for k in self.get("api_keys") or []:
            spec = ApiVersionsSpec(k["api_key"], k["min_version"],
                                   k["max_version"])
            self.api_versions[spec.key] = spec
        if self.api_version >= 1:
            self.throttle_time: int = self.get("throttle_time_ms", 0)


class ApiVersionsResponseV1(ApiVersionsResponse):
    API_VERSION = 1
