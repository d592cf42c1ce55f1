"""Group membership: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
(``pykafka.protocol.group_membership``)."""

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
