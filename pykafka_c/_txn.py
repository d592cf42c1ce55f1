"""The transactional producer's protocol (KIP-98), run in Python over
``Broker.request``; the C send engine only carries the transactional id
and the producer id and epoch this module hands it.

One ``Transactions`` per transactional ``Producer``.  Its states, as in
Kafka's Java ``TransactionManager``::

    UNINITIALIZED --init_transactions()--> READY
    READY --begin_transaction()--> IN_TRANSACTION
    IN_TRANSACTION --commit_transaction()--> COMMITTING --> READY
    IN_TRANSACTION --abort_transaction()--> ABORTING --> READY
    IN_TRANSACTION --a failure--> ABORTABLE --abort_transaction()--> READY
    any --fenced, or the transactional id refused--> FATAL (for good)

The requests: FindCoordinator (``CoordinatorType.TRANSACTION``) finds the
transaction coordinator; InitProducerId (with the transactional id) gets the producer
id and a new epoch, which fences every older producer with that id; the
first record of a partition in a transaction is preceded by
AddPartitionsToTxn for it (``add_partition``, called by the C core's
produce through its transaction hook); ``send_offsets`` sends
AddOffsetsToTxn to the transaction coordinator and TxnOffsetCommit to the
group's coordinator; EndTxn commits or aborts.  Only the classic client
versions are used (AddPartitionsToTxn v3 at most; no KIP-890 "transaction
version 2" implicit adds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._constants import ApiKey as _ApiKey
from ._constants import KafkaError as _KafkaError
from .exceptions import (KafkaException, ProducerFencedError,
                         SocketDisconnectedError, TransactionAbortableError,
                         TransactionFatalError, TransactionStateError,
                         error_for_code)

if TYPE_CHECKING:
    from ._typing import Decoded
    from .broker import Broker
    from .cluster import Cluster

log = logging.getLogger(__name__)

UNINITIALIZED = "UNINITIALIZED"
READY = "READY"
IN_TRANSACTION = "IN_TRANSACTION"
COMMITTING = "COMMITTING"
ABORTING = "ABORTING"
ABORTABLE = "ABORTABLE"
FATAL = "FATAL"

# Errors that mean another producer took the transactional id over (or the
# broker no longer lets this one use it): the producer is done for.
FENCING_ERRORS = frozenset((
    _KafkaError.INVALID_PRODUCER_EPOCH, _KafkaError.PRODUCER_FENCED))
# INVALID_TXN_STATE: the coordinator's view of the transaction disagrees
# with the producer's (Java's TransactionManager treats it as fatal too).
FATAL_ERRORS = FENCING_ERRORS | frozenset((
    _KafkaError.INVALID_TXN_STATE,
    _KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    _KafkaError.INVALID_TRANSACTION_TIMEOUT,
    _KafkaError.UNSUPPORTED_VERSION,
    _KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT))
# Errors after which the same request is sent again after a backoff.
_RETRY_SAME = frozenset((
    _KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    _KafkaError.CONCURRENT_TRANSACTIONS, _KafkaError.REQUEST_TIMED_OUT,
    _KafkaError.UNKNOWN_TOPIC_OR_PARTITION))
# Errors after which the coordinator is looked up again first.
_FIND_AGAIN = frozenset((
    _KafkaError.NOT_COORDINATOR, _KafkaError.COORDINATOR_NOT_AVAILABLE))

# How long one step (init, add a partition, commit, ...) keeps retrying.
_STEP_DEADLINE_S = 60.0
# First and largest backoff between retries (s).
_BACKOFF_MIN_S = 0.02
_BACKOFF_MAX_S = 1.0


class _Retry(Exception):
    """Inside ``_rpc``: send the request again (find the coordinator again
    first when ``find_again``)."""

    def __init__(self, why: str, find_again: bool) -> None:
        super().__init__(why)
        self.find_again = find_again


def first_error(codes: Iterable[int]) -> int:
    """The first non-zero code of ``codes``, else 0 (an answer's per-
    partition codes; OPERATION_NOT_ATTEMPTED only when alone)."""
    found = 0
    for code in codes:
        if code == _KafkaError.OPERATION_NOT_ATTEMPTED:
            found = found or code
        elif code != 0:
            return code
    return found


def _top_error(resp: Decoded) -> int:
    return int(resp.get("error_code", 0))


def _add_partitions_error(resp: Decoded) -> int:
    return first_error(
        p["partition_error_code"]
        for t in resp.get("results_by_topic_v3_and_below", [])
        for p in t["results_by_partition"])


def _txn_offset_commit_error(resp: Decoded) -> int:
    return first_error(p["error_code"] for t in resp.get("topics", [])
                       for p in t["partitions"])


class Transactions(object):
    """The transaction state of one transactional producer (see the module
    docstring).  ``core`` is the producer's ``_core.ProducerCore``."""

    def __init__(self, cluster: Cluster, core: Any, transactional_id: str,
                 timeout_ms: int, flush: Callable[[], int]) -> None:
        self.transactional_id = transactional_id
        self.timeout_ms = timeout_ms
        self._core = core
        self.state = UNINITIALIZED
        self.producer_id = -1
        self.epoch = -1
        self._cluster = cluster
        self._flush = flush
        self._coordinator: Broker | None = None
        self._lock = threading.RLock()
        self._error: BaseException | None = None  # ABORTABLE / FATAL cause
        self._failed_at_begin = 0
        self._failures: list[BaseException] = []
        self._in_txn = False         # something was added at the coordinator
        self._bump_epoch = False     # a delivery failed in this transaction

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        """Every change of state also opens or closes produce() in the C
        core: inside a transaction it queues at once, outside it calls
        check_produce, which raises the state error."""
        self._state = state
        self._core.set_produce_check(
            None if state == IN_TRANSACTION else self.check_produce)

    # ------------------------------------------------------------- checks

    def _require(self, *states: str, what: str) -> None:
        if self.state == FATAL:
            assert self._error is not None
            raise self._error
        if self.state not in states:
            if self.state == ABORTABLE and what != "abort_transaction()":
                raise TransactionAbortableError(
                    "%s: the transaction failed, call abort_transaction() "
                    "first" % (what,)) from self._error
            raise TransactionStateError(
                "%s is not allowed in state %s (transactional id %r)"
                % (what, self.state, self.transactional_id))

    def check_produce(self) -> None:
        """produce() is allowed only inside a transaction."""
        self._require(IN_TRANSACTION, what="produce()")

    # ------------------------------------------------------------- failures

    def note_failures(self, failures: list[tuple[int, BaseException]]) -> None:
        """Delivery failures the producer's dispatch saw (any thread)."""
        self._failures.extend(exc for _count, exc in failures)

    def _fail(self, exc: BaseException, what: str) -> BaseException:
        """Turn ``exc``, which failed ``what``, into the producer's state:
        FATAL for fencing and refusals of the transactional id, else
        ABORTABLE; returns the exception to raise."""
        code = getattr(exc, "ERROR_CODE", None)
        if isinstance(exc, TransactionFatalError):
            err: BaseException = exc
        elif code in FENCING_ERRORS:
            err = ProducerFencedError(
                "%s: producer id %d epoch %d was fenced by a newer producer "
                "with transactional id %r (%s); this producer cannot be used "
                "again" % (what, self.producer_id, self.epoch,
                           self.transactional_id, exc))
        elif code in FATAL_ERRORS:
            err = TransactionFatalError("%s: %s; this producer cannot be "
                                        "used again" % (what, exc))
        else:
            err = TransactionAbortableError(
                "%s: %s; call abort_transaction()" % (what, exc))
        err.__cause__ = exc
        self._error = err
        self.state = FATAL if isinstance(err, TransactionFatalError) \
            else ABORTABLE
        return err

    # ------------------------------------------------------------- requests

    def _coordinator_broker(self) -> Broker:
        if self._coordinator is None:
            self._coordinator = self._cluster.get_transaction_coordinator(
                self.transactional_id)
        return self._coordinator

    def _rpc(self, api_key: int, fields: Decoded,
             error_of: Callable[[Decoded], int], what: str,
             find: Callable[[], Broker] | None = None,
             forget: Callable[[], None] | None = None) -> Decoded:
        """Send a request to the transaction coordinator (or to ``find()``'s
        broker) until it succeeds, retrying what Kafka says to retry with a
        growing backoff, for up to _STEP_DEADLINE_S.  Raises the error's
        exception (KafkaException) otherwise."""
        find = find or self._coordinator_broker
        forget = forget or self._forget_coordinator
        deadline = time.monotonic() + _STEP_DEADLINE_S
        backoff = _BACKOFF_MIN_S
        while True:
            try:
                return self._rpc_once(api_key, fields, error_of, what, find)
            except _Retry as retry:
                if retry.find_again:
                    forget()
                if time.monotonic() + backoff > deadline:
                    raise KafkaException("%s: no success within %.0f s: %s"
                                         % (what, _STEP_DEADLINE_S, retry))
                log.debug("%s: %s; retrying", what, retry)
            time.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _rpc_once(self, api_key: int, fields: Decoded,
                  error_of: Callable[[Decoded], int], what: str,
                  find: Callable[[], Broker]) -> Decoded:
        try:
            broker = find()
            resp = broker.request(api_key, fields)
        except (SocketDisconnectedError, OSError) as exc:
            raise _Retry("%s: %s" % (type(exc).__name__, exc), True)
        except KafkaException as exc:
            if getattr(exc, "RETRIABLE", False):
                raise _Retry("%s: %s" % (type(exc).__name__, exc), True)
            raise
        assert resp is not None
        code = error_of(resp)
        if code == 0:
            return resp
        if code in _FIND_AGAIN or code in _RETRY_SAME:
            raise _Retry(_KafkaError(code).name, code in _FIND_AGAIN)
        raise error_for_code(code, what)

    def _forget_coordinator(self) -> None:
        self._coordinator = None

    # ------------------------------------------------------------ the steps

    def init(self) -> None:
        """init_transactions(): the producer id and a new epoch (fencing
        every older producer with this transactional id)."""
        with self._lock:
            self._require(UNINITIALIZED, what="init_transactions()")
            self._init_producer_id(-1, -1, "init_transactions()")
            self.state = READY

    def _init_producer_id(self, producer_id: int, epoch: int,
                          what: str) -> None:
        fields = {"transactional_id": self.transactional_id,
                  "transaction_timeout_ms": self.timeout_ms,
                  "producer_id": producer_id, "producer_epoch": epoch}
        try:
            resp = self._rpc(_ApiKey.INIT_PRODUCER_ID, fields, _top_error,
                             what)
        except KafkaException as exc:
            if self.state == UNINITIALIZED and getattr(
                    exc, "ERROR_CODE", None) not in FATAL_ERRORS:
                raise       # init_transactions() may be called again
            raise self._fail(exc, what)
        self.producer_id = resp["producer_id"]
        self.epoch = resp["producer_epoch"]
        # Applied by the sender with nothing in flight; every partition's
        # sequence numbers restart at 0 under the new epoch.
        self._core.set_producer_id(self.producer_id, self.epoch)

    def begin(self) -> None:
        with self._lock:
            self._require(READY, what="begin_transaction()")
            self._core.txn_reset()
            self._failures.clear()
            self._failed_at_begin = self._core.stats()["failed"]
            self._in_txn = False
            self._bump_epoch = False
            self.state = IN_TRANSACTION

    def add_partition(self, topic: str, partition_id: int) -> None:
        """The C core's transaction hook: AddPartitionsToTxn before the
        first record of ``partition_id`` in this transaction."""
        with self._lock:
            self._require(IN_TRANSACTION, what="produce()")
            fields = {
                "v3_and_below_transactional_id": self.transactional_id,
                "v3_and_below_producer_id": self.producer_id,
                "v3_and_below_producer_epoch": self.epoch,
                "v3_and_below_topics": [
                    {"name": topic, "partitions": [partition_id]}]}
            what = ("AddPartitionsToTxn for %s partition %d"
                    % (topic, partition_id))
            try:
                self._rpc(_ApiKey.ADD_PARTITIONS_TO_TXN, fields,
                          _add_partitions_error, what)
            except KafkaException as exc:
                raise self._fail(exc, what)
            self._in_txn = True

    def send_offsets(self, offsets: Mapping[tuple[str, int], int],
                     group: str, generation_id: int, member_id: str,
                     group_instance_id: str | None) -> None:
        """AddOffsetsToTxn, then TxnOffsetCommit of ``{(topic, partition):
        offset}`` to the group's coordinator."""
        with self._lock:
            self._require(IN_TRANSACTION,
                          what="send_offsets_to_transaction()")
            what = "AddOffsetsToTxn for group %r" % (group,)
            fields: Decoded = {
                "transactional_id": self.transactional_id,
                "producer_id": self.producer_id,
                "producer_epoch": self.epoch, "group_id": group}
            try:
                self._rpc(_ApiKey.ADD_OFFSETS_TO_TXN, fields, _top_error,
                          what)
                self._in_txn = True
                what = "TxnOffsetCommit for group %r" % (group,)
                fields = dict(fields, topics=_offset_topics(offsets),
                              generation_id_or_member_epoch=generation_id,
                              member_id=member_id,
                              group_instance_id=group_instance_id)
                self._commit_group_offsets(group, fields, what)
            except KafkaException as exc:
                raise self._fail(exc, what)

    def _commit_group_offsets(self, group: str, fields: Decoded,
                              what: str) -> None:
        box: list[Broker] = []

        def find() -> Broker:
            if not box:
                box.append(self._cluster.get_group_coordinator(group))
            return box[0]

        self._rpc(_ApiKey.TXN_OFFSET_COMMIT, fields,
                  _txn_offset_commit_error, what, find=find,
                  forget=box.clear)

    def commit(self) -> None:
        """Flush, fail (abortable) if a delivery failed, then EndTxn."""
        with self._lock:
            self._require(IN_TRANSACTION, what="commit_transaction()")
            self.state = COMMITTING
            self._flush()
            failure = self._delivery_failure()
            if failure is not None:
                self._bump_epoch = True
                raise self._fail(failure, "commit_transaction()")
            self._end(True, "commit_transaction()")

    def abort(self) -> None:
        """Wait for what is in flight, EndTxn abort, and bump the epoch if
        a delivery failed (its sequence numbers may have left a gap)."""
        with self._lock:
            self._require(IN_TRANSACTION, ABORTABLE, ABORTING,
                          what="abort_transaction()")
            self.state = ABORTING
            self._flush()
            if self._delivery_failure() is not None:
                self._bump_epoch = True
            self._end(False, "abort_transaction()")
            if self._bump_epoch:
                self._init_producer_id(self.producer_id, self.epoch,
                                       "abort_transaction()")

    def abort_if_open(self) -> None:
        """On stop(): abort a transaction left open (as Kafka's Java
        producer does on close), so that read_committed consumers need not
        wait for the transaction timeout; failures are only logged."""
        if self.state not in (IN_TRANSACTION, ABORTABLE, ABORTING):
            return
        log.warning("Producer with transactional id %r stopped inside a "
                    "transaction: aborting it", self.transactional_id)
        try:
            self.abort()
        except KafkaException as exc:
            log.warning("Aborting the open transaction of %r failed: %s: "
                        "%s", self.transactional_id, type(exc).__name__, exc)

    def _delivery_failure(self) -> BaseException | None:
        if self._failures:
            return self._failures[0]
        failed = self._core.stats()["failed"] - self._failed_at_begin
        if failed > 0:
            return KafkaException("%d message(s) of the transaction could "
                                  "not be delivered" % (failed,))
        return None

    def _end(self, commit: bool, what: str) -> None:
        if self._in_txn:
            fields = {"transactional_id": self.transactional_id,
                      "producer_id": self.producer_id,
                      "producer_epoch": self.epoch, "committed": commit}
            try:
                self._rpc(_ApiKey.END_TXN, fields, _top_error, what)
            except KafkaException as exc:
                raise self._fail(exc, what)
        self._core.txn_reset()
        self._in_txn = False
        self.state = READY
        self._error = None


def _offset_topics(offsets: Mapping[tuple[str, int], int]) -> list[Decoded]:
    """TxnOffsetCommit's topics array of ``{(topic, partition): offset}``."""
    by_topic: dict[str, list[Decoded]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        by_topic.setdefault(topic, []).append({
            "partition_index": partition, "committed_offset": offset,
            "committed_leader_epoch": -1, "committed_metadata": ""})
    return [{"name": t, "partitions": ps} for t, ps in by_topic.items()]
