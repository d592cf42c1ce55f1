"""``BalancedConsumer``: consumers of one group share a topic's partitions.

pykafka balanced in two ways: through ZooKeeper (``BalancedConsumer``) or
through the broker's group coordinator (``ManagedBalancedConsumer``).
Kafka 4 has no ZooKeeper, so in pykafka_c both classes coordinate through
the group coordinator with Kafka's classic group protocol (FindCoordinator,
JoinGroup, SyncGroup, Heartbeat, LeaveGroup, at the versions ApiVersions
negotiates).  ``BalancedConsumer`` keeps pykafka's signature; its ZooKeeper
parameters are accepted and ignored with a warning.

How a member behaves:

* The coordinator elects one member leader.  The leader decodes every
  member's subscription, computes all assignments with the configured
  ``membership_protocol`` (pykafka's range or round-robin rules) and sends
  them in SyncGroup; the other members take what SyncGroup gives them.
  Subscriptions and assignments are encoded as Kafka's own consumer encodes
  them, so Java and librdkafka consumers using the same assignor name can
  share the group.
* A background thread sends heartbeats every ``heartbeat_interval_ms``
  (independently of how often the application calls ``consume()``), runs
  auto-commits, and rejoins when the coordinator asks for it
  (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, also from offset commits).
  A member the coordinator expired (UNKNOWN_MEMBER_ID) rejoins with a fresh
  member id; a moved or failed coordinator (NOT_COORDINATOR,
  COORDINATOR_NOT_AVAILABLE, disconnects) is looked up again.  Retriable
  failures are retried for as long as the consumer runs; errors that cannot
  heal (authorization, inconsistent protocols, invalid session timeout ...)
  stop the background thread and are raised from the next ``consume()``.
* The leader refreshes metadata every minute and starts a rebalance when
  partitions were added to (or removed from) a subscribed topic.
* A rebalance unblocks a waiting ``consume()``.  Before rejoining, the
  positions of the partitions about to be revoked (after the last message
  ``consume()`` returned) are committed with the current generation and
  member id, also with auto-commit off, as pykafka did, so their next
  owner goes on from there (pykafka issue #408: a message being processed
  while the rebalance runs counts as done).
* ``post_rebalance_callback(consumer, old_offsets, new_offsets)`` runs when
  the partition set changed; offsets it returns are applied with
  ``reset_offsets``.
* A member with no partitions waits in ``consume()`` without error and
  without spinning.
* ``stop()`` stops consumption, commits (with auto-commit on) and, for a
  dynamic member, sends LeaveGroup so the others rebalance at once.
* Static membership (KIP-345, ``group_instance_id``): the member's
  JoinGroup, SyncGroup, Heartbeat, OffsetCommit and LeaveGroup carry the
  instance id; ``stop()`` does not leave the group, so a consumer started
  with the same instance id within ``session_timeout_ms`` takes the same
  partitions back and the other members see no rebalance.  When another
  consumer joins with the same instance id while this one runs, the
  coordinator fences this one: it stops (without committing or leaving)
  and ``consume()`` / ``commit_offsets()`` raise ``FencedInstanceId``.  A
  coordinator older than JoinGroup v5 (Kafka 2.3) fails the start with
  ``UnsupportedApiVersionError`` naming the feature.

pykafka_c additions (keyword-only): ``session_timeout_ms`` (30000, the value
pykafka hard-coded), ``rebalance_timeout_ms`` (default: the session
timeout, as JoinGroup v0 implied) and ``group_instance_id`` (None: a
dynamic member, as in pykafka); ``BalancedConsumer`` also accepts
``heartbeat_interval_ms``.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import _display
from ._constants import ApiKey as _ApiKey
from ._constants import KafkaError as _KafkaError
from ._responses import PartitionOffsetCommitRequest
from .common import OffsetType
from .exceptions import (ConsumerStoppedException, FencedInstanceId,
                         KafkaException, NoBrokersAvailableError,
                         ProtocolDecodeError, SocketDisconnectedError,
                         UnicodeException, UnsupportedApiVersionError,
                         error_for_code)
from .membershipprotocol import (ASSIGNMENT_VERSION, CONSUMER_PROTOCOL_TYPE,
                                 SUBSCRIPTION_VERSION,
                                 ConsumerGroupProtocolMetadata,
                                 MemberAssignment, RangeProtocol,
                                 assign_cooperative_sticky,
                                 compute_assignments, is_cooperative)
from .simpleconsumer import _offset_reset_value
from .utils.error_handlers import valid_int

if TYPE_CHECKING:
    from ._typing import Decoded, Deserializer, OffsetsBefore
    from .broker import Broker
    from .cluster import Cluster
    from .membershipprotocol import GroupMembershipProtocol
    from .partition import Partition
    from .protocol import Message
    from .simpleconsumer import SimpleConsumer, _ExcInfo
    from .topic import Topic

    #: ``post_rebalance_callback(consumer, old_offsets, new_offsets)``,
    #: which may return ``{partition id: offset}`` to reset to.
    RebalanceCallback = Callable[
        ["BalancedConsumer", dict[int, int] | None, dict[int, int]],
        dict[int, OffsetsBefore] | None]

__all__ = ["BalancedConsumer"]

_valid_int = valid_int  # pykafka's check, shared with SimpleConsumer

log = logging.getLogger(__name__)

# The Kafka error codes the group logic reacts to, by kind.
_COORDINATOR_MOVED = (_KafkaError.COORDINATOR_NOT_AVAILABLE,
                      _KafkaError.NOT_COORDINATOR)
_RETRY_LATER = (_KafkaError.REQUEST_TIMED_OUT, _KafkaError.NETWORK_EXCEPTION,
                _KafkaError.COORDINATOR_LOAD_IN_PROGRESS) + _COORDINATOR_MOVED
_REJOIN = (_KafkaError.ILLEGAL_GENERATION, _KafkaError.UNKNOWN_MEMBER_ID,
           _KafkaError.REBALANCE_IN_PROGRESS)

# How long the internal consumer's consume() may block before the balanced
# consumer looks at rebalances, timeouts and stop() again.
_INTERNAL_CONSUME_TIMEOUT_MS = 200
# Cap on the backoff between failed rebalance attempts in the background.
_MAX_REJOIN_BACKOFF_S = 10.0
# How soon to retry a heartbeat that could not be sent.
_HEARTBEAT_RETRY_S = 0.5
# How often the leader looks for partitions added to the group's topics
# (Java's consumer refreshes metadata every 5 minutes).
_METADATA_CHECK_S = 60.0
# Join/sync round trips that need no backoff (MEMBER_ID_REQUIRED, a new
# rebalance started during sync, ...) before a round counts as failed.
_MAX_JOIN_ROUND_TRIPS = 10
# The first JoinGroup version with a group instance id (KIP-345, Kafka
# 2.3); SyncGroup v3, Heartbeat v3 and OffsetCommit v7 came with it
# (LeaveGroup v3 in 2.4: before, a member leaves by member id alone).
_STATIC_JOIN_GROUP_MIN = 5

_ZOOKEEPER_DEFAULTS = {
    "zookeeper_connection_timeout_ms": 6 * 1000,
    "zookeeper_connect": None,
    "zookeeper_hosts": '127.0.0.1:2181',
    "zookeeper": None,
}


def _group_bytes(consumer_group: object) -> bytes:
    if isinstance(consumer_group, (bytes, bytearray)):
        try:
            text = bytes(consumer_group).decode("utf-8")
        except UnicodeDecodeError:
            raise UnicodeException("Consumer group name '{}' contains "
                                   "non-ascii characters"
                                   .format(consumer_group))
    elif isinstance(consumer_group, str):
        text = consumer_group
    else:
        raise TypeError("consumer_group must be str or bytes, not %s"
                        % type(consumer_group).__name__)
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise UnicodeException("Consumer group name '{}' contains non-ascii "
                               "characters".format(consumer_group))


# Kafka's rule for a group instance id (JoinGroupRequest
# .validateGroupInstanceId, the same as for topic names).
_INSTANCE_ID_MAX_LEN = 249
_INSTANCE_ID_RE = re.compile(r"[a-zA-Z0-9._-]+\Z")


def _valid_instance_id(value: str | bytes | None) -> str | None:
    """``group_instance_id`` as text, checked by Kafka's rule (which the
    coordinator would otherwise answer with an error on every join)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", "replace")
    elif not isinstance(value, str):
        raise TypeError("group_instance_id must be str or None, not %s"
                        % type(value).__name__)
    if value in ("", ".", "..") or len(value) > _INSTANCE_ID_MAX_LEN or \
            not _INSTANCE_ID_RE.match(value):
        raise ValueError("group_instance_id %r is not valid: 1 to %d "
                         "characters of a-z, A-Z, 0-9, '.', '_', '-' "
                         "(not '.' or '..')"
                         % (value, _INSTANCE_ID_MAX_LEN))
    return value


