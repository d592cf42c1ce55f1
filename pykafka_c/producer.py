"""``Producer``: pykafka's producer, with the batching and sending in C.

Same constructor, defaults, methods and exceptions as
``pykafka.producer.Producer`` (2.8), plus ``headers`` on ``produce()``,
``flush()``, ZSTD compression and Kafka's RecordBatch v2 format.

How it works.  ``produce()`` is one call into the C core
(``_core.ProducerCore.produce``; for the common case the instance
attribute ``produce`` *is* that C method): it checks the arguments, runs
the serializer and partitioner, makes the returned
:class:`pykafka_c.protocol.Message` and appends the record to its
partition's open RecordBatch in C.  A C sender thread (no GIL) seals
batches when they are full, when ``min_queued_messages`` are waiting for
one leader, or when ``linger_ms`` has passed, compresses them while the
previous request of their partition is at the broker, and sends Produce
requests to the partition leaders.  With ``enable_idempotence`` (the
default; not with ``required_acks=0``) the producer gets a producer id
from the brokers (InitProducerId) and numbers each partition's batches,
so up to 5 batches per partition are in flight and the broker refuses
duplicates and gaps: retries neither reorder nor duplicate.  Nothing is
sent before the producer has its id (messages wait for it as they would
for a leader).  Without it (or when the brokers refuse InitProducerId)
one batch per partition is in flight, which keeps the order across
retries too.  A small Python control
thread waits (GIL released) for finished batches and posts their delivery
reports to the producing threads' queues, fetches producer ids and
refreshes the cluster metadata when the sender asks for them; the C
thread never does either.

Delivery semantics.  Retriable errors (leader changes, NOT_ENOUGH_REPLICAS,
timeouts, disconnects, UNKNOWN_TOPIC_OR_PARTITION) refresh the metadata and
retry the batch after ``retry_backoff_ms`` until ``delivery_timeout_ms``
(120 s, as KIP-91's default) has passed since its first message, however
many attempts that takes, and a partition without a leader keeps its
messages as long; with ``delivery_timeout_ms=0``, pykafka's rule: up to
``max_retries`` times, and ``max(ack_timeout_ms, 5000)`` ms without a
leader.  MESSAGE_TOO_LARGE on a batch of several messages splits it;
other errors fail at once.  Every message produced gets exactly one delivery report:
success with its offset, or the typed exception - also when every broker
is down, and for messages still pending when ``stop()`` gives up (those
are also counted in a WARNING).  With delivery reports off, failures are
logged at WARNING (with counts) instead of being silently dropped.

Transactions.  With ``transactional_id`` (and ``required_acks=-1``) the
producer is Kafka's transactional producer: ``init_transactions()``,
``begin_transaction()``, ``commit_transaction()``,
``abort_transaction()``, ``send_offsets_to_transaction()`` and
``with producer.transaction():``; the protocol and the error model are in
``pykafka_c._txn`` (README, "Transactions").  ``produce()`` is then
allowed only inside a transaction, and adds each partition to the
transaction (AddPartitionsToTxn) before its first message.

Differences from pykafka, each deliberate:

* ``max_queued_messages`` caps the producer's unsent messages as a whole
  (pykafka: per broker); ``queue_empty_timeout_ms`` is accepted and
  validated but has no effect (the sender sleeps until there is work).
* ``timestamp`` is always accepted (every broker pykafka_c talks to has
  record timestamps), whatever ``cluster``'s ``broker_version``.
* The per-thread report queues are ``queue.SimpleQueue`` objects (same
  ``get(block, timeout)`` and ``queue.Empty`` as pykafka's ``Queue``, far
  cheaper to post to).
* The default ``RandomPartitioner`` (round robin from index 1, as pykafka)
  runs in C; its ``idx`` attribute is read at start but not written back.
* ``flush(timeout=None)`` exists.
* ``delivery_timeout_ms=120000`` (see "Delivery semantics"): a leader
  election no longer fails messages after ``max_retries`` quick retries.
* ``enable_idempotence=True`` (Kafka's idempotent producer, see above).
  Kafka formally guarantees idempotence only with ``required_acks=-1``;
  with ``required_acks=1`` the sequence numbers still keep retries from
  reordering or duplicating while a partition's leader stays up, but a
  leader change can lose acknowledged messages (as acks=1 always can),
  after which the broker refuses the next sequence numbers: the producer
  then bumps the epoch of its producer id and numbers that partition's
  batches from 0 again (KIP-360), retrying every batch that may have been
  written with its first numbers, so that none is written twice.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import __version__ as _PKC_VERSION
from . import _core, _display, _txn
from ._security import security_of
from ._constants import ApiKey as _ApiKey
from ._constants import KafkaError as _KafkaError
from .common import CompressionType
from .exceptions import (KafkaException, ProduceFailureError,
                         ProducerQueueFullError, ProducerStoppedException,
                         SocketDisconnectedError, TransactionStateError)
from .partitioners import RandomPartitioner
from .utils.compat import get_string

if TYPE_CHECKING:
    from ._typing import HeadersIn, PartitionerFunc, Serializer, Timestamp
    from .cluster import Cluster
    from .partition import Partition
    from .protocol import Message
    from .topic import Topic

__all__ = ["Producer", "OwnedBroker"]

log = logging.getLogger(__name__)

_EV_DONE = _core.PRODUCER_EV_DONE
_EV_METADATA = _core.PRODUCER_EV_METADATA
_EV_STOPPED = _core.PRODUCER_EV_STOPPED
_EV_PRODUCER_ID = _core.PRODUCER_EV_PRODUCER_ID

# InitProducerId errors worth another try (on another broker, or later).
_PID_RETRIABLE = frozenset((
    _KafkaError.REQUEST_TIMED_OUT, _KafkaError.NETWORK_EXCEPTION,
    _KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    _KafkaError.COORDINATOR_NOT_AVAILABLE, _KafkaError.NOT_COORDINATOR,
    _KafkaError.CONCURRENT_TRANSACTIONS))

# How often the control thread wakes up when nothing happens (ms).
_CONTROL_POLL_MS = 500
# get_delivery_report(block=True) posts finished reports this often (s).
_REPORT_SLICE_S = 0.1
# stop() looks this often whether every lingering message was sent (s).
_STOP_POLL_S = 0.02

_CODECS = (CompressionType.NONE, CompressionType.GZIP,
           CompressionType.SNAPPY, CompressionType.LZ4,
           CompressionType.ZSTD)


def _valid_int(name: str, value: Any, allow_zero: bool = False,
               allow_negative: bool = False) -> int:
    """pykafka's ``valid_int`` (permissive type check, then sign checks)."""
    try:
        value + 1
    except TypeError:
        raise TypeError("Expected integer but found argument of type '{}' "
                        "for {}".format(type(value), name))
    if not allow_negative and value < 0:
        raise ValueError("Expected nonnegative number but got '{}' for {}"
                         .format(value, name))
    if not allow_zero and value == 0:
        raise ValueError("Expected nonzero number but got '{}' for {}"
                         .format(value, name))
    return int(value)


