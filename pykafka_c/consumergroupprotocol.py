"""Balanced consumers on KIP-848's consumer group protocol.

``topic.get_balanced_consumer(..., group_protocol="consumer")`` returns one
of these (a pykafka_c addition; the default ``"classic"`` is the JoinGroup /
SyncGroup protocol of :mod:`pykafka_c.balancedconsumer`).  Kafka 4.0 made
this protocol generally available; Java's consumer calls it
``group.protocol=consumer``.

How a member behaves:

* Membership is one request, ConsumerGroupHeartbeat: a member joins with
  epoch 0, heartbeats with the member epoch the coordinator gave it, at
  the interval the coordinator gives (its ``group.consumer.*`` settings:
  ``heartbeat_interval_ms`` and ``session_timeout_ms`` are not used), and
  leaves with epoch -1 (-2 for a static member, which the coordinator
  keeps for its session timeout).
* The coordinator computes the assignment (its ``uniform`` or ``range``
  assignor: ``server_assignor=``, default the broker's first); there is no
  leader and ``membership_protocol`` is not used.
* Partitions move one by one.  The coordinator sends each member its
  assignment; a member first gives up the partitions it must revoke
  (commits their positions, as the classic consumers do before a
  rebalance, then acknowledges), and the coordinator hands a partition to
  its new owner only after that.  The partitions a member keeps are never
  revoked: their positions carry over when the member's internal
  consumer is rebuilt for the new set (the only pause they see).
* Offsets are committed with the member id and member epoch; commits,
  ``held_offsets``, ``reset_offsets``, ``stop()`` and
  ``post_rebalance_callback`` (called when the partition set changed)
  behave as with the classic protocol.
* A coordinator that does not offer the protocol (Kafka before 3.7, or
  3.x whose ``group.coordinator.rebalance.protocols`` lacks ``consumer``)
  makes the start raise :class:`UnsupportedApiVersionError` saying so.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from ._constants import ApiKey as _ApiKey
from ._constants import KafkaError as _KafkaError
from .balancedconsumer import (_COORDINATOR_MOVED, _REJOIN, _RETRY_LATER,
                               BalancedConsumer, _is_fatal, _to_str)
from .exceptions import (ConsumerStoppedException,
                         NoBrokersAvailableError,
                         SocketDisconnectedError,
                         UnsupportedApiVersionError)
from .managedbalancedconsumer import ManagedBalancedConsumer
from .protocol.group_membership import (ConsumerGroupHeartbeatRequest,
                                        ConsumerGroupHeartbeatResponse)

if TYPE_CHECKING:
    from .broker import Broker

__all__ = ["SERVER_ASSIGNORS",
           "ConsumerProtocolBalancedConsumer",
           "ConsumerProtocolManagedBalancedConsumer"]

log = logging.getLogger(__name__)

#: The assignors Kafka's coordinator has (``server_assignor=``).
SERVER_ASSIGNORS = ("uniform", "range")

# Member epochs with a meaning of their own (KIP-848).
_JOIN_EPOCH = 0
_LEAVE_EPOCH = -1
_STATIC_LEAVE_EPOCH = -2
# Errors after which the member has lost its partitions and joins again
# with epoch 0 (KIP-848: "fenced").
_FENCED = (_KafkaError.FENCED_MEMBER_EPOCH, _KafkaError.UNKNOWN_MEMBER_ID)
# How soon to retry a heartbeat that could not be sent.
_RETRY_S = 0.25


def _valid_assignor(name: str | None) -> str | None:
    if name is None or name in SERVER_ASSIGNORS:
        return name
    raise ValueError("server_assignor must be one of %s or None (the "
                     "broker's default), not %r"
                     % (", ".join(SERVER_ASSIGNORS), name))


class _ConsumerGroupProtocol(BalancedConsumer):
    """The KIP-848 membership, over the classic consumer's life cycle,
    commits and internal consumer."""

    _COMMIT_REFUSED = _REJOIN + (_KafkaError.STALE_MEMBER_EPOCH,
                                 _KafkaError.FENCED_MEMBER_EPOCH)

    def __init__(self, *args: Any, server_assignor: str | None = None,
                 **kwargs: Any) -> None:
        self._server_assignor = _valid_assignor(server_assignor)
        # Before the base constructor, which may start the consumer.
        self._heartbeat_due_now = False
        # The coordinator's latest assignment (partition ids of the topic).
        self._target_ids: frozenset[int] | None = None
        super().__init__(*args, **kwargs)

    @property
    def server_assignor(self) -> str | None:
        """The coordinator's assignor this member asks for (None: the
        broker's default)."""
        return self._server_assignor

    def start(self) -> None:
        """start() --

        Join the group (ConsumerGroupHeartbeat with epoch 0), take the
        partitions the coordinator assigns and start the heartbeat thread.
        A coordinator without the consumer group protocol raises
        UnsupportedApiVersionError here; other failures stop the consumer
        as with the classic protocol."""
        super().start()
        exc = self._start_exception
        if isinstance(exc, UnsupportedApiVersionError):
            raise exc
        if self._running:
            # acknowledge the first assignment now, not an interval later
            self._next_heartbeat = time.monotonic()
            self._wakeup.set()

    # -- requests --------------------------------------------------------

    def _member_id(self) -> str:
        """This member's id: made by the client (ConsumerGroupHeartbeat v1)
        and kept for the consumer's life."""
        if not self._consumer_id:
            self._consumer_id = str(uuid.uuid4()).encode("ascii")
        return _to_str(self._consumer_id)

    def _topic_id(self) -> bytes:
        topic_id = self._topic._topic_id
        if not topic_id or not any(topic_id):
            raise UnsupportedApiVersionError(
                "group_protocol='consumer' names partitions by topic id; "
                "the metadata of %r has none (Metadata v10+, Kafka 2.8+)"
                % (self._topic.name,))
        return topic_id

    def _heartbeat_request(self, epoch: int) -> ConsumerGroupHeartbeatRequest:
        """A full heartbeat: every field given (the coordinator compares),
        the owned partitions included, which acknowledges an assignment
        (none when joining: the coordinator wants an empty list then)."""
        owned = sorted(self._assigned_ids or ()) if epoch > _JOIN_EPOCH \
            else []
        return ConsumerGroupHeartbeatRequest(
            self._consumer_group, self._member_id(), epoch,
            instance_id=self._group_instance_id,
            rebalance_timeout_ms=self._rebalance_timeout_ms,
            subscribed_topic_names=[self._topic.name],
            server_assignor=self._server_assignor,
            topic_partitions=[(self._topic_id(), owned)] if owned else [])

    def _heartbeat_once(self, epoch: int) -> ConsumerGroupHeartbeatResponse:
        coordinator = self._ensure_coordinator()
        self._check_protocol_offered(coordinator)
        try:
            return coordinator.consumer_group_heartbeat(
                self._connection_id, self._heartbeat_request(epoch))
        except SocketDisconnectedError:
            self._group_coordinator = None
            raise

    def _check_protocol_offered(self, coordinator: Broker) -> None:
        try:
            coordinator.api_version(_ApiKey.CONSUMER_GROUP_HEARTBEAT,
                                    ("group", self._connection_id))
        except UnsupportedApiVersionError as exc:
            raise self._protocol_missing(coordinator, str(exc)) from exc

    def _protocol_missing(self, coordinator: Broker,
                          why: str) -> UnsupportedApiVersionError:
        return UnsupportedApiVersionError(
            "group_protocol='consumer' (KIP-848) needs a coordinator with "
            "the consumer group protocol (Kafka 4.0+; 3.7-3.9 only with "
            "'consumer' in group.coordinator.rebalance.protocols); the "
            "coordinator of group %s (broker %s) does not offer it: %s"
            % (_to_str(self._consumer_group), coordinator.id, why))

    # -- membership -------------------------------------------------------

    def _rebalance(self) -> None:
        """Join (epoch 0) and take the first assignment; runs in
        ``start()`` and when the member must join again."""
        resp = self._join_retrying()
        log.info("Consumer %s joined group %s (consumer protocol) with "
                 "epoch %d", self._consumer_id, self._consumer_group,
                 resp.member_epoch)
        self._take_response(resp)
        if self._consumer is None:
            self._move_partitions(frozenset())

    def _join_retrying(self) -> ConsumerGroupHeartbeatResponse:
        """Heartbeat with epoch 0 until the coordinator answers without an
        error; a moved, loading or unreachable coordinator is retried
        (``rebalance_max_retries`` times, waiting a little longer each
        time), anything else raised."""
        attempts = max(1, self._rebalance_max_retries)
        attempt = 0
        while True:
            if not self._running:
                raise ConsumerStoppedException()
            attempt += 1
            self._generation_id = _JOIN_EPOCH
            try:
                resp = self._heartbeat_once(_JOIN_EPOCH)
            except (SocketDisconnectedError, NoBrokersAvailableError):
                if attempt >= attempts:
                    raise
            else:
                if not resp.error_code:
                    return resp
                if resp.error_code not in _RETRY_LATER or \
                        attempt >= attempts:
                    raise self._join_error(resp)
                if resp.error_code in _COORDINATOR_MOVED:
                    self._group_coordinator = None
            self._wakeup.wait(_RETRY_S * attempt)

    def _join_error(self, resp: ConsumerGroupHeartbeatResponse) -> Exception:
        err = resp.error_code
        if err == _KafkaError.UNSUPPORTED_VERSION:
            return self._protocol_missing(
                self._ensure_coordinator(),
                "it lists ConsumerGroupHeartbeat but answers "
                "UNSUPPORTED_VERSION (%s)" % (resp.error_message,))
        return self._group_error(err, "ConsumerGroupHeartbeat (join): %s"
                                 % (resp.error_message,))

    def _send_heartbeat(self) -> float:
        """Heartbeat once and reconcile; returns the delay until the next
        heartbeat (0 when the new assignment must be acknowledged)."""
        if self._generation_id <= _JOIN_EPOCH:
            self._rejoin_needed.set()
            return 0.0
        self._heartbeat_due_now = False
        self._reconcile()
        try:
            resp = self._heartbeat_once(self._generation_id)
        except (SocketDisconnectedError, NoBrokersAvailableError) as exc:
            log.info("Heartbeat of %s failed: %s; looking for the "
                     "coordinator again", self._consumer_id, exc)
            self._group_coordinator = None
            return _RETRY_S
        err = resp.error_code
        if err:
            return self._heartbeat_error(resp)
        if self._take_response(resp) or self._heartbeat_due_now:
            return 0.0
        return self._heartbeat_interval_ms / 1000.0

    def _heartbeat_error(self, resp: ConsumerGroupHeartbeatResponse) -> float:
        err = resp.error_code
        log.info("Heartbeat of %s (epoch %d): error %d (%s)",
                 self._consumer_id, self._generation_id, err,
                 resp.error_message)
        if err in _FENCED:
            self._lose_partitions("heartbeat error %d" % err)
            return 0.0
        if err in _COORDINATOR_MOVED:
            self._group_coordinator = None
        if err in _RETRY_LATER:
            return _RETRY_S
        if err == _KafkaError.FENCED_INSTANCE_ID:
            raise self._group_error(err, "ConsumerGroupHeartbeat")
        raise self._group_error(err, "ConsumerGroupHeartbeat: %s"
                                % (resp.error_message,))

    def _take_response(self, resp: ConsumerGroupHeartbeatResponse) -> bool:
        """Adopt the epoch, interval and assignment of a successful
        heartbeat; True when the owned partitions changed (the change is
        acknowledged by the next heartbeat, sent at once)."""
        if resp.member_id:
            self._consumer_id = resp.member_id
        self._generation_id = resp.member_epoch
        cns = self._consumer
        if cns is not None:
            # its own commits (reset_offsets) carry the current epoch too
            cns.generation_id = self._generation_id
            cns.consumer_id = self._consumer_id
        if resp.heartbeat_interval_ms > 0:
            self._heartbeat_interval_ms = resp.heartbeat_interval_ms
        if resp.assignment is not None:
            self._target_ids = frozenset(
                resp.assignment.get(self._topic_id(), ()))
        return self._reconcile()

    def _reconcile(self) -> bool:
        """Move to the coordinator's latest assignment if this member does
        not own it yet; True when the owned partitions changed.  A move
        that fails for a reason that can heal (a disconnect while reading
        committed offsets, ...) is logged and tried again at the next
        heartbeat, which meanwhile reports what the member does own."""
        target = self._target_ids
        if target is None or (self._consumer is not None and
                              target == self._assigned_ids):
            return False
        try:
            self._move_partitions(target)
        except Exception as exc:
            if _is_fatal(exc):
                raise
            log.warning("Consumer %s of group %s could not take partitions "
                        "%s yet (%s); trying again", self._consumer_id,
                        self._consumer_group, sorted(target), exc)
            return False
        return True

    def _lose_partitions(self, why: str) -> None:
        """The coordinator fenced this member: its partitions may already be
        someone else's, so they are dropped without a commit, and the
        member joins again (same member id, epoch 0)."""
        log.warning("Consumer %s of group %s lost its partitions (%s); "
                    "joining again", self._consumer_id,
                    self._consumer_group, why)
        self._target_ids = frozenset()
        self._move_partitions(frozenset(), commit_revoked=False)
        self._generation_id = _JOIN_EPOCH
        self._rejoin_needed.set()

    def _request_rejoin(self, why: str, reset_member: bool = False) -> None:
        """A refused offset commit: the next heartbeat (sent now) brings the
        current epoch, or finds that the member must join again."""
        log.info("Consumer %s of group %s heartbeats now: %s",
                 self._consumer_id, self._consumer_group, why)
        self._heartbeat_due_now = True
        self._next_heartbeat = time.monotonic()
        self._wakeup.set()

    def _check_partition_counts(self) -> None:
        """The coordinator follows the topic's partitions itself."""

    # -- moving partitions -------------------------------------------------

    def _known_ids(self, wanted: frozenset[int]) -> frozenset[int]:
        unknown = wanted - frozenset(self._topic.partitions)
        if unknown:
            try:
                self._cluster.update()
            except Exception as exc:
                log.info("Metadata refresh failed: %s", exc)
            unknown = wanted - frozenset(self._topic.partitions)
        if unknown:
            log.warning("Assigned partitions %s of %r are not known to "
                        "this client; skipping them", sorted(unknown),
                        self._topic.name)
        return wanted - unknown

    def _move_partitions(self, wanted: frozenset[int],
                         commit_revoked: bool = True) -> None:
        """Own exactly ``wanted``: a new internal consumer is started for
        them (the kept partitions go on from this member's positions, the
        added ones from their committed offsets), swapped in, and the old
        one's revoked partitions are committed before the change is
        acknowledged."""
        ids = self._known_ids(wanted)
        old = self._consumer
        cns = self._get_internal_consumer(
            [self._topic.partitions[i] for i in sorted(ids)], start=True)
        self._rebalancing_in_progress.set()   # unblocks a waiting consume()
        try:
            with self._rebalancing_lock:
                if not self._running:       # stop() ran meanwhile
                    cns.stop()
                    return
                if old is not None:
                    _carry_positions(old, cns, ids)
                old_offsets = old.held_offsets if old is not None else {}
                self._consumer = cns
                self._assigned_ids = ids
                self._internal_consumer_running.set()
        finally:
            self._rebalancing_in_progress.clear()
            self._notify_state()
        if old is not None:
            old.stop()
            revoked = frozenset(old.partitions) - ids
            if revoked and commit_revoked:
                self._commit_revoked(old, revoked)
        log.info("Consumer %s of group %s (epoch %d) owns partitions %s",
                 self._consumer_id, self._consumer_group,
                 self._generation_id, sorted(ids))
        if old is not None or ids:
            self._after_move(old_offsets, cns.held_offsets)

    def _commit_revoked(self, old: Any, revoked: frozenset[int]) -> None:
        """Commit the positions of the partitions given up, before the
        coordinator hears of it (so their next owner starts there)."""
        positions = [(pid, old._partitions_by_id[pid].last_offset_consumed
                      + 1) for pid in sorted(revoked)]
        self._commit_given_up(old, positions, "on revoking partitions %s"
                              % sorted(revoked))

    def _after_move(self, old_offsets: dict[int, int],
                    new_offsets: dict[int, int]) -> None:
        """pykafka's ``post_rebalance_callback``, after the change."""
        callback = self._post_rebalance_callback
        if callback is None:
            return
        try:
            reset = callback(self, old_offsets, new_offsets)
        except Exception:
            log.exception("post rebalance callback threw an exception")
            self._worker_exception = \
                sys.exc_info()  # type: ignore[assignment]
            return
        cns = self._consumer
        if reset and cns is not None:
            cns.reset_offsets(partition_offsets=[
                (cns.partitions[pid], offset)
                for pid, offset in reset.items()])

    # -- leaving -----------------------------------------------------------

    def _leave_group(self, send: bool) -> None:
        """Leave with epoch -1, or -2 for a static member (the coordinator
        then keeps its partitions for the session timeout); ``send`` is the
        classic rule and not used: KIP-848 members always say so."""
        epoch = self._generation_id
        coordinator = self._group_coordinator
        self._generation_id = -1
        if epoch <= _JOIN_EPOCH or coordinator is None or \
                self._fenced is not None:
            return
        leave = (_STATIC_LEAVE_EPOCH if self._group_instance_id is not None
                 else _LEAVE_EPOCH)
        self._assigned_ids = frozenset()
        try:
            resp = coordinator.consumer_group_heartbeat(
                self._connection_id, self._heartbeat_request(leave))
            if resp.error_code not in (0, _KafkaError.UNKNOWN_MEMBER_ID):
                log.info("Leaving group %s: error %d (%s)",
                         self._consumer_group, resp.error_code,
                         resp.error_message)
        except Exception as exc:
            log.info("Leaving group %s failed: %s", self._consumer_group,
                     exc)


def _carry_positions(old: Any, cns: Any, kept: frozenset[int]) -> None:
    """The kept partitions go on in ``cns`` where ``old`` stopped (after the
    last message ``consume()`` returned); queued messages are dropped."""
    for pid in sorted(kept & frozenset(old.partitions)):
        last = old._partitions_by_id[pid].last_offset_consumed
        owned = cns._partitions_by_id[pid]
        with owned.fetch_lock:
            owned.flush()
            owned.set_offset(last)


class ConsumerProtocolBalancedConsumer(_ConsumerGroupProtocol,
                                       BalancedConsumer):
    """``BalancedConsumer``'s signature on KIP-848's consumer group
    protocol, plus ``server_assignor``; see the module documentation."""


class ConsumerProtocolManagedBalancedConsumer(_ConsumerGroupProtocol,
                                              ManagedBalancedConsumer):
    """``ManagedBalancedConsumer``'s signature on KIP-848's consumer group
    protocol, plus ``server_assignor``; see the module documentation."""
