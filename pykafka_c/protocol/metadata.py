"""Metadata (``pykafka.protocol.metadata``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from .._constants import ApiKey as _ApiKey
from .._typing import Decoded
from .base import Request, Response, _b, _s

__all__ = ["MetadataRequest", "MetadataRequestV1", "MetadataRequestV2",
           "MetadataRequestV3", "MetadataRequestV4", "MetadataRequestV5",
           "MetadataResponse", "MetadataResponseV1", "MetadataResponseV2",
           "MetadataResponseV3", "MetadataResponseV4", "MetadataResponseV5",
           "BrokerMetadata", "BrokerMetadataV1", "TopicMetadata",
           "TopicMetadataV1", "PartitionMetadata", "PartitionMetadataV5"]


class MetadataRequest(Request):
    """MetadataRequest(topics=None) --

    Metadata for ``topics`` (names; empty or None: every topic)."""

    API_KEY = _ApiKey.METADATA
    API_VERSION = 0

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: MetadataRequest, 1: MetadataRequestV1,
                2: MetadataRequestV2, 3: MetadataRequestV3,
                4: MetadataRequestV4, 5: MetadataRequestV5}

    def __init__(self, topics: Iterable[bytes | str] | None = None,
                 *kwargs: Any) -> None:
        self.topics = list(topics or [])

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        """The request as fields for the C encoder at ``version``."""
        fields: Decoded = {}
        if self.topics:
            fields["topics"] = [{"name": _s(t)} for t in self.topics]
        else:
            # v0 asks for every topic with an empty list, later with null
            fields["topics"] = [] if version == 0 else None
        if version >= 4:
            fields["allow_auto_topic_creation"] = bool(
                getattr(self, "allow_topic_autocreation", False))
        return fields


class MetadataRequestV1(MetadataRequest):
    API_VERSION = 1


class MetadataRequestV2(MetadataRequestV1):
    API_VERSION = 2


class MetadataRequestV3(MetadataRequestV2):
    API_VERSION = 3


class MetadataRequestV4(MetadataRequestV3):
    """MetadataRequestV4(topics=None, allow_topic_autocreation=True) --"""

    API_VERSION = 4

    def __init__(self, topics: Iterable[bytes | str] | None = None,
                 allow_topic_autocreation: bool = True) -> None:
        super(MetadataRequestV4, self).__init__(topics=topics)
        self.allow_topic_autocreation = allow_topic_autocreation


class MetadataRequestV5(MetadataRequestV4):
    API_VERSION = 5


class BrokerMetadata(NamedTuple):
    """A broker of a Metadata answer (v0)."""
    id: int
    host: bytes
    port: int


class BrokerMetadataV1(NamedTuple):
    """A broker of a Metadata answer (v1+)."""
    id: int
    host: bytes
    port: int
    rack: bytes | None


class PartitionMetadata(NamedTuple):
    """A partition of a Metadata answer (v0-v4)."""
    id: int
    leader: int
    replicas: list[int]
    isr: list[int]
    err: int


class PartitionMetadataV5(NamedTuple):
    """A partition of a Metadata answer (v5+)."""
    id: int
    leader: int
    replicas: list[int]
    isr: list[int]
    offline_replicas: list[int]
    err: int


class TopicMetadata(NamedTuple):
    """A topic of a Metadata answer (v0)."""
    name: bytes
    partitions: dict[int, Any]
    err: int


class TopicMetadataV1(NamedTuple):
    """A topic of a Metadata answer (v1+)."""
    name: bytes
    is_internal: bool
    partitions: dict[int, Any]
    err: int


class MetadataResponse(Response):
    """Metadata response.

    ``brokers``: ``{node id: BrokerMetadata(id, host, port)}``;
    ``topics``: ``{name (bytes): TopicMetadata(name, partitions, err)}``
    with ``partitions`` ``{id: PartitionMetadata(id, leader, replicas, isr,
    err)}``; ``controller_id``, ``cluster_id`` (None before v1/v2) and
    ``throttle_time_ms``.  Versions 1+ use the V1 broker and topic tuples
    (rack, is_internal), 5+ PartitionMetadataV5 (offline_replicas), as in
    pykafka; modern versions are shown with the v5 shapes.
    """

    API_KEY = _ApiKey.METADATA
    API_VERSION = 0

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {0: MetadataResponse, 1: MetadataResponseV1,
                2: MetadataResponseV2, 3: MetadataResponseV3,
                4: MetadataResponseV4, 5: MetadataResponseV5}

    def _populate(self) -> None:
        v = self.api_version
        self.throttle_time_ms: int = self.get("throttle_time_ms", 0) \
            if v >= 3 else 0
        self.controller_id: int | None = self.get("controller_id") \
            if v >= 1 else None
        self.cluster_id: bytes | None = _b(self.get("cluster_id")) \
            if v >= 2 else None
        self.brokers: dict[int, BrokerMetadata | BrokerMetadataV1] = {}
        for b in self.get("brokers") or []:
            meta: BrokerMetadata | BrokerMetadataV1
            if v >= 1:
                meta = BrokerMetadataV1(b["node_id"], _b(b["host"]),
                                        b["port"], _b(b.get("rack")))
            else:
                meta = BrokerMetadata(b["node_id"], _b(b["host"]), b["port"])
            self.brokers[meta.id] = meta
        self.topics: dict[bytes, TopicMetadata | TopicMetadataV1] = {}
        for t in self.get("topics") or []:
            name = _b(t.get("name"))
            parts: dict[int, PartitionMetadata | PartitionMetadataV5] = {}
            for p in t.get("partitions") or []:
                pid = p["partition_index"]
                if v >= 5:
                    parts[pid] = PartitionMetadataV5(
                        pid, p["leader_id"], p["replica_nodes"],
                        p["isr_nodes"], p.get("offline_replicas") or [],
                        p["error_code"])
                else:
                    parts[pid] = PartitionMetadata(
                        pid, p["leader_id"], p["replica_nodes"],
                        p["isr_nodes"], p["error_code"])
            if v >= 1:
                self.topics[name] = TopicMetadataV1(
                    name, bool(t.get("is_internal", False)), parts,
                    t["error_code"])
            else:
                self.topics[name] = TopicMetadata(name, parts,
                                                  t["error_code"])


class MetadataResponseV1(MetadataResponse):
    API_VERSION = 1


class MetadataResponseV2(MetadataResponseV1):
    API_VERSION = 2


class MetadataResponseV3(MetadataResponseV2):
    API_VERSION = 3


class MetadataResponseV4(MetadataResponseV3):
    API_VERSION = 4


class MetadataResponseV5(MetadataResponseV4):
    API_VERSION = 5
