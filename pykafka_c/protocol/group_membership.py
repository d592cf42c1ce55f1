"""Group membership: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
(``pykafka.protocol.group_membership``), and KIP-848's
ConsumerGroupHeartbeat (a pykafka_c addition)."""

from __future__ import annotations

from typing import Any

from .._constants import ApiKey as _ApiKey
from .._typing import Decoded
from ..exceptions import ProtocolDecodeError
from ..membershipprotocol import ConsumerGroupProtocolMetadata, MemberAssignment
from .base import Request, Response, _b, _s

__all__ = ["JoinGroupRequest", "JoinGroupResponse", "SyncGroupRequest",
           "SyncGroupResponse", "HeartbeatRequest", "HeartbeatResponse",
           "LeaveGroupRequest", "LeaveGroupResponse",
           "ConsumerGroupHeartbeatRequest", "ConsumerGroupHeartbeatResponse",
           "ConsumerGroupProtocolMetadata", "MemberAssignment"]


def _decode_consumer(cls: Any, data: Any) -> Any:
    """``cls.from_bytestring(data)``, or the raw bytes when they are not
    the consumer protocol's (another protocol type's members)."""
    if data is None:
        return None
    try:
        return cls.from_bytestring(data)
    except (ProtocolDecodeError, ValueError):
        return bytes(data)


class JoinGroupRequest(Request):
    """JoinGroupRequest(group_id, member_id, topic_name,
    membership_protocol, session_timeout=30000) --"""

    API_KEY = _ApiKey.JOIN_GROUP

    def __init__(self, group_id: bytes | str, member_id: bytes | str,
                 topic_name: bytes | str, membership_protocol: Any,
                 session_timeout: int = 30000) -> None:
        self.protocol = membership_protocol
        self.group_id = group_id
        self.session_timeout = session_timeout
        self.member_id = member_id
        self.topic_name = topic_name
        self.protocol_type = membership_protocol.protocol_type
        self.group_protocols: list[tuple[bytes, bytes]] = [(membership_protocol.protocol_name,
                                 bytes(membership_protocol.metadata
                                       .get_bytes()))]

    def _fields(self, version: int, rebalance_timeout_ms: int | None = None,
                **kwargs: Any) -> Decoded:
        return {"group_id": _s(self.group_id),
                "session_timeout_ms": self.session_timeout,
                "rebalance_timeout_ms": (self.session_timeout
                                         if rebalance_timeout_ms is None
                                         else rebalance_timeout_ms),
                "member_id": _s(self.member_id or b""),
                "group_instance_id": None,
                "protocol_type": _s(self.protocol_type),
                "protocols": [{"name": _s(n), "metadata": m}
                              for n, m in self.group_protocols],
                "reason": None}


class JoinGroupResponse(Response):
    """JoinGroup response: ``error_code``, ``generation_id``,
    ``group_protocol``, ``leader_id``, ``member_id`` (bytes) and
    ``members`` ``{member id (bytes): ConsumerGroupProtocolMetadata}``
    (filled for the leader)."""

    API_KEY = _ApiKey.JOIN_GROUP
    API_VERSION = 0

    def _populate(self) -> None:
        self.error_code: int = self.get("error_code", 0)
        self.generation_id: int = self.get("generation_id", -1)
        self.group_protocol: bytes | None = _b(self.get("protocol_name"))
        self.leader_id: bytes | None = _b(self.get("leader"))
        self.member_id: bytes | None = _b(self.get("member_id"))
        self.members: dict[bytes, Any] = {
            _b(m["member_id"]): _decode_consumer(
                ConsumerGroupProtocolMetadata, m.get("metadata"))
            for m in self.get("members") or []}


class SyncGroupRequest(Request):
    """SyncGroupRequest(group_id, generation_id, member_id,
    group_assignment) --

    ``group_assignment``: (member id, MemberAssignment) pairs (the
    leader's; empty for followers)."""

    API_KEY = _ApiKey.SYNC_GROUP

    def __init__(self, group_id: bytes | str, generation_id: int,
                 member_id: bytes | str,
                 group_assignment: list[tuple[Any, MemberAssignment]]
                 ) -> None:
        self.group_id = group_id
        self.generation_id = generation_id
        self.member_id = member_id
        self.group_assignment = group_assignment

    def _fields(self, version: int, protocol_type: str = "consumer",
                protocol_name: str | None = None, **kwargs: Any) -> Decoded:
        return {"group_id": _s(self.group_id),
                "generation_id": self.generation_id,
                "member_id": _s(self.member_id),
                "group_instance_id": None,
                "protocol_type": protocol_type,
                "protocol_name": protocol_name,
                "assignments": [{"member_id": _s(m),
                                 "assignment": bytes(a.get_bytes())}
                                for m, a in self.group_assignment]}


class SyncGroupResponse(Response):
    """SyncGroup response: ``error_code`` and ``member_assignment`` (a
    MemberAssignment)."""

    API_KEY = _ApiKey.SYNC_GROUP
    API_VERSION = 0

    def _populate(self) -> None:
        self.error_code: int = self.get("error_code", 0)
        self.member_assignment: Any = _decode_consumer(
            MemberAssignment, self.get("assignment") or b"")


