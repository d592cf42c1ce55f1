"""``Broker``: one Kafka node, its connections, and every request type.

A Broker owns up to three kinds of C connections (``_core.Connection``):
the main one (metadata, offsets, produce), the offsets channel (offset
commit and fetch, as in pykafka), and one per consumer-group connection id
(group membership, so several balanced consumers in one process do not
interleave).  Each connection negotiates API versions with ApiVersions as
soon as it is made: for every API the highest version that both the broker
and pykafka_c support is used, and the broker's minimum is respected.

Requests are encoded and responses decoded by the table-driven C codec
(``_core.encode_request`` / ``_core.decode_response``).  ``request()``
returns the decoded dict (Kafka's field names in snake_case); the named
helpers return pykafka's response classes from :mod:`pykafka_c.protocol`,
which are those dicts with pykafka's attributes added.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, Union

from . import _core
# ApiKey (Kafka's API keys: ApiKey.FETCH == 1) and SUPPORTED_VERSIONS
# ({api_key: (min, max)}: the version ranges whose semantics pykafka_c
# implements; the codec can encode more, these caps keep request and
# response shapes that the layer above understands, topic names rather
# than topic ids for Produce/Fetch, the un-batched OffsetFetch and
# FindCoordinator forms, ...) come from the C core's tables, which the
# engines use too: csrc/wire/proto_api.h (generated from Kafka's specs)
# and csrc/wire/api_support.def.
from . import _display
from ._constants import API_NAMES, SUPPORTED_VERSIONS, ApiKey, CoordinatorType
from ._constants import KafkaError as _KafkaError
from ._security import make_security
from ._typing import Decoded
from .exceptions import (_SECURITY_ERRORS, SocketDisconnectedError,
                         UnsupportedApiVersionError)

if TYPE_CHECKING:
    from ._responses import (PartitionFetchRequest,
                             PartitionOffsetCommitRequest,
                             PartitionOffsetFetchRequest,
                             PartitionOffsetRequest)
    from .connection import SslConfig
    from .handlers import Handler
    from .protocol import (ApiVersionsResponse, CreateTopicsResponse,
                           DeleteTopicsResponse, DescribeGroupsResponse,
                           FetchResponse, GroupCoordinatorResponse,
                           HeartbeatResponse, JoinGroupResponse,
                           LeaveGroupResponse, ListGroupsResponse,
                           ListOffsetResponse, MetadataResponse,
                           OffsetCommitResponse, OffsetFetchResponse,
                           ProduceRequest, ProduceResponse,
                           SyncGroupResponse)
    from .protocol.base import Request, Response
    from .protocol.group_membership import (ConsumerGroupHeartbeatRequest,
                                            ConsumerGroupHeartbeatResponse)

_R = TypeVar("_R", bound="Response")

#: A connection of a Broker: "main", "offsets", or ("group", id).
_ChannelKey = Union[str, tuple[str, Any]]

__all__ = ["Broker", "ApiKey", "SUPPORTED_VERSIONS"]

log = logging.getLogger(__name__)

CLIENT_ID = "pykafka_c"
CLIENT_SOFTWARE_NAME = "pykafka-c"


_API_TABLE: dict[int, tuple[str, int, int, int | None]] | None = None


def _api_table() -> dict[int, tuple[str, int, int, int | None]]:
    """``{api_key: (name, min, max, flexible_from)}`` of the C codec."""
    global _API_TABLE
    if _API_TABLE is None:
        _API_TABLE = _core.api_versions_table()
    return _API_TABLE


def api_name(api_key: int) -> str:
    entry = _api_table().get(api_key)
    return entry[0] if entry else "ApiKey%d" % api_key


def is_flexible(api_key: int, version: int) -> bool:
    entry = _api_table()[api_key]
    flex = entry[3]
    return flex is not None and flex >= 0 and version >= flex


def negotiate(api_key: int, broker_range: tuple[int, int] | None) -> int:
    """Highest version both sides support; ``broker_range`` is (min, max)
    from ApiVersions or None when the broker does not list the API."""
    name = api_name(api_key)
    ours_lo, ours_hi = SUPPORTED_VERSIONS[api_key]
    entry = _api_table().get(api_key)
    if entry is not None:
        ours_lo = max(ours_lo, entry[1])
        ours_hi = min(ours_hi, entry[2])
    if broker_range is None:
        raise UnsupportedApiVersionError(
            "The broker does not support %s at any version (pykafka_c "
            "speaks v%d-v%d)" % (name, ours_lo, ours_hi))
    lo = max(ours_lo, broker_range[0])
    hi = min(ours_hi, broker_range[1])
    if lo > hi:
        raise UnsupportedApiVersionError(
            "No common version of %s: the broker supports v%d-v%d, "
            "pykafka_c supports v%d-v%d" % (name, broker_range[0],
                                             broker_range[1], ours_lo,
                                             ours_hi))
    return hi


class _Channel(object):
    """One C connection with its lock and negotiated versions."""

    __slots__ = ("conn", "lock", "versions", "broker_ranges",
                 "api_versions_response", "api_versions_version", "answered")

    def __init__(self, conn: _core.Connection,
                 broker_ranges: dict[int, tuple[int, int]],
                 api_versions_response: Decoded | None = None,
                 api_versions_version: int = 0) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.broker_ranges = broker_ranges
        self.versions: dict[int, int] = {}
        self.api_versions_response = api_versions_response
        self.api_versions_version = api_versions_version
        # A request was answered on it: a later failure may mean the
        # broker restarted since and the socket is stale.
        self.answered = False


# Requests that only read (or whose repeat changes nothing): when one
# fails on a connection that had answered before, it is sent once more on
# a new connection, so a broker restarted since the last request is not
# reported as unreachable.  Writes (Produce, commits, group membership)
# are never sent twice.
_RESEND_ON_STALE = frozenset((
    ApiKey.METADATA, ApiKey.API_VERSIONS, ApiKey.LIST_OFFSETS,
    ApiKey.FIND_COORDINATOR, ApiKey.OFFSET_FETCH, ApiKey.DESCRIBE_GROUPS,
    ApiKey.LIST_GROUPS, ApiKey.DESCRIBE_CONFIGS, ApiKey.FETCH))


class Broker(object):
    """A Kafka broker: connections, version negotiation and requests.

    The signature is pykafka's.  ``handler``, ``buffer_size`` and
    ``broker_version`` are accepted for compatibility; pykafka_c's C
    connections need no handler thread, buffers grow as needed up to the
    maximum frame size, and ApiVersions negotiation decides every version.
    """

    def __init__(self, id_: int, host: str, port: int,
                 handler: Handler | None = None,
                 socket_timeout_ms: int = 30 * 1000,
                 offsets_channel_socket_timeout_ms: int = 10 * 1000,
                 buffer_size: int = 1024 * 1024, source_host: str = '',
                 source_port: int = 0, ssl_config: SslConfig | None = None,
                 broker_version: str = "0.9.0", api_versions: Any = None,
                 connect: bool = True,
                 security: _core.Security | None = None) -> None:
        self._id = int(id_)
        self._host = host
        self._port = int(port)
        self._handler = handler
        self._socket_timeout_ms = socket_timeout_ms
        self._offsets_channel_socket_timeout_ms = \
            offsets_channel_socket_timeout_ms
        self._buffer_size = buffer_size
        self._source_host = source_host
        self._source_port = source_port
        self._ssl_config = ssl_config
        self._broker_version = broker_version
        self._api_versions = api_versions
        self._channels: dict[_ChannelKey, _Channel] = {}
        self._channels_lock = threading.Lock()
        # The ApiVersions version the last exchange with this broker ended
        # on: later connections start there instead of being refused again.
        self._api_versions_version = SUPPORTED_VERSIONS[ApiKey.API_VERSIONS][1]
        self._security = security
        if security is None and ssl_config is not None:
            self._security = make_security(ssl_config)
        if connect:
            self.connect()

    @_display.safe_repr
    def __repr__(self) -> str:
        return _display.fields(self, [
            ("id", self._id),
            ("address", _display.raw("%s:%d" % (self._host, self._port))),
            ("connected", self.connected)])

    def __hash__(self) -> int:
        return hash((self._id, self._host, self._port))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Broker):
            return NotImplemented
        return (self._id, self._host, self._port) == \
            (other._id, other._host, other._port)

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    @classmethod
    def from_metadata(cls, metadata: Any, handler: Handler | None = None,
                      socket_timeout_ms: int = 30000,
                      offsets_channel_socket_timeout_ms: int = 10000,
                      buffer_size: int = 64 * 1024, source_host: str = '',
                      source_port: int = 0,
                      ssl_config: SslConfig | None = None,
                      broker_version: str = "0.9.0", api_versions: Any = None,
                      security: _core.Security | None = None) -> Broker:
        """Make a Broker from one entry of a Metadata response: a decoded
        dict or pykafka's BrokerMetadata (``id``, ``host``, ``port``)."""
        if isinstance(metadata, tuple):
            meta: Any = metadata
            node_id, host, port = (meta.id, _as_str(meta.host), meta.port)
        else:
            node_id, host, port = (metadata["node_id"], metadata["host"],
                                   metadata["port"])
        return cls(node_id, host, port,
                   handler, socket_timeout_ms,
                   offsets_channel_socket_timeout_ms,
                   buffer_size=buffer_size, source_host=source_host,
                   source_port=source_port, ssl_config=ssl_config,
                   broker_version=broker_version, api_versions=api_versions,
                   security=security)

    # -- properties -------------------------------------------------------

    @property
    def id(self) -> int:
        return self._id

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def handler(self) -> Handler | None:
        return self._handler

    @property
    def connected(self) -> bool:
        ch = self._channels.get("main")
        return ch is not None and ch.conn.connected

    @property
    def offsets_channel_handler(self) -> Handler | None:
        """pykafka's handler of the offsets channel: the same ``handler``
        (pykafka_c's channels need no request-handler thread)."""
        return self._handler

    @property
    def _connection(self) -> _core.Connection | None:
        """pykafka's name for the main connection: its
        :class:`~pykafka_c.connection.BrokerConnection` (``connected``,
        ``disconnect()``), or None while none is open.  The consumers' and
        producers' C loops keep their own connections."""
        ch = self._channels.get("main")
        return ch.conn if ch is not None else None

    @property
    def offsets_channel_connected(self) -> bool:
        ch = self._channels.get("offsets")
        return ch is not None and ch.conn.connected

    @property
    def api_versions(self) -> dict[int, tuple[int, int]]:
        """``{api_key: (min, max)}`` as the broker advertised them."""
        ch = self._channels.get("main")
        if ch is None:
            return {}
        return dict(ch.broker_ranges)

    # -- connections ------------------------------------------------------

    def _timeout_for(self, channel: _ChannelKey) -> int:
        if channel == "offsets":
            return self._offsets_channel_socket_timeout_ms
        return self._socket_timeout_ms

    def _open_channel(self, channel: _ChannelKey) -> _Channel:
        """Connect (TCP, TLS and SASL as the client's security says) and
        negotiate: the C link asks ApiVersions (v3, falling back to the
        broker's own range, or v0 for brokers before 2.4)."""
        timeout_ms = self._timeout_for(channel)
        conn = _core.Connection(self._host, self._port,
                                timeout_ms=timeout_ms, client_id=CLIENT_ID,
                                source_host=self._source_host or "",
                                source_port=self._source_port or 0,
                                security=self._security, negotiate=True,
                                api_versions_version=self._api_versions_version,
                                software_version=_client_version())
        try:
            version = conn.api_versions_version
            raw = conn.api_versions_response
            if raw is None:  # not after negotiate=True; never trusted
                raise SocketDisconnectedError(
                    "%s:%d gave no ApiVersions answer" % (self._host,
                                                          self._port))
            resp = _core.decode_response(ApiKey.API_VERSIONS, version, raw)
        except BaseException:
            conn.close()
            raise
        # Later connections start at the version that worked.
        self._api_versions_version = version
        return _Channel(conn, conn.api_versions, resp, version)

    def _channel(self, channel: _ChannelKey) -> _Channel:
        ch = self._channels.get(channel)
        if ch is not None and ch.conn.connected:
            return ch
        with self._channels_lock:
            ch = self._channels.get(channel)
            if ch is not None and ch.conn.connected:
                return ch
            ch = self._open_channel(channel)
            self._channels[channel] = ch
            return ch

    def connect(self, attempts: int = 3) -> bool:
        """Open the main connection; failures are logged, as in pykafka."""
        return self._connect_channel("main", attempts)

    def connect_offsets_channel(self, attempts: int = 3) -> bool:
        """Open the offsets-channel connection."""
        return self._connect_channel("offsets", attempts)

    def _connect_channel(self, channel: _ChannelKey, attempts: int) -> bool:
        for attempt in range(max(1, attempts)):
            try:
                self._channel(channel)
                return True
            except _SECURITY_ERRORS:
                raise  # TLS or SASL refused: trying again cannot help
            except SocketDisconnectedError as exc:
                log.info("Attempt %d: failed to connect to %s:%d: %s",
                         attempt, self._host, self._port, exc)
                if attempt + 1 < attempts:
                    time.sleep(0.3)
        log.warning("Failed to connect to broker %d at %s:%d", self._id,
                    self._host, self._port)
        return False

    def disconnect(self) -> None:
        """Close every connection of this broker."""
        with self._channels_lock:
            channels, self._channels = self._channels, {}
        for ch in channels.values():
            ch.conn.close()

    close = disconnect

    def close_channel(self, channel: _ChannelKey) -> None:
        """Close one connection of this broker (e.g. ``("group", id)`` of a
        stopped balanced consumer); harmless if it is not open."""
        with self._channels_lock:
            ch = self._channels.pop(channel, None)
        if ch is not None:
            ch.conn.close()

    # -- requests ---------------------------------------------------------

    def api_version(self, api_key: int, channel: _ChannelKey = "main") -> int:
        """The negotiated version of ``api_key`` (connects if needed)."""
        ch = self._channel(channel)
        v = ch.versions.get(api_key)
        if v is None:
            v = negotiate(api_key, ch.broker_ranges.get(api_key))
            ch.versions[api_key] = v
        return v

    def request(self, api_key: int,
                fields: Decoded | Callable[[int], Decoded],
                channel: _ChannelKey = "main", version: int | None = None,
                expect_response: bool = True,
                timeout_ms: int | None = None) -> Decoded | None:
        """Send one request and return the decoded response dict.

        ``fields`` maps snake_case field names to values; missing fields take
        their protocol defaults.  Raises SocketDisconnectedError (after
        closing the connection) when the broker cannot be reached.
        """
        return self._request(api_key, fields, channel, version,
                             expect_response, timeout_ms)[1]

    def _request(self, api_key: int,
                 fields: Decoded | Callable[[int], Decoded],
                 channel: _ChannelKey = "main", version: int | None = None,
                 expect_response: bool = True,
                 timeout_ms: int | None = None
                 ) -> tuple[int, Decoded | None]:
        """``request()``, returning ``(version used, decoded dict or
        None)``.  ``fields`` may be a callable of the version."""
        if timeout_ms is None:
            timeout_ms = self._timeout_for(channel)
        ch = self._channel(channel)
        try:
            return self._request_on(ch, api_key, fields, version,
                                    expect_response, timeout_ms)
        except SocketDisconnectedError as exc:
            if not (ch.answered and api_key in _RESEND_ON_STALE):
                raise
            log.info("%s to broker %s at %s:%d failed on a connection that "
                     "had answered before (%s): sending it again on a new "
                     "connection", API_NAMES.get(api_key, api_key), self._id,
                     self._host, self._port, exc)
        return self._request_on(self._channel(channel), api_key, fields,
                                version, expect_response, timeout_ms)

    def _request_on(self, ch: _Channel, api_key: int,
                    fields: Decoded | Callable[[int], Decoded],
                    version: int | None, expect_response: bool,
                    timeout_ms: int) -> tuple[int, Decoded | None]:
        """One request on channel ``ch`` (closed when it fails)."""
        if version is None:
            version = ch.versions.get(api_key)
            if version is None:
                version = negotiate(api_key, ch.broker_ranges.get(api_key))
                ch.versions[api_key] = version
        if callable(fields):
            fields = fields(version)
        body = _core.encode_request(api_key, version, fields)
        flexible = is_flexible(api_key, version)
        with ch.lock:
            try:
                if not expect_response:
                    ch.conn.send(api_key, version, body, flexible=flexible,
                                 expect_response=False)
                    return version, None
                raw = ch.conn.request(api_key, version, body,
                                      flexible=flexible,
                                      timeout_ms=timeout_ms)
            except SocketDisconnectedError:
                ch.conn.close()
                raise
            ch.answered = True
        return version, _core.decode_response(api_key, version, raw)

    def _send(self, req: Request, response_cls: type[_R],
              channel: _ChannelKey = "main", timeout_ms: int | None = None,
              raise_errors: bool | None = None, **kwargs: Any) -> _R:
        """Encode the protocol request object ``req`` at the negotiated
        version (``req._fields(version, **kwargs)``) and return the
        response as ``response_cls``'s class for that version."""
        version, decoded = self._request(
            req.API_KEY, lambda v: req._fields(v, **kwargs), channel,
            timeout_ms=timeout_ms)
        return response_cls.for_version(version)(
            decoded, version, raise_errors=raise_errors)

    def fetch_messages(self,
                       partition_requests: Iterable[PartitionFetchRequest],
                       timeout: int = 30000,
                       min_bytes: int = 1) -> FetchResponse:
        """Fetch of PartitionFetchRequest(topic_name, partition_id, offset,
        max_bytes) entries, waiting up to ``timeout`` ms for ``min_bytes``.

        Returns a :class:`~pykafka_c.protocol.FetchResponse` whose
        ``topics[name][partition_id].messages`` are Messages decoded (CRC
        checked, decompressed) from the records, from the requested offset
        on.  (The consumers do not use this: their fetch loop is C.)"""
        from .protocol import FetchRequest, FetchResponse
        req = FetchRequest(partition_requests, timeout=timeout,
                           min_bytes=min_bytes)
        version, decoded = self._request(
            ApiKey.FETCH, req._fields,
            timeout_ms=max(self._socket_timeout_ms, timeout + 5000))
        return FetchResponse.for_version(version)(
            decoded, version=version, broker_version=self._broker_version,
            fetch_offsets=req._fetch_offsets())

    def produce_messages(self, produce_request: ProduceRequest
                         ) -> ProduceResponse | None:
        """Send a :class:`~pykafka_c.protocol.ProduceRequest`: each
        partition's messages as one RecordBatch v2 (compressed with the
        request's compression type).  Returns a ProduceResponse, or None
        when ``required_acks`` is 0 (no response is read)."""
        from .protocol import ProduceResponse
        acks = produce_request.required_acks
        timeout_ms = max(self._socket_timeout_ms,
                         produce_request.timeout + 5000)
        version, decoded = self._request(
            ApiKey.PRODUCE, produce_request._fields,
            expect_response=acks != 0, timeout_ms=timeout_ms)
        if acks == 0:
            return None
        return ProduceResponse.for_version(version)(decoded, version)

    def request_metadata(self, topics: Iterable[bytes | str] | None = None,
                         allow_auto_topic_creation: bool = False
                         ) -> MetadataResponse:
        """Metadata for ``topics`` (names, str or bytes) or for all topics,
        as a :class:`~pykafka_c.protocol.MetadataResponse`.

        ``allow_auto_topic_creation`` exists from Metadata v4; before that
        the broker's ``auto.create.topics.enable`` alone decides."""
        from .protocol import MetadataRequestV4, MetadataResponse
        req = MetadataRequestV4(topics, allow_auto_topic_creation)
        return self._send(req, MetadataResponse)

    def request_offset_limits(
            self, partition_requests: Iterable[PartitionOffsetRequest],
            isolation_level: int = 0) -> ListOffsetResponse:
        """ListOffsets.  ``partition_requests`` is an iterable of
        PartitionOffsetRequest(topic_name, partition_id, offsets_before,
        max_offsets); returns a :class:`~pykafka_c.protocol.ListOffsetResponse`
        (one offset per partition)."""
        from .protocol import ListOffsetRequest, ListOffsetResponse
        req = ListOffsetRequest(partition_requests)
        version, decoded = self._request(
            ApiKey.LIST_OFFSETS,
            lambda v: req._fields(v, isolation_level=isolation_level))
        # pykafka used its v0 shape (a list of offsets) for every version
        return ListOffsetResponse(decoded, version)

    def find_coordinator(self, key: bytes | str,
                         key_type: int = CoordinatorType.GROUP
                         ) -> GroupCoordinatorResponse:
        """FindCoordinator for a group id (or ``key_type``'s key); a
        :class:`~pykafka_c.protocol.GroupCoordinatorResponse` that does not
        raise on errors (see its ``error_code``)."""
        from .protocol import GroupCoordinatorResponse
        version, decoded = self._request(
            ApiKey.FIND_COORDINATOR,
            {"key": _as_str(key), "key_type": key_type})
        return GroupCoordinatorResponse(decoded, version, raise_errors=False)

    def commit_consumer_group_offsets(
            self, consumer_group: bytes | str,
            consumer_group_generation_id: int, consumer_id: bytes | str,
            preqs: Iterable[PartitionOffsetCommitRequest],
            group_instance_id: str | None = None) -> OffsetCommitResponse:
        """OffsetCommit of PartitionOffsetCommitRequest tuples; an
        :class:`~pykafka_c.protocol.OffsetCommitResponse`."""
        from .protocol import OffsetCommitRequest, OffsetCommitResponse
        req = OffsetCommitRequest(consumer_group,
                                  consumer_group_generation_id, consumer_id,
                                  preqs)
        return self._send(req, OffsetCommitResponse, channel="offsets",
                          group_instance_id=group_instance_id)

    def fetch_consumer_group_offsets(
            self, consumer_group: bytes | str,
            preqs: Iterable[PartitionOffsetFetchRequest] | None,
            require_stable: bool = False) -> OffsetFetchResponse:
        """OffsetFetch of PartitionOffsetFetchRequest tuples (``preqs`` None
        means all topics); an :class:`~pykafka_c.protocol.OffsetFetchResponse`."""
        from .protocol import OffsetFetchRequest, OffsetFetchResponse
        req = OffsetFetchRequest(consumer_group, preqs or [])
        return self._send(req, OffsetFetchResponse, channel="offsets",
                          require_stable=require_stable,
                          all_topics=preqs is None)

    def join_group(self, connection_id: Any, consumer_group: bytes | str,
                   member_id: bytes | str | None,
                   topic_name: bytes | str | None = None,
                   membership_protocol: Any = None,
                   session_timeout_ms: int = 30000,
                   rebalance_timeout_ms: int | None = None,
                   protocols: list[Decoded] | None = None,
                   protocol_type: str = "consumer",
                   group_instance_id: str | None = None,
                   reason: str | None = None) -> JoinGroupResponse:
        """JoinGroup on the group connection ``connection_id``; a
        :class:`~pykafka_c.protocol.JoinGroupResponse`."""
        from .protocol import JoinGroupResponse
        if protocols is None:
            protocols = [{"name": _as_str(membership_protocol.protocol_name),
                          "metadata": membership_protocol.metadata.get_bytes()}]
        fields: Decoded = {"group_id": _as_str(consumer_group),
                  "session_timeout_ms": session_timeout_ms,
                  "rebalance_timeout_ms": (rebalance_timeout_ms
                                           if rebalance_timeout_ms is not None
                                           else session_timeout_ms),
                  "member_id": _as_str(member_id or ""),
                  "group_instance_id": group_instance_id,
                  "protocol_type": protocol_type,
                  "protocols": protocols,
                  "reason": reason}
        timeout = max(self._socket_timeout_ms,
                      fields["rebalance_timeout_ms"] + 5000)
        version, decoded = self._request(ApiKey.JOIN_GROUP, fields,
                                         channel=("group", connection_id),
                                         timeout_ms=timeout)
        return JoinGroupResponse(decoded, version)

    def sync_group(self, connection_id: Any, consumer_group: bytes | str,
                   generation_id: int, member_id: bytes | str,
                   group_assignment: Iterable[Any],
                   protocol_type: str = "consumer",
                   protocol_name: str | None = None,
                   group_instance_id: str | None = None,
                   timeout_ms: int | None = None) -> SyncGroupResponse:
        """SyncGroup; ``group_assignment`` is a list of
        ``{"member_id": str, "assignment": bytes}`` or of pykafka's
        ``(member_id, MemberAssignment)`` pairs.  A
        :class:`~pykafka_c.protocol.SyncGroupResponse`."""
        from .protocol import SyncGroupResponse
        assignments: list[Decoded] = []
        for entry in group_assignment:
            if not isinstance(entry, dict):
                mid, assignment = entry
                entry = {"member_id": _as_str(mid),
                         "assignment": bytes(assignment.get_bytes())}
            assignments.append(entry)
        fields = {"group_id": _as_str(consumer_group),
                  "generation_id": generation_id,
                  "member_id": _as_str(member_id),
                  "group_instance_id": group_instance_id,
                  "protocol_type": protocol_type,
                  "protocol_name": protocol_name,
                  "assignments": assignments}
        version, decoded = self._request(ApiKey.SYNC_GROUP, fields,
                                         channel=("group", connection_id),
                                         timeout_ms=timeout_ms)
        return SyncGroupResponse(decoded, version)

    def heartbeat(self, connection_id: Any, consumer_group: bytes | str,
                  generation_id: int, member_id: bytes | str,
                  group_instance_id: str | None = None) -> HeartbeatResponse:
        """Heartbeat on the group connection ``connection_id``; a
        :class:`~pykafka_c.protocol.HeartbeatResponse`."""
        from .protocol import HeartbeatResponse
        fields = {"group_id": _as_str(consumer_group),
                  "generation_id": generation_id,
                  "member_id": _as_str(member_id),
                  "group_instance_id": group_instance_id}
        version, decoded = self._request(ApiKey.HEARTBEAT, fields,
                                         channel=("group", connection_id))
        return HeartbeatResponse(decoded, version)

    def consumer_group_heartbeat(
            self, connection_id: Any,
            request: ConsumerGroupHeartbeatRequest
            ) -> ConsumerGroupHeartbeatResponse:
        """KIP-848's ConsumerGroupHeartbeat on the group connection
        ``connection_id``; a
        :class:`~pykafka_c.protocol.group_membership.ConsumerGroupHeartbeatResponse`.
        Raises UnsupportedApiVersionError when the broker does not offer
        the API (Kafka before 3.7, or 3.x without the consumer protocol
        enabled)."""
        from .protocol.group_membership import ConsumerGroupHeartbeatResponse
        return self._send(request, ConsumerGroupHeartbeatResponse,
                          channel=("group", connection_id))

    def leave_group(self, connection_id: Any, consumer_group: bytes | str,
                    member_id: bytes | str,
                    reason: str | None = None,
                    group_instance_id: str | None = None
                    ) -> LeaveGroupResponse:
        """LeaveGroup for one member (a static member names its
        ``group_instance_id``, LeaveGroup v3+); a
        :class:`~pykafka_c.protocol.LeaveGroupResponse`."""
        from .protocol import LeaveGroupRequest, LeaveGroupResponse
        req = LeaveGroupRequest(consumer_group, member_id)
        return self._send(req, LeaveGroupResponse,
                          channel=("group", connection_id), reason=reason,
                          group_instance_id=group_instance_id)

    def list_groups(self) -> ListGroupsResponse:
        """ListGroups on this broker; a
        :class:`~pykafka_c.protocol.ListGroupsResponse`."""
        from .protocol import ListGroupsRequest, ListGroupsResponse
        return self._send(ListGroupsRequest(), ListGroupsResponse)

    def describe_groups(self, group_ids: Iterable[bytes | str]
                        ) -> DescribeGroupsResponse:
        """DescribeGroups for ``group_ids``; a
        :class:`~pykafka_c.protocol.DescribeGroupsResponse`."""
        from .protocol import DescribeGroupsRequest, DescribeGroupsResponse
        return self._send(DescribeGroupsRequest(group_ids),
                          DescribeGroupsResponse)

    def create_topics(self, topic_reqs: Iterable[Any],
                      timeout: int = 0) -> CreateTopicsResponse:
        """CreateTopics; ``topic_reqs`` are CreateTopicRequest tuples, or
        dicts with ``name``, ``num_partitions``, ``replication_factor`` and
        optional ``configs`` (a dict), or objects with those attributes.
        A :class:`~pykafka_c.protocol.CreateTopicsResponse`; as in pykafka,
        a topic's error raises its exception."""
        from .protocol import CreateTopicsRequest, CreateTopicsResponse
        return self._send(CreateTopicsRequest(topic_reqs, timeout=timeout),
                          CreateTopicsResponse,
                          timeout_ms=max(self._socket_timeout_ms,
                                         timeout + 5000))

    def delete_topics(self, topics: Iterable[bytes | str],
                      timeout: int = 0) -> DeleteTopicsResponse:
        """DeleteTopics by name; a
        :class:`~pykafka_c.protocol.DeleteTopicsResponse`; as in pykafka, a
        topic's error raises its exception."""
        from .protocol import DeleteTopicsRequest, DeleteTopicsResponse
        return self._send(DeleteTopicsRequest(topics, timeout=timeout),
                          DeleteTopicsResponse,
                          timeout_ms=max(self._socket_timeout_ms,
                                         timeout + 5000))

    def fetch_api_versions(self) -> ApiVersionsResponse:
        """The broker's ApiVersions answer (from the main connection's
        negotiation), an :class:`~pykafka_c.protocol.ApiVersionsResponse`:
        ``api_versions`` is ``{api_key: ApiVersionsSpec(key, min, max)}``."""
        from .protocol import ApiVersionsResponse
        ch = self._channel("main")
        return ApiVersionsResponse.for_version(ch.api_versions_version)(
            ch.api_versions_response, ch.api_versions_version)


def _kafka_error(code: int, context: str = "") -> Exception:
    from .exceptions import error_for_code
    return error_for_code(code, context)


def _as_str(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _client_version() -> str:
    from . import __version__
    return __version__
