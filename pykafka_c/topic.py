"""``Topic``: a Kafka topic, its partitions, and the factories for
producers and consumers."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, overload

from . import _display
from ._responses import OffsetPartitionResponse, PartitionOffsetRequest
from .common import OffsetType
from .exceptions import LeaderNotFoundError
from .partition import (OFFSET_LOOKUP_ATTEMPTS, RETRIABLE_OFFSET_ERRORS,
                        Partition, offsets_before_to_ms)

# pykafka's topic module holds the rdkafka subpackage, or False when its C
# extension was missing; pykafka_c's is plain Python and always present.
rdkafka: ModuleType | Literal[False]
try:
    from . import rdkafka
except ImportError:  # pragma: no cover - only in a broken install
    rdkafka = False

if TYPE_CHECKING:
    from ._typing import Decoded, OffsetsBefore
    from .balancedconsumer import BalancedConsumer
    from .broker import Broker
    from .cluster import Cluster
    from .managedbalancedconsumer import ManagedBalancedConsumer
    from .producer import Producer
    from .rdkafka import RdKafkaProducer, RdKafkaSimpleConsumer
    from .simpleconsumer import SimpleConsumer

__all__ = ["Topic"]

log = logging.getLogger(__name__)


class Topic(object):
    """A topic: ``name`` (bytes) and ``partitions`` (``{id: Partition}``)."""

    def __init__(self, cluster: Cluster, topic_metadata: Decoded) -> None:
        self._name: bytes = topic_metadata["name"].encode("ascii")
        self._cluster = cluster
        self._partitions: dict[int, Partition] = {}
        self._topic_id: bytes | None = topic_metadata.get("topic_id")
        self.update(topic_metadata)

    @_display.safe_repr
    def __repr__(self) -> str:
        return _display.fields(self, [
            ("name", self._name),
            ("partitions", _display.id_list(self._partitions))])

    @_display.safe_html
    def _repr_html_(self) -> str:
        """Jupyter's display: each partition's leader, replicas, in-sync
        replicas, earliest and latest offsets (asked of the leaders, with
        a short deadline)."""
        return _display.topic_html(self)

    @property
    def name(self) -> bytes:
        """The topic's name (bytes, as in pykafka)."""
        return self._name

    @property
    def partitions(self) -> dict[int, Partition]:
        """``{partition id: Partition}``."""
        return self._partitions

    @overload
    def get_producer(self, use_rdkafka: Literal[False] = False,
                     **kwargs: Any) -> Producer: ...
    @overload
    def get_producer(self, use_rdkafka: Literal[True],
                     **kwargs: Any) -> RdKafkaProducer: ...
    @overload
    def get_producer(self, use_rdkafka: bool = False,
                     **kwargs: Any) -> Producer: ...

    def get_producer(self, use_rdkafka: bool = False,
                     **kwargs: Any) -> Producer:
        """A :class:`pykafka_c.producer.Producer` for this topic, or with
        ``use_rdkafka`` a :class:`pykafka_c.rdkafka.RdKafkaProducer` (its
        defaults; ``block_on_queue_full`` is dropped, as in pykafka).  Both
        run in C."""
        if use_rdkafka:
            if not rdkafka:
                raise ImportError("pykafka_c.rdkafka could not be imported")
            kwargs.pop("block_on_queue_full", None)
            from .rdkafka import RdKafkaProducer
            return RdKafkaProducer(self._cluster, self, **kwargs)
        from .producer import Producer
        return Producer(self._cluster, self, **kwargs)

    def get_sync_producer(self, **kwargs: Any) -> Producer:
        """A Producer with ``sync=True``."""
        from .producer import Producer
        return Producer(self._cluster, self, sync=True, **kwargs)

    @overload
    def get_simple_consumer(self, consumer_group: bytes | str | None = None,
                            use_rdkafka: Literal[False] = False,
                            **kwargs: Any) -> SimpleConsumer: ...
    @overload
    def get_simple_consumer(self, consumer_group: bytes | str | None,
                            use_rdkafka: Literal[True],
                            **kwargs: Any) -> RdKafkaSimpleConsumer: ...
    @overload
    def get_simple_consumer(self, consumer_group: bytes | str | None = None,
                            *, use_rdkafka: Literal[True],
                            **kwargs: Any) -> RdKafkaSimpleConsumer: ...
    @overload
    def get_simple_consumer(self, consumer_group: bytes | str | None = None,
                            use_rdkafka: bool = False,
                            **kwargs: Any) -> SimpleConsumer: ...

    def get_simple_consumer(self, consumer_group: bytes | str | None = None,
                            use_rdkafka: bool = False,
                            **kwargs: Any) -> SimpleConsumer:
        """A :class:`pykafka_c.simpleconsumer.SimpleConsumer`, or with
        ``use_rdkafka`` a :class:`pykafka_c.rdkafka.RdKafkaSimpleConsumer`
        (its defaults and quirks; both run in C)."""
        if use_rdkafka:
            if not rdkafka:
                raise ImportError("pykafka_c.rdkafka could not be imported")
            from .rdkafka import RdKafkaSimpleConsumer
            return RdKafkaSimpleConsumer(
                self, self._cluster, consumer_group=consumer_group, **kwargs)
        from .simpleconsumer import SimpleConsumer
        return SimpleConsumer(self, self._cluster,
                              consumer_group=consumer_group, **kwargs)

    @overload
    def get_balanced_consumer(self, consumer_group: bytes | str,
                              managed: Literal[False] = False,
                              **kwargs: Any) -> BalancedConsumer: ...
    @overload
    def get_balanced_consumer(self, consumer_group: bytes | str,
                              managed: Literal[True],
                              **kwargs: Any) -> ManagedBalancedConsumer: ...
    @overload
    def get_balanced_consumer(self, consumer_group: bytes | str,
                              managed: bool = False,
                              **kwargs: Any) -> BalancedConsumer: ...

    def get_balanced_consumer(self, consumer_group: bytes | str,
                              managed: bool = False, *,
                              group_protocol: str = "classic",
                              **kwargs: Any) -> BalancedConsumer:
        """A balanced consumer coordinated by the broker (both modes).

        ``group_protocol`` (a pykafka_c addition): ``"classic"`` (the
        default) is the JoinGroup/SyncGroup protocol pykafka used;
        ``"consumer"`` is KIP-848's consumer group protocol (Kafka 4.0+),
        which also takes ``server_assignor="uniform"`` or ``"range"``
        (see :mod:`pykafka_c.consumergroupprotocol`)."""
        if group_protocol == "consumer":
            from .consumergroupprotocol import (
                ConsumerProtocolBalancedConsumer,
                ConsumerProtocolManagedBalancedConsumer)
            cls: type[BalancedConsumer] = (
                ConsumerProtocolManagedBalancedConsumer if managed
                else ConsumerProtocolBalancedConsumer)
            return cls(self, self._cluster, consumer_group, **kwargs)
        if group_protocol != "classic":
            raise ValueError("group_protocol must be 'classic' or "
                             "'consumer', not %r" % (group_protocol,))
        if managed:
            from .managedbalancedconsumer import ManagedBalancedConsumer
            return ManagedBalancedConsumer(self, self._cluster,
                                           consumer_group, **kwargs)
        from .balancedconsumer import BalancedConsumer
        return BalancedConsumer(self, self._cluster, consumer_group,
                                **kwargs)

    def fetch_offset_limits(self, offsets_before: OffsetsBefore,
                            max_offsets: int = 1
                            ) -> dict[int, OffsetPartitionResponse]:
        """ListOffsets for every partition, grouped by leader.

        Returns ``{partition_id: OffsetPartitionResponse(offset, err)}``;
        per-partition errors are returned, not raised (as in pykafka).
        See :meth:`Partition.fetch_offset_limit` for the offset lists."""
        ts = offsets_before_to_ms(offsets_before)
        result: dict[int, OffsetPartitionResponse] = {}
        pending = sorted(self._partitions)
        for attempt in range(OFFSET_LOOKUP_ATTEMPTS):
            by_leader: defaultdict[Broker, list[PartitionOffsetRequest]] = \
                defaultdict(list)
            for pid in pending:
                p = self._partitions[pid]
                if p.leader is None:
                    raise LeaderNotFoundError(
                        "Partition %d of %r has no leader" % (p.id, self._name))
                by_leader[p.leader].append(
                    PartitionOffsetRequest(self._name, p.id, ts, max_offsets))
            for leader, reqs in by_leader.items():
                resp = leader.request_offset_limits(reqs)
                for t in resp["topics"]:
                    for part in t["partitions"]:
                        offset = part["offset"]
                        result[part["partition_index"]] = \
                            OffsetPartitionResponse(
                                [] if offset < 0 else [offset],
                                part["error_code"])
            # A leader that moved, or a partition whose leader is still
            # being elected (a topic just created), answers with a
            # retriable error: refresh the metadata and ask again, a
            # bounded number of times.  What is still failing after that
            # is returned with its error code, as pykafka does.
            pending = [pid for pid, r in result.items()
                       if r.err in RETRIABLE_OFFSET_ERRORS]
            if not pending or attempt == OFFSET_LOOKUP_ATTEMPTS - 1:
                break
            time.sleep(0.2 * (attempt + 1))
            self._cluster.update()
        return result

    def earliest_available_offsets(self) -> dict[int, OffsetPartitionResponse]:
        """``fetch_offset_limits(OffsetType.EARLIEST)``."""
        return self.fetch_offset_limits(OffsetType.EARLIEST)

    def latest_available_offsets(self) -> dict[int, OffsetPartitionResponse]:
        """``fetch_offset_limits(OffsetType.LATEST)``: next offsets to be
        written."""
        return self.fetch_offset_limits(OffsetType.LATEST)

    def update(self, metadata: Decoded) -> None:
        """Update partitions from this topic's metadata."""
        brokers = self._cluster.brokers
        seen = set()
        for pmeta in metadata["partitions"]:
            pid = pmeta["partition_index"]
            seen.add(pid)
            part = self._partitions.get(pid)
            if part is None:
                leader_id = pmeta["leader_id"]
                if leader_id >= 0 and leader_id not in brokers:
                    raise LeaderNotFoundError(
                        "Leader %d of partition %d is not a known broker"
                        % (leader_id, pid))
                part = Partition(self, pid,
                                 brokers.get(leader_id) if leader_id >= 0
                                 else None, [], [])
                self._partitions[pid] = part
            part.update(brokers, pmeta)
        for pid in list(self._partitions):
            if pid not in seen:
                log.info("Partition %d of %r is gone", pid, self._name)
                del self._partitions[pid]
