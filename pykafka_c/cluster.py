"""``Cluster`` and ``TopicDict``: the client's model of the Kafka cluster.

Differences from pykafka, each deliberate:

* Metadata is asked of any live broker the cluster knows (in random
  order), then of the seed hosts; pykafka always went back to the seeds
  (its ``random.shuffle`` bug).
* A broker whose host or port changed is replaced, not an error.
* Topic auto-creation waits a bounded time (``socket_timeout_ms``) for a
  leader instead of looping forever.
* ``zookeeper_hosts`` is accepted and ignored: Kafka 4 (KRaft) clusters
  have no ZooKeeper; brokers are found from ``hosts``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import warnings
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import _display
from ._constants import CoordinatorType
from ._constants import KafkaError as _KafkaError
from ._security import TokenRefresher, make_security
from .broker import Broker
from .exceptions import (_SECURITY_ERRORS, LeaderNotAvailable,
                         LeaderNotFoundError,
                         NoBrokersAvailableError, SocketDisconnectedError,
                         UnicodeException, UnknownTopicOrPartition,
                         KafkaException, error_for_code)
from .topic import Topic

if TYPE_CHECKING:
    from ._security import TokenProvider
    from ._typing import Decoded
    from .connection import SslConfig
    from .handlers import Handler
    from .protocol import ApiVersionsResponse, MetadataResponse

__all__ = ["Cluster", "TopicDict"]

log = logging.getLogger(__name__)


def _topic_key(key: object) -> bytes:
    """pykafka's key rule: str or bytes, ASCII only, stored as bytes."""
    if isinstance(key, bytes):
        raw = key
    elif isinstance(key, str):
        try:
            raw = key.encode("ascii")
        except UnicodeEncodeError:
            raise UnicodeException(
                "Topic name %r is not ASCII" % (key,))
    else:
        raise TypeError("topic names are str or bytes, not %s"
                        % type(key).__name__)
    try:
        raw.decode("ascii")
    except UnicodeDecodeError:
        raise UnicodeException("Topic name %r is not ASCII" % (key,))
    return raw


