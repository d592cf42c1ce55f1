"""Drop-in behaviours that pykafka 2.8's own test suite relies on (the
conformance job, tests/test_pykafka_conformance.py, found each), tested
here directly so a regression names itself."""

import inspect
import time

import pytest

from pykafka_c import KafkaClient, _core, protocol
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import ProtocolDecodeError
from pykafka_c.membershipprotocol import (ConsumerGroupProtocolMetadata,
                                          MemberAssignment, RangeProtocol)
from pykafka_c.producer import OwnedBroker
from pykafka_c.simpleconsumer import OwnedPartition, SimpleConsumer
from pykafka_c.test import utils as test_utils


class _Msg(object):
    def __init__(self, offset, partition_id=0):
        self.offset = offset
        self.partition_id = partition_id
        self.partition = None


class _Part(object):
    id = 0


@pytest.mark.unit
def test_response_from_bytes_ignores_trailing_bytes():
    body = _core.encode_response(12, 0, {"error_code": 27})
    resp = protocol.HeartbeatResponse(body + b"\x00\x00\x00\x00")
    assert resp.error_code == 27
    assert _core.decode_response(12, 0, body + b"junk", True) == {"error_code": 27}
    # the network path stays strict
    with pytest.raises(ProtocolDecodeError, match="trailing"):
        _core.decode_response(12, 0, body + b"junk")
    with pytest.raises(ProtocolDecodeError, match="trailing"):
        _core.decode_response(12, 0, body + b"junk", False)


@pytest.mark.unit
def test_request_get_bytes_at_pykafka_versions():
    raw = protocol.HeartbeatRequest(b"g", 1, b"m").get_bytes()
    assert isinstance(raw, bytearray)
    assert raw[4:8] == b"\x00\x0c\x00\x00"                     # Heartbeat v0
    assert raw[8:21] == b"\x00\x00\x00\x00\x00\x07pykafka"
    assert int.from_bytes(raw[:4], "big") == len(raw) - 4
    assert protocol.ApiVersionsRequest().get_bytes()[4:8] == b"\x00\x12\x00\x00"
    for removed in (protocol.FetchRequest(), protocol.ProduceRequest()):
        with pytest.raises(NotImplementedError, match="Kafka 4 removed"):
            removed.get_bytes()


@pytest.mark.unit
def test_group_protocol_defaults_are_pykafkas():
    meta = ConsumerGroupProtocolMetadata()
    assert (meta.version, meta.topic_names, meta.user_data) == \
        (0, [b"dummytopic"], b"testuserdata")
    assert meta.get_bytes() == (b"\x00\x00\x00\x00\x00\x01\x00\ndummytopic"
                                b"\x00\x00\x00\x0ctestuserdata")
    assert ConsumerGroupProtocolMetadata(topic_names=[]).topic_names == []
    assert ConsumerGroupProtocolMetadata.from_bytestring(b"").topic_names == []
    assert RangeProtocol.metadata.version == 0
    # pykafka's assignment bytes: version 1, no UserData field
    a = MemberAssignment([(b"t", [1])])
    assert a.get_bytes() == b"\x00\x01\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01\x00\x00\x00\x01"
    # with user_data (None: null), Kafka's layout that Java consumers read
    assert MemberAssignment([(b"t", [1])], version=3, user_data=None).get_bytes() == \
        b"\x00\x03\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff"


@pytest.mark.unit
def test_standalone_owned_partition_queues_with_pykafkas_rule():
    op = OwnedPartition(_Part())
    op.next_offset = 20
    op.enqueue_messages([_Msg(19), _Msg(20), _Msg(22), _Msg(21)])
    assert op.message_count == 2 and op.next_offset == 22
    assert op.consume().offset == 20 and op.last_offset_consumed == 20
    assert op.consume().offset == 21
    assert op.consume() is None
    compacted = OwnedPartition(_Part(), compacted_topic=True)
    compacted.enqueue_messages([_Msg(5), _Msg(9), _Msg(7)])
    assert [compacted.consume().offset for _ in range(2)] == [5, 9]
    compacted.enqueue_messages([_Msg(30)])
    compacted.flush()
    assert compacted.message_count == 0


