"""Balanced consumers: contract checks (no broker) and group behaviour
against real Kafka brokers (fixtures ``kafka`` on 4.x and 3.9, and
``kafka_cluster3``).

Test data is written with pykafka_c's producer (acks=all, the partition
chosen by key, every delivery report checked), so every partition gets a
known set of messages.  The foreign group members in the interoperability
tests are Kafka's own console consumer (through the harness's tool helper)
and kcat's librdkafka KafkaConsumer.
"""

import collections
import inspect
import re
import shutil
import subprocess
import threading
import time
import types
import uuid
import warnings
from unittest import mock

import pytest

from pykafka_c.balancedconsumer import BalancedConsumer, _is_fatal
from pykafka_c.client import KafkaClient
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import (ConsumerStoppedException,
                                  FencedInstanceId, GroupAuthorizationFailed,
                                  InconsistentGroupProtocol, KafkaException,
                                  NotCoordinatorForGroup, RebalanceInProgress,
                                  SocketDisconnectedError, UnicodeException,
                                  UnknownMemberId)
from pykafka_c.managedbalancedconsumer import ManagedBalancedConsumer
from pykafka_c.membershipprotocol import (ConsumerGroupProtocolMetadata,
                                          CooperativeStickyProtocol,
                                          GroupMembershipProtocol,
                                          MemberAssignment, RangeProtocol,
                                          RoundRobinProtocol)
from pykafka_c.test.kafka_instance import (kafka_tool_command,
                                           run_kafka_tool)

PROTOCOLS = [RangeProtocol, RoundRobinProtocol]
PROTOCOL_IDS = ["range", "roundrobin"]

# Short timings so expiry and rebalances happen within seconds (the
# harness's brokers allow session timeouts down to 1 s).
FAST = dict(heartbeat_interval_ms=500, session_timeout_ms=6000)


# =============================================================================
# Contract: signatures, validation, no I/O in __init__ (no broker)
# =============================================================================

_MANAGED_PARAMS = [
    ("topic", inspect.Parameter.empty),
    ("cluster", inspect.Parameter.empty),
    ("consumer_group", inspect.Parameter.empty),
    ("fetch_message_max_bytes", 1048576),
    ("num_consumer_fetchers", 1),
    ("auto_commit_enable", False),
    ("auto_commit_interval_ms", 60000),
    ("queued_max_messages", 2000),
    ("fetch_min_bytes", 1),
    ("fetch_error_backoff_ms", 500),
    ("fetch_wait_max_ms", 100),
    ("offsets_channel_backoff_ms", 1000),
    ("offsets_commit_max_retries", 5),
    ("auto_offset_reset", OffsetType.EARLIEST),
    ("consumer_timeout_ms", -1),
    ("rebalance_max_retries", 5),
    ("rebalance_backoff_ms", 2000),
    ("auto_start", True),
    ("reset_offset_on_start", False),
    ("post_rebalance_callback", None),
    ("use_rdkafka", False),
    ("compacted_topic", True),  # pykafka 2.8.0 (False on master)
    ("heartbeat_interval_ms", 3000),
    ("membership_protocol", RangeProtocol),
    ("deserializer", None),
    ("reset_offset_on_fetch", True),
]

_BALANCED_PARAMS = [
    ("topic", inspect.Parameter.empty),
    ("cluster", inspect.Parameter.empty),
    ("consumer_group", inspect.Parameter.empty),
    ("fetch_message_max_bytes", 1048576),
    ("num_consumer_fetchers", 1),
    ("auto_commit_enable", False),
    ("auto_commit_interval_ms", 60000),
    ("queued_max_messages", 2000),
    ("fetch_min_bytes", 1),
    ("fetch_error_backoff_ms", 500),
    ("fetch_wait_max_ms", 100),
    ("offsets_channel_backoff_ms", 1000),
    ("offsets_commit_max_retries", 5),
    ("auto_offset_reset", OffsetType.EARLIEST),
    ("consumer_timeout_ms", -1),
    ("rebalance_max_retries", 5),
    ("rebalance_backoff_ms", 2000),
    ("zookeeper_connection_timeout_ms", 6000),
    ("zookeeper_connect", None),
    ("zookeeper_hosts", '127.0.0.1:2181'),
    ("zookeeper", None),
    ("auto_start", True),
    ("reset_offset_on_start", False),
    ("post_rebalance_callback", None),
    ("use_rdkafka", False),
    ("compacted_topic", False),
    ("membership_protocol", RangeProtocol),
    ("deserializer", None),
    ("reset_offset_on_fetch", True),
]


def _positional(cls):
    sig = inspect.signature(cls.__init__)
    params = list(sig.parameters.values())[1:]
    return ([(p.name, p.default) for p in params
             if p.kind == p.POSITIONAL_OR_KEYWORD],
            {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY})


def test_managed_signature_is_pykafkas():
    positional, extra = _positional(ManagedBalancedConsumer)
    assert positional == _MANAGED_PARAMS
    assert extra == {"session_timeout_ms": 30000,
                     "rebalance_timeout_ms": None,
                     "group_instance_id": None}


def test_balanced_signature_is_pykafkas():
    positional, extra = _positional(BalancedConsumer)
    assert positional == _BALANCED_PARAMS
    assert extra == {"heartbeat_interval_ms": 3000,
                     "session_timeout_ms": 30000,
                     "rebalance_timeout_ms": None,
                     "group_instance_id": None}


def test_managed_is_a_balanced_consumer():
    assert issubclass(ManagedBalancedConsumer, BalancedConsumer)


class _NoNetworkCluster(object):
    """A cluster that fails the test if a consumer touches the network."""

    def __getattr__(self, name):
        raise AssertionError("__init__ with auto_start=False used "
                             "cluster.%s" % name)


class _Topic(object):
    def __init__(self, name=b"topic", n=3):
        self.name = name
        self.partitions = {}
        for i in range(n):
            p = mock.Mock()
            p.id = i
            p.topic = self
            p.leader = mock.Mock()
            p.leader.id = i % 2
            self.partitions[i] = p


@pytest.mark.parametrize("cls", [ManagedBalancedConsumer, BalancedConsumer])
def test_init_without_auto_start_does_no_io(cls):
    c = cls(_Topic(), _NoNetworkCluster(), b"g", auto_start=False)
    assert c.partitions == {}
    assert c._partitions == set()
    assert c.held_offsets is None
    assert c.consumer_id == b""
    with pytest.raises(ConsumerStoppedException):
        c.consume()
    with pytest.raises(KafkaException):
        c.commit_offsets()
    with pytest.raises(ConsumerStoppedException):
        c.reset_offsets()
    c.stop()  # harmless before start


def test_stop_while_another_thread_is_starting_the_worker():
    """stop() racing a start() that has made the heartbeat thread but not
    started it yet (seen in the lifecycle stress test: "cannot join thread
    before it is started") returns, and the thread, once started, ends by
    itself."""
    c = ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                                auto_start=False)
    c._running = True
    c._wakeup = threading.Event()
    made = []
    real_thread = threading.Thread

    def not_started(*args, **kwargs):
        t = real_thread(*args, **kwargs)
        made.append(t)
        t.start = lambda: None  # start() happens after stop(), below
        return t
    with mock.patch("threading.Thread", not_started):
        c._setup_heartbeat_worker()
    assert made and made[0].ident is None
    c.stop()
    real_thread.start(made[0])
    made[0].join(5.0)
    assert not made[0].is_alive()


