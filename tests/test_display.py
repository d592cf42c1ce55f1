"""What the objects show of themselves: repr() and the tables Jupyter
displays (_repr_html_), from pykafka_c/_display.py.

Without a broker: reprs never raise, tables escape what they show, and a
table whose brokers do not answer comes back within the lookup deadline
saying what it could not get.  On a real broker: the client's brokers and
topics, a topic's partitions with their offsets, a consumer's held
offsets and lag, a producer's counts.  (No secret in any of them:
tests/test_security.py; the notebook's tables: tests/test_notebook.py.)
"""

import re
import socket
import time
import types
import uuid

import pytest

from pykafka_c import KafkaClient, _display
from pykafka_c.broker import Broker
from pykafka_c.common import OffsetType
from pykafka_c.topic import Topic

from htmltables import rows as _rows, tables as _tables


# ------------------------------------------------------------- no broker

@pytest.mark.unit
def test_safe_repr_and_safe_html_never_raise():
    class Broken:
        @_display.safe_repr
        def __repr__(self):
            raise RuntimeError("no")

        @_display.safe_html
        def _repr_html_(self):
            raise KeyError("<gone>")

    b = Broken()
    assert re.fullmatch(r"<[\w.<>]*Broken \(repr failed: RuntimeError\)>",
                        repr(b)), repr(b)
    text = b._repr_html_()
    assert "table failed: KeyError" in text and "<gone>" not in text
    assert "&lt;gone&gt;" in text


@pytest.mark.unit
def test_table_escapes_and_shows_missing_values():
    text = _display.table(["a<b", "n"], [(b"<script>", None), ("x&y", 3)])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "a&lt;b" in text and "x&amp;y" in text
    assert _rows(text) == [["<script>", _display.MISSING], ["x&y", "3"]]


@pytest.mark.unit
def test_bounded_waits_no_longer_than_its_deadline():
    def slow():
        time.sleep(5)
        return 1

    def fails():
        raise ValueError("bad")

    t0 = time.monotonic()
    got = _display.bounded({"slow": slow, "fast": lambda: 2, "fails": fails},
                           0.3)
    assert time.monotonic() - t0 < 1.0
    assert got["fast"] == 2
    assert isinstance(got["fails"], ValueError)
    assert _display.why(got["slow"]) == "no answer within 0.3 s"


