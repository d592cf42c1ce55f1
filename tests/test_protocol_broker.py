"""Broker helpers return pykafka's protocol objects, against a real broker
(both Kafka versions through the ``kafka`` fixture): metadata, produce with
a ProduceRequest, fetch_messages, offsets, group listing and description,
topic creation and deletion."""

import time
import uuid

import pytest

from pykafka_c import KafkaClient, protocol
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import TopicAlreadyExists, UnknownTopicOrPartition
from pykafka_c.membershipprotocol import MemberAssignment
from pykafka_c.protocol import (Message, PartitionFetchRequest,
                                PartitionOffsetCommitRequest,
                                PartitionOffsetFetchRequest,
                                PartitionOffsetRequest, ProduceRequest)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(kafka):
    c = KafkaClient(hosts=kafka.brokers)
    yield c
    c.close()


def the_broker(client):
    assert len(client.brokers) == 1
    return next(iter(client.brokers.values()))


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.2)


def test_request_metadata_attributes(client, kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=2)
    broker = the_broker(client)
    name = topic_name.encode()
    resp = broker.request_metadata([topic_name])
    assert type(resp) is protocol.MetadataResponseV5
    assert resp.brokers[broker.id] == protocol.BrokerMetadataV1(
        broker.id, broker.host.encode(), broker.port, None)
    assert resp.controller_id is not None
    assert isinstance(resp.cluster_id, bytes) and resp.cluster_id
    meta = resp.topics[name]
    assert (meta.name, meta.err, meta.is_internal) == (name, 0, False)
    assert sorted(meta.partitions) == [0, 1]
    for pid, part in meta.partitions.items():
        assert part == protocol.PartitionMetadataV5(
            pid, broker.id, [broker.id], [broker.id], [], 0)
    # the dict is still the decoded response
    assert resp["topics"][0]["name"] == topic_name
    every = broker.request_metadata()
    assert name in every.topics
    # pykafka's Broker.from_metadata takes a BrokerMetadata
    from pykafka_c.broker import Broker
    b2 = Broker.from_metadata(resp.brokers[broker.id])
    try:
        assert (b2.id, b2.host, b2.port) == (broker.id, broker.host,
                                             broker.port)
        assert b2.connected
    finally:
        b2.disconnect()


def test_fetch_api_versions_and_coordinator(client):
    broker = the_broker(client)
    resp = broker.fetch_api_versions()
    assert isinstance(resp, protocol.ApiVersionsResponse)
    spec = resp.api_versions[3]
    assert spec.key == 3 and spec.min <= broker.api_version(3) <= spec.max
    group = "pkc-g-%s" % uuid.uuid4().hex[:6]

    def found():
        r = broker.find_coordinator(group)
        assert isinstance(r, protocol.GroupCoordinatorResponse)
        # a fresh cluster answers COORDINATOR_NOT_AVAILABLE for a while,
        # without raising (Cluster retries on error_code)
        assert r.error_code in (0, 15)
        return r if r.error_code == 0 else None
    coord = wait_for(found, 60, "a group coordinator")
    assert (coord.coordinator_id, coord.coordinator_host,
            coord.coordinator_port) == (broker.id, broker.host.encode(),
                                        broker.port)


def test_produce_messages_then_fetch_and_consume(client, kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=2)
    broker = the_broker(client)
    name = topic_name.encode()
    req = ProduceRequest(compression_type=1, required_acks=-1,
                         timeout=10000)
    for i in range(5):
        req.add_message(Message(b"p0-%d" % i, partition_key=b"k%d" % i,
                                protocol_version=1, timestamp=1000 + i),
                        name, 0)
    for i in range(3):
        req.add_message(Message(b"p1-%d" % i), name, 1)
    assert req.message_count() == 8
    resp = broker.produce_messages(req)
    assert isinstance(resp, protocol.ProduceResponse)
    assert resp.topics == {name: {
        0: protocol.ProducePartitionResponse(0, 0),
        1: protocol.ProducePartitionResponse(0, 0)}}

    fetched = broker.fetch_messages(
        [PartitionFetchRequest(name, 0, 0), PartitionFetchRequest(name, 1, 1)],
        timeout=1000, min_bytes=1)
    assert isinstance(fetched, protocol.FetchResponse)
    p0, p1 = fetched.topics[name][0], fetched.topics[name][1]
    assert (p0.max_offset, p0.err, p1.max_offset, p1.err) == (5, 0, 3, 0)
    assert [(m.offset, m.value, m.partition_key, m.timestamp)
            for m in p0.messages] == \
        [(i, b"p0-%d" % i, b"k%d" % i, 1000 + i) for i in range(5)]
    # from the requested offset on, though the batch starts at 0
    assert [(m.offset, m.value) for m in p1.messages] == \
        [(1, b"p1-1"), (2, b"p1-2")]
    assert all(m.partition_id == 1 for m in p1.messages)

    # acks=0: no response, and the messages still arrive
    req0 = ProduceRequest(required_acks=0)
    req0.add_message(Message(b"fire-and-forget"), name, 1)
    assert broker.produce_messages(req0) is None
    later = wait_for(
        lambda: broker.fetch_messages([PartitionFetchRequest(name, 1, 3)],
                                      timeout=200).topics[name][1].messages,
        30, "the acks=0 message")
    assert [(m.offset, m.value) for m in later] == [(3, b"fire-and-forget")]

    # and a consumer reads them back
    topic = client.topics[topic_name]
    consumer = topic.get_simple_consumer(
        auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=5000)
    try:
        got = sorted((m.partition_id, m.offset, m.value) for m in consumer)
    finally:
        consumer.stop()
    assert got == sorted([(0, i, b"p0-%d" % i) for i in range(5)] +
                         [(1, i, b"p1-%d" % i) for i in range(3)] +
                         [(1, 3, b"fire-and-forget")])