@pytest.mark.parametrize("group,expected", [(b"grp", b"grp"), ("grp", b"grp")])
def test_group_name_types(group, expected):
    c = ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), group,
                                auto_start=False)
    assert c._consumer_group == expected


@pytest.mark.parametrize("group", ["gr\u00fcn", "gr\u00fcn".encode("utf-8")])
def test_group_name_must_be_ascii(group):
    with pytest.raises(UnicodeException):
        ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), group,
                                auto_start=False)


@pytest.mark.parametrize("kwargs,exc", [
    ({"fetch_message_max_bytes": "x"}, TypeError),
    ({"fetch_message_max_bytes": 0}, ValueError),
    ({"heartbeat_interval_ms": -1}, ValueError),
    ({"session_timeout_ms": 0}, ValueError),
    ({"rebalance_backoff_ms": 0}, ValueError),
])
def test_int_validation(kwargs, exc):
    with pytest.raises(exc):
        ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                                auto_start=False, **kwargs)


@pytest.mark.parametrize("value,expected", [
    (None, None), ("app-1.host_a", "app-1.host_a"), (b"app-1", "app-1"),
    ("x" * 249, "x" * 249)])
def test_group_instance_id_kept(value, expected):
    c = ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                                auto_start=False, group_instance_id=value)
    assert c.group_instance_id == expected


@pytest.mark.parametrize("value,exc", [
    ("", ValueError), (".", ValueError), ("a b", ValueError),
    ("x" * 250, ValueError), (7, TypeError)])
def test_group_instance_id_validation(value, exc):
    # Kafka's rule for instance ids (as for topic names), checked before any
    # JoinGroup would be refused
    with pytest.raises(exc, match="group_instance_id"):
        BalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                         auto_start=False, group_instance_id=value)


def test_int_validation_allowed_zero_and_negative():
    c = ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                                auto_start=False, consumer_timeout_ms=-5,
                                rebalance_max_retries=0,
                                offsets_commit_max_retries=0,
                                fetch_wait_max_ms=0)
    assert c._consumer_timeout_ms == -5


def test_managed_use_rdkafka_raises_importerror():
    with pytest.raises(ImportError):
        ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                                auto_start=False, use_rdkafka=True)


@pytest.mark.parametrize("kwargs", [
    {"zookeeper_connect": "zk:2181"},
    {"zookeeper_hosts": "zk:2181"},
    {"zookeeper": object()},
    {"zookeeper_connection_timeout_ms": 1000},
])
def test_balanced_zookeeper_parameters_warn(kwargs):
    with pytest.warns(UserWarning, match="ZooKeeper settings are ignored"):
        BalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                         auto_start=False, **kwargs)


def test_balanced_default_zookeeper_parameters_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                         auto_start=False, use_rdkafka=True)


def test_shared_protocol_objects_are_not_mutated():
    before = RangeProtocol.metadata.get_bytes()
    a = ManagedBalancedConsumer(_Topic(b"ta"), _NoNetworkCluster(), b"g",
                                auto_start=False)
    b = ManagedBalancedConsumer(_Topic(b"tb"), _NoNetworkCluster(), b"g",
                                auto_start=False)
    sa, sb = a._subscription(), b._subscription()
    assert sa.topic_names == [b"ta"] and sb.topic_names == [b"tb"]
    assert sa is not RangeProtocol.metadata
    assert RangeProtocol.metadata.get_bytes() == before
    assert RangeProtocol.metadata.topic_names == [b"dummytopic"]  # pykafka's
    # The subscription is Kafka's v3 layout.
    raw = sa.get_bytes()
    assert raw[:2] == b"\x00\x03"
    assert ConsumerGroupProtocolMetadata.from_bytestring(raw).topic_names \
        == [b"ta"]


def test_custom_protocol_user_data_is_kept():
    proto = GroupMembershipProtocol(
        b"consumer", b"range",
        ConsumerGroupProtocolMetadata(user_data=b"mine"),
        RangeProtocol.decide_partitions)
    c = ManagedBalancedConsumer(_Topic(), _NoNetworkCluster(), b"g",
                                auto_start=False, membership_protocol=proto)
    assert c._subscription().user_data == b"mine"
    assert proto.metadata.topic_names == [b"dummytopic"]


class _Cluster(object):
    """Just enough of a Cluster for the leader's assignment step."""

    def __init__(self, topics):
        self.topics = topics
        self.updates = 0

    def update(self):
        self.updates += 1


def test_leader_assigns_every_member_from_its_subscription():
    own = _Topic(b"own", 4)
    other = _Topic(b"other", 2)
    cluster = _Cluster({b"own": own, b"other": other})
    c = ManagedBalancedConsumer(own, cluster, b"g", auto_start=False)
    c._consumer_id = b"m1"

    def sub(*topics):
        return ConsumerGroupProtocolMetadata(topic_names=list(topics)
                                             ).get_bytes()
    members = [
        {"member_id": "m1", "metadata": sub(b"own")},
        # A Java member subscribed to two topics (v1 layout, no later fields).
        {"member_id": "java-1",
         "metadata": ConsumerGroupProtocolMetadata(
             version=1, topic_names=[b"own", b"other"]).get_bytes()},
        {"member_id": "broken", "metadata": b"\x00\x00\x7f\xff\xff\xff"},
        {"member_id": "ghost", "metadata": sub(b"missing")},
    ]
    result = c._assign(members)
    assert cluster.updates == 1
    got = {e["member_id"]: MemberAssignment.from_bytestring(e["assignment"])
           for e in result}
    assert set(got) == {"m1", "java-1", "broken", "ghost"}
    assert all(a.version == 3 for a in got.values())
    # pykafka's range order: "b'own'-<leader>-<id>" strings, leaders are
    # id % 2, so the order is 0, 2, 1, 3; "java-1" sorts before "m1".
    assert got["java-1"].partition_assignment == [(b"other", [0, 1]),
                                                  (b"own", [0, 2])]
    assert got["m1"].partition_assignment == [(b"own", [1, 3])]
    assert got["broken"].partition_assignment == []
    assert got["ghost"].partition_assignment == []


@pytest.mark.parametrize("exc,fatal", [
    (SocketDisconnectedError("x"), False),
    (NotCoordinatorForGroup("x"), False),
    (RebalanceInProgress("x"), False),
    (UnknownMemberId("x"), False),
    (GroupAuthorizationFailed("x"), True),
    (InconsistentGroupProtocol("x"), True),
    (ValueError("callback"), True),
])
def test_error_classification(exc, fatal):
    assert _is_fatal(exc) is fatal


# =============================================================================
# Helpers for the broker tests
# =============================================================================

def _kcat():
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat (librdkafka's CLI) is needed to produce test data "
                    "and is not on PATH", pytrace=False)
    return path


def _by_key(partitions, partition_key):
    """Partitioner: the partition whose id is the message key."""
    pid = int(partition_key)
    for p in partitions:
        if p.id == pid:
            return p
    raise AssertionError("no partition %d" % pid)