@pytest.mark.unit
def test_owned_broker_is_importable_but_not_constructible():
    with pytest.raises(NotImplementedError, match="in C"):
        OwnedBroker(None, None, auto_start=False)


@pytest.mark.unit
def test_auto_offset_reset_values():
    from pykafka_c.simpleconsumer import _offset_reset_value
    assert _offset_reset_value(OffsetType.EARLIEST) == -2
    assert _offset_reset_value(OffsetType.LATEST) == -1
    assert _offset_reset_value("latest") == -1
    assert _offset_reset_value("EARLIEST") == -2
    assert _offset_reset_value(b"latest") == -1
    for bad in ("bogus", "none", 0, 5, -3, True, None, 1.5):
        with pytest.raises(ValueError, match="auto_offset_reset"):
            _offset_reset_value(bad)


@pytest.mark.unit
def test_get_cluster_starts_three_brokers_like_pykafka():
    assert inspect.signature(test_utils.get_cluster).parameters[
        "num_instances"].default == 3


@pytest.mark.integration
def test_auto_offset_reset_names_mean_what_kafka_means(kafka, topic_name):
    kafka.create_topic(topic_name, 1)
    kafka.produce_messages(topic_name, [b"a", b"b", b"c"])
    client = KafkaClient(kafka.brokers)
    topic = client.topics[topic_name]
    latest = topic.get_simple_consumer(auto_offset_reset="latest",
                                       reset_offset_on_start=True,
                                       consumer_timeout_ms=500)
    earliest = topic.get_simple_consumer(auto_offset_reset="earliest",
                                         reset_offset_on_start=True,
                                         consumer_timeout_ms=5000)
    try:
        assert latest.consume() is None
        assert earliest.consume().value == b"a"
    finally:
        latest.stop()
        earliest.stop()
    with pytest.raises(ValueError, match="auto_offset_reset"):
        SimpleConsumer(topic, topic._cluster, auto_offset_reset="bogus")
    with pytest.raises(ValueError, match="auto_offset_reset"):
        topic.get_balanced_consumer(b"g", managed=True, auto_offset_reset="bogus")


@pytest.mark.integration
def test_leaving_the_producer_waits_for_linger_then_delivers(kafka, topic_name):
    """pykafka's stop() (so leaving ``with``) lets queued messages go on
    their linger schedule and waits for them; flush() first sends at once.
    Nothing is dropped when linger_ms outlasts pending_timeout_ms."""
    kafka.create_topic(topic_name, 1)
    client = KafkaClient(kafka.brokers)
    topic = client.topics[topic_name]
    consumer = topic.get_simple_consumer(consumer_timeout_ms=10000)
    try:
        t0 = time.monotonic()
        with topic.get_producer(linger_ms=1500, delivery_reports=True) as p:
            p.produce(b"one")
        lingered = time.monotonic() - t0
        assert 1.4 <= lingered < 6, lingered
        assert p.get_delivery_report(block=False)[1] is None

        t0 = time.monotonic()
        with topic.get_producer(linger_ms=5000) as p:
            p.produce(b"two")
            p.flush()
        assert time.monotonic() - t0 < 3

        with topic.get_producer(linger_ms=3000, pending_timeout_ms=500,
                                delivery_reports=True) as p:
            p.produce(b"three")
        assert p.get_delivery_report(block=False)[1] is None
        assert [consumer.consume().value for _ in range(3)] == \
            [b"one", b"two", b"three"]
    finally:
        consumer.stop()


@pytest.mark.integration
def test_broker_connection_has_pykafkas_name(kafka):
    client = KafkaClient(kafka.brokers)
    broker = next(iter(client.brokers.values()))
    assert broker.connect()
    conn = broker._connection
    assert conn is not None and conn.connected
    conn.disconnect()
    assert not conn.connected
    # the next request opens a new connection
    assert broker.request_metadata() is not None
    assert broker._connection.connected and broker._connection is not conn
