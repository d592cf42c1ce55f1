"""``Partition``: one partition of a topic, with its leader and replicas."""

from __future__ import annotations

import datetime as _dt
import logging
import time
import weakref
from typing import TYPE_CHECKING, cast

from . import _display
from ._constants import KafkaError as _KafkaError
from ._responses import PartitionOffsetRequest
from .common import EPOCH, OffsetType
from ._typing import Decoded, OffsetsBefore
from .exceptions import LeaderNotFoundError, error_for_code

if TYPE_CHECKING:
    from .broker import Broker
    from .topic import Topic

#: ListOffsets errors answered while leadership is moving or still being
#: set up (a topic just created).  Offset lookups refresh the metadata and
#: retry them.
RETRIABLE_OFFSET_ERRORS = frozenset((
    _KafkaError.LEADER_NOT_AVAILABLE, _KafkaError.NOT_LEADER_OR_FOLLOWER,
    _KafkaError.REQUEST_TIMED_OUT, _KafkaError.FENCED_LEADER_EPOCH,
    _KafkaError.UNKNOWN_LEADER_EPOCH, _KafkaError.OFFSET_NOT_AVAILABLE))
#: Tries of an offset lookup (sleeping 0.2 s, 0.4 s, ... in between).
OFFSET_LOOKUP_ATTEMPTS = 5

__all__ = ["Partition"]

log = logging.getLogger(__name__)


def offsets_before_to_ms(offsets_before: OffsetsBefore) -> int:
    """pykafka's ``offsets_before``: OffsetType.EARLIEST/LATEST, an int of
    epoch milliseconds, or a naive UTC datetime."""
    if isinstance(offsets_before, _dt.datetime):
        if offsets_before.tzinfo is not None:
            offsets_before = offsets_before.astimezone(
                _dt.timezone.utc).replace(tzinfo=None)
        delta = offsets_before - EPOCH
        return int(delta.total_seconds() * 1000)
    if isinstance(offsets_before, bool) or not isinstance(offsets_before,
                                                          int):
        raise TypeError("offsets_before must be an OffsetType, an int of "
                        "epoch milliseconds or a datetime, not %r"
                        % (offsets_before,))
    return offsets_before


class Partition(object):
    """A partition: ``id``, ``leader`` (a Broker), ``replicas`` and ``isr``
    (lists of Brokers), and its ``topic``."""

    def __init__(self, topic: Topic, id_: int, leader: Broker | None,
                 replicas: list[Broker], isr: list[Broker],
                 leader_epoch: int = -1) -> None:
        self._id = id_
        self._leader = leader
        self._replicas = replicas
        self._isr = isr
        self._leader_epoch = leader_epoch
        self._topic = weakref.ref(topic)

    @_display.safe_repr
    def __repr__(self) -> str:
        topic = self._topic()
        leader = self._leader
        return _display.fields(self, [
            ("topic", topic.name if topic is not None else None),
            ("id", self._id),
            ("leader", leader.id if leader is not None else None),
            ("replicas", _display.id_list(r.id for r in self._replicas)),
            ("isr", _display.id_list(r.id for r in self._isr))])

    @_display.safe_html
    def _repr_html_(self) -> str:
        """Jupyter's display: the partition's row of its topic's table."""
        return _display.topic_html(self.topic, [self])

    def __lt__(self, other: Partition) -> bool:
        return self._id < other._id

    def __hash__(self) -> int:
        return hash((self.topic, self._id))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Partition):
            return NotImplemented
        return hash(self) == hash(other)

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    @property
    def id(self) -> int:
        """The partition id."""
        return self._id

    @property
    def leader(self) -> Broker | None:
        """The Broker leading this partition (None while there is none)."""
        return self._leader

    @property
    def replicas(self) -> list[Broker]:
        """The Brokers holding a replica."""
        return self._replicas

    @property
    def isr(self) -> list[Broker]:
        """The in-sync replicas."""
        return self._isr

    @property
    def leader_epoch(self) -> int:
        """The leader's epoch from the last metadata (-1: unknown)."""
        return self._leader_epoch

    @property
    def topic(self) -> Topic:
        """The Topic, held weakly as in pykafka: None once nothing else
        holds it (consumers and producers do)."""
        return cast("Topic", self._topic())

    def fetch_offset_limit(self, offsets_before: OffsetsBefore,
                           max_offsets: int = 1) -> list[int]:
        """ListOffsets for this partition: a list with one offset.

        EARLIEST gives ``[log start offset]``, LATEST ``[next offset to be
        written]``.  A timestamp gives ``[first offset whose timestamp is at
        or after it]``, or ``[]`` when no message is that recent (modern
        ListOffsets; pykafka's v0 answered with segment base offsets).
        ``max_offsets`` is accepted for compatibility; at most one offset
        is returned.
        """
        ts = offsets_before_to_ms(offsets_before)
        req = PartitionOffsetRequest(self.topic.name, self._id, ts,
                                     max_offsets)
        for attempt in range(OFFSET_LOOKUP_ATTEMPTS):
            leader = self._leader
            if leader is None:
                raise LeaderNotFoundError(
                    "Partition %d of %r has no leader" % (self._id,
                                                         self.topic.name))
            resp = leader.request_offset_limits([req])
            part = resp["topics"][0]["partitions"][0]
            err: int = part["error_code"]
            if err == 0:
                offset: int = part["offset"]
                return [] if offset < 0 else [offset]
            if attempt == OFFSET_LOOKUP_ATTEMPTS - 1 or \
                    err not in RETRIABLE_OFFSET_ERRORS:
                raise error_for_code(err, "ListOffsets for partition %d"
                                     % self._id)
            time.sleep(0.2 * (attempt + 1))
            self.topic._cluster.update()
        return []

    def latest_available_offset(self) -> int:
        """The next offset to be written (the high watermark)."""
        return self.fetch_offset_limit(OffsetType.LATEST)[0]

    def earliest_available_offset(self) -> int:
        """The oldest offset still in the log."""
        return self.fetch_offset_limit(OffsetType.EARLIEST)[0]

    def update(self, brokers: dict[int, Broker], metadata: Decoded) -> None:
        """Update leader, replicas and ISR from a partition's metadata."""
        leader_id = metadata["leader_id"]
        if leader_id >= 0 and leader_id not in brokers:
            raise LeaderNotFoundError(
                "Leader %d of partition %d is not a known broker"
                % (leader_id, self._id))
        self._leader = brokers.get(leader_id) if leader_id >= 0 else None
        self._leader_epoch = metadata.get("leader_epoch", -1)
        self._replicas = [brokers[r] for r in metadata["replica_nodes"]
                          if r in brokers]
        self._isr = [brokers[r] for r in metadata["isr_nodes"]
                     if r in brokers]
