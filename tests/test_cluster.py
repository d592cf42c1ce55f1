"""KafkaClient, Cluster, TopicDict, Topic, Partition and Broker against a
real broker (both Kafka versions through the ``kafka`` fixture)."""

import socket
import time

import pytest

from pykafka_c import KafkaClient
from pykafka_c.broker import ApiKey, SUPPORTED_VERSIONS, negotiate
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import (NoBrokersAvailableError,
                                  UnknownTopicOrPartition, UnicodeException,
                                  UnsupportedApiVersionError)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(kafka):
    c = KafkaClient(hosts=kafka.brokers)
    yield c
    c.close()


def test_client_sees_the_broker_and_negotiates(client, kafka):
    assert len(client.brokers) == 1
    broker = next(iter(client.brokers.values()))
    ranges = broker.fetch_api_versions().api_versions
    # Every API the client uses is advertised and a version was chosen
    # inside both ranges, never below the broker's minimum.
    for api in (ApiKey.METADATA, ApiKey.LIST_OFFSETS, ApiKey.PRODUCE,
                ApiKey.FETCH, ApiKey.OFFSET_COMMIT, ApiKey.OFFSET_FETCH,
                ApiKey.FIND_COORDINATOR, ApiKey.JOIN_GROUP):
        key, lo, hi = ranges[api]
        assert key == api
        v = broker.api_version(api)
        ours = SUPPORTED_VERSIONS[api]
        assert max(lo, ours[0]) <= v <= min(hi, ours[1]), (api, v, lo, hi)
        print("api %d: broker v%d-v%d, negotiated v%d" % (api, lo, hi, v))


@pytest.mark.unit
def test_negotiation_respects_the_broker_minimum():
    # A broker whose minimum is above what pykafka_c speaks: clear error.
    with pytest.raises(UnsupportedApiVersionError) as info:
        negotiate(ApiKey.FETCH, (40, 50))
    assert "Fetch" in str(info.value) and "v40-v50" in str(info.value)
    with pytest.raises(UnsupportedApiVersionError):
        negotiate(ApiKey.FETCH, None)
    assert negotiate(ApiKey.FETCH, (4, 17)) == SUPPORTED_VERSIONS[
        ApiKey.FETCH][1]
    assert negotiate(ApiKey.PRODUCE, (0, 3)) == 3


def test_topic_lookup_str_and_bytes(client, kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=3)
    client.update_cluster()
    t1 = client.topics[topic_name]
    t2 = client.topics[topic_name.encode("ascii")]
    assert t1 is t2
    assert t1.name == topic_name.encode("ascii")
    assert sorted(t1.partitions) == [0, 1, 2]
    assert topic_name in client.topics
    assert topic_name.encode() in client.topics
    for p in t1.partitions.values():
        assert p.leader is not None and p.leader.id in client.brokers
        assert [b.id for b in p.replicas] == [p.leader.id]
        assert [b.id for b in p.isr] == [p.leader.id]
        assert p.topic is t1


def test_non_ascii_topic_name(client):
    with pytest.raises(UnicodeException):
        client.topics["t\u00e9st"]
    assert "t\u00e9st" not in client.topics


def test_topic_autocreate(client, topic_name):
    # The harness brokers allow auto-creation, like pykafka's tests assume.
    topic = client.topics[topic_name]
    assert topic.name == topic_name.encode()
    assert len(topic.partitions) >= 1
    assert all(p.leader is not None for p in topic.partitions.values())


def test_exclude_internal_topics(kafka):
    # __consumer_offsets exists once a group committed; create it by
    # asking for a coordinator.
    c = KafkaClient(hosts=kafka.brokers)
    try:
        c.cluster.get_group_coordinator(b"pkc-internal-topics")
        deadline = time.monotonic() + 30
        visible = KafkaClient(hosts=kafka.brokers,
                              exclude_internal_topics=False)
        try:
            while b"__consumer_offsets" not in visible.topics:
                assert time.monotonic() < deadline
                time.sleep(0.5)
                visible.update_cluster()
            assert visible.topics[b"__consumer_offsets"].partitions
        finally:
            visible.close()
        c.update_cluster()
        assert b"__consumer_offsets" not in c.topics
        with pytest.raises(KeyError):
            c.topics[b"__consumer_offsets"]
    finally:
        c.close()


def test_topic_updates(client, kafka, topic_name):
    assert topic_name.encode() not in dict.keys(client.topics)
    kafka.create_topic(topic_name, num_partitions=2)
    client.update_cluster()
    assert topic_name in client.topics
    topic = client.topics[topic_name]
    kafka.delete_topic(topic_name)
    deadline = time.monotonic() + 30
    while topic_name in client.topics:
        assert time.monotonic() < deadline
        time.sleep(0.3)
        client.update_cluster()
    assert topic.name == topic_name.encode()


def test_offsets_of_an_empty_topic(client, kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=2)
    client.update_cluster()
    topic = client.topics[topic_name]
    earliest = topic.earliest_available_offsets()
    latest = topic.latest_available_offsets()
    assert set(earliest) == {0, 1} and set(latest) == {0, 1}
    for pid in (0, 1):
        assert earliest[pid].err == 0 and earliest[pid].offset == [0]
        assert latest[pid].err == 0 and latest[pid].offset == [0]
        p = topic.partitions[pid]
        assert p.earliest_available_offset() == 0
        assert p.latest_available_offset() == 0
        assert p.fetch_offset_limit(OffsetType.LATEST) == [0]
        # No message at or after "now": an empty list.
        assert p.fetch_offset_limit(int(time.time() * 1000)) == []