def test_fetch_messages_errors_are_per_partition(client, kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=1)
    broker = the_broker(client)
    name = topic_name.encode()
    resp = broker.fetch_messages([PartitionFetchRequest(name, 0, 100)],
                                 timeout=100)
    part = resp.topics[name][0]
    assert part.err == 1 and part.messages == []   # OFFSET_OUT_OF_RANGE


def test_offsets_round_trip(client, kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=1)
    broker = the_broker(client)
    name = topic_name.encode()
    req = ProduceRequest(required_acks=1)
    for i in range(4):
        req.add_message(Message(b"%d" % i), name, 0)
    assert broker.produce_messages(req).topics[name][0].err == 0
    limits = broker.request_offset_limits(
        [PartitionOffsetRequest(name, 0, OffsetType.LATEST, 1)])
    assert isinstance(limits, protocol.ListOffsetResponse)
    assert limits.topics[name][0] == protocol.OffsetPartitionResponse([4], 0)
    group = "pkc-offsets-%s" % uuid.uuid4().hex[:8]
    coordinator = client.cluster.get_group_coordinator(group)
    commit = coordinator.commit_consumer_group_offsets(
        group, -1, b"", [PartitionOffsetCommitRequest(name, 0, 3, 0,
                                                      b"meta")])
    assert isinstance(commit, protocol.OffsetCommitResponse)
    assert commit.topics[name][0] == \
        protocol.OffsetCommitPartitionResponse(0)
    fetched = coordinator.fetch_consumer_group_offsets(
        group, [PartitionOffsetFetchRequest(name, 0)])
    assert isinstance(fetched, protocol.OffsetFetchResponseV2)
    assert fetched.topics[name][0] == \
        protocol.OffsetFetchPartitionResponse(3, b"meta", 0)
    assert fetched.err == 0


def test_list_and_describe_groups(client, kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=3)
    topic = client.topics[topic_name]
    group = "pkc-describe-%s" % uuid.uuid4().hex[:8]
    consumer = topic.get_balanced_consumer(
        group, managed=True, consumer_timeout_ms=100,
        heartbeat_interval_ms=500)
    try:
        wait_for(lambda: len(consumer.partitions) == 3, 60,
                 "the consumer to own every partition")
        broker = client.cluster.get_group_coordinator(group)
        listed = broker.list_groups()
        assert isinstance(listed, protocol.ListGroupsResponse)
        assert listed.error == 0
        assert listed.groups[group.encode()] == protocol.GroupListing(
            group.encode(), b"consumer")

        def stable():
            d = broker.describe_groups([group])
            g = d.groups[group.encode()]
            return d if g.state == b"Stable" else None
        desc = wait_for(stable, 30, "a Stable group")
        assert isinstance(desc, protocol.DescribeGroupsResponse)
        g = desc.groups[group.encode()]
        assert (g.error_code, g.group_id, g.protocol_type) == \
            (0, group.encode(), b"consumer")
        assert g.protocol in (b"range", b"roundrobin")
        (member_id, member), = g.members.items()
        assert member_id == member.member_id
        cid = consumer.consumer_id
        assert member_id == (cid if isinstance(cid, bytes) else cid.encode())
        assert member.member_metadata.topic_names == [topic_name.encode()]
        assert isinstance(member.member_assignment, MemberAssignment)
        assigned = dict(member.member_assignment.partition_assignment)
        assert sorted(assigned[topic_name.encode()]) == [0, 1, 2]
    finally:
        consumer.stop()


def test_create_and_delete_topics(client, topic_name):
    broker = the_broker(client)
    req = protocol.CreateTopicRequest(topic_name.encode(), 2, 1, [],
                                      [(b"retention.ms", b"60000")])
    resp = broker.create_topics([req], timeout=10000)
    assert isinstance(resp, protocol.CreateTopicsResponse)
    assert resp["topics"][0]["error_code"] == 0
    with pytest.raises(TopicAlreadyExists):
        broker.create_topics([req], timeout=10000)
    deleted = broker.delete_topics([topic_name.encode()], timeout=10000)
    assert isinstance(deleted, protocol.DeleteTopicsResponse)
    assert deleted["responses"][0]["error_code"] == 0
    with pytest.raises(UnknownTopicOrPartition):
        broker.delete_topics(["pkc-missing-%s" % uuid.uuid4().hex[:8]],
                             timeout=10000)