def _to_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value or ""


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return value or b""


class _RejoinNow(Exception):
    """Internal: the join/sync round must start over at once."""


class BalancedConsumer(object):
    """A self-balancing consumer: the members of ``consumer_group`` share the
    partitions of ``topic``, each consuming through an internal
    :class:`pykafka_c.simpleconsumer.SimpleConsumer`.

    pykafka's ZooKeeper parameters (``zookeeper_connect``,
    ``zookeeper_hosts``, ``zookeeper``, ``zookeeper_connection_timeout_ms``)
    are accepted and not used: balancing goes through the broker's group
    coordinator (see the module documentation).
    """

    #: OffsetCommit errors that mean "not committed: this member's place
    #: in the group is out of date" (logged, then ``_request_rejoin``).
    _COMMIT_REFUSED: tuple[int, ...] = _REJOIN

    def __init__(self,
                 topic: Topic,
                 cluster: Cluster,
                 consumer_group: bytes | str,
                 fetch_message_max_bytes: int = 1024 * 1024,
                 num_consumer_fetchers: int = 1,
                 auto_commit_enable: bool = False,
                 auto_commit_interval_ms: int = 60 * 1000,
                 queued_max_messages: int = 2000,
                 fetch_min_bytes: int = 1,
                 fetch_error_backoff_ms: int = 500,
                 fetch_wait_max_ms: int = 100,
                 offsets_channel_backoff_ms: int = 1000,
                 offsets_commit_max_retries: int = 5,
                 auto_offset_reset: int | str = OffsetType.EARLIEST,
                 consumer_timeout_ms: int = -1,
                 rebalance_max_retries: int = 5,
                 rebalance_backoff_ms: int = 2 * 1000,
                 zookeeper_connection_timeout_ms: int = 6 * 1000,
                 zookeeper_connect: str | None = None,
                 zookeeper_hosts: str = '127.0.0.1:2181',
                 zookeeper: Any = None,
                 auto_start: bool = True,
                 reset_offset_on_start: bool = False,
                 post_rebalance_callback: RebalanceCallback | None = None,
                 use_rdkafka: bool = False,
                 compacted_topic: bool = False,
                 membership_protocol: GroupMembershipProtocol
                 = RangeProtocol,
                 deserializer: Deserializer | None = None,
                 reset_offset_on_fetch: bool = True,
                 *,
                 heartbeat_interval_ms: int = 3000,
                 session_timeout_ms: int = 30 * 1000,
                 rebalance_timeout_ms: int | None = None,
                 group_instance_id: str | None = None) -> None:
        given = {"zookeeper_connection_timeout_ms":
                 zookeeper_connection_timeout_ms,
                 "zookeeper_connect": zookeeper_connect,
                 "zookeeper_hosts": zookeeper_hosts,
                 "zookeeper": zookeeper}
        changed = sorted(k for k, v in given.items()
                         if v != _ZOOKEEPER_DEFAULTS[k])
        if changed:
            warnings.warn(
                "BalancedConsumer: %s not used: pykafka_c balances consumers "
                "through the Kafka broker's group coordinator (Kafka 4 has "
                "no ZooKeeper); the ZooKeeper settings are ignored"
                % ", ".join(changed), UserWarning, stacklevel=2)
        self._zookeeper_connect = zookeeper_connect or zookeeper_hosts
        self._zookeeper_connection_timeout_ms: int = _valid_int(
            zookeeper_connection_timeout_ms, allow_zero=True)
        self._zookeeper = zookeeper
        # use_rdkafka is accepted: pykafka_c's consumer core is C anyway.
        self._setup(
            topic, cluster, consumer_group,
            fetch_message_max_bytes=fetch_message_max_bytes,
            num_consumer_fetchers=num_consumer_fetchers,
            auto_commit_enable=auto_commit_enable,
            auto_commit_interval_ms=auto_commit_interval_ms,
            queued_max_messages=queued_max_messages,
            fetch_min_bytes=fetch_min_bytes,
            fetch_error_backoff_ms=fetch_error_backoff_ms,
            fetch_wait_max_ms=fetch_wait_max_ms,
            offsets_channel_backoff_ms=offsets_channel_backoff_ms,
            offsets_commit_max_retries=offsets_commit_max_retries,
            auto_offset_reset=auto_offset_reset,
            consumer_timeout_ms=consumer_timeout_ms,
            rebalance_max_retries=rebalance_max_retries,
            rebalance_backoff_ms=rebalance_backoff_ms,
            reset_offset_on_start=reset_offset_on_start,
            post_rebalance_callback=post_rebalance_callback,
            use_rdkafka=False,
            compacted_topic=compacted_topic,
            heartbeat_interval_ms=heartbeat_interval_ms,
            membership_protocol=membership_protocol,
            deserializer=deserializer,
            reset_offset_on_fetch=reset_offset_on_fetch,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            group_instance_id=group_instance_id)
        if auto_start is True:
            self.start()

    # -- construction --------------------------------------------------------

    def _setup(self, topic: Topic, cluster: Cluster,
               consumer_group: bytes | str, fetch_message_max_bytes: int,
               num_consumer_fetchers: int, auto_commit_enable: bool,
               auto_commit_interval_ms: int, queued_max_messages: int,
               fetch_min_bytes: int, fetch_error_backoff_ms: int,
               fetch_wait_max_ms: int, offsets_channel_backoff_ms: int,
               offsets_commit_max_retries: int, auto_offset_reset: int | str,
               consumer_timeout_ms: int, rebalance_max_retries: int,
               rebalance_backoff_ms: int, reset_offset_on_start: bool,
               post_rebalance_callback: RebalanceCallback | None,
               use_rdkafka: bool, compacted_topic: bool,
               heartbeat_interval_ms: int,
               membership_protocol: GroupMembershipProtocol,
               deserializer: Deserializer | None,
               reset_offset_on_fetch: bool, session_timeout_ms: int,
               rebalance_timeout_ms: int | None,
               group_instance_id: str | bytes | None = None) -> None:
        """Validate and store the settings; no network I/O."""
        self._cluster = cluster
        self._consumer_group = _group_bytes(consumer_group)
        self._topic = topic

        self._auto_commit_enable = auto_commit_enable
        self._auto_commit_interval_ms: int = _valid_int(auto_commit_interval_ms)
        self._fetch_message_max_bytes: int = _valid_int(fetch_message_max_bytes)
        self._fetch_min_bytes: int = _valid_int(fetch_min_bytes)
        self._num_consumer_fetchers: int = _valid_int(num_consumer_fetchers)
        self._queued_max_messages: int = _valid_int(queued_max_messages)
        self._fetch_error_backoff_ms: int = _valid_int(fetch_error_backoff_ms,
                                                  allow_zero=True)
        self._fetch_wait_max_ms: int = _valid_int(fetch_wait_max_ms,
                                             allow_zero=True)
        self._consumer_timeout_ms: int = _valid_int(consumer_timeout_ms,
                                               allow_zero=True,
                                               allow_negative=True)
        self._offsets_channel_backoff_ms: int = _valid_int(
            offsets_channel_backoff_ms)
        self._offsets_commit_max_retries: int = _valid_int(
            offsets_commit_max_retries, allow_zero=True)
        self._auto_offset_reset = _offset_reset_value(auto_offset_reset)
        self._reset_offset_on_start = reset_offset_on_start
        self._rebalance_max_retries: int = _valid_int(rebalance_max_retries,
                                                 allow_zero=True)
        self._rebalance_backoff_ms: int = _valid_int(rebalance_backoff_ms)
        self._post_rebalance_callback = post_rebalance_callback
        self._is_compacted_topic = compacted_topic
        self._heartbeat_interval_ms: int = _valid_int(heartbeat_interval_ms)
        self._session_timeout_ms: int = _valid_int(session_timeout_ms)
        if rebalance_timeout_ms is None:
            rebalance_timeout_ms = session_timeout_ms
        self._rebalance_timeout_ms: int = _valid_int(rebalance_timeout_ms)
        # KIP-345: a static member's id, kept across restarts (None: a
        # dynamic member, pykafka's behaviour).
        self._group_instance_id = _valid_instance_id(group_instance_id)
        # The FencedInstanceId that stopped this member, if one did.
        self._fenced: FencedInstanceId | None = None
        # Never mutated: each join builds this member's own subscription
        # from a copy of membership_protocol.metadata (pykafka assigned
        # topic_names on the shared module-level object).
        self._membership_protocol = membership_protocol
        self._deserializer = deserializer
        self._reset_offset_on_fetch = reset_offset_on_fetch
        self._use_rdkafka = False

        self._generation_id = -1
        self._consumer_id = b''
        self._is_leader = False
        # The leader's view of the partitions it assigned: {topic: ids}.
        self._assigned_topics: dict[bytes, frozenset[int]] | None = None
        self._metadata_check_interval_s = _METADATA_CHECK_S
        self._group_coordinator: Broker | None = None
        # Group requests of this consumer use their own broker connections.
        self._connection_id = uuid.uuid4()
        self._consumer: SimpleConsumer | None = None
        self._running = False
        self._worker_exception: _ExcInfo | None = None
        self._start_exception: Exception | None = None
        self._first_internal_consumer = True
        self._assigned_ids: frozenset[int] | None = None

        self._rebalancing_lock = threading.RLock()
        self._rebalancing_in_progress = threading.Event()
        self._internal_consumer_running = threading.Event()
        # Notified when an assignment is in place, on stop and on worker
        # failure, so a waiting consume() looks again at once.
        self._state_cond = threading.Condition()
        self._rejoin_needed = threading.Event()
        self._wakeup = threading.Event()
        self._worker_thread: threading.Thread | None = None
        self._stop_lock = threading.Lock()
        # The token of the start() joining the group, None when none is.
        self._starting: object | None = None
        self._last_message_time = time.time()

    def __del__(self) -> None:
        try:
            if self._running:
                self.stop()
        except Exception:
            pass

    @_display.safe_repr
    def __repr__(self) -> str:
        return _display.fields(self, [
            ("topic", self._topic.name),
            ("consumer_group", self._consumer_group),
            ("member_id", self._consumer_id),
            ("generation_id", self._generation_id),
            ("partitions", _display.id_list(self.partitions)),
            ("running", self._running)])

    @_display.safe_html
    def _repr_html_(self) -> str:
        """Jupyter's display: the group membership, then each owned
        partition's held offset, latest offset, lag and queued messages."""
        return _display.balanced_html(self)

    # -- properties ----------------------------------------------------------

    def _raise_worker_exceptions(self) -> None:
        """Raise an exception stored by the background thread."""
        exc = self._worker_exception
        if exc is not None:
            raise exc[1].with_traceback(exc[2])

    @property
    def topic(self) -> Topic:
        """The topic this consumer consumes."""
        return self._topic

    @property
    def partitions(self) -> dict[int, Partition]:
        """``{partition_id: Partition}`` this member owns now."""
        return self._consumer.partitions if self._consumer else dict()

    @property
    def _partitions(self) -> set[Partition]:
        """The set of Partitions this member owns now."""
        return set(self.partitions.values())

    @property
    def held_offsets(self) -> dict[int, int] | None:
        """``{partition_id: last consumed offset}`` of the owned partitions
        (``None`` before the first assignment; ``{}`` for a running member
        that owns nothing)."""
        if not self._consumer:
            return {} if self._running and self._assigned_ids is not None \
                else None
        return self._consumer.held_offsets

    @property
    def consumer_id(self) -> bytes:
        """The member id the coordinator gave this consumer (bytes)."""
        return self._consumer_id

    @property
    def generation_id(self) -> int:
        """The group generation of the current assignment."""
        return self._generation_id

    @property
    def group_instance_id(self) -> str | None:
        """This member's static id (KIP-345), or None for a dynamic
        member."""
        return self._group_instance_id

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """start() --

        Find the group coordinator, join the group, take the assigned
        partitions and start the heartbeat thread.  As in pykafka, a failure
        is logged and turns into ``stop()``; ``consume()`` then raises
        ConsumerStoppedException chained to the cause."""
        # Under the stop lock: a start() waits for a stop() under way to
        # finish (else that stop() would go on to stop what this start()
        # makes), and of concurrent start() calls only one joins the group
        # and starts a heartbeat thread.
        with self._stop_lock:
            worker = self._worker_thread
            if self._running and (self._starting is not None or (
                    worker is not None and worker.is_alive())):
                log.info("%r is already running", self)
                return
            self._running = True
            self._starting = token = object()
            self._start_exception = None
            self._worker_exception = None
            self._wakeup = threading.Event()
            self._rejoin_needed.clear()
        try:
            self._group_coordinator = self._cluster.get_group_coordinator(
                self._consumer_group)
            self._rebalance()
            self._setup_heartbeat_worker()
        except Exception as exc:
            log.exception("Stopping consumer in response to error")
            self._start_exception = exc
            self.stop()
        finally:
            if self._starting is token:
                self._starting = None

    def stop(self) -> None:
        """stop() --

        Stop consuming: commit offsets when auto-commit is on, leave the
        group (so the others rebalance at once) and end the heartbeat
        thread.  Should be called as part of a graceful shutdown.

        A static member (``group_instance_id``) does not leave, as Java's
        consumer with a ``group.instance.id`` does not: the coordinator
        keeps its partitions for ``session_timeout_ms``, so a restart
        within that time gets them back without a rebalance.  Only a
        ``stop()`` that interrupts a rebalance under way sends LeaveGroup
        (with the instance id), which is what ends the coordinator's wait
        for this member."""
        with self._stop_lock:
            was_running = self._running
            self._running = False
            self._wakeup.set()
            self._notify_state()
            in_worker = threading.current_thread() is self._worker_thread
            # A rebalance holds the lock for as long as a JoinGroup can
            # take; leave first in that case so that it ends now.
            got_lock = self._rebalancing_lock.acquire(timeout=1.0)
            left = False
            if not got_lock:
                self._leave_group(send=True)
                left = True
                got_lock = self._rebalancing_lock.acquire(
                    timeout=self._rebalance_timeout_ms / 1000.0 + 5.0)
                if not got_lock:
                    log.warning("stop(): a rebalance of %s did not end",
                                self)
            try:
                cns = self._consumer
                if cns is not None:
                    try:
                        cns.stop()
                    except Exception:
                        log.exception("Error stopping the internal consumer")
                    if was_running and not left and \
                            self._auto_commit_enable and self._fenced is None:
                        try:
                            self._commit(cns, None, rejoin_on_error=False)
                        except Exception:
                            log.exception("Error committing offsets on stop")
                self._internal_consumer_running.clear()
                if not left:
                    self._leave_group(send=self._group_instance_id is None)
            finally:
                if got_lock:
                    self._rebalancing_lock.release()
            worker = self._worker_thread
            # A start() in another thread may have made the thread and
            # not started it yet: once started, it sees _running False and
            # ends by itself, so there is nothing to wait for.
            if worker is not None and not in_worker and \
                    worker.ident is not None:
                worker.join(5.0)
                self._worker_thread = None
            cns = self._consumer
            if cns is not None and getattr(cns, "_running", False):
                cns.stop()
            self._close_group_channels()
            self._notify_state()

    def _leave_group(self, send: bool) -> None:
        """Forget the membership; with ``send``, tell the coordinator
        (LeaveGroup), unless another member took over this one's instance
        id (it would leave in the new member's name)."""
        member_id = self._consumer_id
        coordinator = self._group_coordinator
        self._consumer_id = b''
        self._generation_id = -1
        if not send or not member_id or coordinator is None or \
                self._fenced is not None:
            return
        try:
            resp = coordinator.leave_group(
                self._leave_connection_id(), self._consumer_group,
                _to_str(member_id),
                group_instance_id=self._group_instance_id)
            err = resp["error_code"]
            if err == 0:
                for m in resp.get("members") or []:
                    if m.get("error_code", 0) not in (
                            0, _KafkaError.UNKNOWN_MEMBER_ID):
                        err = m["error_code"]
            if err not in (0, _KafkaError.UNKNOWN_MEMBER_ID):
                log.info("LeaveGroup for member %s: error %d", member_id, err)
        except Exception as exc:
            log.info("LeaveGroup for member %s failed: %s", member_id, exc)

    def _leave_connection_id(self) -> str:
        return "%s-leave" % (self._connection_id,)

    def _close_group_channels(self) -> None:
        coordinator = self._group_coordinator
        if coordinator is None:
            return
        close = getattr(coordinator, "close_channel", None)
        if close is None:
            return
        for conn_id in (self._connection_id, self._leave_connection_id()):
            try:
                close(("group", conn_id))
            except Exception:
                pass

    def _notify_state(self) -> None:
        with self._state_cond:
            self._state_cond.notify_all()

    def _stop_fenced(self, exc: FencedInstanceId) -> None:
        """Another consumer joined with this one's group instance id: keep
        ``exc`` for ``consume()`` and ``commit_offsets()`` and stop, with
        neither a commit nor a LeaveGroup (both would act on partitions
        and a membership that are the other consumer's now)."""
        if self._fenced is None:
            log.error("%s", exc)
        self._fenced = exc
        self._worker_exception = (type(exc), exc, exc.__traceback__)
        self.stop()

    # -- the background thread -------------------------------------------------

    def _setup_heartbeat_worker(self) -> threading.Thread:
        """Start the thread that heartbeats, auto-commits and rejoins."""
        ref = weakref.ref(self)
        wakeup = self._wakeup
        thread = threading.Thread(
            target=_worker_main, args=(ref, wakeup),
            name="pykafka_c.BalancedConsumer.heartbeats[%s]"
                 % self._consumer_group.decode("ascii"),
            daemon=True)
        self._worker_thread = thread
        now = time.monotonic()
        self._next_heartbeat = now + self._heartbeat_interval_ms / 1000.0
        self._next_autocommit = now + self._auto_commit_interval_ms / 1000.0
        self._next_metadata_check = now + self._metadata_check_interval_s
        self._rejoin_failures = 0
        thread.start()
        return thread

    def _worker_step(self) -> float:
        """One round of the background thread; returns how long to sleep."""
        now = time.monotonic()
        if self._rejoin_needed.is_set():
            self._rejoin_needed.clear()
            try:
                self._rebalance()
                self._rejoin_failures = 0
            except ConsumerStoppedException:
                return 0.0
            except Exception as exc:
                if not self._running or _is_fatal(exc):
                    raise
                self._rejoin_failures += 1
                delay = min(self._rejoin_failures *
                            self._rebalance_backoff_ms / 1000.0,
                            _MAX_REJOIN_BACKOFF_S)
                logger = log.error if self._rejoin_failures >= max(
                    1, self._rebalance_max_retries) else log.warning
                logger("Consumer %s of group %s could not rejoin (%s); "
                       "retrying in %.1f s", self._consumer_id,
                       self._consumer_group, exc, delay)
                self._rejoin_needed.set()
                return delay
            now = time.monotonic()
            self._next_heartbeat = now + self._heartbeat_interval_ms / 1000.0
            return 0.0
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._send_heartbeat()
        if self._auto_commit_enable and now >= self._next_autocommit:
            self._next_autocommit = now + self._auto_commit_interval_ms / 1000.0
            self._auto_commit()
        if self._is_leader and now >= self._next_metadata_check:
            self._next_metadata_check = now + self._metadata_check_interval_s
            self._check_partition_counts()
        if self._rejoin_needed.is_set():
            return 0.0
        now = time.monotonic()
        wait = self._next_heartbeat - now
        if self._auto_commit_enable:
            wait = min(wait, self._next_autocommit - now)
        if self._is_leader:
            wait = min(wait, self._next_metadata_check - now)
        return max(0.0, wait)

    def _check_partition_counts(self) -> None:
        """Leader: rebalance when a subscribed topic's partitions changed
        (pykafka's ZooKeeper consumer watched the topics for this)."""
        assigned = self._assigned_topics
        if not assigned:
            return
        try:
            self._cluster.update()
        except Exception as exc:
            log.info("Metadata refresh failed: %s", exc)
            return
        for name, ids in sorted(assigned.items()):
            if name == self._topic.name:
                current = frozenset(self._topic.partitions)
            elif name in self._cluster.topics:
                try:
                    current = frozenset(self._cluster.topics[name].partitions)
                except Exception as exc:
                    log.info("Topic %r not available: %s", name, exc)
                    continue
            else:
                current = frozenset()
            if current != ids:
                self._request_rejoin("the partitions of %r changed (%d -> %d)"
                                     % (name, len(ids), len(current)))
                return

    def _send_heartbeat(self) -> float:
        """Heartbeat once; returns the delay until the next heartbeat."""
        interval = self._heartbeat_interval_ms / 1000.0
        if not self._consumer_id or self._generation_id < 0:
            self._request_rejoin("not a member of the group")
            return interval
        try:
            coordinator = self._ensure_coordinator()
            resp = coordinator.heartbeat(
                self._connection_id, self._consumer_group,
                self._generation_id, _to_str(self._consumer_id),
                group_instance_id=self._group_instance_id)
        except (SocketDisconnectedError, NoBrokersAvailableError) as exc:
            log.info("Heartbeat of %s failed: %s; looking for the "
                     "coordinator again", self._consumer_id, exc)
            self._group_coordinator = None
            return min(interval, _HEARTBEAT_RETRY_S)
        err = resp["error_code"]
        if err == 0:
            return interval
        log.info("Heartbeat of %s (generation %d): error %d",
                 self._consumer_id, self._generation_id, err)
        if err in _REJOIN:
            self._request_rejoin(
                "heartbeat error %d" % err,
                reset_member=(err == _KafkaError.UNKNOWN_MEMBER_ID))
            return interval
        if err in _COORDINATOR_MOVED:
            self._group_coordinator = None
            return min(interval, _HEARTBEAT_RETRY_S)
        if err in _RETRY_LATER:
            return min(interval, _HEARTBEAT_RETRY_S)
        raise self._group_error(err, "Heartbeat")

    def _request_rejoin(self, why: str, reset_member: bool = False) -> None:
        log.info("Consumer %s of group %s rejoins: %s", self._consumer_id,
                 self._consumer_group, why)
        if reset_member:
            self._consumer_id = b''
            self._generation_id = -1
        self._rejoin_needed.set()
        self._wakeup.set()

    def _auto_commit(self) -> None:
        cns = self._consumer
        if cns is None or not self._running:
            return
        try:
            # One attempt: the heartbeat must not wait for commit retries;
            # the next interval tries again.
            self._commit(cns, None, retries=1)
        except FencedInstanceId:
            raise
        except Exception as exc:
            log.warning("Auto-commit for group %s failed: %s",
                        self._consumer_group, exc)

    # -- coordinator -----------------------------------------------------------

    def _ensure_coordinator(self) -> Broker:
        coordinator = self._group_coordinator
        if coordinator is None:
            coordinator = self._cluster.get_group_coordinator(
                self._consumer_group)
            self._group_coordinator = coordinator
        return coordinator

    # -- rebalancing -------------------------------------------------------------

    def _rebalance(self) -> None:
        """Commit the owned partitions' positions, join, sync and take the
        assignment (pykafka committed before every rebalance, also with
        auto-commit off, so the next owner of a partition goes on where
        this member stopped).

        Runs in ``start()`` and in the background thread."""
        if is_cooperative(self._membership_protocol) and \
                self._consumer is not None and self._generation_id >= 0:
            self._rebalance_cooperative()
            return
        if not self._rebalancing_in_progress.is_set():
            self._rebalancing_in_progress.set()
        try:
            with self._rebalancing_lock:
                if not self._running:
                    raise ConsumerStoppedException()
                log.info('Rebalancing consumer "%s" for topic "%s".',
                         self._consumer_id, self._topic.name)
                cns = self._consumer
                if (cns is not None and cns.partitions
                        and self._consumer_id and self._generation_id >= 0):
                    self._commit_given_up(cns, None, "before the rebalance")
                self._update_member_assignment()
        finally:
            self._rebalancing_in_progress.clear()
            self._notify_state()

    def _commit_given_up(self, cns: SimpleConsumer,
                         partition_offsets: Iterable[tuple[Any, int]] | None,
                         when: str) -> None:
        """Commit the positions of partitions this member gives up (all of
        ``cns``'s, or ``partition_offsets``) so that their next owner goes
        on from there; a failure is logged, a fenced member raises."""
        try:
            self._commit(cns, partition_offsets, rejoin_on_error=False)
        except FencedInstanceId:
            raise
        except Exception as exc:
            log.warning("Committing offsets of group %s %s failed: %s",
                        _to_str(self._consumer_group), when, exc)

    def _rebalance_cooperative(self) -> None:
        """A rebalance under a cooperative protocol (KIP-429), for a member
        that owns an assignment: the owned partitions are consumed on while
        this member joins and syncs; then only the partitions the new
        assignment lacks are given up (the positions committed first) and
        the new ones taken.  When some were given up, the member rejoins
        at once, so that the leader can hand them to their new members."""
        log.info('Rebalancing consumer "%s" for topic "%s" (cooperative).',
                 self._consumer_id, self._topic.name)
        try:
            self._update_member_assignment(cooperative=True)
        finally:
            self._notify_state()

    def _take_cooperative_assignment(self, partition_ids: list[int]) -> None:
        """Give up the owned partitions missing from ``partition_ids`` and
        take the new ones, consumption paused only meanwhile."""
        self._rebalancing_in_progress.set()
        try:
            with self._rebalancing_lock:
                if not self._running:
                    raise ConsumerStoppedException()
                owned = set(self._assigned_ids or ())
                revoked = owned - set(partition_ids)
                cns = self._consumer
                if cns is not None and cns.partitions and \
                        owned != set(partition_ids):
                    # the next owners (and this member's new internal
                    # consumer) go on from where this one stopped
                    self._commit_given_up(cns, None, "before the "
                                          "cooperative handover")
                self._setup_internal_consumer(partition_ids)
        finally:
            self._rebalancing_in_progress.clear()
        if revoked:
            self._request_rejoin("gave up partitions %s for their new "
                                 "members" % sorted(revoked))

    def _update_member_assignment(self, cooperative: bool = False) -> None:
        """Join and sync (retrying with backoff) and apply the assignment
        (``cooperative``: by _take_cooperative_assignment)."""
        attempts = max(1, self._rebalance_max_retries)
        for i in range(attempts):
            if i and self._running:
                self._wakeup.clear()
                self._wakeup.wait(i * self._rebalance_backoff_ms / 1000.0)
            if not self._running:
                raise ConsumerStoppedException()
            try:
                partition_ids = self._join_and_sync()
                if cooperative:
                    self._take_cooperative_assignment(partition_ids)
                else:
                    self._setup_internal_consumer(partition_ids)
                log.debug("Consumer %s rebalanced: generation %d, "
                          "partitions %s", self._consumer_id,
                          self._generation_id, sorted(partition_ids))
                break
            except Exception as exc:
                if not self._running:
                    raise ConsumerStoppedException() from exc
                if _is_fatal(exc) or i == attempts - 1:
                    log.warning("Failed to rebalance after %d attempts",
                                i + 1)
                    raise
                log.info("Unable to complete rebalancing (%s); retrying",
                         exc)
        self._raise_worker_exceptions()

    def _subscription(self) -> ConsumerGroupProtocolMetadata:
        """This member's own subscription metadata (a fresh object)."""
        base = self._membership_protocol.metadata
        owned: list[tuple[Any, list[int]]] = []
        # a member that lost its membership owns nothing any more
        if self._assigned_ids and self._generation_id >= 0:
            owned = [(self._topic.name, sorted(self._assigned_ids))]
        if isinstance(base, ConsumerGroupProtocolMetadata):
            meta = base.copy(version=SUBSCRIPTION_VERSION,
                             topic_names=[self._topic.name],
                             owned_partitions=owned,
                             generation_id=self._generation_id)
        else:
            meta = ConsumerGroupProtocolMetadata(
                version=SUBSCRIPTION_VERSION,
                topic_names=[self._topic.name],
                user_data=getattr(base, "user_data", None),
                owned_partitions=owned, generation_id=self._generation_id)
        return meta

    def _join_and_sync(self) -> list[int]:
        """One JoinGroup + SyncGroup round; returns the assigned partition
        ids of this consumer's topic.  Raises on failures that need a
        backoff (coordinator moved or loading, disconnects)."""
        protocol = self._membership_protocol
        protocol_type = _to_str(protocol.protocol_type or
                                CONSUMER_PROTOCOL_TYPE)
        for _ in range(_MAX_JOIN_ROUND_TRIPS):
            if not self._running:
                raise ConsumerStoppedException()
            try:
                return self._join_and_sync_once(protocol, protocol_type)
            except _RejoinNow as why:
                log.info("Consumer %s rejoins at once: %s",
                         self._consumer_id, why)
                continue
        raise KafkaException("Group %s: no stable generation after %d "
                             "join attempts" % (self._consumer_group,
                                                _MAX_JOIN_ROUND_TRIPS))

    def _group_request(self, fn: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> Any:
        coordinator = self._ensure_coordinator()
        try:
            return fn(coordinator, *args, **kwargs)
        except SocketDisconnectedError:
            self._group_coordinator = None
            raise

    def _check_group_error(self, err: int, what: str) -> None:
        if err == 0:
            return
        if err in _COORDINATOR_MOVED:
            self._group_coordinator = None
        if err == _KafkaError.UNKNOWN_MEMBER_ID:
            self._consumer_id = b''
            self._generation_id = -1
            raise _RejoinNow("%s: UNKNOWN_MEMBER_ID" % what)
        if err in (_KafkaError.REBALANCE_IN_PROGRESS,
                   _KafkaError.ILLEGAL_GENERATION):
            raise _RejoinNow("%s: error %d" % (what, err))
        raise self._group_error(err, what)

    def _group_error(self, err: int, what: str) -> Exception:
        """The exception for group error ``err`` of request ``what``; a
        fenced static member's says which instance id was taken over."""
        text = "%s of member %s of group %s" % (
            what, _to_str(self._consumer_id), _to_str(self._consumer_group))
        if err == _KafkaError.FENCED_INSTANCE_ID:
            text += (": another consumer joined with group_instance_id %r; "
                     "this one stops" % (self._group_instance_id,))
        return error_for_code(err, text)

    def _check_static_membership(self, coordinator: Broker) -> None:
        """UnsupportedApiVersionError, naming the feature, when the
        coordinator cannot take a group instance id (JoinGroup v5, Kafka
        2.3)."""
        if self._group_instance_id is None:
            return
        version = coordinator.api_version(_ApiKey.JOIN_GROUP,
                                          ("group", self._connection_id))
        if version < _STATIC_JOIN_GROUP_MIN:
            raise UnsupportedApiVersionError(
                "Static group membership (group_instance_id=%r, KIP-345) "
                "needs JoinGroup v%d (Kafka 2.3+); the coordinator of group "
                "%s (broker %s) speaks JoinGroup v%d at most"
                % (self._group_instance_id, _STATIC_JOIN_GROUP_MIN,
                   _to_str(self._consumer_group), coordinator.id, version))

    def _join_and_sync_once(self, protocol: GroupMembershipProtocol,
                            protocol_type: str) -> list[int]:
        metadata = self._subscription().get_bytes()
        self._group_request(self._check_static_membership)
        join = self._group_request(
            lambda b: b.join_group(
                self._connection_id, self._consumer_group,
                _to_str(self._consumer_id),
                session_timeout_ms=self._session_timeout_ms,
                rebalance_timeout_ms=self._rebalance_timeout_ms,
                protocols=[{"name": _to_str(protocol.protocol_name),
                            "metadata": metadata}],
                protocol_type=protocol_type,
                group_instance_id=self._group_instance_id))
        err = join["error_code"]
        if err == _KafkaError.MEMBER_ID_REQUIRED:
            # JoinGroup v4+: the coordinator hands out the member id first.
            self._consumer_id = _to_bytes(join["member_id"])
            raise _RejoinNow("MEMBER_ID_REQUIRED")
        self._check_group_error(err, "JoinGroup")
        self._generation_id = join["generation_id"]
        self._consumer_id = _to_bytes(join["member_id"])
        protocol_name = join.get("protocol_name")
        if protocol_name is not None and \
                _to_bytes(protocol_name) != _to_bytes(protocol.protocol_name):
            raise error_for_code(_KafkaError.INCONSISTENT_GROUP_PROTOCOL,
                                 "the group chose protocol %r, this "
                                 "consumer offered %r"
                                 % (protocol_name, protocol.protocol_name))
        is_leader = _to_str(join["leader"]) == _to_str(self._consumer_id)
        self._is_leader = is_leader
        assignments: list[Decoded] = []
        if is_leader and not join.get("skip_assignment"):
            assignments = self._assign(join["members"])
        log.info("Consumer %s joined group %s generation %d%s",
                 self._consumer_id, self._consumer_group,
                 self._generation_id, " as leader" if is_leader else "")
        sync = self._group_request(
            lambda b: b.sync_group(
                self._connection_id, self._consumer_group,
                self._generation_id, _to_str(self._consumer_id),
                assignments, protocol_type=protocol_type,
                protocol_name=_to_str(protocol.protocol_name),
                group_instance_id=self._group_instance_id,
                timeout_ms=None))
        self._check_group_error(sync["error_code"], "SyncGroup")
        assignment = MemberAssignment.from_bytestring(sync["assignment"])
        return assignment.partitions_for(self._topic.name)

    def _assign(self, members: Iterable[Decoded]) -> list[Decoded]:
        """The leader's job: every member's assignment, as SyncGroup
        entries."""
        full: dict[bytes, ConsumerGroupProtocolMetadata] = {}
        for m in members:
            mid = _to_bytes(m["member_id"])
            try:
                full[mid] = ConsumerGroupProtocolMetadata.from_bytestring(
                    m["metadata"] or b"")
            except ProtocolDecodeError as exc:
                log.warning("Member %s of group %s sent an unreadable "
                            "subscription (%s); it gets no partitions",
                            mid, self._consumer_group, exc)
                full[mid] = ConsumerGroupProtocolMetadata(
                    topic_names=[], user_data=None)
        subscriptions: dict[bytes, list[Any]] = {
            mid: sub.topic_names for mid, sub in full.items()}
        wanted = set(t for topics in subscriptions.values() for t in topics)
        try:
            self._cluster.update()
        except Exception as exc:
            log.info("Metadata refresh before assigning failed: %s", exc)
        topic_partitions: dict[bytes, dict[int, Partition]] = {}
        for name in wanted:
            if name == self._topic.name:
                topic_partitions[name] = self._topic.partitions
                continue
            if name in self._cluster.topics:
                try:
                    topic_partitions[name] = dict(
                        self._cluster.topics[name].partitions)
                except Exception as exc:
                    log.warning("Topic %r subscribed by the group is not "
                                "available (%s); not assigned", name, exc)
            else:
                log.warning("Topic %r subscribed by the group does not "
                            "exist; not assigned", name)
        self._assigned_topics = {
            name: frozenset(topic_partitions.get(name, ())) for name in wanted}
        if is_cooperative(self._membership_protocol):
            plan = assign_cooperative_sticky(full, topic_partitions)
        else:
            plan = compute_assignments(
                self._membership_protocol.decide_partitions, subscriptions,
                topic_partitions)
        log.info("Leader %s assigned group %s: %s", self._consumer_id,
                 self._consumer_group,
                 {k: v for k, v in sorted(plan.items())})
        return [{"member_id": _to_str(mid),
                 "assignment": MemberAssignment(
                     parts, version=ASSIGNMENT_VERSION,
                     user_data=None).get_bytes()}
                for mid, parts in sorted(plan.items())]

    # -- the internal consumer -----------------------------------------------

    def _setup_internal_consumer(self,
                                 partition_ids: Iterable[Any] | None = None,
                                 start: bool = True) -> bool:
        """Use a SimpleConsumer for ``partition_ids`` (ids or Partitions;
        the current one is kept when the set did not change)."""
        wanted: set[int] = set(getattr(p, "id", p)
                               for p in (partition_ids or ()))
        unknown = [i for i in wanted if i not in self._topic.partitions]
        if unknown:
            try:
                self._cluster.update()
            except Exception as exc:
                log.info("Metadata refresh failed: %s", exc)
            unknown = [i for i in wanted if i not in self._topic.partitions]
            if unknown:
                log.warning("Assigned partitions %s of %r are not known to "
                            "this client; skipping them", unknown,
                            self._topic.name)
                wanted -= set(unknown)
        ids = frozenset(wanted)
        self._assigned_ids = ids
        old = self._consumer
        if old is not None and ids == frozenset(old.partitions) and \
                getattr(old, "_running", True):
            old.consumer_id = self._consumer_id
            old.generation_id = self._generation_id
            self._internal_consumer_running.set()
            return True
        old_offsets = old.held_offsets if old is not None else dict()
        if old is not None:
            # consume() waits while there is no internal consumer.
            self._consumer = None
            old.stop()
        # As in pykafka, a member that owns no partition has an internal
        # consumer too, of no partitions (its consume() just waits).
        cns = self._get_internal_consumer(
            [self._topic.partitions[i] for i in sorted(ids)], start=start)
        ok = True
        if self._post_rebalance_callback is not None:
            new_offsets = cns.held_offsets if cns is not None else dict()
            try:
                reset = self._post_rebalance_callback(self, old_offsets,
                                                      new_offsets)
            except Exception:
                log.exception("post rebalance callback threw an exception")
                self._worker_exception = \
                    sys.exc_info()  # type: ignore[assignment]
                ok = False
                reset = None
            if reset and cns is not None:
                cns.reset_offsets(partition_offsets=[
                    (cns.partitions[id_], offset)
                    for id_, offset in reset.items()])
        self._consumer = cns
        if cns is not None and getattr(cns, "_running", start):
            self._internal_consumer_running.set()
        else:
            self._internal_consumer_running.clear()
        return ok

    def _get_internal_consumer(self,
                               partitions: Iterable[Partition] | None = None,
                               start: bool = True) -> SimpleConsumer:
        """A SimpleConsumer for ``partitions`` with this member's settings.

        Auto-commit is done by this consumer's background thread (so it
        always carries the current generation and member id), and the
        internal ``consume()`` waits in short slices so that rebalances,
        timeouts and ``stop()`` are noticed at once."""
        from .simpleconsumer import SimpleConsumer
        reset_offset_on_start = (self._reset_offset_on_start
                                 if self._first_internal_consumer else False)
        self._first_internal_consumer = False
        cns = SimpleConsumer(
            self._topic,
            self._cluster,
            consumer_group=self._consumer_group,
            partitions=list(partitions or []),
            auto_commit_enable=False,
            auto_commit_interval_ms=self._auto_commit_interval_ms,
            fetch_message_max_bytes=self._fetch_message_max_bytes,
            fetch_min_bytes=self._fetch_min_bytes,
            num_consumer_fetchers=self._num_consumer_fetchers,
            queued_max_messages=self._queued_max_messages,
            fetch_wait_max_ms=self._fetch_wait_max_ms,
            consumer_timeout_ms=_INTERNAL_CONSUME_TIMEOUT_MS,
            offsets_channel_backoff_ms=self._offsets_channel_backoff_ms,
            offsets_commit_max_retries=self._offsets_commit_max_retries,
            auto_offset_reset=self._auto_offset_reset,
            reset_offset_on_start=reset_offset_on_start,
            auto_start=False,
            compacted_topic=self._is_compacted_topic,
            deserializer=self._deserializer,
            reset_offset_on_fetch=self._reset_offset_on_fetch)
        cns.consumer_id = self._consumer_id
        cns.generation_id = self._generation_id
        if start:
            cns.start()
        return cns

    # -- offsets -------------------------------------------------------------

    def _commit(self, cns: SimpleConsumer,
                partition_offsets: Iterable[tuple[Any, int]] | None,
                rejoin_on_error: bool = True,
                retries: int | None = None,
                for_user: bool = False) -> bool:
        """OffsetCommit for ``cns``'s partitions (``partition_offsets``:
        ``[(Partition, offset)]``, default: next offset to read of each)
        with this member's generation and id.

        Retries disconnects and coordinator moves; ILLEGAL_GENERATION,
        UNKNOWN_MEMBER_ID and REBALANCE_IN_PROGRESS mean the partitions may
        no longer be ours: they are logged and, with ``rejoin_on_error``,
        trigger a rejoin.  Returns True when everything was committed.
        ``for_user``: a call of the user's that ends with
        ConsumerStoppedException as soon as ``stop()`` ran (the member has
        left the group, so the coordinator would only refuse it)."""
        if partition_offsets is None:
            owned = getattr(cns, "_partitions", {})
            offsets = {op.partition.id: op.last_offset_consumed + 1
                       for op in list(owned.values())}
        else:
            offsets = {}
            for p, offset in partition_offsets:
                pid = getattr(p, "id", p)
                if pid not in cns.partitions:
                    raise KafkaException("Unknown partition supplied to "
                                         "commit_offsets: %r" % (p,))
                offsets[pid] = offset
        offsets = {pid: o for pid, o in offsets.items()
                   if o is not None and o >= 0}
        if not offsets:
            return True
        metadata = json.dumps({"consumer_id": _to_str(self._consumer_id),
                               "hostname": socket.gethostname()})
        now_ms = int(time.time() * 1000)
        pending = dict(offsets)
        if retries is None:
            retries = self._offsets_commit_max_retries
        retries = max(1, retries)
        last_exc: Exception | None = None
        for i in range(retries):
            if i:
                time.sleep(i * self._offsets_channel_backoff_ms / 1000.0)
            if for_user:
                self._raise_if_stopped("commit offsets")
            reqs = [PartitionOffsetCommitRequest(self._topic.name, pid, off,
                                                 now_ms, metadata)
                    for pid, off in sorted(pending.items())]
            try:
                coordinator = self._ensure_coordinator()
                resp = coordinator.commit_consumer_group_offsets(
                    self._consumer_group, self._generation_id,
                    _to_str(self._consumer_id), reqs,
                    group_instance_id=self._group_instance_id)
            except (SocketDisconnectedError, NoBrokersAvailableError) as exc:
                last_exc = exc
                self._group_coordinator = None
                log.info("Offset commit for group %s failed: %s",
                         self._consumer_group, exc)
                continue
            errors: dict[int, int] = {}
            for t in resp["topics"]:
                for part in t["partitions"]:
                    if part["error_code"]:
                        errors[part["partition_index"]] = part["error_code"]
            if not errors:
                return True
            if _KafkaError.FENCED_INSTANCE_ID in errors.values():
                raise self._group_error(_KafkaError.FENCED_INSTANCE_ID,
                                        "OffsetCommit")
            rejoin = {pid: e for pid, e in errors.items()
                      if e in self._COMMIT_REFUSED}
            if rejoin:
                err = next(iter(rejoin.values()))
                log.warning("Offsets %s of group %s were not committed: "
                            "error %d (the group is rebalancing or this "
                            "member was expired)",
                            {pid: offsets[pid] for pid in rejoin},
                            self._consumer_group, err)
                if rejoin_on_error:
                    # The heartbeat thread finds out whether the member id
                    # is still valid; this may run in the user's thread.
                    self._request_rejoin("offset commit error %d" % err)
                elif err == _KafkaError.UNKNOWN_MEMBER_ID:
                    self._consumer_id = b''
                    self._generation_id = -1
                return False
            fatal = {pid: e for pid, e in errors.items()
                     if e not in _RETRY_LATER}
            if fatal:
                pid, err = sorted(fatal.items())[0]
                raise error_for_code(err, "OffsetCommit of partition %d of "
                                     "%r for group %s" % (
                                         pid, self._topic.name,
                                         self._consumer_group))
            if any(e in _COORDINATOR_MOVED for e in errors.values()):
                self._group_coordinator = None
            pending = {pid: pending[pid] for pid in errors}
            last_exc = error_for_code(next(iter(errors.values())),
                                      "OffsetCommit for group %s"
                                      % self._consumer_group)
        if last_exc is not None:
            raise last_exc
        return False

    def reset_offsets(
            self,
            partition_offsets: Iterable[tuple[Partition, OffsetsBefore]]
            | None = None) -> None:
        """reset_offsets(partition_offsets=None) --

        Reset offsets of owned partitions: ``[(Partition, value)]`` where
        value is an OffsetType, a datetime or an int (the last consumed
        offset), as in pykafka's SimpleConsumer.reset_offsets."""
        self._raise_worker_exceptions()
        if not self._consumer:
            raise ConsumerStoppedException("Internal consumer is stopped")
        self._raise_if_stopped("reset offsets")
        self._consumer.reset_offsets(partition_offsets=partition_offsets)

    def _raise_if_stopped(self, what: str) -> None:
        """ConsumerStoppedException when ``stop()`` ran after a start: the
        member left the group and owns nothing, so there is nothing to
        commit or reset (pykafka retried the coordinator's refusals for
        seconds, then went on silently)."""
        if not self._running and self._consumer is not None:
            raise ConsumerStoppedException(
                "Cannot %s: the consumer of group %s was stopped and %s "
                "(commit before stop(), or let auto_commit_enable commit on "
                "stop)" % (what, _to_str(self._consumer_group),
                           "left the group" if self._group_instance_id is None
                           else "owns no partition"))

    def commit_offsets(
            self,
            partition_offsets: Iterable[tuple[Partition, int]] | None = None
            ) -> None:
        """commit_offsets(partition_offsets=None) --

        Commit the next offset to read of every owned partition, or the
        given ``[(Partition, offset)]`` pairs, with the current generation
        and member id.  A commit the coordinator refuses because the group
        is rebalancing is logged (not raised, as in pykafka) and makes this
        member rejoin."""
        self._raise_worker_exceptions()
        cns = self._consumer
        if not cns:
            if self._running and self._assigned_ids is not None:
                return None
            raise KafkaException("Cannot commit offsets - consumer not "
                                 "started")
        self._raise_if_stopped("commit offsets")
        try:
            self._commit(cns, partition_offsets, for_user=True)
        except FencedInstanceId as exc:
            self._stop_fenced(exc)
            raise
        return None

    # -- consuming -----------------------------------------------------------

    def consume(self, block: bool = True) -> Message | None:
        """consume(block=True) -> Message or None --

        One message from the owned partitions.  With ``block`` it waits
        (across rebalances) until a message arrives, or until
        ``consumer_timeout_ms`` passed when that is positive (then returns
        None).  Raises ConsumerStoppedException after ``stop()``."""
        # Fast path: a message is queued and no rebalance is under way.
        # Holding the rebalancing lock while taking it keeps a starting
        # rebalance from committing offsets behind a message handed out.
        cns = self._consumer
        if cns is not None and self._running and \
                self._worker_exception is None and \
                not self._rebalancing_in_progress.is_set() and \
                self._rebalancing_lock.acquire(False):
            try:
                message = None
                if self._consumer is cns and \
                        not self._rebalancing_in_progress.is_set():
                    try:
                        message = cns.consume(block=False)
                    except ConsumerStoppedException:
                        pass
            finally:
                self._rebalancing_lock.release()
            if message is not None:
                return message
        timeout_ms = self._consumer_timeout_ms
        deadline = (time.monotonic() + timeout_ms / 1000.0
                    if timeout_ms > 0 else None)
        self._last_message_time = time.time()
        while True:
            self._raise_worker_exceptions()
            if not self._running:
                cause = self._start_exception
                if cause is not None:
                    raise ConsumerStoppedException(
                        "The consumer could not start: %r" % (cause,)) \
                        from cause
                raise ConsumerStoppedException()
            slice_s = 1.0
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                slice_s = min(slice_s, remaining)
            if self._rebalancing_in_progress.is_set() or \
                    self._consumer is None:
                if not block:
                    return None
                with self._state_cond:
                    if self._running and (
                            self._rebalancing_in_progress.is_set()
                            or self._consumer is None) and \
                            self._worker_exception is None:
                        self._state_cond.wait(slice_s)
                continue
            if not self._rebalancing_lock.acquire(timeout=slice_s):
                if not block:
                    return None
                continue
            stale: SimpleConsumer | None
            try:
                cns = self._consumer
                if cns is None or self._rebalancing_in_progress.is_set():
                    continue
                try:
                    message = cns.consume(
                        block=block,
                        unblock_event=self._rebalancing_in_progress)
                except ConsumerStoppedException:
                    if not self._running:
                        raise
                    message = None
                    stale = cns
                else:
                    stale = None
            finally:
                self._rebalancing_lock.release()
            if stale is not None:
                # The internal consumer was stopped by a rebalance; wait for
                # its replacement instead of spinning.
                if not block:
                    return None
                with self._state_cond:
                    if self._running and self._consumer is stale:
                        self._state_cond.wait(slice_s)
                continue
            if message is not None:
                self._last_message_time = time.time()
                return message
            if not block:
                return None

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until ``consume()`` returns None (only with a
        positive ``consumer_timeout_ms``)."""
        while True:
            message = self.consume(block=True)
            if not message:
                return
            yield message


_NON_FATAL = (SocketDisconnectedError, NoBrokersAvailableError,
              ConsumerStoppedException, _RejoinNow)


def _is_fatal(exc: BaseException) -> bool:
    """True for errors that retrying cannot fix."""
    if isinstance(exc, _NON_FATAL):
        return False
    if isinstance(exc, (UnsupportedApiVersionError, ProtocolDecodeError)):
        return True
    code = getattr(exc, "ERROR_CODE", None)
    if code is not None:
        return code not in _RETRY_LATER + _REJOIN + (
            _KafkaError.MEMBER_ID_REQUIRED,) \
            and not getattr(exc, "RETRIABLE", False)
    if isinstance(exc, KafkaException):
        return False
    return True


def _worker_main(ref: weakref.ref[BalancedConsumer],
                 wakeup: threading.Event) -> None:
    """Body of the background thread; holds only a weak reference to the
    consumer so that an abandoned consumer can be collected."""
    while True:
        self = ref()
        if self is None or not self._running or self._wakeup is not wakeup:
            break
        try:
            delay = self._worker_step()
        except FencedInstanceId as exc:
            self._stop_fenced(exc)
            del exc
            break
        except Exception as exc:
            if self._running:
                log.exception("Background thread of consumer %s stops on "
                              "error", self._consumer_id)
                self._worker_exception = \
                    sys.exc_info()  # type: ignore[assignment]
                self._notify_state()
            del exc
            break
        del self
        wakeup.wait(delay)
        wakeup.clear()
    log.debug("Heartbeat worker exiting")