@pytest.fixture
def silent_broker():
    """A Broker whose host accepts TCP connections and never answers (a
    hung broker, or one behind a firewall that lets SYN through)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    broker = Broker(7, "127.0.0.1", srv.getsockname()[1], connect=False,
                    socket_timeout_ms=10000)
    yield broker
    srv.close()  # the lookups still waiting see the connection reset
    broker.disconnect()


def _fake_cluster(broker):
    return types.SimpleNamespace(
        brokers={broker.id: broker}, controller_broker=None,
        cluster_id=None, _security=None, _seed_hosts="127.0.0.1:1",
        topics={b"t": None}, _topic_summary=[(b"t", 1, 1, 0)],
        _metadata_time=time.time())


@pytest.mark.unit
def test_tables_of_an_unanswering_broker_come_back_in_time(silent_broker):
    cluster = _fake_cluster(silent_broker)
    topic = Topic(cluster, {"name": "t", "partitions": [
        {"partition_index": 0, "leader_id": 7, "replica_nodes": [7],
         "isr_nodes": [7]}]})
    t0 = time.monotonic()
    text = topic._repr_html_()
    elapsed = time.monotonic() - t0
    assert elapsed < _display.LOOKUP_TIMEOUT_S + 1.0, elapsed
    assert _rows(_tables(text)[0]) == [
        ["0", "7", "7", "7", _display.MISSING, _display.MISSING,
         _display.MISSING]]
    assert "Not shown: offsets of partition 0 from broker 7: no answer " \
        "within 1.5 s" in text
    assert "partitions=[0]" in repr(topic)
    t0 = time.monotonic()
    text = _display.cluster_html(cluster, "KafkaClient", "127.0.0.1:1")
    assert time.monotonic() - t0 < _display.LOOKUP_TIMEOUT_S + 1.0
    assert "versions of broker 7: no answer within 1.5 s" in text
    assert _rows(_tables(text)[0])[0][:3] == ["7", silent_broker.host + ":%d"
                                              % silent_broker.port, "no"]
    # repr() never asks a broker
    t0 = time.monotonic()
    assert repr(silent_broker) == ("<pykafka_c.broker.Broker id=7, address="
                                   "127.0.0.1:%d, connected=False>"
                                   % silent_broker.port)
    assert repr(topic.partitions[0]) == (
        "<pykafka_c.partition.Partition topic=b't', id=0, leader=7, "
        "replicas=[7], isr=[7]>")
    assert time.monotonic() - t0 < 0.1


# ------------------------------------------------------------ real broker

def test_reprs_and_tables_on_a_real_broker(kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=2)
    group = b"display-" + uuid.uuid4().hex[:8].encode()
    with KafkaClient(hosts=kafka.brokers) as client:
        node = client.brokers[min(client.brokers)]
        text = repr(client)
        assert text.startswith("<pykafka_c.client.KafkaClient hosts=%r, "
                               "brokers=[%d], topics=" % (kafka.brokers,
                                                          node.id))
        assert text.endswith("tls=off, sasl=off>")
        topic = client.topics[topic_name]
        with topic.get_sync_producer(delivery_reports=True) as producer:
            for i in range(10):
                producer.produce(b"v%d" % i, partition_key=b"%d" % i)
            assert repr(producer).endswith(
                "running=True, produced=10, queued=0, delivered=10, "
                "failed=0>")
            rows = _rows(_tables(producer._repr_html_())[0])
            assert rows[0][:5] == ["10", "0", "0", "10", "0"]

        # the client: brokers with their negotiated versions, the topics
        text = client._repr_html_()
        brokers, topics = _tables(text)
        (row,) = _rows(brokers)
        assert row[:4] == [str(node.id), "%s:%d" % (node.host, node.port),
                           "yes", "no"]
        assert "Fetch v12" in row[4] and "Produce v" in row[4]
        assert [topic_name, "2", "1", ""] in _rows(topics)
        assert "Not shown" not in text

        # the topic: leaders, replicas, offsets
        text = topic._repr_html_()
        rows = _rows(_tables(text)[0])
        assert [r[0] for r in rows] == ["0", "1"]
        assert all(r[1] == str(node.id) and r[4] == "0" for r in rows)
        assert sum(int(r[5]) for r in rows) == 10
        assert [r[6] for r in rows] == [r[5] for r in rows]
        assert repr(topic) == ("<pykafka_c.topic.Topic name=%r, "
                               "partitions=[0, 1]>" % topic_name.encode())
        assert len(_rows(_tables(topic.partitions[1]._repr_html_())[0])) == 1

        # a consumer that read 4 of the 10 messages
        consumer = topic.get_simple_consumer(
            consumer_group=group, auto_offset_reset=OffsetType.EARLIEST,
            consumer_timeout_ms=5000)
        messages = [consumer.consume() for _ in range(4)]
        assert all(m is not None for m in messages)
        assert repr(messages[0]).startswith(
            "<pykafka_c.protocol.Message topic=%r, partition=%d, offset=%d, "
            "key=b'" % (topic_name.encode(), messages[0].partition_id,
                        messages[0].offset))
        deadline = time.monotonic() + 10
        while sum(consumer._fetcher.positions()[p][2]
                  for p in consumer.partitions) < 6:
            assert time.monotonic() < deadline, "the fetch did not catch up"
            time.sleep(0.05)
        text = repr(consumer)
        assert ("topic=%r, consumer_group=%r, partitions=[0, 1], running=True"
                % (topic_name.encode(), group)) in text
        assert "queued=6, lag=6>" in text
        text = consumer._repr_html_()
        rows = _rows(_tables(text)[0])
        assert [r[1] for r in rows] == ["active", "active"]
        held = {int(r[0]): r[3] for r in rows}
        for m in messages:
            assert int(held[m.partition_id]) >= m.offset
        assert sum(int(r[5]) for r in rows) == 10       # latest offsets
        assert sum(int(r[6]) for r in rows) == 6        # lag
        assert sum(int(r[7]) for r in rows) == 6        # queued
        assert "lag <b>6</b>" in text and "Not shown" not in text
        consumer.stop()
        assert "running=False" in repr(consumer)

        balanced = topic.get_balanced_consumer(
            group + b"-b", managed=True, consumer_timeout_ms=500,
            heartbeat_interval_ms=500, session_timeout_ms=6000)
        try:
            text = repr(balanced)
            assert "partitions=[0, 1], running=True>" in text
            assert "generation_id=1" in text
            text = balanced._repr_html_()
            assert "leader <b>yes</b>" in text
            assert len(_rows(_tables(text)[0])) == 2
        finally:
            balanced.stop()