def test_unknown_topic_without_autocreate(kafka):
    # Asking a broker for a topic with an illegal name fails with the
    # broker's error class, never a KeyError.
    from pykafka_c.exceptions import InvalidTopic
    c = KafkaClient(hosts=kafka.brokers)
    try:
        with pytest.raises((InvalidTopic, UnknownTopicOrPartition)):
            c.topics["bad name with spaces"]
    finally:
        c.close()


def _dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.unit
def test_no_brokers_available():
    port = _dead_port()
    t0 = time.monotonic()
    with pytest.raises(NoBrokersAvailableError) as info:
        KafkaClient(hosts="127.0.0.1:%d" % port, socket_timeout_ms=2000)
    assert str(port) in str(info.value)
    assert time.monotonic() - t0 < 30


@pytest.mark.unit
def test_ssl_config_must_be_an_sslconfig():
    """pykafka only called ssl_config.wrap_socket(); pykafka_c's TLS runs in
    C and says so for another object (an ssl.SSLContext, say)."""
    import ssl
    with pytest.raises(TypeError, match="SslConfig"):
        KafkaClient(hosts="127.0.0.1:%d" % _dead_port(),
                    ssl_config=ssl.create_default_context())


def test_zookeeper_hosts_warns_and_is_ignored(kafka):
    with pytest.warns(UserWarning, match="ZooKeeper"):
        c = KafkaClient(hosts=kafka.brokers, zookeeper_hosts="127.0.0.1:2181")
    try:
        assert len(c.brokers) == 1
    finally:
        c.close()


def test_metadata_from_any_live_broker(kafka):
    # After the first update, metadata comes from the cluster's brokers,
    # not only the seed list: a client whose seed list also names a dead
    # host keeps working.
    dead = "127.0.0.1:%d" % _dead_port()
    c = KafkaClient(hosts="%s,%s" % (dead, kafka.brokers))
    try:
        c.update_cluster()
        assert len(c.brokers) == 1
        assert next(iter(c.brokers.values())).connected
    finally:
        c.close()


def test_requests_after_a_broker_restart(kafka, topic_name):
    """A client whose connections went stale when the broker restarted
    (the broker closed them while the client was idle): its next metadata
    refresh, offset query and consumer work at the first try.  Read-only
    requests are sent again once on a new connection; before, every
    candidate broker failed with "connection closed by the broker" and
    the client raised NoBrokersAvailableError."""
    kafka.create_topic(topic_name, num_partitions=2)
    c = KafkaClient(hosts=kafka.brokers)
    try:
        topic = c.topics[topic_name]
        with topic.get_sync_producer() as producer:
            producer.produce(b"before the restart")
        assert sum(o[0][0] for o in
                   topic.latest_available_offsets().values()) == 1
        kafka.stop_broker(0)
        kafka.start_broker(0)
        c.update_cluster()
        assert sum(o[0][0] for o in
                   topic.latest_available_offsets().values()) == 1
        consumer = topic.get_simple_consumer(
            auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=10000)
        try:
            message = consumer.consume()
        finally:
            consumer.stop()
        assert message is not None and message.value == b"before the restart"
    finally:
        c.close()


def test_cluster3_partitions_have_replicas(kafka_cluster3, topic_name):
    kafka_cluster3.create_topic(topic_name, num_partitions=3,
                                replication_factor=3)
    c = KafkaClient(hosts=kafka_cluster3.brokers)
    try:
        assert len(c.brokers) == 3
        topic = c.topics[topic_name]
        for p in topic.partitions.values():
            assert len(p.replicas) == 3
            assert p.leader in p.replicas
            assert len(p.isr) >= 2
        assert c.cluster.controller_broker is None or \
            c.cluster.controller_broker.id in c.brokers
    finally:
        c.close()


def test_request_metadata_at_every_version_the_broker_accepts(client, kafka,
                                                              topic_name):
    # AllowAutoTopicCreation exists from Metadata v4 and "all topics" is an
    # empty list at v0 but null later: request_metadata() must build a
    # valid request at whatever version negotiation picked.
    kafka.create_topic(topic_name, num_partitions=2)
    broker = next(iter(client.brokers.values()))
    _, lo, hi = broker.fetch_api_versions().api_versions[ApiKey.METADATA]
    ours = SUPPORTED_VERSIONS[ApiKey.METADATA]
    tried = []
    for v in range(max(lo, ours[0]), min(hi, ours[1]) + 1):
        ch = broker._channel("main")
        ch.versions[ApiKey.METADATA] = v
        for allow in (False, True):
            one = broker.request_metadata([topic_name],
                                          allow_auto_topic_creation=allow)
            assert [t["name"] for t in one["topics"]] == [topic_name], v
            assert len(one["topics"][0]["partitions"]) == 2
        every = broker.request_metadata()
        assert topic_name in [t["name"] for t in every["topics"]], v
        tried.append(v)
    ch.versions.pop(ApiKey.METADATA)
    assert tried and tried[-1] >= 4