class HeartbeatRequest(Request):
    """HeartbeatRequest(group_id, generation_id, member_id) --"""

    API_KEY = _ApiKey.HEARTBEAT

    def __init__(self, group_id: bytes | str, generation_id: int,
                 member_id: bytes | str) -> None:
        self.group_id = group_id
        self.generation_id = generation_id
        self.member_id = member_id

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        return {"group_id": _s(self.group_id),
                "generation_id": self.generation_id,
                "member_id": _s(self.member_id), "group_instance_id": None}


class HeartbeatResponse(Response):
    """Heartbeat response: ``error_code``."""

    API_KEY = _ApiKey.HEARTBEAT
    API_VERSION = 0

    def _populate(self) -> None:
        self.error_code: int = self.get("error_code", 0)


class LeaveGroupRequest(Request):
    """LeaveGroupRequest(group_id, member_id) --"""

    API_KEY = _ApiKey.LEAVE_GROUP

    def __init__(self, group_id: bytes | str,
                 member_id: bytes | str) -> None:
        self.group_id = group_id
        self.member_id = member_id

    def _fields(self, version: int, reason: str | None = None,
                group_instance_id: str | None = None,
                **kwargs: Any) -> Decoded:
        fields: Decoded = {"group_id": _s(self.group_id)}
        # v0-2 name the member at the top level, by member id alone (a
        # static member of Kafka 2.3 leaves that way); v3+ in a Members
        # array, with a static member's group instance id (KIP-345)
        if version < 3:
            fields["member_id"] = _s(self.member_id)
        else:
            fields["members"] = [{"member_id": _s(self.member_id),
                                  "group_instance_id": group_instance_id,
                                  "reason": reason}]
        return fields


class LeaveGroupResponse(Response):
    """LeaveGroup response: ``error_code`` (v3+: the first failing
    member's error when the top level has none)."""

    API_KEY = _ApiKey.LEAVE_GROUP
    API_VERSION = 0

    def _populate(self) -> None:
        err: int = self.get("error_code", 0)
        if not err:
            for m in self.get("members") or []:
                if m.get("error_code"):
                    err = m["error_code"]
                    break
        self.error_code = err


class ConsumerGroupHeartbeatRequest(Request):
    """ConsumerGroupHeartbeatRequest(group_id, member_id, member_epoch,
    instance_id=None, rebalance_timeout_ms=-1, subscribed_topic_names=None,
    server_assignor=None, topic_partitions=None) --

    KIP-848's one membership request (pykafka_c addition): joins (epoch 0),
    heartbeats and acknowledges an assignment (``topic_partitions``:
    ``[(topic id, [partition ids])]``, the partitions the member owns now),
    or leaves (epoch -1; -2 for a static member that will come back).
    ``None`` fields mean "unchanged since the last heartbeat"."""

    API_KEY = _ApiKey.CONSUMER_GROUP_HEARTBEAT

    def __init__(self, group_id: bytes | str, member_id: bytes | str,
                 member_epoch: int, instance_id: str | None = None,
                 rebalance_timeout_ms: int = -1,
                 subscribed_topic_names: list[bytes | str] | None = None,
                 server_assignor: str | None = None,
                 topic_partitions: list[tuple[bytes, list[int]]] | None
                 = None) -> None:
        self.group_id = group_id
        self.member_id = member_id
        self.member_epoch = member_epoch
        self.instance_id = instance_id
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.subscribed_topic_names = subscribed_topic_names
        self.server_assignor = server_assignor
        self.topic_partitions = topic_partitions

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        names = self.subscribed_topic_names
        owned = self.topic_partitions
        return {"group_id": _s(self.group_id),
                "member_id": _s(self.member_id),
                "member_epoch": self.member_epoch,
                "instance_id": self.instance_id,
                "rack_id": None,
                "rebalance_timeout_ms": self.rebalance_timeout_ms,
                "subscribed_topic_names":
                    None if names is None else [_s(n) for n in names],
                "subscribed_topic_regex": None,
                "server_assignor": self.server_assignor,
                "topic_partitions":
                    None if owned is None else
                    [{"topic_id": tid, "partitions": sorted(parts)}
                     for tid, parts in owned]}


class ConsumerGroupHeartbeatResponse(Response):
    """ConsumerGroupHeartbeat response: ``error_code``, ``error_message``,
    ``member_id`` (bytes or None), ``member_epoch``,
    ``heartbeat_interval_ms`` and ``assignment``: ``None`` when unchanged,
    else ``{topic id (16 bytes): [partition ids]}``, the member's whole
    assignment."""

    API_KEY = _ApiKey.CONSUMER_GROUP_HEARTBEAT
    API_VERSION = 0

    def _populate(self) -> None:
        self.error_code: int = self.get("error_code", 0)
        self.error_message: str | None = self.get("error_message")
        self.member_id: bytes | None = _b(self.get("member_id"))
        self.member_epoch: int = self.get("member_epoch", -1)
        self.heartbeat_interval_ms: int = self.get("heartbeat_interval_ms", 0)
        given = self.get("assignment")
        self.assignment: dict[bytes, list[int]] | None = None
        if given is not None:
            self.assignment = {
                bytes(t["topic_id"]): sorted(t["partitions"])
                for t in given["topic_partitions"]}
