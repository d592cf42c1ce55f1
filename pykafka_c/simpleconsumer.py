"""``SimpleConsumer``: a non-balancing consumer of one topic, as in pykafka.

The signature, defaults, offset rules and exceptions are pykafka 2.8's.
What differs is underneath: fetching is done by a C thread
(:class:`pykafka_c._core.Fetcher`, one connection per leader broker, one
Fetch in flight per broker, modern Fetch v4-v12 with RecordBatch v2) that
decodes records into C queues ahead of the application, and ``consume()``
takes the next record from those queues and builds its
:class:`pykafka_c.protocol.Message` in C, without any Python-level lock,
queue or sleep on the way.

Errors met by the fetch thread (OFFSET_OUT_OF_RANGE, leader changes,
broker disconnects, undecodable records) are handed to Python and handled
in the next ``consume()`` call (or :meth:`SimpleConsumer.fetch`):
out-of-range offsets are reset to ``auto_offset_reset``; leader errors and
disconnects refresh the cluster metadata and resume at the same offset; a
cluster that cannot be reached at all raises ``NoBrokersAvailableError``
(or ``SocketDisconnectedError``) from ``consume()``, after which pykafka's
recovery pattern works (catch, then ``stop(); start()`` or a new
consumer).  Record decode errors (``CorruptRecordError``,
``ProtocolDecodeError``, ``CompressionError``) and Kafka errors without a
recovery (an authorization failure, say) are raised once; that partition
then stays paused until ``reset_offsets()`` or ``stop(); start()``, while
the others go on.

Deliberate differences from pykafka, each documented where it applies:

* ``num_consumer_fetchers`` is accepted and validated; one C thread serves
  every broker.  ``fetch_error_backoff_ms`` (unused by pure pykafka) spaces
  reconnection attempts and retries after fetch errors.
* ``compacted_topic`` is accepted; offsets gaps (compaction, transaction
  markers) never stall a partition whatever its value.
* ``fetch()`` does not fetch (the C thread does); it handles pending fetch
  errors and returns None.
* Offset lookups by timestamp use modern ListOffsets: the first offset
  whose timestamp is at or after the time given (pykafka's v0 answered
  with segment boundaries).
* ``isolation_level`` (a pykafka_c extra, last in the signature): 0 reads
  uncommitted records (the default, as pykafka), 1 hides records of
  aborted transactions and stops at the last stable offset.
* ``consume_batch(max_messages, timeout_ms)`` is a pykafka_c extra.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import socket
import sys
import threading
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import __version__ as _PKC_VERSION
from . import _constants, _core, _display
from ._security import security_of
from ._constants import KafkaError as _KafkaError
from ._responses import (OffsetFetchPartitionResponse, PartitionFetchRequest,
                         PartitionOffsetCommitRequest,
                         PartitionOffsetFetchRequest, PartitionOffsetRequest)
from .common import EPOCH, OffsetType
from .exceptions import (KafkaException, LeaderNotFoundError,
                         NoBrokersAvailableError, OffsetMetadataTooLarge,
                         OffsetRequestFailedError, ProtocolClientError,
                         SocketDisconnectedError, UnicodeException,
                         UnknownTopicOrPartition, error_for_code)

if TYPE_CHECKING:
    from ._core import _FetchEvent
    from ._typing import Deserializer, OffsetsBefore
    from .broker import Broker
    from .cluster import Cluster
    from .partition import Partition
    from .protocol import Message
    from .topic import Topic

#: ``sys.exc_info()`` of an exception met by a worker thread.
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

# valid_int moved to utils.error_handlers (where pykafka has it); the name
# stays importable from here.
from .utils.error_handlers import valid_int  # noqa: E402,F401

__all__ = ["SimpleConsumer", "OwnedPartition"]

log = logging.getLogger(__name__)

MAGIC_OFFSETS = (OffsetType.EARLIEST, OffsetType.LATEST)

#: Fetch/ListOffsets error codes answered by a metadata refresh: Kafka's
#: stale-metadata errors, the same test by which the fetch thread makes a
#: partition wait for a new leader.
_LEADER_CODES = _constants.REFRESH_METADATA
#: Fetch error codes that are logged and retried after a backoff (pykafka's
#: "log and continue" handlers), without a metadata refresh (Kafka says
#: UNKNOWN_LEADER_EPOCH needs none).
_RETRY_CODES = frozenset([
    _KafkaError.UNKNOWN_SERVER_ERROR, _KafkaError.REQUEST_TIMED_OUT,
    _KafkaError.UNKNOWN_LEADER_EPOCH, _KafkaError.OFFSET_NOT_AVAILABLE,
    _KafkaError.THROTTLING_QUOTA_EXCEEDED])
#: Group errors that mean "find the coordinator again".
_COORDINATOR_CODES = frozenset([
    _KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    _KafkaError.COORDINATOR_NOT_AVAILABLE, _KafkaError.NOT_COORDINATOR])

#: Fetch response size cap (Kafka's fetch.max.bytes default).
_FETCH_MAX_BYTES = 52428800


def _get_string(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _get_bytes(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _offset_reset_value(value: object) -> int:
    """``auto_offset_reset`` as OffsetType.EARLIEST or OffsetType.LATEST.

    Accepts those two values (pykafka's) and Kafka's names for them,
    ``"earliest"`` and ``"latest"`` (``auto.offset.reset``, any case, str
    or bytes); anything else raises ValueError rather than being taken for
    one of them."""
    if isinstance(value, (str, bytes)):
        name = _get_string(value).strip().lower()
        if name == "earliest":
            return OffsetType.EARLIEST
        if name == "latest":
            return OffsetType.LATEST
    elif isinstance(value, int) and not isinstance(value, bool) and \
            value in MAGIC_OFFSETS:
        return int(value)
    raise ValueError(
        "auto_offset_reset must be OffsetType.EARLIEST (-2) or "
        "OffsetType.LATEST (-1), or Kafka's names 'earliest' or 'latest'; "
        "got %r" % (value,))


def _events_callback(consumer: SimpleConsumer) -> Callable[[], None]:
    """The Fetcher's on_events hook, holding the consumer weakly (so a
    dropped consumer is collected and its __del__ stops the thread)."""
    ref = weakref.ref(consumer)

    def on_events() -> None:
        c = ref()
        if c is not None:
            c._handle_fetch_events()
    return on_events


class SimpleConsumer(object):
    """A non-balancing consumer for Kafka."""

    def __init__(self,
                 topic: Topic,
                 cluster: Cluster,
                 consumer_group: bytes | str | None = None,
                 partitions: Iterable[Partition] | None = None,
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
                 auto_start: bool = True,
                 reset_offset_on_start: bool = False,
                 compacted_topic: bool = False,
                 generation_id: int = -1,
                 consumer_id: bytes = b'',
                 deserializer: Deserializer | None = None,
                 reset_offset_on_fetch: bool = True,
                 isolation_level: int = 0) -> None:
        """Create a SimpleConsumer.

        :param topic: The topic this consumer should consume
        :type topic: :class:`pykafka_c.topic.Topic`
        :param cluster: The cluster to which this consumer should connect
        :type cluster: :class:`pykafka_c.cluster.Cluster`
        :param consumer_group: The name of the consumer group this consumer
            should use for offset committing and fetching (str or bytes,
            ASCII only).
        :param partitions: Existing partitions to which to connect
            (:class:`pykafka_c.partition.Partition` objects); None for all.
        :param fetch_message_max_bytes: Bytes to fetch per partition per
            request.  Not a hard limit: a batch larger than this is still
            fetched whole (modern Fetch returns at least one batch).
        :param num_consumer_fetchers: Accepted for compatibility; one C
            thread fetches from every broker.
        :param auto_commit_enable: Periodically commit the offsets of
            messages already returned by consume() (needs a group).
        :param auto_commit_interval_ms: Period of the auto commit.
        :param queued_max_messages: Messages buffered per partition; fetching
            a partition pauses while its queue holds this many, or as many
            as its last Fetch answer brought when that is more (one answer
            in reserve while the next is on its way: a pykafka_c change).
        :param fetch_min_bytes: FetchRequest MinBytes.
        :param fetch_error_backoff_ms: Wait before reconnecting to a broker or
            retrying a partition after a fetch error.
        :param fetch_wait_max_ms: FetchRequest MaxWaitMs.
        :param offsets_channel_backoff_ms: Backoff base of offset commit,
            fetch and reset retries (sleep ``i * backoff``).
        :param offsets_commit_max_retries: Attempts for offset commits,
            fetches and resets.
        :param auto_offset_reset: Where a partition without a committed
            offset, or whose offset is out of range, starts:
            OffsetType.EARLIEST or OffsetType.LATEST (or Kafka's names
            "earliest" and "latest"; anything else raises ValueError).
        :param consumer_timeout_ms: A blocking consume() returns None after
            this long without a message; -1 or 0 wait forever.
        :param auto_start: Call start() at the end of __init__.
        :param reset_offset_on_start: Reset every partition to
            auto_offset_reset (and commit that) on start.
        :param compacted_topic: Accepted for compatibility (offset gaps
            never stall a partition).
        :param generation_id: Deprecated, ignored (set the property).
        :param consumer_id: Deprecated, ignored (set the property).
        :param deserializer: f(value, partition_key) -> (value,
            partition_key), applied to each message consume() returns.
        :param reset_offset_on_fetch: If False, fetch_offsets() only reports
            the committed offsets and does not move the consumer.
        :param isolation_level: pykafka_c extra: 0 read_uncommitted
            (default), 1 read_committed.
        """
        self._running = False
        self._autocommit_stop: threading.Event | None = None
        self._autocommit_worker_thread: threading.Thread | None = None
        # Guards the two above: start() and stop() may run at once in
        # several threads, and each auto-commit thread must be stopped.
        self._autocommit_lock = threading.Lock()
        self._cluster = cluster
        self._consumer_group: bytes | None = None
        if consumer_group:
            try:
                self._consumer_group = _get_string(consumer_group).encode(
                    "ascii")
            except UnicodeEncodeError:
                raise UnicodeException(
                    "Consumer group name '{}' contains non-ascii "
                    "characters".format(consumer_group))
        self._topic = topic
        self._fetch_message_max_bytes = valid_int(fetch_message_max_bytes)
        self._fetch_min_bytes = valid_int(fetch_min_bytes)
        self._queued_max_messages = valid_int(queued_max_messages)
        self._num_consumer_fetchers = valid_int(num_consumer_fetchers)
        self._fetch_wait_max_ms = valid_int(fetch_wait_max_ms,
                                            allow_zero=True)
        self._consumer_timeout_ms = valid_int(consumer_timeout_ms,
                                              allow_zero=True,
                                              allow_negative=True)
        self._offsets_channel_backoff_ms = valid_int(
            offsets_channel_backoff_ms)
        self._fetch_error_backoff_ms = fetch_error_backoff_ms
        self._auto_offset_reset = _offset_reset_value(auto_offset_reset)
        offsets_commit_max_retries = valid_int(offsets_commit_max_retries,
                                               allow_zero=True)
        self._offsets_commit_max_retries = offsets_commit_max_retries
        self._offsets_fetch_max_retries = offsets_commit_max_retries
        self._offsets_reset_max_retries = offsets_commit_max_retries
        self._auto_start = auto_start
        self._reset_offset_on_start = reset_offset_on_start
        self._is_compacted_topic = compacted_topic
        self._generation_id = -1
        self._consumer_id = b''
        self._deserializer = deserializer
        self._reset_offset_on_fetch = reset_offset_on_fetch
        if isolation_level not in (0, 1):
            raise ValueError("isolation_level must be 0 (read_uncommitted) "
                             "or 1 (read_committed)")
        self._isolation_level = isolation_level

        self._auto_commit_enable = auto_commit_enable
        self._auto_commit_interval_ms = valid_int(auto_commit_interval_ms)
        self._last_auto_commit = time.time()
        self._worker_exception: _ExcInfo | None = None
        self._update_lock = threading.RLock()
        self._group_coordinator: Broker | None = None

        self._discover_group_coordinator()

        # The cluster's connection settings, where it has them (a stand-in
        # cluster, such as a test's mock, gets the defaults).
        socket_timeout_ms = getattr(cluster, "_socket_timeout_ms", 30000)
        source_host = getattr(cluster, "_source_host", "")
        source_port = getattr(cluster, "_source_port", 0)
        self._fetcher = _core.Fetcher(
            _get_bytes(topic.name),
            client_id="pykafka_c",
            fetch_wait_max_ms=self._fetch_wait_max_ms,
            fetch_min_bytes=self._fetch_min_bytes,
            fetch_max_bytes=max(_FETCH_MAX_BYTES,
                                self._fetch_message_max_bytes),
            partition_max_bytes=self._fetch_message_max_bytes,
            queued_max_messages=self._queued_max_messages,
            socket_timeout_ms=(socket_timeout_ms
                               if isinstance(socket_timeout_ms, int)
                               else 30000),
            backoff_ms=max(0, int(fetch_error_backoff_ms)),
            isolation_level=isolation_level,
            consumer_timeout_ms=self._consumer_timeout_ms,
            source_host=source_host if isinstance(source_host, str) else "",
            source_port=source_port if isinstance(source_port, int) else 0,
            security=security_of(cluster),
            software_version=_PKC_VERSION)
        self._fetcher.deserializer = deserializer
        self._fetcher.on_events = _events_callback(self)
        if type(self).consume is SimpleConsumer.consume:
            # The per-message call goes straight to C: the Fetcher's consume
            # has this method's signature and behaviour, and binding it here
            # saves a Python frame per message.  Subclasses that override
            # consume() keep their own.
            self.consume = self._fetcher.consume  # type: ignore[method-assign]

        if partitions is not None:
            parts = list(partitions)
        else:
            parts = [topic.partitions[k] for k in sorted(topic.partitions)]
        self._partitions: dict[Partition, OwnedPartition] = {}
        for p in sorted(parts, key=lambda p: p.id):
            self._fetcher.add_partition(p.id, p)
            self._partitions[p] = OwnedPartition(
                p, None, None, self._is_compacted_topic,
                fetcher=self._fetcher)
        self._partitions_by_id = {op.partition.id: op
                                  for op in self._partitions.values()}
        self._setup_partitions_by_leader()
        self.partition_cycle = itertools.cycle(self._partitions.values())

        if self._auto_start:
            self.start()

    # -- properties ---------------------------------------------------------

    @property
    def consumer_id(self) -> bytes:
        """The member id written into offset commits (b'' by default)."""
        return self._consumer_id

    @consumer_id.setter
    def consumer_id(self, value: bytes) -> None:
        self._consumer_id = value
        for op in self._partitions.values():
            op.set_consumer_id(self._consumer_id)

    @property
    def generation_id(self) -> int:
        """The group generation written into offset commits (-1 by
        default)."""
        return self._generation_id

    @generation_id.setter
    def generation_id(self, value: int) -> None:
        self._generation_id = valid_int(value, allow_zero=True,
                                        allow_negative=True)

    @property
    def _consumer_timeout_ms(self) -> int:
        value: int = self.__dict__.get("_consumer_timeout_ms_value", -1)
        return value

    @_consumer_timeout_ms.setter
    def _consumer_timeout_ms(self, value: int) -> None:
        # Kept in step with the C fetcher, which applies it in consume().
        self.__dict__["_consumer_timeout_ms_value"] = value
        fetcher = self.__dict__.get("_fetcher")
        if fetcher is not None:
            fetcher.consumer_timeout_ms = value

    @property
    def topic(self) -> Topic:
        """The topic this consumer consumes"""
        return self._topic

    @property
    def partitions(self) -> dict[int, Partition]:
        """``{partition_id: Partition}`` of the partitions consumed"""
        return {id_: op.partition
                for id_, op in self._partitions_by_id.items()}

    @property
    def held_offsets(self) -> dict[int, int]:
        """``{partition_id: last offset consumed}``; -1 (nothing consumed)
        is reported as -2 (OffsetType.EARLIEST), as in pykafka."""
        positions = self._fetcher.positions()
        out: dict[int, int] = {}
        for pid in self._partitions_by_id:
            last = positions[pid][0]
            out[pid] = OffsetType.EARLIEST if last == -1 else last
        return out

    @_display.safe_repr
    def __repr__(self) -> str:
        return _display.consumer_repr(self)

    @_display.safe_html
    def _repr_html_(self) -> str:
        """Jupyter's display: each partition's held offset, latest offset
        (asked of its leader, with a short deadline), lag and queued
        messages."""
        return _display.consumer_html(self)

    # -- lifecycle ----------------------------------------------------------

    def _raise_worker_exceptions(self) -> None:
        """Raise an exception met by a worker thread (the auto-committer)."""
        if self._worker_exception is not None:
            exc = self._worker_exception[1]
            raise exc.with_traceback(self._worker_exception[2])

    def _setup_partitions_by_leader(self) -> None:
        self._partitions_by_leader: defaultdict[Broker | None,
                                                list[OwnedPartition]] = \
            defaultdict(list)
        for op in self._partitions.values():
            self._partitions_by_leader[op.partition.leader].append(op)

    def _assign_leaders(self) -> None:
        """Tell the fetch thread each partition's current leader."""
        for pid, op in sorted(self._partitions_by_id.items()):
            p = op.partition
            leader = p.leader
            if leader is None:
                self._fetcher.set_leader(pid, -1)
            else:
                self._fetcher.set_leader(pid, leader.id, leader.host,
                                         leader.port,
                                         getattr(p, "leader_epoch", -1))

    def _update(self) -> None:
        """Refresh cluster metadata and re-point the fetch thread at the
        partitions' current leaders."""
        with self._update_lock:
            self._cluster.update()
            self._setup_partitions_by_leader()
            self._assign_leaders()

    def _discover_group_coordinator(self) -> None:
        """Find the group coordinator (nothing without a group)."""
        if self._consumer_group is not None:
            self._group_coordinator = self._cluster.get_group_coordinator(
                self._consumer_group)

    def start(self) -> None:
        """Begin communicating with Kafka: choose starting offsets, start
        the fetch thread and the auto-committer.

        Starting offsets (pykafka's rules): with ``reset_offset_on_start``
        every partition is reset to ``auto_offset_reset`` (committed, with
        a group); otherwise, with a group, partitions start after their
        committed offset, and those without one at ``auto_offset_reset``;
        without a group the consumer keeps its position (offset 0 at
        first; an out-of-range position resets to ``auto_offset_reset``).
        """
        self._running = True
        self._assign_leaders()
        if not self._partitions:
            pass  # no partition, no offsets to choose or commit
        elif self._reset_offset_on_start:
            self.reset_offsets()
        elif self._consumer_group is not None:
            self.fetch_offsets()
        self._fetcher.start()
        with self._autocommit_lock:
            t = self._autocommit_worker_thread
            if self._auto_commit_enable and (t is None or not t.is_alive()):
                self._autocommit_worker_thread = \
                    self._setup_autocommit_worker()
        self._raise_worker_exceptions()

    def stop(self) -> None:
        """Stop the fetch thread (joined; its sockets closed) and the
        auto-committer; with auto commit and a group, commit the offsets
        consumed.  consume() raises ConsumerStoppedException afterwards;
        start() may be called again and goes on after the last message
        consumed."""
        self._running = False
        with self._autocommit_lock:
            if self._autocommit_stop is not None:
                self._autocommit_stop.set()
            t = self._autocommit_worker_thread
            self._autocommit_worker_thread = None
        if t is not None and t is not threading.current_thread():
            t.join(5.0)
        fetcher = self.__dict__.get("_fetcher")  # absent if __init__ failed
        if fetcher is not None:
            fetcher.stop()
        if self._auto_commit_enable and self._consumer_group is not None:
            self.commit_offsets()

    def __del__(self) -> None:
        """Stop consumption and workers when the object is deleted."""
        try:
            if getattr(self, "_running", False):
                self.stop()
        except Exception:
            log.debug("Stopping %r in __del__ failed", self, exc_info=True)

    def cleanup(self) -> None:
        """Kept for compatibility; nothing to clean up."""

    # -- auto commit --------------------------------------------------------

    def _setup_autocommit_worker(self) -> threading.Thread:
        """Start the auto-commit thread (it never touches the message
        path: it reads positions from the fetcher and commits them)."""
        ref = weakref.ref(self)
        stop_event = threading.Event()
        self._autocommit_stop = stop_event
        interval = self._auto_commit_interval_ms / 1000.0

        def autocommitter() -> None:
            while not stop_event.wait(interval):
                consumer = ref()
                if consumer is None or not consumer._running:
                    break
                try:
                    consumer._auto_commit()
                except Exception as exc:
                    consumer._worker_exception = \
                        sys.exc_info()  # type: ignore[assignment]
                    consumer._fetcher.set_error(exc)
                    break
                finally:
                    consumer = None
            log.debug("Autocommitter thread exiting")

        t = threading.Thread(target=autocommitter,
                             name="pykafka_c.SimpleConsumer.autocommitter",
                             daemon=True)
        t.start()
        return t

    def _auto_commit(self) -> None:
        """Commit offsets if auto commit is on and the interval passed."""
        if not self._auto_commit_enable or self._auto_commit_interval_ms == 0:
            return
        if (time.time() - self._last_auto_commit) * 1000.0 >= \
                self._auto_commit_interval_ms:
            log.debug("Autocommitting consumer offset for consumer group %s "
                      "and topic %s", self._consumer_group, self._topic.name)
            if self._consumer_group is not None:
                self.commit_offsets()
            self._last_auto_commit = time.time()

    # -- consuming ----------------------------------------------------------

    def consume(self, block: bool = True,
                unblock_event: threading.Event | None = None
                ) -> Message | None:
        """Get one message from the consumer.

        :param block: Whether to block while waiting for a message
        :param unblock_event: Return None when this threading.Event is set
            (noticed within 100 ms)
        :returns: a :class:`pykafka_c.protocol.Message`, or None when
            ``block`` is False and nothing is queued, when
            ``consumer_timeout_ms`` > 0 passed without a message, or when
            ``unblock_event`` was set.
        :raises ConsumerStoppedException: after stop()
        """
        return self._fetcher.consume(block, unblock_event)

    def consume_batch(self, max_messages: int = 1000,
                      timeout_ms: int = 0) -> list[Message]:
        """consume_batch(max_messages=1000, timeout_ms=0) -> list --

        pykafka_c extra: up to ``max_messages`` queued messages at once.
        Waits up to ``timeout_ms`` for the first (0: not at all; < 0: as a
        blocking consume() does); [] when none came."""
        return self._fetcher.consume_batch(max_messages, timeout_ms)

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until consume(block=True) returns None (only with
        consumer_timeout_ms > 0, or when stopped: ConsumerStoppedException)."""
        if type(self).consume is SimpleConsumer.consume:
            # The C iterator: the same rules, one C call per message.
            return self._fetcher
        return self._iter_consume()

    def _iter_consume(self) -> Iterator[Message]:
        while True:
            message = self.consume(block=True)
            if not message:
                return
            yield message

    def fetch(self) -> None:
        """Kept for compatibility.  Fetching runs continuously in a C
        thread; this handles any pending fetch errors (resetting offsets,
        refreshing metadata or raising, as consume() would) and returns
        None."""
        self._handle_fetch_events()

    def _handle_fetch_events(self) -> None:
        """Act on errors reported by the fetch thread (runs in consume())."""
        events = self._fetcher.take_events()
        if not events:
            return
        reset: list[_FetchEvent] = []
        update: list[_FetchEvent] = []
        fatal: list[_FetchEvent] = []
        for ev in events:
            pid, kind, code, offset, node, exc = ev
            if kind == _core.FETCH_EV_KAFKA and \
                    code == _KafkaError.OFFSET_OUT_OF_RANGE:
                reset.append(ev)
            elif kind == _core.FETCH_EV_SETUP:
                # TLS or SASL refused, or no Fetch version in common:
                # raised once; the partition stays paused (retrying could
                # only repeat it).
                log.error("Partition %d of %r is paused: %s", pid,
                          self._topic.name, exc)
                fatal.append(ev)
            elif kind in (_core.FETCH_EV_CONN, _core.FETCH_EV_NO_LEADER) or \
                    (kind == _core.FETCH_EV_KAFKA and code in _LEADER_CODES):
                update.append(ev)
            elif kind == _core.FETCH_EV_KAFKA and code in _RETRY_CODES:
                log.info("Retrying partition %d after fetch error: %s", pid,
                         exc)
                self._fetcher.resume(pid, self._fetch_error_backoff_ms)
            else:
                log.error("Partition %d of %r is paused: %s", pid,
                          self._topic.name, exc)
                fatal.append(ev)
        if update:
            log.info("Updating cluster in response to %s",
                     "; ".join(str(ev[5]) for ev in update[:3]))
            try:
                self._update()
            except (NoBrokersAvailableError, SocketDisconnectedError) as exc:
                # No broker answers: the documented exception; the events
                # stay pending, so the next consume() tries again.
                self._repost(update + reset, exc)
                raise
            except (LeaderNotFoundError, ProtocolClientError) as exc:
                # Metadata in flux (a leader election under way): retry
                # these partitions after fetch_error_backoff_ms.
                log.warning("Metadata refresh failed (%s); retrying", exc)
                for ev in update:
                    self._fetcher.set_leader(ev[0], -1)
                update = []
            gone = [ev for ev in update if ev[0] not in self._topic.partitions]
            if gone:
                for ev in gone:
                    self._fetcher.post_event(ev[0], ev[1], ev[2], ev[3],
                                             ev[4], str(ev[5]))
                raise UnknownTopicOrPartition(
                    "Partitions %s of %r are gone" % (
                        sorted(ev[0] for ev in gone), self._topic.name))
        if reset:
            log.info("Resetting offsets in response to OffsetOutOfRangeError")
            try:
                self.reset_offsets(partition_offsets=[
                    (self._partitions_by_id[ev[0]].partition,
                     self._auto_offset_reset) for ev in reset])
            except Exception as exc:
                self._repost(reset, exc)
                raise
        if fatal:
            first = fatal[0][5]
            raise first if first is not None else KafkaException(
                "partition %d paused" % fatal[0][0])

    def _repost(self, events: list[_FetchEvent], exc: BaseException) -> None:
        for pid, kind, code, offset, node, ev_exc in events:
            try:
                self._fetcher.post_event(pid, kind, code, offset, node,
                                         "%s (handling failed: %s)" % (
                                             ev_exc, exc))
            except Exception:
                log.debug("Could not re-post event of partition %d", pid,
                          exc_info=True)

    # -- offsets ------------------------------------------------------------

    def _coordinator(self) -> Broker:
        if self._group_coordinator is None:
            self._discover_group_coordinator()
        if self._group_coordinator is None:
            raise KafkaException("consumer group must be specified")
        return self._group_coordinator

    def commit_offsets(
            self,
            partition_offsets: Iterable[tuple[Partition, int | None]] | None
            = None) -> None:
        """Commit offsets for this consumer's partitions (OffsetCommit to the
        group coordinator).

        Without an argument each partition's next offset to read (last
        consumed + 1, Kafka's convention) is committed; with
        ``[(Partition, offset), ...]`` exactly those offsets.  The
        generation id and member id are the ``generation_id`` and
        ``consumer_id`` properties (-1 and '' by default).
        """
        if not self._consumer_group:
            raise Exception("consumer group must be specified to commit "
                            "offsets")
        if partition_offsets is None:
            partition_offsets = [(p, None) for p in self._partitions.keys()]
        try:
            owned: dict[OwnedPartition, int | None] = {
                self._partitions[p]: offset
                for p, offset in partition_offsets}
        except KeyError as e:
            raise KafkaException("Unknown partition supplied to "
                                 "commit_offsets\n%s" % (e,))
        reqs = [op.build_offset_commit_request(offset=o)
                for op, o in owned.items()]
        retries = max(1, self._offsets_commit_max_retries)
        for i in range(retries):
            if i > 0:
                log.debug("Retrying offset commit")
                time.sleep(i * (self._offsets_channel_backoff_ms / 1000.0))
            try:
                response = self._coordinator().commit_consumer_group_offsets(
                    self._consumer_group, self._generation_id,
                    self._consumer_id, reqs)
            except (SocketDisconnectedError, NoBrokersAvailableError,
                    IOError):
                log.error("Error committing offsets for topic '%s' from "
                          "consumer id '%s' (SocketDisconnectedError)",
                          self._topic.name, self._consumer_id)
                if i >= retries - 1:
                    raise
                self._group_coordinator = None
                try:
                    self._update()
                except Exception:
                    log.debug("Cluster update failed", exc_info=True)
                continue
            errored: dict[int, int] = {}
            for t in response["topics"]:
                for part in t["partitions"]:
                    if part["error_code"] != 0:
                        errored[part["partition_index"]] = part["error_code"]
            if not errored:
                return
            log.error("Error committing offsets for topic '%s' from consumer "
                      "id '%s' (errors: %s)", self._topic.name,
                      self._consumer_id, errored)
            for pid, err in errored.items():
                if err == _KafkaError.OFFSET_METADATA_TOO_LARGE:
                    raise OffsetMetadataTooLarge(
                        "OffsetCommit of partition %d: metadata too large"
                        % pid)
                if err == _KafkaError.UNKNOWN_TOPIC_OR_PARTITION:
                    raise UnknownTopicOrPartition(
                        "OffsetCommit of partition %d of %r" % (
                            pid, self._topic.name))
                if err in _COORDINATOR_CODES:
                    self._group_coordinator = None
            reqs = [op.build_offset_commit_request(offset=owned[op])
                    for op in owned if op.partition.id in errored]

    def fetch_offsets(self
                      ) -> list[tuple[int, OffsetFetchPartitionResponse]]:
        """Fetch the committed offsets of this consumer's partitions
        (OffsetFetch from the group coordinator).

        With ``reset_offset_on_fetch`` (default) the consumer moves to them:
        a partition with committed offset C goes on at C (its last consumed
        offset becomes C - 1); one without (-1) is reset to
        ``auto_offset_reset`` (and that is committed).

        :returns: ``[(partition_id, OffsetFetchPartitionResponse(offset,
            metadata, err)), ...]``
        """
        if not self._consumer_group:
            raise Exception("consumer group must be specified to fetch "
                            "offsets")
        if not self._partitions:
            return []
        reqs = [op.build_offset_fetch_request()
                for op in self._partitions.values()]
        success: list[tuple[int, OffsetFetchPartitionResponse]] = []
        errors: dict[int, int] = {}
        retries = max(1, self._offsets_fetch_max_retries)
        for i in range(retries):
            if i > 0:
                log.debug("Retrying offset fetch")
                time.sleep(i * (self._offsets_channel_backoff_ms / 1000.0))
            try:
                res = self._coordinator().fetch_consumer_group_offsets(
                    self._consumer_group, reqs)
            except (SocketDisconnectedError, NoBrokersAvailableError):
                if i >= retries - 1:
                    raise
                self._group_coordinator = None
                continue
            top = res.get("error_code", 0)
            if top:
                errors = {r.partition_id: top for r in reqs}
                if top in _COORDINATOR_CODES:
                    self._group_coordinator = None
                log.log(logging.WARNING if i >= retries - 1 else logging.INFO,
                        "Error fetching offsets for topic %s (error %d)",
                        self._topic.name.decode("ascii", "replace"), top)
                continue
            errors = {}
            success = []
            to_reset: list[tuple[Partition, OffsetsBefore]] = []
            for t in res["topics"]:
                for part in t["partitions"]:
                    pid = part["partition_index"]
                    op = self._partitions_by_id.get(pid)
                    if op is None:
                        continue
                    err = part["error_code"]
                    if err != 0:
                        errors[pid] = err
                        continue
                    offset = part["committed_offset"]
                    meta = part.get("metadata")
                    if isinstance(meta, str):
                        meta = meta.encode("utf-8")
                    success.append((pid, OffsetFetchPartitionResponse(
                        offset, meta, err)))
                    if not self._reset_offset_on_fetch:
                        continue
                    if offset == -1:
                        log.debug("Partition %s has no committed offsets in "
                                  "consumer group %s.  Resetting to %s", pid,
                                  self._consumer_group,
                                  self._auto_offset_reset)
                        to_reset.append((op.partition,
                                         self._auto_offset_reset))
                    else:
                        # Kafka stores the next offset to read.
                        op.set_offset(offset - 1)
            if to_reset:
                self.reset_offsets(to_reset)
            if not errors:
                return success
            log.log(logging.WARNING if i >= retries - 1 else logging.INFO,
                    "Error fetching offsets for topic %s (errors: %s)",
                    self._topic.name.decode("ascii", "replace"), errors)
            for err in errors.values():
                if err == _KafkaError.UNKNOWN_TOPIC_OR_PARTITION:
                    raise UnknownTopicOrPartition(
                        "OffsetFetch for %r: %s" % (self._topic.name, errors))
                if err in _COORDINATOR_CODES:
                    self._group_coordinator = None
            reqs = [self._partitions_by_id[pid].build_offset_fetch_request()
                    for pid in errors]
        raise KafkaException("OffsetFetch for %r failed after %d attempts: "
                             "%s" % (self._topic.name, retries, errors))

    def reset_offsets(
            self,
            partition_offsets: Iterable[tuple[Partition, OffsetsBefore]]
            | None = None) -> None:
        """Reset offsets for the specified partitions.

        ``partition_offsets`` is ``[(Partition, value), ...]`` (default:
        every partition with ``auto_offset_reset``).  A value that is
        OffsetType.EARLIEST / LATEST or a datetime is looked up with
        ListOffsets and the partition goes on at the offset found (at the
        first message at or after the time; where no message is that
        recent, at ``auto_offset_reset``); any other int is the last
        offset consumed, so the next message read is ``value + 1``
        (pykafka's rule).  Queued messages of those partitions are dropped.
        With a group the new positions are committed.
        """
        if partition_offsets is None:
            partition_offsets = [(p, self._auto_offset_reset)
                                 for p in self._partitions.keys()]
        try:
            owned: dict[OwnedPartition, OffsetsBefore] = {
                self._partitions[p]: offset
                for p, offset in partition_offsets}
        except KeyError as e:
            raise KafkaException("Unknown partition supplied to "
                                 "reset_offsets\n%s" % (e,))
        log.info("Resetting offsets for %s partitions", len(owned))

        lookups = {op: ts for op, ts in owned.items()
                   if isinstance(ts, dt.datetime) or
                   (isinstance(ts, int) and not isinstance(ts, bool) and
                    ts in MAGIC_OFFSETS)}
        if lookups:
            retries = max(1, self._offsets_reset_max_retries)
            for i in range(retries):
                need_update = False
                by_leader: defaultdict[
                    Broker | None,
                    list[tuple[OwnedPartition, OffsetsBefore]]] = \
                    defaultdict(list)
                for op, ts in lookups.items():
                    by_leader[op.partition.leader].append((op, ts))
                for broker, items in by_leader.items():
                    if broker is None:
                        need_update = True
                        continue
                    reqs = [op.build_offset_request(ts) for op, ts in items]
                    try:
                        response = broker.request_offset_limits(reqs)
                    except SocketDisconnectedError as exc:
                        log.info("ListOffsets to broker %d failed: %s",
                                 broker.id, exc)
                        need_update = True
                        continue
                    for t in response["topics"]:
                        for part in t["partitions"]:
                            found = self._partitions_by_id.get(
                                part["partition_index"])
                            if found is None or found not in lookups:
                                continue
                            op = found
                            err = part["error_code"]
                            if err == 0:
                                offset = part["offset"]
                                if offset >= 0:
                                    owned[op] = offset - 1
                                else:
                                    log.warning(
                                        "Partition %d: no offset at or after "
                                        "%s; using auto_offset_reset",
                                        op.partition.id, lookups[op])
                                    owned[op] = OffsetType.EARLIEST
                                del lookups[op]
                            elif err in _LEADER_CODES or \
                                    err in _RETRY_CODES:
                                need_update = True
                            else:
                                raise error_for_code(
                                    err, "ListOffsets for partition %d of %r"
                                    % (op.partition.id, self._topic.name))
                if not lookups:
                    break
                log.error("Error in ListOffsets for topic '%s' (partitions "
                          "%s)", self._topic.name,
                          sorted(op.partition.id for op in lookups))
                time.sleep(i * (self._offsets_channel_backoff_ms / 1000.0))
                if need_update:
                    try:
                        self._update()
                    except Exception:
                        log.debug("Cluster update failed", exc_info=True)
            if lookups:
                raise OffsetRequestFailedError(
                    "Offset request failed after %d retries" % retries)

        for op, offset in sorted(owned.items(),
                                 key=lambda k: k[0].partition.id):
            if not isinstance(offset, int) or isinstance(offset, bool):
                raise ValueError("Invalid offset value encountered in "
                                 "reset_offsets:\n\tPartition {pid} got "
                                 "offset '{offset}'.".format(
                                     pid=op.partition.id, offset=offset))
            with op.fetch_lock:
                op.flush()
                op.set_offset(offset)

        if self._consumer_group is not None:
            self.commit_offsets()


class OwnedPartition(object):
    """A partition owned by a SimpleConsumer: its position and queue.

    With a consumer, ``last_offset_consumed``, ``next_offset`` (next offset
    to fetch) and ``message_count`` read the C fetcher's state, and setting
    ``last_offset_consumed`` / ``next_offset`` or calling set_offset()
    moves the fetch position (dropping queued messages); the fetched
    records are queued in C.  A stand-alone OwnedPartition (no consumer)
    is pykafka's: plain attributes and a Python queue that
    ``enqueue_messages()`` fills with pykafka's ordering rule and
    ``consume()`` empties.
    """

    def __init__(self, partition: Partition, handler: Any = None,
                 semaphore: threading.Semaphore | None = None,
                 compacted_topic: bool = False, consumer_id: bytes = b'',
                 fetcher: _core.Fetcher | None = None) -> None:
        self.partition = partition
        self._fetcher = fetcher
        self._is_compacted_topic = compacted_topic
        self._last_offset_consumed = -1
        self._next_offset = 0
        # The stand-alone queue (unused with a fetcher).
        self._messages: deque[Message] = deque()
        self._messages_arrived = semaphore
        self.fetch_lock = threading.RLock()
        self.set_consumer_id(consumer_id)

    @_display.safe_repr
    def __repr__(self) -> str:
        return _display.fields(self, [
            ("partition", self.partition.id),
            ("last_offset_consumed", self.last_offset_consumed),
            ("next_offset", self.next_offset),
            ("queued", self.message_count)])

    def set_consumer_id(self, value: bytes) -> None:
        """Set the consumer id written into commit metadata."""
        self._consumer_id = value
        self._offset_metadata = {
            "consumer_id": _get_string(self._consumer_id),
            "hostname": socket.gethostname(),
        }
        self._offset_metadata_json = json.dumps(self._offset_metadata)

    @property
    def last_offset_consumed(self) -> int:
        """The offset of the last message consume() returned (-1: none)."""
        if self._fetcher is None:
            return self._last_offset_consumed
        return self._fetcher.position(self.partition.id)[0]

    @last_offset_consumed.setter
    def last_offset_consumed(self, value: int) -> None:
        if self._fetcher is None:
            self._last_offset_consumed = value
        else:
            self.set_offset(value)

    @property
    def next_offset(self) -> int:
        """The next offset to fetch."""
        if self._fetcher is None:
            return self._next_offset
        return self._fetcher.position(self.partition.id)[1]

    @next_offset.setter
    def next_offset(self, value: int) -> None:
        if self._fetcher is None:
            self._next_offset = value
        else:
            self._fetcher.seek(self.partition.id, value)

    @property
    def message_count(self) -> int:
        """Messages currently queued for this partition."""
        if self._fetcher is None:
            return len(self._messages)
        return self._fetcher.position(self.partition.id)[2]

    def flush(self) -> None:
        """Drop the queued messages (fetching goes on after the last
        message consumed)."""
        if self._fetcher is not None:
            last = self._fetcher.position(self.partition.id)[0]
            self._fetcher.seek(self.partition.id, last + 1)
        else:
            while self._messages:
                self._messages.popleft()
                if self._messages_arrived is not None:
                    self._messages_arrived.acquire(blocking=False)
        log.info("Flushed queue for partition %d", self.partition.id)

    def set_offset(self, last_offset_consumed: int) -> None:
        """Set the position: the next message read is
        ``last_offset_consumed + 1``."""
        if self._fetcher is None:
            self._last_offset_consumed = last_offset_consumed
            self._next_offset = last_offset_consumed + 1
        else:
            self._fetcher.seek(self.partition.id, last_offset_consumed + 1)

    def build_offset_request(self, offsets_before: OffsetsBefore
                             ) -> PartitionOffsetRequest:
        """A PartitionOffsetRequest (ListOffsets) for this partition."""
        if isinstance(offsets_before, dt.datetime):
            offsets_before = round(
                (offsets_before - EPOCH).total_seconds() * 1000)
        elif offsets_before not in MAGIC_OFFSETS:
            raise ValueError("offsets_before is an invalid timestamp: {}"
                             .format(offsets_before))
        return PartitionOffsetRequest(self.partition.topic.name,
                                      self.partition.id, offsets_before, 1)

    def build_fetch_request(self, max_bytes: int) -> PartitionFetchRequest:
        """A PartitionFetchRequest for this partition (informational: the
        C fetch loop builds its own requests)."""
        return PartitionFetchRequest(self.partition.topic.name,
                                     self.partition.id, self.next_offset,
                                     max_bytes)

    def build_offset_commit_request(self, offset: int | None = None
                                    ) -> PartitionOffsetCommitRequest:
        """A PartitionOffsetCommitRequest; ``offset`` defaults to
        last_offset_consumed + 1."""
        return PartitionOffsetCommitRequest(
            self.partition.topic.name,
            self.partition.id,
            offset if offset is not None else self.last_offset_consumed + 1,
            int(time.time() * 1000),
            _get_bytes("{}".format(self._offset_metadata_json)))

    def build_offset_fetch_request(self) -> PartitionOffsetFetchRequest:
        """A PartitionOffsetFetchRequest for this partition."""
        return PartitionOffsetFetchRequest(self.partition.topic.name,
                                           self.partition.id)

    def consume(self) -> Message | None:
        """The next queued message of this partition, or None."""
        if self._fetcher is None:
            try:
                message = self._messages.popleft()
            except IndexError:
                return None
            self._last_offset_consumed = message.offset
            return message
        return self._fetcher.consume_partition(self.partition.id)

    def enqueue_messages(self, messages: Iterable[Message]) -> None:
        """Queue messages on a stand-alone OwnedPartition, with pykafka's
        rule: a message is taken only at ``next_offset`` (at or after it for
        a compacted topic), which then moves past it.  A consumer's
        partitions are fed by the C fetch loop and raise
        NotImplementedError."""
        if self._fetcher is not None:
            raise NotImplementedError(
                "pykafka_c's fetch loop queues a consumer's records in C; "
                "messages cannot be enqueued from Python")
        for message in messages:
            if (message.offset < self._next_offset if self._is_compacted_topic
                    else message.offset != self._next_offset):
                log.debug("Skipping enqueue for offset (%s) not equal to "
                          "next_offset (%s)", message.offset,
                          self._next_offset)
                continue
            message.partition = self.partition
            if message.partition_id != self.partition.id:
                log.error("Partition %s enqueued a message meant for "
                          "partition %s", self.partition.id,
                          message.partition_id)
            message.partition_id = self.partition.id
            self._messages.append(message)
            self._next_offset = message.offset + 1
            if self._messages_arrived is not None:
                self._messages_arrived.release()