_live_producers: weakref.WeakSet[Producer] = weakref.WeakSet()


@atexit.register
def _stop_live_producers() -> None:
    """At interpreter exit, send what is queued at once (no lingering) and
    stop every producer still running, waiting up to pending_timeout_ms for
    the acknowledgements."""
    for producer in list(_live_producers):
        try:
            producer._stop(linger=False)
        except Exception:  # pragma: no cover - best effort at exit
            log.exception("Stopping %r at exit failed", producer)


class Producer(object):
    """Produce messages to one topic (see the module docstring)."""

    def __init__(self, cluster: Cluster, topic: Topic,
                 partitioner: PartitionerFunc | None = None,
                 compression: int = CompressionType.NONE,
                 max_retries: int = 3, retry_backoff_ms: int = 100,
                 required_acks: int = 1, ack_timeout_ms: int = 10 * 1000,
                 max_queued_messages: int = 100000,
                 min_queued_messages: int = 70000,
                 linger_ms: int = 5 * 1000,
                 queue_empty_timeout_ms: int = 0,
                 block_on_queue_full: bool = True,
                 max_request_size: int = 1000012, sync: bool = False,
                 delivery_reports: bool = False,
                 pending_timeout_ms: int | None = 5 * 1000,
                 auto_start: bool = True,
                 serializer: Serializer | None = None,
                 enable_idempotence: bool = True,
                 delivery_timeout_ms: int = 120 * 1000,
                 transactional_id: str | None = None,
                 transaction_timeout_ms: int = 60 * 1000) -> None:
        self._cluster = cluster
        self._topic = topic
        self._partitioner: PartitionerFunc = \
            partitioner or RandomPartitioner()
        if compression not in _CODECS:
            raise ValueError("compression must be one of CompressionType's "
                             "values, not %r" % (compression,))
        self._compression = compression
        self._max_retries = _valid_int("max_retries", max_retries,
                                       allow_zero=True)
        self._retry_backoff_ms = _valid_int("retry_backoff_ms",
                                            retry_backoff_ms)
        self._delivery_timeout_ms = _valid_int(
            "delivery_timeout_ms", delivery_timeout_ms, allow_zero=True)
        self._required_acks = _valid_int("required_acks", required_acks,
                                         allow_zero=True,
                                         allow_negative=True)
        self._ack_timeout_ms = _valid_int("ack_timeout_ms", ack_timeout_ms,
                                          allow_zero=True)
        self._max_queued_messages = _valid_int(
            "max_queued_messages", max_queued_messages, allow_zero=True)
        self._min_queued_messages = max(
            1, _valid_int("min_queued_messages", min_queued_messages)
            if not sync else 1)
        self._linger_ms = _valid_int("linger_ms", linger_ms, allow_zero=True)
        self._queue_empty_timeout_ms = _valid_int(
            "queue_empty_timeout_ms", queue_empty_timeout_ms,
            allow_zero=True, allow_negative=True)
        self._block_on_queue_full = block_on_queue_full
        self._max_request_size = _valid_int("max_request_size",
                                            max_request_size)
        self._synchronous = sync
        self._delivery_reports = bool(delivery_reports or sync)
        self._pending_timeout_ms = pending_timeout_ms
        self._auto_start = auto_start
        self._serializer = serializer
        self._idempotent = bool(enable_idempotence) and self._required_acks != 0
        _check_transactional(transactional_id, enable_idempotence,
                             self._required_acks)
        if serializer is not None and not callable(serializer):
            raise TypeError("serializer must be callable")
        if not callable(self._partitioner):
            raise TypeError("partitioner must be callable")
        self._running = False
        self._lock = threading.RLock()
        self._control: threading.Thread | None = None
        self._control_stop = False
        # Which start() the running control thread belongs to: one that a
        # stop() and a new start() left behind ends itself.
        self._control_gen = 0
        self._last_update = 0.0
        self._pid_done = False
        self._last_pid_attempt = 0.0
        socket_timeout_ms = getattr(cluster, "_socket_timeout_ms", 30000)
        round_robin = type(self._partitioner) is RandomPartitioner
        self._core = _core.ProducerCore(
            _topic_name(topic),
            compression=compression,
            required_acks=self._required_acks,
            ack_timeout_ms=self._ack_timeout_ms,
            max_retries=self._max_retries,
            retry_backoff_ms=self._retry_backoff_ms,
            delivery_timeout_ms=self._delivery_timeout_ms,
            max_queued_messages=self._max_queued_messages,
            min_queued_messages=self._min_queued_messages,
            linger_ms=self._linger_ms,
            max_request_size=self._max_request_size,
            delivery_reports=self._delivery_reports,
            block_on_queue_full=bool(block_on_queue_full),
            partitioner=self._partitioner,
            round_robin=round_robin,
            serializer=serializer,
            connect_timeout_ms=min(socket_timeout_ms, 10000),
            request_timeout_ms=max(socket_timeout_ms,
                                   self._ack_timeout_ms + 5000),
            leader_wait_ms=max(self._ack_timeout_ms, 5000),
            # Several requests per broker keep its partitions busy; a
            # partition has up to 5 batches in flight when idempotent, else 1.
            max_in_flight=5,
            idempotent=self._idempotent,
            source_host=getattr(cluster, "_source_host", "") or "",
            source_port=int(getattr(cluster, "_source_port", 0) or 0),
            security=security_of(cluster),
            software_version=_PKC_VERSION,
            transactional_id=transactional_id,
            thread_local=threading.local(),
            queue_factory=queue.SimpleQueue,
            exceptions={
                "ProducerStoppedException": ProducerStoppedException,
                "ProducerQueueFullError": ProducerQueueFullError,
                "ProduceFailureError": ProduceFailureError,
            })
        self._txn: _txn.Transactions | None = None
        if transactional_id is not None:
            self._txn = _txn.Transactions(
                cluster, self._core, transactional_id,
                _valid_int("transaction_timeout_ms", transaction_timeout_ms),
                _weak_flush(self))
            topic_name = _topic_name(topic)
            txn = self._txn
            self._core.set_txn_hook(
                lambda partition_id: txn.add_partition(topic_name,
                                                       partition_id))
        if self._auto_start:
            self.start()

    @_display.safe_repr
    def __repr__(self) -> str:
        counts = _display.producer_counts(self)
        txn: list[tuple[str, object]] = [] if self._txn is None else [
            ("transactional_id", self._txn.transactional_id),
            ("transaction", self._txn.state)]
        return _display.fields(self, [
            ("topic", self._topic.name), ("running", self._running)]
            + txn + [(name, counts[name]) for name in
                     ("produced", "queued", "delivered", "failed")])

    @_display.safe_html
    def _repr_html_(self) -> str:
        """Jupyter's display: messages produced, queued, delivered and
        failed, and the settings behind them."""
        return _display.producer_html(self)

    def __del__(self) -> None:
        try:
            # Nobody can produce to it any more: send at once, no lingering.
            self._stop(linger=False)
        except Exception:  # pragma: no cover - finalizer
            pass

    def __enter__(self) -> Producer:
        """Context manager entry point: returns the producer (pykafka does
        not start it here either)."""
        return self

    def __exit__(self, exc_type: object, exc_value: object,
                 traceback: object) -> None:
        """Context manager exit point: stop (flushing what is queued)."""
        self.stop()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Read the topic's leaders, start the sender and the control
        thread.  A no-op while running."""
        with self._lock:
            if self._running:
                return
            self._push_metadata()
            if self._idempotent and not self._pid_done and self._txn is None:
                # Failing here is not fatal: the control thread tries again.
                self._pid_done = self._init_producer_id()
            self._core.start()
            self._running = True
            self._control_stop = False
            self._control_gen += 1
            self._control = threading.Thread(
                target=_control_loop,
                args=(weakref.ref(self), self._core, self._control_gen),
                name="pykafka_c.Producer control for %s"
                     % (_topic_name(self._topic),),
                daemon=True)
            self._control.start()
            if not self._synchronous:
                # The hot path: produce() is the C method itself (which
                # asks a transactional producer's state outside a
                # transaction: ProducerCore.set_produce_check).
                self.produce = self._core.produce  # type: ignore[method-assign]
            _live_producers.add(self)

    def stop(self) -> None:
        """Stop accepting messages and wait until every message produced is
        acknowledged, as pykafka's ``stop()`` (and so leaving a ``with``
        block) does: queued messages go out on their usual schedule, when
        ``min_queued_messages`` are waiting or ``linger_ms`` after their
        batch opened, so this can take up to ``linger_ms``; then it waits up
        to ``pending_timeout_ms`` (-1: no limit) for the acknowledgements.
        What is still pending then gets a failure report
        (ProduceFailureError) and is counted in a WARNING; nothing is
        dropped for lingering (pykafka dropped what was still queued when
        ``pending_timeout_ms`` ran out).  Call ``flush()`` first to send at
        once.  A transactional producer first aborts a transaction left
        open (as Kafka's Java producer does when closed)."""
        if self._txn is not None and self._running:
            self._txn.abort_if_open()
        self._stop(linger=True)

    def _stop(self, linger: bool) -> None:
        with self._lock:
            if not getattr(self, "_running", False):
                return
            self._running = False
            self.__dict__.pop("produce", None)
            if linger:
                self._linger_before_stop()
            timeout = self._pending_timeout_ms
            failed = self._core.stop(-1 if timeout is None or timeout < 0
                                     else int(timeout))
            if failed:
                log.warning(
                    "Producer for topic %s stopped with %d message(s) not "
                    "acknowledged after pending_timeout_ms=%s; they got "
                    "failure delivery reports", _topic_name(self._topic),
                    failed, timeout)
            self._dispatch()
            self._control_stop = True
            control, self._control = self._control, None
            _live_producers.discard(self)
        if control is not None and control is not threading.current_thread():
            control.join()

    def _linger_before_stop(self) -> None:
        """Wait until nothing is pending or ``linger_ms`` has passed: every
        batch still open was opened before now, so by then the sender has
        sent it (pykafka's stop() likewise waited for its workers to send
        on their linger schedule)."""
        deadline = time.monotonic() + self._linger_ms / 1000.0
        while self._core.pending > 0:
            self._dispatch()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(_STOP_POLL_S, left))

    def flush(self, timeout: float | None = None) -> int:
        """Send everything queued now and wait until every message produced
        so far is acknowledged or failed, or ``timeout`` seconds pass
        (None: no limit).  Delivery reports are posted before it returns.
        Returns the number of messages still pending (0 when done).
        (pykafka_c addition.)"""
        timeout_ms = -1 if timeout is None else max(0, int(timeout * 1000))
        pending = self._core.flush(timeout_ms)
        self._dispatch()
        return pending

    # --------------------------------------------------------- transactions

    def _transactions(self, what: str) -> _txn.Transactions:
        if self._txn is None:
            raise TransactionStateError(
                "%s needs a producer made with a transactional_id" % (what,))
        return self._txn

    def init_transactions(self) -> None:
        """Register the producer's ``transactional_id`` with its transaction
        coordinator (InitProducerId): gets the producer id and a new epoch,
        which fences every older producer with the same transactional id
        (their next send or commit raises ProducerFencedError) and aborts
        a transaction one of them left open.  Call once, before the first
        ``begin_transaction()``.  (pykafka_c addition, as Kafka's Java
        producer.)"""
        self._transactions("init_transactions()").init()

    def begin_transaction(self) -> None:
        """Start a transaction: the messages produced until
        ``commit_transaction()`` are seen by read_committed consumers all
        together, or (after ``abort_transaction()``) never."""
        self._transactions("begin_transaction()").begin()

    def commit_transaction(self) -> None:
        """Send every queued message, wait for all of them, and commit the
        transaction (EndTxn).  If a message could not be delivered,
        raises TransactionAbortableError (call ``abort_transaction()``);
        ProducerFencedError if a newer producer took the transactional id
        over."""
        self._transactions("commit_transaction()").commit()

    def abort_transaction(self) -> None:
        """Wait for the messages in flight and abort the transaction:
        read_committed consumers never see its messages, and offsets sent
        with ``send_offsets_to_transaction()`` are not committed."""
        self._transactions("abort_transaction()").abort()

    def send_offsets_to_transaction(
            self, offsets: Iterable[tuple[Partition | int, int]]
            | Mapping[Partition | int, int],
            consumer_group: bytes | str, topic: Topic | bytes | str
            | None = None, generation_id: int = -1, member_id: str = "",
            group_instance_id: str | None = None) -> None:
        """Commit consumer offsets as part of the transaction (AddOffsetsToTxn
        and TxnOffsetCommit): they take effect when it commits, and never if
        it aborts.  ``offsets`` is ``[(partition, offset), ...]`` (or a dict)
        as SimpleConsumer.commit_offsets takes them: each offset is the next
        one to read (the last message consumed + 1, Kafka's convention).  A
        partition is a Partition of the consumed topic, or its id with
        ``topic`` naming that topic.  ``generation_id`` and ``member_id`` are
        those of a group member (defaults: none, for a group that only
        stores offsets)."""
        self._transactions("send_offsets_to_transaction()").send_offsets(
            _offsets_by_partition(offsets, topic), get_string(consumer_group),
            generation_id, member_id, group_instance_id)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Producer]:
        """``with producer.transaction(): ...``: begin a transaction, commit
        it when the block ends, abort it when the block raises (the
        exception propagates).  A fatal error is never followed by an
        abort attempt."""
        txn = self._transactions("transaction()")
        txn.begin()
        try:
            yield self
        except BaseException:
            if txn.state != _txn.FATAL:
                txn.abort()
            raise
        txn.commit()

    # ------------------------------------------------------------ producing

    def produce(self, message: Any, partition_key: Any = None,
                timestamp: Timestamp | None = None,
                headers: HeadersIn | None = None) -> Message:
        """Produce a message; returns the queued
        :class:`pykafka_c.protocol.Message`.

        ``message`` and ``partition_key`` must be bytes or None unless a
        serializer is set.  ``timestamp`` is epoch milliseconds or a naive
        UTC datetime (default: now).  ``headers`` is a list of (str, bytes)
        pairs.  With ``sync=True``, returns once the broker acknowledged
        the message, or raises its delivery exception.
        """
        msg = self._core.produce(message, partition_key, timestamp, headers)
        if self._synchronous:
            self._wait_report(msg)
        return msg

    def _wait_report(self, msg: Message) -> None:
        q = self._core.report_queue()
        timeout = self._pending_timeout_ms
        deadline = (None if timeout is None or timeout < 0
                    else time.monotonic() + timeout / 1000.0)
        reported: Message | None = None
        exc: BaseException | None = None
        while True:
            self._dispatch()
            wait = 1.0 if deadline is None else min(
                1.0, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                reported, exc = q.get(True, wait)
                break
            except queue.Empty:
                continue
        if reported is not msg:
            raise ProduceFailureError(
                "Delivery report not received after timeout")
        if exc is not None:
            raise exc

    def get_delivery_report(self, block: bool = True,
                            timeout: float | None = None
                            ) -> tuple[Message, BaseException | None]:
        """The next delivery report of a message produced by the calling
        thread: ``(message, None)`` on success, ``(message, exception)`` on
        failure.  Raises ``queue.Empty`` when there is none (after
        ``timeout`` seconds when blocking), and KafkaException when
        delivery reports are disabled."""
        if not self._delivery_reports:
            raise KafkaException("Delivery-reporting is disabled")
        q = self._core.report_queue()
        try:
            return q.get(False)
        except queue.Empty:
            pass
        self._dispatch()
        if not block:
            return q.get(False)
        # Wait in slices, posting finished reports in between, so a report
        # never waits for the control thread (busy in a metadata refresh,
        # say).
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _REPORT_SLICE_S if deadline is None else min(
                _REPORT_SLICE_S, deadline - time.monotonic())
            try:
                return q.get(True, max(wait, 0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            self._dispatch()

    # ------------------------------------------------------------- internals

    def _dispatch(self) -> None:
        failures = self._core.dispatch()
        if not failures:
            return
        if self._txn is not None:
            self._txn.note_failures(failures)
        if not self._delivery_reports:
            for count, exc in failures:
                log.warning("%d message(s) to topic %s could not be "
                            "delivered: %s: %s", count,
                            _topic_name(self._topic), type(exc).__name__,
                            exc)
        elif failures:
            for count, exc in failures:
                log.info("%d message(s) to topic %s failed: %s: %s", count,
                         _topic_name(self._topic), type(exc).__name__, exc)

    def _push_metadata(self) -> None:
        """Hand brokers, partitions and leaders to the C core."""
        brokers = [(b.id, b.host, b.port)
                   for b in list(self._cluster.brokers.values())]
        partitions = list(self._topic.partitions.values())
        leaders = [(p.id, p.leader.id if p.leader is not None else -1)
                   for p in partitions]
        self._core.set_brokers(brokers)
        self._core.set_partitions(partitions)
        self._core.set_leaders(leaders)

    def _init_producer_id(self) -> bool:
        """Ask the brokers for a producer id (InitProducerId, no
        transactional id) and hand it to the C core.  Returns True when the
        core got an answer (a producer id, or -1 when the brokers cannot
        give one, which turns idempotence off), False to try again later
        (the core, which sends nothing until it has an id, is told why)."""
        self._last_pid_attempt = time.monotonic()
        fields = {"transactional_id": None, "transaction_timeout_ms": 60000,
                  "producer_id": -1, "producer_epoch": -1}
        why = (0, "InitProducerId: no broker answered")
        for broker in list(self._cluster.brokers.values()):
            try:
                resp = broker.request(_ApiKey.INIT_PRODUCER_ID, fields)
            except (SocketDisconnectedError, OSError) as exc:
                log.info("InitProducerId to broker %s failed: %s: %s",
                         broker.id, type(exc).__name__, exc)
                why = (0, "InitProducerId to broker %s failed: %s: %s"
                       % (broker.id, type(exc).__name__, exc))
                continue
            except KafkaException as exc:
                # Not supported, or a malformed answer: do without.
                return self._give_up_idempotence(
                    "%s: %s" % (type(exc).__name__, exc))
            assert resp is not None
            code: int = resp.get("error_code",
                                 _KafkaError.UNKNOWN_SERVER_ERROR)
            pid: int = resp.get("producer_id", -1)
            epoch: int = resp.get("producer_epoch", -1)
            if code in _PID_RETRIABLE:
                log.info("InitProducerId to broker %s: error %d", broker.id,
                         code)
                why = (code, "InitProducerId to broker %s answered %s"
                       % (broker.id, _KafkaError(code).name))
                continue
            if code != 0 or not 0 <= pid < 2 ** 63 or not 0 <= epoch <= 32767:
                return self._give_up_idempotence(
                    "InitProducerId answered error %d, producer id %r, "
                    "epoch %r" % (code, pid, epoch))
            self._core.set_producer_id(pid, epoch)
            return True
        self._core.producer_id_failed(*why)
        return False

    def _give_up_idempotence(self, why: str) -> bool:
        log.warning("Producer for topic %s continues without idempotence "
                    "(one batch per partition in flight): %s",
                    _topic_name(self._topic), why)
        self._core.set_producer_id(-1, -1)
        return True

    def _update(self) -> None:
        """Refresh the cluster metadata (called by the control thread when
        the sender saw stale leaders)."""
        self._last_update = time.monotonic()
        try:
            self._cluster.update()
        except Exception as exc:
            log.warning("Producer metadata refresh failed: %s: %s",
                        type(exc).__name__, exc)
            return
        try:
            self._push_metadata()
        except Exception:
            log.exception("Producer could not apply new metadata")


class OwnedBroker(object):
    """pykafka's per-broker message queue and worker thread of its Python
    send loop (``OwnedBroker(producer, broker, auto_start=True)``).

    pykafka_c's producer has no such object: the queues, the batching by
    ``max_request_size`` and the sending are in the C send loop
    (``_core.ProducerCore``).  The name exists so that code importing it
    (pykafka's own test_producer.py does) still loads; making one raises
    NotImplementedError.
    """

    def __init__(self, producer: Producer, broker: Any,
                 auto_start: bool = True) -> None:
        raise NotImplementedError(
            "pykafka_c's producer keeps its per-broker queues in C and has no "
            "OwnedBroker; produce() with the Producer itself")


def _check_transactional(transactional_id: str | None,
                         enable_idempotence: bool, required_acks: int) -> None:
    """A transactional producer is idempotent and waits for every in-sync
    replica (Kafka's Java producer refuses the other combinations too)."""
    if transactional_id is None:
        return
    if not isinstance(transactional_id, str) or not transactional_id:
        raise ValueError("transactional_id must be a non-empty str")
    if not enable_idempotence:
        raise ValueError("a transactional producer is idempotent: "
                         "transactional_id needs enable_idempotence=True")
    if required_acks != -1:
        raise ValueError("a transactional producer needs required_acks=-1 "
                         "(every in-sync replica), not %d" % (required_acks,))


def _weak_flush(producer: Producer) -> Callable[[], int]:
    """``producer.flush()`` without keeping the producer alive."""
    ref = weakref.ref(producer)

    def flush() -> int:
        p = ref()
        return 0 if p is None else p.flush()
    return flush


def _offsets_by_partition(
        offsets: Iterable[tuple[Partition | int, int]]
        | Mapping[Partition | int, int],
        topic: Topic | bytes | str | None) -> dict[tuple[str, int], int]:
    """``{(topic name, partition id): offset}`` of send_offsets_to_
    transaction's ``offsets``."""
    pairs = offsets.items() if isinstance(offsets, Mapping) else offsets
    default = None if topic is None else get_string(
        topic if isinstance(topic, (bytes, str)) else topic.name)
    out: dict[tuple[str, int], int] = {}
    for part, offset in pairs:
        if isinstance(part, int):
            if default is None:
                raise ValueError("partition ids need topic= (the consumed "
                                 "topic); or pass Partition objects")
            key = (default, part)
        else:
            key = (get_string(part.topic.name), part.id)
        out[key] = _valid_int("offset", offset, allow_zero=True)
    return out


def _topic_name(topic: Topic) -> str:
    name = topic.name
    return name.decode("ascii") if isinstance(name, bytes) else name


def _control_ended(producer: Producer, gen: int) -> bool:
    """Has the control thread of start() number ``gen`` been told to end
    (by stop(), or by a later start())?"""
    return producer._control_stop or producer._control_gen != gen


def _control_loop(producer_ref: weakref.ref[Producer],
                  core: _core.ProducerCore, gen: int) -> None:
    """Post delivery reports and refresh metadata until the producer stops.

    Holds only a weak reference to the Producer so that dropping it runs
    its finalizer (which stops it)."""
    want_update = False
    want_pid = False
    timeout_ms = _CONTROL_POLL_MS
    while True:
        ev = core.wait_event(timeout_ms)
        producer = producer_ref()
        if producer is None:
            return
        timeout_ms = _CONTROL_POLL_MS
        try:
            if ev & _EV_DONE:
                producer._dispatch()
            if ev & _EV_METADATA:
                want_update = True
            if ev & _EV_PRODUCER_ID:
                want_pid = True
            # Also while stop() waits: nothing is sent before the id.
            if (want_pid and producer._txn is None
                    and not _control_ended(producer, gen)):
                gap = max(0.1, producer._retry_backoff_ms / 1000.0)
                left = producer._last_pid_attempt + gap - time.monotonic()
                if left <= 0:
                    want_pid = not producer._init_producer_id()
                    if want_pid:
                        timeout_ms = max(1, int(gap * 1000))
                else:
                    timeout_ms = max(1, int(left * 1000))
            if want_update and producer._running:
                gap = producer._retry_backoff_ms / 1000.0
                left = producer._last_update + gap - time.monotonic()
                if left <= 0:
                    want_update = False
                    producer._update()
                else:
                    timeout_ms = min(timeout_ms, max(1, int(left * 1000)))
            if _control_ended(producer, gen) or (ev & _EV_STOPPED and
                                                 not producer._running):
                producer._dispatch()
                return
        except Exception:
            log.exception("pykafka_c producer control thread error")
        finally:
            del producer