def produce(topic, per_partition, **producer_kwargs):
    """Write ``{partition_id: [str values]}`` with pykafka_c's producer
    (acks=all) and check every delivery report."""
    count = 0
    with topic.get_producer(partitioner=_by_key, required_acks=-1,
                            linger_ms=10, min_queued_messages=1,
                            delivery_reports=True,
                            **producer_kwargs) as producer:
        for pid, values in sorted(per_partition.items()):
            for v in values:
                producer.produce(v.encode(), partition_key=b"%d" % pid)
                count += 1
        producer.flush()
        for _ in range(count):
            msg, exc = producer.get_delivery_report(block=True, timeout=60)
            assert exc is None, "delivery of %r failed: %r" % (msg.value,
                                                                exc)


def make_values(tag, partitions, count):
    return {pid: ["%s-p%d-%d" % (tag, pid, i) for i in range(count)]
            for pid in partitions}


def wait_for(check, timeout, what, consumers=()):
    """Poll ``check()`` until truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for c in consumers:
            c._raise_worker_exceptions()
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)"
                         % (timeout, what, last))


def owned(consumers):
    return [set(c.partitions) for c in consumers]


def assignment_settled(consumers, all_ids):
    """Every partition owned by exactly one consumer, counts balanced, all
    members on the same generation and no rebalance under way."""
    sets = owned(consumers)
    union = set().union(*sets)
    if sum(len(s) for s in sets) != len(union) or union != set(all_ids):
        return False
    if max(len(s) for s in sets) - min(len(s) for s in sets) > 1:
        return False
    gens = {c.generation_id for c in consumers}
    if len(gens) != 1 or any(c._rebalancing_in_progress.is_set()
                             for c in consumers):
        return False
    return sets


class Drain(threading.Thread):
    """Consume in the background, recording (partition, offset, value)."""

    def __init__(self, consumer):
        super().__init__(daemon=True)
        self.consumer = consumer
        self.got = []
        self.times = []  # when each of got came (monotonic)
        self.error = None
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                m = self.consumer.consume(block=True)
            except ConsumerStoppedException:
                return
            except Exception as exc:  # reported by the test
                self.error = exc
                return
            if m is not None:
                self.times.append(time.monotonic())
                self.got.append(self.record(m))

    def record(self, m):
        return (m.partition_id, m.offset, m.value.decode("utf-8"))

    def finish(self):
        self.halt.set()
        self.join(10)
        assert not self.is_alive(), "consumer thread did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def client_factory(request):
    clients = []

    def make(kafka):
        c = KafkaClient(kafka.brokers)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.close()


@pytest.fixture
def consumers_to_stop():
    made = []
    yield made
    for c in made:
        try:
            c.stop()
        except Exception:
            pass


def group_name():
    return "pkc-group-%s" % uuid.uuid4().hex[:10]


def new_consumer(made, topic, group, managed=True, **kwargs):
    c = topic.get_balanced_consumer(group, managed=managed, **kwargs)
    made.append(c)
    return c


# =============================================================================
# Group behaviour against a real broker (Kafka 4.x and 3.9)
# =============================================================================

@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTOCOL_IDS)
def test_two_then_three_consumers_share_partitions(
        kafka, topic_name, protocol, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 7)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    all_ids = set(topic.partitions)
    a = new_consumer(consumers_to_stop, topic, group,
                     membership_protocol=protocol, **FAST)
    b = new_consumer(consumers_to_stop, topic, group,
                     membership_protocol=protocol, **FAST)
    sets = wait_for(lambda: assignment_settled([a, b], all_ids), 30,
                    "two consumers to split 7 partitions", [a, b])
    assert sorted(len(s) for s in sets) == [3, 4]
    c = new_consumer(consumers_to_stop, topic, group,
                     membership_protocol=protocol, **FAST)
    sets = wait_for(lambda: assignment_settled([a, b, c], all_ids), 30,
                    "three consumers to split 7 partitions", [a, b, c])
    assert sorted(len(s) for s in sets) == [2, 2, 3]
    # The assignment follows the protocol's rules over the sorted member ids.
    members = sorted(x.consumer_id for x in (a, b, c))
    for x in (a, b, c):
        expected = protocol.decide_partitions(members, topic.partitions,
                                              x.consumer_id)
        assert set(x.partitions) == {p.id for p in expected}
    # BalancedConsumer (pykafka's ZooKeeper class) joins the same way.
    d = new_consumer(consumers_to_stop, topic, group, managed=False,
                     membership_protocol=protocol, **FAST)
    assert isinstance(d, BalancedConsumer) and \
        not isinstance(d, ManagedBalancedConsumer)
    wait_for(lambda: assignment_settled([a, b, c, d], all_ids), 30,
             "four consumers (one BalancedConsumer) to split", [a, b, c, d])


def test_join_and_leave_lose_no_message(kafka, topic_name, client_factory,
                                        consumers_to_stop):
    kafka.create_topic(topic_name, 4)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    all_ids = set(topic.partitions)
    produced = set()
    batch = make_values("first", all_ids, 50)
    produce(topic, batch)
    produced.update(v for vs in batch.values() for v in vs)

    opts = dict(auto_commit_enable=True, auto_commit_interval_ms=1000,
                consumer_timeout_ms=300, **FAST)
    a = new_consumer(consumers_to_stop, topic, group, **opts)
    da = Drain(a)
    da.start()
    wait_for(lambda: len(da.got) >= 50, 30, "A to consume", [a])
    gen_before = a.generation_id

    b = new_consumer(consumers_to_stop, topic, group, **opts)
    db = Drain(b)
    db.start()
    wait_for(lambda: assignment_settled([a, b], all_ids), 30,
             "A and B to split", [a, b])
    assert a.generation_id > gen_before
    batch = make_values("second", all_ids, 50)
    produce(topic, batch)
    produced.update(v for vs in batch.values() for v in vs)
    wait_for(lambda: len(db.got) > 0, 30, "B to consume", [a, b])

    b.stop()
    db.finish()
    wait_for(lambda: set(a.partitions) == all_ids, 30,
             "A to own everything after B left", [a])
    batch = make_values("third", all_ids, 50)
    produce(topic, batch)
    produced.update(v for vs in batch.values() for v in vs)

    def complete():
        seen = {v for _, _, v in da.got + db.got}
        return produced <= seen
    wait_for(complete, 60, "every produced message to be consumed", [a])
    da.finish()
    values = [v for _, _, v in da.got + db.got]
    assert set(values) == produced
    # Offsets were committed at each revocation, so the next owner started
    # exactly where the previous one stopped.
    assert len(values) == len(produced), "duplicates: %d" % (
        len(values) - len(produced))


class Feed(threading.Thread):
    """Produce one message to every partition each ``every_s`` seconds
    until halted; ``sent`` holds every value delivered."""

    def __init__(self, topic, ids, every_s=0.02):
        super().__init__(daemon=True)
        self.topic, self.ids, self.every_s = topic, sorted(ids), every_s
        self.sent = set()
        self.halt = threading.Event()
        self.error = None

    def run(self):
        try:
            with self.topic.get_producer(
                    partitioner=_by_key, required_acks=-1, linger_ms=5,
                    min_queued_messages=1, delivery_reports=True) as p:
                n = 0
                while not self.halt.is_set():
                    for pid in self.ids:
                        p.produce(b"feed-p%d-%d" % (pid, n),
                                  partition_key=b"%d" % pid)
                    n += 1
                    self._reports(p)
                    time.sleep(self.every_s)
                p.flush()
                self._reports(p)
        except Exception as exc:  # reported by the test
            self.error = exc

    def _reports(self, producer):
        while True:
            try:
                msg, exc = producer.get_delivery_report(block=False)
            except Exception:
                return
            assert exc is None, exc
            self.sent.add(msg.value.decode())

    def finish(self):
        self.halt.set()
        self.join(60)
        assert not self.is_alive() and self.error is None, self.error


def _longest_gap(drain, partitions, start, end):
    """The longest time without a delivery from ``partitions`` between
    ``start`` and ``end`` (monotonic seconds)."""
    times = [start] + [t for t, (pid, _o, _v) in zip(drain.times, drain.got)
                       if pid in partitions and start <= t <= end] + [end]
    return max(b - a for a, b in zip(times, times[1:]))


def test_cooperative_join_revokes_only_what_moves(
        kafka, topic_name, client_factory, consumers_to_stop):
    """cooperative-sticky (KIP-429): while a third member joins, the two
    members already in the group go on consuming the partitions they keep
    (no gap longer than a heartbeat interval and a fetch or two), give up
    only the partitions the newcomer takes, and every message fed in
    meanwhile is consumed exactly once."""
    kafka.create_topic(topic_name, 6)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    all_ids = set(topic.partitions)
    changes = collections.defaultdict(list)

    def record(consumer, old, new):
        changes[consumer.consumer_id].append((set(old or {}), set(new)))

    opts = dict(membership_protocol=CooperativeStickyProtocol,
                post_rebalance_callback=record, consumer_timeout_ms=300,
                **FAST)
    a = new_consumer(consumers_to_stop, topic, group, **opts)
    b = new_consumer(consumers_to_stop, topic, group, **opts)
    wait_for(lambda: assignment_settled([a, b], all_ids), 30,
             "A and B to split 6 partitions", [a, b])
    before = {a.consumer_id: set(a.partitions), b.consumer_id:
              set(b.partitions)}
    changes.clear()
    feed = Feed(topic, all_ids)
    drains = [Drain(a), Drain(b)]
    for d in drains:
        d.start()
    feed.start()
    time.sleep(1.0)
    joined_at = time.monotonic()
    c = new_consumer(consumers_to_stop, topic, group, **opts)
    drains.append(Drain(c))
    drains[-1].start()
    sets = wait_for(lambda: assignment_settled([a, b, c], all_ids), 30,
                    "three members to split 6 partitions", [a, b, c])
    settled_at = time.monotonic()
    time.sleep(1.0)
    feed.finish()

    def complete():
        return feed.sent <= {v for d in drains for _, _, v in d.got}
    wait_for(complete, 60, "every fed message to be consumed", [a, b, c])
    for d in drains:
        d.finish()
    assert [len(x) for x in sets] == [2, 2, 2]
    taken = set(c.partitions)
    for member in (a, b):
        kept = set(member.partitions)
        assert kept <= before[member.consumer_id]
        for old, new in changes[member.consumer_id]:
            # a rebalance of A or B only ever takes partitions away, and
            # only those C ends up with
            assert new <= old and old - new <= taken, (old, new, taken)
        gap = _longest_gap(drains[(a, b).index(member)], kept, joined_at,
                           settled_at)
        assert gap < FAST["heartbeat_interval_ms"] / 1000.0 + 1.0, (
            "member %s stopped consuming its kept partitions %s for %.2f s "
            "while C joined" % (member.consumer_id, sorted(kept), gap))
    values = [v for d in drains for _, _, v in d.got]
    assert set(values) >= feed.sent
    assert len(values) == len(set(values)), "duplicates: %d" % (
        len(values) - len(set(values)))


def test_more_consumers_than_partitions(kafka, topic_name, client_factory,
                                        consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    produce(topic, make_values("m", [0, 1], 5))
    cs = [new_consumer(consumers_to_stop, topic, group,
                       consumer_timeout_ms=2000, **FAST) for _ in range(4)]

    def settled():
        sets = owned(cs)
        union = set().union(*sets)
        return (union == {0, 1} and sorted(len(s) for s in sets) == [0, 0, 1, 1]
                and len({c.generation_id for c in cs}) == 1 and sets)
    sets = wait_for(settled, 40, "2 partitions over 4 consumers", cs)
    idle = [c for c, s in zip(cs, sets) if not s]
    busy = [c for c, s in zip(cs, sets) if s]
    for c in busy:
        m = c.consume()
        assert m is not None and m.partition_id in c.partitions
    # An idle member waits without error and without burning CPU.
    result = {}

    def idle_consume():
        t0 = time.thread_time()
        w0 = time.monotonic()
        result["msg"] = idle[0].consume()
        result["cpu"] = time.thread_time() - t0
        result["wall"] = time.monotonic() - w0
    t = threading.Thread(target=idle_consume)
    t.start()
    t.join(10)
    assert result["msg"] is None
    assert 1.9 <= result["wall"] < 4.0
    assert result["cpu"] < 0.1, result
    assert idle[0].held_offsets == {}
    assert idle[0].commit_offsets() is None
    assert idle[0]._running and idle[0]._worker_exception is None
    # When a busy member leaves, an idle one takes its partition.
    gone = busy[0]
    gone.stop()
    rest = [c for c in cs if c is not gone]
    wait_for(lambda: set().union(*owned(rest)) == {0, 1}
             and sorted(len(s) for s in owned(rest)) == [0, 1, 1],
             40, "an idle consumer to take over", rest)


def test_partitions_added_to_the_topic_are_assigned(
        kafka, topic_name, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    cs = [new_consumer(consumers_to_stop, topic, group,
                       consumer_timeout_ms=5000, **FAST) for _ in range(2)]
    wait_for(lambda: assignment_settled(cs, {0, 1}), 30, "split", cs)
    for c in cs:  # look every second instead of every minute
        c._metadata_check_interval_s = 1.0
        c._next_metadata_check = 0
    run_kafka_tool("topics", ["--bootstrap-server", kafka.brokers, "--alter",
                              "--topic", topic_name, "--partitions", "4"],
                   kafka_version=kafka.kafka_version)
    sets = wait_for(lambda: assignment_settled(cs, set(range(4))), 60,
                    "the leader to rebalance over 4 partitions", cs)
    assert sorted(len(s) for s in sets) == [2, 2]
    produce(topic, {3: ["new-partition"]})
    owner = [c for c, s in zip(cs, sets) if 3 in s][0]
    m = owner.consume()
    assert (m.partition_id, m.value) == (3, b"new-partition")


def test_slow_application_keeps_its_partitions(kafka, topic_name,
                                               client_factory,
                                               consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    a = new_consumer(consumers_to_stop, topic, group,
                     heartbeat_interval_ms=300, session_timeout_ms=2000)
    b = new_consumer(consumers_to_stop, topic, group,
                     heartbeat_interval_ms=300, session_timeout_ms=2000)
    wait_for(lambda: assignment_settled([a, b], {0, 1}), 30, "split", [a, b])
    gen, pa, pb = a.generation_id, set(a.partitions), set(b.partitions)
    time.sleep(5)  # no consume() for 2.5 session timeouts
    assert (a.generation_id, b.generation_id) == (gen, gen)
    assert set(a.partitions) == pa and set(b.partitions) == pb


def test_member_that_stops_heartbeating_is_expired_and_rejoins(
        kafka, topic_name, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 4)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    opts = dict(heartbeat_interval_ms=300, session_timeout_ms=3000)
    a = new_consumer(consumers_to_stop, topic, group, **opts)
    b = new_consumer(consumers_to_stop, topic, group, **opts)
    wait_for(lambda: assignment_settled([a, b], set(range(4))), 30, "split",
             [a, b])
    old_member = a.consumer_id

    # Suspend A's heartbeat thread: its next heartbeat blocks.
    release = threading.Event()
    blocked = threading.Event()
    real = a._send_heartbeat

    def stuck_heartbeat():
        blocked.set()
        release.wait(60)
        return real()
    a._send_heartbeat = stuck_heartbeat
    try:
        assert blocked.wait(5)
        wait_for(lambda: set(b.partitions) == set(range(4)), 30,
                 "B to take A's partitions after A's session expired", [b])
    finally:
        release.set()
    # A learns it was expired (UNKNOWN_MEMBER_ID), rejoins with a new id.
    wait_for(lambda: assignment_settled([a, b], set(range(4))), 30,
             "A to rejoin", [a, b])
    assert a.consumer_id and a.consumer_id != old_member


def test_commit_refused_after_rebalance_triggers_rejoin(
        kafka, topic_name, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    produce(topic, make_values("x", [0, 1], 5))
    # A's heartbeats are skipped, so A never hears of the rebalance B's
    # arrival starts; its long session keeps it from being expired, but it
    # misses the rebalance (3 s) and is dropped from the group.
    opts = dict(heartbeat_interval_ms=300, session_timeout_ms=30000,
                rebalance_timeout_ms=3000, consumer_timeout_ms=3000)
    a = new_consumer(consumers_to_stop, topic, group, **opts)
    real = a._send_heartbeat
    a._send_heartbeat = lambda: 0.3
    old_member = a.consumer_id
    assert a.consume() is not None
    b = new_consumer(consumers_to_stop, topic, group, **opts)
    wait_for(lambda: set(b.partitions) == {0, 1}, 30,
             "B to own everything once A missed the rebalance", [b])
    assert set(a.partitions) == {0, 1}  # A does not know yet
    # The coordinator refuses A's commit; commit_offsets() does not raise
    # (as in pykafka) but makes A rejoin, with a fresh member id.
    reasons = []
    request_rejoin = a._request_rejoin

    def spy(why, reset_member=False):
        reasons.append(why)
        return request_rejoin(why, reset_member)
    a._request_rejoin = spy
    a.commit_offsets()
    assert [r for r in reasons if r.startswith("offset commit error")]
    wait_for(lambda: assignment_settled([a, b], {0, 1}), 30,
             "A to rejoin after its refused commit", [a, b])
    assert a.consumer_id != old_member
    a._send_heartbeat = real


def test_reset_offsets_through_the_balanced_consumer(
        kafka, topic_name, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 1)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    produce(topic, make_values("o", [0], 10))
    a = new_consumer(consumers_to_stop, topic, group, consumer_timeout_ms=3000,
                     **FAST)
    assert a.held_offsets == {0: -2}
    a.reset_offsets([(topic.partitions[0], 4)])
    assert a.held_offsets == {0: 4}
    m = a.consume()
    assert (m.offset, m.value) == (5, b"o-p0-5")
    a.reset_offsets([(topic.partitions[0], OffsetType.LATEST)])
    assert a.held_offsets == {0: 9}
    a.reset_offsets()  # auto_offset_reset: EARLIEST
    assert a.consume().offset == 0
    a.stop()
    # reset_offsets commits, as pykafka's did: the last reset (EARLIEST) is
    # where the group resumes.
    b = new_consumer(consumers_to_stop, topic, group, consumer_timeout_ms=3000,
                     **FAST)
    assert b.consume().offset == 0


def test_rebalance_commits_where_the_next_owner_starts(
        kafka, topic_name, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    produce(topic, make_values("c", [0, 1], 20))
    a = new_consumer(consumers_to_stop, topic, group, consumer_timeout_ms=5000,
                     **FAST)
    first = [a.consume() for _ in range(14)]
    assert None not in first
    a.commit_offsets()
    committed = dict(a.held_offsets)
    # Where each partition goes on: after its last consumed message, or at
    # 0 if none of the 14 came from it (the partitions' records arrive in
    # separate pieces, so all 14 may come from one of them).
    next_offset = {pid: 0 for pid in (0, 1)}
    for m in first:
        next_offset[m.partition_id] = max(next_offset[m.partition_id],
                                          m.offset + 1)
    assert sum(next_offset.values()) == 14
    for pid, n in next_offset.items():
        if n:
            assert committed[pid] == n - 1
    # Consumed after the commit (auto-commit is off): the rebalance commits
    # A's positions, as pykafka did, so B goes on after them.
    for _ in range(4):
        m = a.consume()
        assert m is not None
        next_offset[m.partition_id] = max(next_offset[m.partition_id],
                                          m.offset + 1)

    b = new_consumer(consumers_to_stop, topic, group, consumer_timeout_ms=5000,
                     **FAST)
    wait_for(lambda: assignment_settled([a, b], {0, 1}), 30, "split", [a, b])
    (pid,) = set(b.partitions)
    if next_offset[pid]:
        assert b.held_offsets[pid] == next_offset[pid] - 1
    m = b.consume()
    assert m.partition_id == pid and m.offset == next_offset[pid]


def test_auto_commit_commits_revoked_partitions(
        kafka, topic_name, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    produce(topic, make_values("r", [0, 1], 20))
    a = new_consumer(consumers_to_stop, topic, group,
                     auto_commit_enable=True, auto_commit_interval_ms=600000,
                     consumer_timeout_ms=5000, **FAST)
    first = [a.consume() for _ in range(15)]
    assert None not in first
    consumed = dict(a.held_offsets)
    next_offset = {pid: 0 for pid in (0, 1)}
    for m in first:
        next_offset[m.partition_id] = max(next_offset[m.partition_id],
                                          m.offset + 1)
    b = new_consumer(consumers_to_stop, topic, group,
                     auto_commit_enable=True, auto_commit_interval_ms=600000,
                     consumer_timeout_ms=5000, **FAST)
    wait_for(lambda: assignment_settled([a, b], {0, 1}), 30, "split", [a, b])
    (pid,) = set(b.partitions)
    if next_offset[pid]:
        assert consumed[pid] == next_offset[pid] - 1
        assert b.held_offsets[pid] == consumed[pid]
    m = b.consume()
    assert m.partition_id == pid and m.offset == next_offset[pid]


def test_rebalance_unblocks_consume_and_runs_callback(
        kafka, topic_name, client_factory, consumers_to_stop):
    kafka.create_topic(topic_name, 4)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    produce(topic, make_values("u", range(4), 80))
    calls = []

    def on_rebalance(consumer, old_offsets, new_offsets):
        calls.append((dict(old_offsets), dict(new_offsets)))
        return {pid: 50 for pid in new_offsets}

    a = new_consumer(consumers_to_stop, topic, group,
                     post_rebalance_callback=on_rebalance, **FAST)
    assert len(calls) == 1
    assert calls[0][0] == {} and set(calls[0][1]) == {0, 1, 2, 3}
    assert a.held_offsets == {0: 50, 1: 50, 2: 50, 3: 50}
    # Drain everything so that the next consume() blocks (timeout -1).
    for _ in range(4 * 29):
        assert a.consume() is not None
    woke = threading.Event()
    got = []

    def blocked_consume():
        got.append(a.consume())
        woke.set()
    t = threading.Thread(target=blocked_consume, daemon=True)
    t.start()
    time.sleep(1)
    assert not woke.is_set()
    b = new_consumer(consumers_to_stop, topic, group, **FAST)
    wait_for(lambda: assignment_settled([a, b], set(range(4))), 30, "split",
             [a, b])
    assert len(calls) == 2
    old, new = calls[1]
    assert old == {pid: 79 for pid in range(4)}
    assert set(new) == set(a.partitions)
    # The blocked consume() went on across the rebalance and returns a
    # message of the new assignment (offset 51, after the callback's reset).
    assert woke.wait(15)
    m = got[0]
    assert m is not None and m.partition_id in a.partitions
    assert m.offset == 51
    assert a.held_offsets == {pid: 51 if pid == m.partition_id else 50
                              for pid in a.partitions}


def test_callback_errors_surface(kafka, topic_name, client_factory,
                                 consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]

    def bad(consumer, old, new):
        raise ValueError("BAD CALLBACK")
    a = new_consumer(consumers_to_stop, topic, group_name(),
                     post_rebalance_callback=bad, **FAST)
    with pytest.raises(ValueError, match="BAD CALLBACK"):
        a.consume()


def test_no_partitions_assigned(kafka, topic_name, client_factory,
                                consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]

    def decide_none(participants, partitions, consumer_id):
        return set()
    c = new_consumer(consumers_to_stop, topic, group_name(), auto_start=False,
                     consumer_timeout_ms=50, **FAST)
    c._membership_protocol = GroupMembershipProtocol(
        c._membership_protocol.protocol_type,
        c._membership_protocol.protocol_name,
        c._membership_protocol.metadata, decide_none)
    c.start()
    assert c.consume() is None
    assert c._running and c.partitions == {}
    c.stop()
    with pytest.raises(ConsumerStoppedException):
        c.consume()


def test_reset_offset_on_start_latest(kafka, topic_name, client_factory,
                                      consumers_to_stop):
    kafka.create_topic(topic_name, 1)
    topic = client_factory(kafka).topics[topic_name]
    produce(topic, make_values("old", [0], 10))
    c = new_consumer(consumers_to_stop, topic, group_name(),
                     reset_offset_on_start=True,
                     auto_offset_reset=OffsetType.LATEST,
                     consumer_timeout_ms=3000, **FAST)
    assert c.held_offsets == {0: 9}
    produce(topic, make_values("new", [0], 3))
    values = [c.consume().value for _ in range(3)]
    assert values == [b"new-p0-0", b"new-p0-1", b"new-p0-2"]


def test_stop_commits_and_leaves_the_group(kafka, topic_name, client_factory,
                                           consumers_to_stop):
    kafka.create_topic(topic_name, 2)
    client = client_factory(kafka)
    topic = client.topics[topic_name]
    group = group_name()
    produce(topic, make_values("s", [0, 1], 10))
    a = new_consumer(consumers_to_stop, topic, group, auto_commit_enable=True,
                     auto_commit_interval_ms=600000, consumer_timeout_ms=3000,
                     **FAST)
    b = new_consumer(consumers_to_stop, topic, group, consumer_timeout_ms=3000,
                     **FAST)
    wait_for(lambda: assignment_settled([a, b], {0, 1}), 30, "split", [a, b])
    for _ in range(5):
        assert a.consume() is not None
    held = dict(a.held_offsets)
    gen = b.generation_id
    a.stop()
    # LeaveGroup makes the coordinator rebalance at once, well before the
    # 6 s session timeout would have.
    t0 = time.monotonic()
    wait_for(lambda: set(b.partitions) == {0, 1} and b.generation_id > gen,
             10, "B to take over after A left", [b])
    assert time.monotonic() - t0 < 5
    desc = client.cluster.get_managed_group_descriptions()[group]
    assert [m["member_id"] for m in desc["members"]] == \
        [b.consumer_id.decode()]
    (pid,) = held
    assert b.held_offsets[pid] == held[pid]
    with pytest.raises(ConsumerStoppedException):
        a.consume()


# =============================================================================
# Many members, other clients, broker failures
# =============================================================================

def test_ten_consumers_started_at_once_settle(kafka, topic_name,
                                              client_factory,
                                              consumers_to_stop):
    kafka.create_topic(topic_name, 10)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    made = [None] * 10
    errors = []

    def start(i):
        try:
            made[i] = topic.get_balanced_consumer(
                group, managed=True, **FAST)
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=start, args=(i,)) for i in range(10)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    consumers_to_stop.extend(c for c in made if c is not None)
    assert not errors and all(c is not None for c in made)
    sets = wait_for(lambda: assignment_settled(made, set(range(10))), 90,
                    "ten consumers to settle", made)
    assert all(len(s) == 1 for s in sets)
    settle_s = time.monotonic() - t0
    gen = made[0].generation_id
    time.sleep(3)  # stable: no further rebalances
    assert {c.generation_id for c in made} == {gen}
    assert owned(made) == sets
    assert settle_s < 90


def _java_group_config(protocol_name):
    """The console consumer's group settings: a classic member with the
    assignor named ``protocol_name``, or with None a KIP-848 member."""
    if protocol_name is None:
        return "group.protocol=consumer\nenable.auto.commit=false\n"
    assignor = {"range": "RangeAssignor",
                "roundrobin": "RoundRobinAssignor",
                "cooperative-sticky": "CooperativeStickyAssignor"
                }[protocol_name]
    return ("partition.assignment.strategy=org.apache.kafka.clients."
            "consumer.%s\n"
            "session.timeout.ms=6000\n"
            "heartbeat.interval.ms=500\n"
            "enable.auto.commit=false\n" % assignor)


def _foreign_consumer(kind, kafka, topic, group, protocol_name, tmp_path):
    """Another client's consumer in ``group``: Kafka's console consumer
    (``java``) or kcat's librdkafka KafkaConsumer (``librdkafka``), both
    printing "Partition:<id>\t<value>" lines.  Returns (process, lines)
    where ``lines`` fills with its stdout in the background.  A Java
    consumer with ``protocol_name`` None uses KIP-848's consumer group
    protocol (the coordinator assigns and sets the timings)."""
    stem = tmp_path / ("%s-%s" % (kind, uuid.uuid4().hex[:6]))
    if kind == "java":
        config = str(stem) + ".properties"
        with open(config, "w") as f:
            f.write(_java_group_config(protocol_name))
        cmd = kafka_tool_command(
            "console-consumer",
            ["--bootstrap-server", kafka.brokers, "--topic", topic,
             "--group", group, "--from-beginning",
             "--property", "print.partition=true",
             "--consumer.config", config],
            kafka_version=kafka.kafka_version)
    else:
        cmd = [_kcat(), "-b", kafka.brokers, "-G", group, topic,
               "-X", "partition.assignment.strategy=%s" % protocol_name,
               "-X", "session.timeout.ms=6000",
               "-X", "heartbeat.interval.ms=500",
               "-X", "enable.auto.commit=false",
               "-X", "auto.offset.reset=earliest",
               "-f", "Partition:%p\t%s\n", "-u"]
    with open(str(stem) + ".stderr", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                text=True)
    lines = []

    def reader():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
    proc.reader = threading.Thread(target=reader, daemon=True)
    proc.reader.start()
    return proc, lines


def _printed_messages(lines):
    """(partition, value) of the message lines the foreign consumer printed
    (other lines, e.g. deprecation notes, are not messages)."""
    out = []
    for line in list(lines):
        found = re.match(r"Partition:(\d+)\t(.*)$", line)
        if found:
            out.append((int(found.group(1)), found.group(2)))
    return out


def _described_assignment(client, group):
    """``{member_id: MemberAssignment}`` of a Stable group, else None."""
    desc = client.cluster.get_managed_group_descriptions().get(group)
    if desc is None or desc["group_state"] != "Stable":
        return None
    return {m["member_id"]: MemberAssignment.from_bytestring(
        m["member_assignment"]) for m in desc["members"]}


@pytest.mark.parametrize("leader", ["pykafka_c", "foreign"])
@pytest.mark.parametrize(
    "protocol", PROTOCOLS + [CooperativeStickyProtocol],
    ids=PROTOCOL_IDS + ["cooperative-sticky"])
@pytest.mark.parametrize("foreign", ["java", "librdkafka"])
def test_group_shared_with_another_client(
        kafka, topic_name, client_factory, consumers_to_stop, foreign,
        protocol, leader, tmp_path):
    """A pykafka_c consumer and Kafka's console consumer (or kcat's
    librdkafka consumer) with the same assignor split a topic, whichever of
    them the coordinator makes leader."""
    kafka.create_topic(topic_name, 6)
    client = client_factory(kafka)
    topic = client.topics[topic_name]
    group = group_name()
    name = protocol.protocol_name.decode()
    other = lines = mine = None
    try:
        if leader == "foreign":
            other, lines = _foreign_consumer(foreign, kafka, topic_name, group,
                                             name, tmp_path)
            wait_for(lambda: _described_assignment(client, group), 60,
                     "the %s consumer to form the group" % foreign)
        mine = new_consumer(consumers_to_stop, topic, group,
                            membership_protocol=protocol,
                            consumer_timeout_ms=3000, **FAST)
        if leader == "pykafka_c":
            assert mine._is_leader
            other, lines = _foreign_consumer(foreign, kafka, topic_name, group,
                                             name, tmp_path)

        def split():
            desc = _described_assignment(client, group)
            if not desc or len(desc) != 2:
                return None
            parts = {mid: set(a.partitions_for(topic_name))
                     for mid, a in desc.items()}
            if set().union(*parts.values()) != set(range(6)):
                return None
            if set(mine.partitions) != parts.get(mine.consumer_id.decode()):
                return None
            return parts
        parts = wait_for(split, 60, "pykafka_c and %s to split the "
                         "partitions" % foreign, [mine])
        assert mine._is_leader == (leader == "pykafka_c")
        other_parts = [p for mid, p in parts.items()
                       if mid != mine.consumer_id.decode()][0]
        mine_parts = set(mine.partitions)
        assert not (other_parts & mine_parts)
        assert len(other_parts) == len(mine_parts) == 3
        # Both sides consume exactly their own partitions.
        produce(topic, make_values("j", range(6), 10))
        got = [mine.consume() for _ in range(30)]
        assert all(m is not None for m in got)
        assert {m.partition_id for m in got} == mine_parts
        assert mine.consume(block=False) is None
        wait_for(lambda: len(_printed_messages(lines)) >= 30, 60,
                 "the %s consumer to print its 30 messages" % foreign)
        other_got = _printed_messages(lines)
        assert len(other_got) == 30
        assert {pid for pid, _ in other_got} == other_parts
        assert {v for _, v in other_got} == {
            "j-p%d-%d" % (pid, i) for pid in other_parts for i in range(10)}
    finally:
        if other is not None:
            other.terminate()
            try:
                other.wait(20)
            except subprocess.TimeoutExpired:
                other.kill()
                other.wait()
            other.reader.join(10)
            other.stdout.close()


def test_group_recovers_when_the_coordinator_dies(
        kafka_cluster3, topic_name, client_factory, consumers_to_stop):
    kafka = kafka_cluster3
    kafka.create_topic(topic_name, 4, replication_factor=3)
    client = client_factory(kafka)
    topic = client.topics[topic_name]
    group = group_name()
    produced = set()
    batch = make_values("before", range(4), 20)
    produce(topic, batch)
    produced.update(v for vs in batch.values() for v in vs)
    opts = dict(auto_commit_enable=True, auto_commit_interval_ms=500,
                consumer_timeout_ms=300, **FAST)
    a = new_consumer(consumers_to_stop, topic, group, **opts)
    b = new_consumer(consumers_to_stop, topic, group, **opts)
    wait_for(lambda: assignment_settled([a, b], set(range(4))), 30, "split",
             [a, b])
    da, db = Drain(a), Drain(b)
    da.start()
    db.start()
    wait_for(lambda: len(da.got) + len(db.got) >= 80, 30,
             "the first batch", [a, b])
    coordinator = a._group_coordinator.id
    assert b._group_coordinator.id == coordinator
    gen = a.generation_id
    kafka.stop_broker(coordinator)
    try:
        batch = make_values("after", range(4), 20)
        # Retry long enough for the dead broker's partitions to get new
        # leaders (the harness's brokers time out after 5 s).
        produce(topic, batch, max_retries=60, retry_backoff_ms=500)
        produced.update(v for vs in batch.values() for v in vs)
        # Force a rebalance under the new coordinator: a third member joins.
        c = new_consumer(consumers_to_stop, topic, group, **opts)
        dc = Drain(c)
        dc.start()

        def recovered():
            seen = {v for _, _, v in da.got + db.got + dc.got}
            return (produced <= seen
                    and assignment_settled([a, b, c], set(range(4)))
                    and a._group_coordinator is not None
                    and a._group_coordinator.id != coordinator)
        wait_for(recovered, 120, "the group to recover under a new "
                 "coordinator", [a, b, c])
        assert a.generation_id > gen
        for d in (da, db, dc):
            d.finish()
        seen = [v for _, _, v in da.got + db.got + dc.got]
        assert set(seen) == produced
    finally:
        kafka.start_broker(coordinator)
        kafka.wait_in_sync([topic_name])


# =============================================================================
# Static membership (KIP-345): group_instance_id
# =============================================================================

def _static_member(made, topic, group, instance_id, rebalances,
                   session_timeout_ms):
    """A static member that counts its partition changes (the callback
    runs when the assignment changed) in ``rebalances[instance_id]``."""
    def on_rebalance(consumer, old_offsets, new_offsets):
        rebalances[instance_id] += 1
    return new_consumer(made, topic, group, group_instance_id=instance_id,
                        post_rebalance_callback=on_rebalance,
                        heartbeat_interval_ms=500,
                        session_timeout_ms=session_timeout_ms)


def _three_static_members_one_stopped(kafka, topic_name, client, made,
                                      session_timeout_ms):
    """Static members static-a, -b, -c split a 6-partition topic, then
    static-c stops.  Returns the group's state (topic, group, rebalances,
    members, their partition sets, generation and rebalance counts before
    the stop) and a ``restart()`` that starts static-c again."""
    kafka.create_topic(topic_name, 6)
    g = types.SimpleNamespace(topic=client.topics[topic_name],
                              group=group_name(),
                              rebalances=collections.Counter())
    g.members = [_static_member(made, g.topic, g.group, "static-%s" % name,
                                g.rebalances, session_timeout_ms)
                 for name in "abc"]
    g.sets = wait_for(lambda: assignment_settled(g.members, set(range(6))),
                      30, "three static members to split 6 partitions",
                      g.members)
    assert [len(s) for s in g.sets] == [2, 2, 2]
    g.generation = g.members[0].generation_id
    g.before = dict(g.rebalances)
    g.members[2].stop()
    g.restart = lambda: _static_member(made, g.topic, g.group, "static-c",
                                       g.rebalances, session_timeout_ms)
    return g


def _described_instances(client, group):
    desc = client.cluster.get_managed_group_descriptions()[group]
    return sorted(m["group_instance_id"] for m in desc["members"])


def test_static_member_restarted_within_session_timeout_no_rebalance(
        kafka, topic_name, client_factory, consumers_to_stop):
    client = client_factory(kafka)
    g = _three_static_members_one_stopped(kafka, topic_name, client,
                                          consumers_to_stop, 15000)
    a, b, _ = g.members
    # No LeaveGroup: the coordinator keeps the member for its session.
    assert _described_instances(client, g.group) == \
        ["static-a", "static-b", "static-c"]
    time.sleep(1.5)  # three heartbeats of the others
    c2 = g.restart()
    assert set(c2.partitions) == g.sets[2]
    assert c2.generation_id == g.generation
    time.sleep(1.5)  # a rebalance would reach the others by now
    for x in (a, b):
        x._raise_worker_exceptions()
        assert x.generation_id == g.generation
    assert [set(a.partitions), set(b.partitions)] == g.sets[:2]
    for name in ("static-a", "static-b"):
        assert g.rebalances[name] == g.before[name]
    assert g.rebalances["static-c"] == g.before["static-c"] + 1  # c2's start


def test_static_member_restarted_after_session_timeout(
        kafka, topic_name, client_factory, consumers_to_stop):
    g = _three_static_members_one_stopped(kafka, topic_name,
                                          client_factory(kafka),
                                          consumers_to_stop, 6000)
    a, b, _ = g.members
    t0 = time.monotonic()
    # The coordinator expires the member after the session timeout (not
    # at stop(): no LeaveGroup), in one rebalance.
    wait_for(lambda: assignment_settled([a, b], set(range(6))), 30,
             "A and B to take over C's partitions", [a, b])
    assert time.monotonic() - t0 > 4.5
    assert a.generation_id == g.generation + 1
    for name in ("static-a", "static-b"):
        assert g.rebalances[name] == g.before[name] + 1
    # Restarted now, it is a new member: one more rebalance.
    c2 = g.restart()
    wait_for(lambda: assignment_settled([a, b, c2], set(range(6))), 30,
             "the restarted member to get its share", [a, b, c2])
    assert c2.generation_id == g.generation + 2
    for name in ("static-a", "static-b"):
        assert g.rebalances[name] == g.before[name] + 2


@pytest.mark.parametrize("noticed_by", ["heartbeat", "commit"])
def test_duplicate_instance_id_fences_the_older_member(
        kafka, topic_name, client_factory, consumers_to_stop, noticed_by):
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    opts = dict(group_instance_id="static-dup", session_timeout_ms=10000)
    # "commit": the older member's heartbeats are too rare to notice first
    old = new_consumer(consumers_to_stop, topic, group,
                       heartbeat_interval_ms=(500 if noticed_by == "heartbeat"
                                              else 5000), **opts)
    assert set(old.partitions) == {0, 1}
    new = new_consumer(consumers_to_stop, topic, group,
                       heartbeat_interval_ms=500, **opts)
    assert set(new.partitions) == {0, 1}
    if noticed_by == "commit":
        with pytest.raises(FencedInstanceId, match="OffsetCommit"):
            old.commit_offsets()

    def fenced():
        try:
            old.consume(block=False)
        except FencedInstanceId as exc:
            return exc
    exc = wait_for(fenced, 10, "the older member to be fenced")
    assert "static-dup" in str(exc) and "FENCED_INSTANCE_ID" in str(exc)
    assert not old._running and not old._consumer._running
    with pytest.raises(FencedInstanceId):
        old.commit_offsets()
    # The newer member keeps the membership (it is not fenced in turn).
    time.sleep(1.5)
    new._raise_worker_exceptions()
    assert new._running and set(new.partitions) == {0, 1}


def test_static_member_stopped_during_a_rebalance_leaves(
        kafka, topic_name, client_factory, consumers_to_stop):
    # The one case where a static member sends LeaveGroup: its JoinGroup
    # waits for a member that does not rejoin, and only leaving ends it.
    kafka.create_topic(topic_name, 2)
    topic = client_factory(kafka).topics[topic_name]
    group = group_name()
    opts = dict(heartbeat_interval_ms=300, session_timeout_ms=30000,
                rebalance_timeout_ms=30000)
    a = new_consumer(consumers_to_stop, topic, group,
                     group_instance_id="static-a", **opts)
    b = new_consumer(consumers_to_stop, topic, group,
                     group_instance_id="static-b", **opts)
    wait_for(lambda: assignment_settled([a, b], {0, 1}), 30, "split", [a, b])
    b._send_heartbeat = lambda: 0.3  # B never hears of the next rebalance
    left = []
    coordinator = a._ensure_coordinator()
    real_leave = coordinator.leave_group

    def leave_group(*args, **kwargs):
        resp = real_leave(*args, **kwargs)
        left.append((kwargs.get("group_instance_id"), resp.error_code))
        return resp
    coordinator.leave_group = leave_group
    try:
        c = new_consumer(consumers_to_stop, topic, group, auto_start=False,
                         **opts)
        threading.Thread(target=c.start, daemon=True).start()
        wait_for(lambda: a._rebalancing_in_progress.is_set(), 10,
                 "A to rejoin (its JoinGroup waits for B)")
        time.sleep(0.5)  # A's JoinGroup is at the coordinator
        t0 = time.monotonic()
        a.stop()
        assert time.monotonic() - t0 < 10
        assert left == [("static-a", 0)]
    finally:
        del coordinator.leave_group