class TopicDict(dict[bytes, "weakref.ref[Topic] | None"]):
    """Topics by name (bytes keys).  Values are weak references to live
    :class:`Topic` objects, or None for topics not looked up yet."""

    def __init__(self, cluster: Cluster, exclude_internal_topics: bool,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cluster = weakref.ref(cluster)
        self._exclude_internal_topics = exclude_internal_topics
        self._lock = threading.RLock()

    def _should_exclude(self, key: bytes) -> bool:
        return self._exclude_internal_topics and key.startswith(b"__")

    def __getitem__(self, name: bytes | str) -> Topic:  # type: ignore[override]
        key = _topic_key(name)
        if self._should_exclude(key):
            raise KeyError("You have configured KafkaClient/Cluster to hide "
                           "internal topics (exclude_internal_topics); %r is "
                           "one" % key)
        with self._lock:
            ref = dict.get(self, key, None) if dict.__contains__(self, key) \
                else None
            topic = ref() if ref is not None else None
            if topic is not None:
                return topic
            if not dict.__contains__(self, key):
                return self.__missing__(key)
            return self._create_topic(key)

    def __contains__(self, name: object) -> bool:
        try:
            key = _topic_key(name)
        except (UnicodeException, TypeError):
            return False
        if self._should_exclude(key):
            return False
        return dict.__contains__(self, key)

    def get(self, name: bytes | str, default: Any = None) -> Any:
        """The Topic called ``name`` (made on first use, as ``[name]``),
        or ``default`` when there is no such topic."""
        try:
            return self[name]
        except KeyError:
            return default

    def values(self) -> list[Topic]:  # type: ignore[override]
        """Every topic, each made on first use (as pykafka)."""
        return [self[key] for key in self.keys()]

    def _cluster_or_raise(self) -> Cluster:
        cluster = self._cluster()
        if cluster is None:
            raise KafkaException("The cluster of this TopicDict is gone")
        return cluster

    def _create_topic(self, key: bytes) -> Topic:
        cluster = self._cluster_or_raise()
        last_exc: Exception | None = None
        for attempt in range(3):
            meta = cluster._get_metadata([key])
            tmeta = _find_topic(meta, key)
            err: int = tmeta["error_code"] if tmeta is not None \
                else _KafkaError.UNKNOWN_TOPIC_OR_PARTITION
            if err == _KafkaError.UNKNOWN_TOPIC_OR_PARTITION:
                raise error_for_code(err, "topic %r does not exist" % (key,))
            if err not in (0, _KafkaError.LEADER_NOT_AVAILABLE):
                raise error_for_code(err, "topic %r" % (key,))
            try:
                cluster._update_brokers(meta["brokers"],
                                        meta.get("controller_id", -1))
                assert tmeta is not None
                topic = Topic(cluster, tmeta)
            except (LeaderNotFoundError, LeaderNotAvailable) as exc:
                last_exc = exc
                time.sleep(0.2 * (attempt + 1))
                cluster.update()
                continue
            dict.__setitem__(self, key, weakref.ref(topic))
            return topic
        assert last_exc is not None
        raise last_exc

    def __missing__(self, key: bytes) -> Topic:
        """Look the topic up, asking the broker to create it when its
        ``auto.create.topics.enable`` allows; wait a bounded time
        (``socket_timeout_ms``) for the new topic to get leaders."""
        cluster = self._cluster_or_raise()
        start = time.monotonic()
        deadline = start + cluster._socket_timeout_ms / 1000.0
        while True:
            meta = cluster._get_metadata([key], allow_auto_topic_creation=True)
            tmeta = _find_topic(meta, key)
            err = tmeta["error_code"] if tmeta is not None \
                else _KafkaError.UNKNOWN_TOPIC_OR_PARTITION
            if err == 0 and tmeta is not None and tmeta["partitions"] and \
                    all(p["leader_id"] >= 0 for p in tmeta["partitions"]):
                cluster.update()
                with self._lock:
                    dict.__setitem__(self, key, None)
                    return self._create_topic(key)
            now = time.monotonic()
            # UNKNOWN_TOPIC_OR_PARTITION can be answered while an automatic
            # creation is under way; give it a moment before believing it.
            if err == _KafkaError.UNKNOWN_TOPIC_OR_PARTITION and \
                    now - start > _UNKNOWN_TOPIC_GRACE_S:
                raise error_for_code(err, "topic %r does not exist and the "
                                     "broker did not create it" % (key,))
            if err not in (0, _KafkaError.UNKNOWN_TOPIC_OR_PARTITION,
                           _KafkaError.LEADER_NOT_AVAILABLE):
                raise error_for_code(err, "topic %r" % (key,))
            if now >= deadline:
                raise error_for_code(
                    _KafkaError.LEADER_NOT_AVAILABLE,
                    "topic %r has no leader after %d ms"
                    % (key, cluster._socket_timeout_ms))
            time.sleep(0.1)

    def _update_topics(self, metadata_topics: Iterable[Decoded]) -> None:
        """Bring the dict in line with a full Metadata response."""
        with self._lock:
            names = set()
            for tmeta in metadata_topics:
                name = tmeta["name"].encode("ascii", "replace")
                if self._should_exclude(name):
                    # Hidden topics are not keys at all, as in pykafka, so
                    # len(), iteration and values() leave them out.
                    continue
                names.add(name)
                if not dict.__contains__(self, name):
                    dict.__setitem__(self, name, None)
                    continue
                ref = dict.__getitem__(self, name)
                topic = ref() if ref is not None else None
                if topic is not None and tmeta["error_code"] == 0:
                    topic.update(tmeta)
            for name in list(dict.keys(self)):
                if name not in names:
                    dict.__delitem__(self, name)


_UNKNOWN_TOPIC_GRACE_S = 2.0


def _find_topic(meta: Decoded, key: bytes) -> Decoded | None:
    name = key.decode("ascii")
    for t in meta["topics"]:
        if t["name"] == name:
            found: Decoded = t
            return found
    return None


def _with_address(broker: Broker, exc: Exception) -> str:
    """``exc``'s text, led by the broker's address unless it names it."""
    address = "%s:%d" % (broker.host, broker.port)
    text = str(exc)
    return text if text.startswith(address) else "%s: %s" % (address, text)


class Cluster(object):
    """A Kafka cluster: its brokers and topics, kept up to date from
    Metadata responses."""

    def __init__(self, hosts: str, handler: Handler | None = None,
                 socket_timeout_ms: int = 30 * 1000,
                 offsets_channel_socket_timeout_ms: int = 10 * 1000,
                 exclude_internal_topics: bool = True,
                 source_address: str = '',
                 zookeeper_hosts: str | None = None,
                 ssl_config: SslConfig | None = None,
                 broker_version: str = '0.9.0',
                 sasl_mechanism: str | None = None,
                 sasl_username: str | None = None,
                 sasl_password: str | None = None,
                 sasl_oauth_token_provider: TokenProvider | None = None
                 ) -> None:
        self._seed_hosts = hosts
        self._zookeeper_connect = zookeeper_hosts
        if zookeeper_hosts is not None:
            warnings.warn(
                "zookeeper_hosts is ignored: pykafka_c finds brokers "
                "through the Kafka protocol (Kafka 4 / KRaft clusters have "
                "no ZooKeeper); pass the brokers as hosts", UserWarning,
                stacklevel=3)
        self._handler = handler
        self._socket_timeout_ms = socket_timeout_ms
        self._offsets_channel_socket_timeout_ms = \
            offsets_channel_socket_timeout_ms
        self._source_address = source_address
        self._source_host, self._source_port = _parse_source(source_address)
        self._ssl_config = ssl_config
        self._security = make_security(
            ssl_config, sasl_mechanism, sasl_username, sasl_password,
            sasl_oauth_token_provider)
        self._token_refresher: TokenRefresher | None = None
        if sasl_oauth_token_provider is not None \
                and self._security is not None:
            self._token_refresher = TokenRefresher(
                self._security, sasl_oauth_token_provider)
        self._broker_version = broker_version
        self._api_versions: Any = None
        self._max_connection_retries = 3
        self._max_connection_retries_offset_mgr = 8
        self._brokers: dict[int, Broker] = {}
        self._seed_brokers: dict[tuple[str, int], Broker] = {}
        self._lock = threading.RLock()
        self._topics = TopicDict(self, exclude_internal_topics)
        self.controller_broker: Broker | None = None
        self.cluster_id: str | None = None
        # (name, partitions, replication factor, error) of every topic in
        # the last full metadata, and when it came: for the displays.
        self._topic_summary: list[tuple[bytes, int, int, int]] | None = None
        self._metadata_time = 0.0
        self.update()

    @_display.safe_repr
    def __repr__(self) -> str:
        return _display.cluster_repr(self, self)

    @_display.safe_html
    def _repr_html_(self) -> str:
        """Jupyter's display: brokers and topics, as KafkaClient's."""
        return _display.cluster_html(self, "Cluster", str(self._seed_hosts))

    @property
    def brokers(self) -> dict[int, Broker]:
        """``{node id: Broker}`` of the brokers in the cluster's metadata."""
        return self._brokers

    @property
    def topics(self) -> TopicDict:
        """The topics by name (``cluster.topics[name]`` gives a Topic)."""
        return self._topics

    @property
    def handler(self) -> Handler | None:
        """pykafka's handler object (unused by pykafka_c's I/O)."""
        return self._handler

    def _make_broker(self, id_: int, host: str, port: int) -> Broker:
        return Broker(id_, host, port, self._handler,
                      self._socket_timeout_ms,
                      self._offsets_channel_socket_timeout_ms,
                      buffer_size=1024 * 1024,
                      source_host=self._source_host,
                      source_port=self._source_port,
                      ssl_config=self._ssl_config,
                      broker_version=self._broker_version,
                      connect=False, security=self._security)

    def _seed_list(self) -> list[tuple[str, int]]:
        seeds = []
        for entry in str(self._seed_hosts).split(","):
            entry = entry.strip()
            if not entry:
                continue
            if entry.startswith("["):  # [ipv6]:port
                host, _, port = entry[1:].partition("]:")
            else:
                host, _, port = entry.rpartition(":")
            port = port.split("/", 1)[0]
            if not host or not port.isdigit():
                raise ValueError("hosts entry %r is not host:port" % entry)
            seeds.append((host, int(port)))
        if not seeds:
            raise ValueError("No broker hosts given (hosts=%r)"
                             % (self._seed_hosts,))
        return seeds

    def _candidates(self) -> list[Broker]:
        live = [b for b in self._brokers.values() if b.connected]
        others = [b for b in self._brokers.values() if not b.connected]
        random.shuffle(live)
        random.shuffle(others)
        seeds = []
        for host, port in self._seed_list():
            b = self._seed_brokers.get((host, port))
            if b is None:
                b = self._make_broker(-1, host, port)
                self._seed_brokers[(host, port)] = b
            seeds.append(b)
        return live + others + seeds

    def _get_metadata(self, topics: Iterable[bytes | str] | None = None,
                      allow_auto_topic_creation: bool = False
                      ) -> MetadataResponse:
        """A Metadata response from the first broker that answers.  When
        none does and one refused our TLS or SASL, that typed error is
        raised (it says what to fix), else NoBrokersAvailableError."""
        errors: list[str] = []
        refused: Exception | None = None
        for broker in self._candidates():
            try:
                return broker.request_metadata(
                    topics, allow_auto_topic_creation=allow_auto_topic_creation)
            except _SECURITY_ERRORS as exc:
                refused = refused or exc
                errors.append(_with_address(broker, exc))
            except SocketDisconnectedError as exc:
                errors.append(_with_address(broker, exc))
                log.info("Metadata from %s:%d failed: %s", broker.host,
                         broker.port, exc)
        if refused is not None:
            raise refused
        raise NoBrokersAvailableError(
            "Unable to fetch metadata from any broker (tried %s)"
            % "; ".join(errors))

    def _update_brokers(self, broker_metadata: Iterable[Decoded],
                        controller_id: int) -> None:
        with self._lock:
            seen = set()
            for meta in broker_metadata:
                node_id = meta["node_id"]
                seen.add(node_id)
                cur = self._brokers.get(node_id)
                if cur is not None and (cur.host, cur.port) == \
                        (meta["host"], meta["port"]):
                    continue
                if cur is not None:
                    log.info("Broker %d moved from %s:%d to %s:%d", node_id,
                             cur.host, cur.port, meta["host"], meta["port"])
                    cur.disconnect()
                self._brokers[node_id] = self._make_broker(
                    node_id, meta["host"], meta["port"])
            for node_id in list(self._brokers):
                if node_id not in seen:
                    self._brokers.pop(node_id).disconnect()
            self.controller_broker = self._brokers.get(controller_id)

    def update(self) -> None:
        """Re-read metadata: brokers, topics and partitions of live topics."""
        for attempt in range(self._max_connection_retries):
            meta = self._get_metadata()
            self.cluster_id = meta.get("cluster_id")
            self._topic_summary = [
                (t["name"].encode("ascii", "replace"), len(t["partitions"]),
                 max([len(p["replica_nodes"]) for p in t["partitions"]]
                     or [0]), t["error_code"]) for t in meta["topics"]]
            self._metadata_time = time.time()
            self._update_brokers(meta["brokers"],
                                 meta.get("controller_id", -1))
            try:
                self._topics._update_topics(meta["topics"])
                return
            except (LeaderNotFoundError, LeaderNotAvailable):
                if attempt + 1 >= self._max_connection_retries:
                    raise
                time.sleep(0.5 * (attempt + 1))

    def get_group_coordinator(self, consumer_group: bytes | str) -> Broker:
        """The Broker coordinating ``consumer_group`` (FindCoordinator)."""
        return self._find_coordinator(consumer_group, CoordinatorType.GROUP,
                                      "group")

    def get_transaction_coordinator(self, transactional_id: str) -> Broker:
        """The Broker coordinating ``transactional_id`` (FindCoordinator
        for a transaction)."""
        return self._find_coordinator(transactional_id,
                                      CoordinatorType.TRANSACTION,
                                      "transactional id")

    def _find_coordinator(self, key: bytes | str, key_type: int,
                          what: str) -> Broker:
        from .exceptions import GroupCoordinatorNotAvailable
        last: Exception | None = None
        for attempt in range(self._max_connection_retries_offset_mgr):
            for broker in self._candidates():
                try:
                    resp = broker.find_coordinator(key, key_type)
                except SocketDisconnectedError as exc:
                    last = exc
                    continue
                err = resp["error_code"]
                if err == 0:
                    node = resp["node_id"]
                    if node not in self._brokers:
                        self.update()
                    if node in self._brokers:
                        return self._brokers[node]
                    last = KafkaException(
                        "Coordinator %d of %s %r is not a known broker"
                        % (node, what, key))
                    break
                last = error_for_code(err, "FindCoordinator for %s %r"
                                      % (what, key))
                if err not in (_KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                               _KafkaError.COORDINATOR_NOT_AVAILABLE,
                               _KafkaError.NOT_COORDINATOR):
                    raise last
                break
            time.sleep(min(0.2 * (attempt + 1), 2.0))
        if isinstance(last, SocketDisconnectedError):
            raise last
        if last is None:
            last = GroupCoordinatorNotAvailable(
                "No coordinator found for %s %r" % (what, key))
        raise last

    get_offset_manager = get_group_coordinator

    def get_managed_group_descriptions(self) -> dict[str, Decoded]:
        """``{group_id: description}`` of every classic consumer group."""
        groups: dict[str, Decoded] = {}
        for broker in list(self._brokers.values()):
            resp = broker.list_groups()
            ids = [g["group_id"] for g in resp["groups"]]
            if not ids:
                continue
            desc = broker.describe_groups(ids)
            for g in desc["groups"]:
                groups[g["group_id"]] = g
        return groups

    def fetch_api_versions(self) -> ApiVersionsResponse:
        """The API ranges advertised by a live broker."""
        for broker in self._candidates():
            try:
                return broker.fetch_api_versions()
            except SocketDisconnectedError:
                continue
        raise SocketDisconnectedError("No broker answered ApiVersions")

    def disconnect(self) -> None:
        """Close every broker connection (the OAUTHBEARER token refresher,
        if any, goes on: connections reopen on the next request)."""
        for b in list(self._brokers.values()) + \
                list(self._seed_brokers.values()):
            b.disconnect()


def _parse_source(source_address: str) -> tuple[str, int]:
    if not source_address:
        return "", 0
    host, _, port = source_address.partition(":")
    return host, int(port) if port else 0
