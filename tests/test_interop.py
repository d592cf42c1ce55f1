"""Wire-level interoperability with other clients, through a real broker.

* What pykafka_c's C core writes (RecordBatch v2 from
  ``_core.encode_record_batch``, sent in a Produce request built by the
  table-driven codec) is stored by Kafka and read back identically by kcat
  (librdkafka) and by Kafka's own Java console consumer, for every codec and
  with headers.
* What kcat and the Java console producer write, for every codec and with
  headers, is decoded identically by pykafka_c (a Fetch request through
  ``Broker.request`` and ``_core.decode_records``).

This tests the core (issue 3) without the Producer and SimpleConsumer
classes, which have their own interop tests.
"""

import json
import subprocess

import pytest

from pykafka_c import KafkaClient, _core
from pykafka_c.broker import ApiKey
from pykafka_c.common import CompressionType
from pykafka_c.test.kafka_instance import run_kafka_tool

pytestmark = pytest.mark.integration

CODECS = {"none": CompressionType.NONE, "gzip": CompressionType.GZIP,
          "snappy": CompressionType.SNAPPY, "lz4": CompressionType.LZ4,
          "zstd": CompressionType.ZSTD}


def _records(n, tag):
    """(value, key, timestamp_ms, headers) with null/empty edge cases."""
    out = []
    base_ts = 1_700_000_000_000
    for i in range(n):
        value = ("%s-value-%d-" % (tag, i)).encode() + b"v" * (i % 50)
        key = ("key-%d" % i).encode()
        headers = [("h1", ("one-%d" % i).encode()), ("h2", b"two")]
        out.append((value, key, base_ts + i, headers))
    return out


def _leader(client, topic_name, partition=0):
    client.update_cluster()
    return client.topics[topic_name].partitions[partition].leader


def _produce_batch(client, topic_name, batch, partition=0):
    broker = _leader(client, topic_name, partition)
    resp = broker.request(ApiKey.PRODUCE, {
        "transactional_id": None, "acks": -1, "timeout_ms": 10000,
        "topic_data": [{"name": topic_name, "partition_data": [
            {"index": partition, "records": batch}]}]})
    part = resp["responses"][0]["partition_responses"][0]
    assert part["error_code"] == 0, part
    return part["base_offset"]


def _fetch_all(client, topic_name, expected, partition=0):
    """Fetch from offset 0 until ``expected`` messages are decoded."""
    broker = _leader(client, topic_name, partition)
    messages = []
    offset = 0
    for _ in range(50):
        resp = broker.request(ApiKey.FETCH, {
            "replica_id": -1, "max_wait_ms": 500, "min_bytes": 1,
            "max_bytes": 50 * 1024 * 1024, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": topic_name, "partitions": [{
                "partition": partition, "current_leader_epoch": -1,
                "fetch_offset": offset, "last_fetched_epoch": -1,
                "log_start_offset": -1,
                "partition_max_bytes": 10 * 1024 * 1024}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        part = resp["responses"][0]["partitions"][0]
        assert part["error_code"] == 0, part
        got = _core.decode_records(part["records"] or b"",
                                   partition_id=partition,
                                   fetch_offset=offset)
        messages.extend(got)
        if got:
            offset = got[-1].offset + 1
        if len(messages) >= expected:
            break
    assert len(messages) == expected
    return messages


@pytest.fixture
def client(kafka):
    c = KafkaClient(hosts=kafka.brokers)
    yield c
    c.close()


def _kcat_consume(brokers, topic_name, count):
    out = subprocess.run(
        ["kcat", "-b", brokers, "-C", "-t", topic_name, "-p", "0", "-o",
         "beginning", "-c", str(count), "-e", "-J", "-q"],
        check=True, capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in out.stdout.splitlines() if line]


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_pykafka_c_batches_read_by_kcat_and_java(client, kafka, topic_name,
                                                 codec):
    kafka.create_topic(topic_name, num_partitions=1)
    records = _records(40, codec)
    # Two batches, so offsets continue across them.
    b1 = _core.encode_record_batch(records[:25], compression=CODECS[codec])
    b2 = _core.encode_record_batch(records[25:], compression=CODECS[codec])
    assert _produce_batch(client, topic_name, b1) == 0
    assert _produce_batch(client, topic_name, b2) == 25

    got = _kcat_consume(kafka.brokers, topic_name, len(records))
    assert len(got) == len(records)
    for i, (rec, (value, key, ts, headers)) in enumerate(zip(got, records)):
        assert rec["offset"] == i
        assert rec["payload"] == value.decode()
        assert rec["key"] == key.decode()
        assert rec["ts"] == ts
        flat = []
        for k, v in headers:
            flat += [k, v.decode()]
        assert rec["headers"] == flat

    proc = run_kafka_tool(
        "console-consumer",
        # Partition assigned directly: no consumer group, so the check
        # depends on record decoding only, not on group coordination.
        ["--bootstrap-server", kafka.brokers, "--topic", topic_name,
         "--partition", "0", "--offset", "earliest",
         "--max-messages", str(len(records)),
         "--timeout-ms", "60000",
         "--property", "print.key=true", "--property", "print.headers=true",
         "--property", "print.timestamp=true",
         "--property", "key.separator=|"],
        kafka_version=kafka.kafka_version, timeout=120)
    # (4.x prints a deprecation note for --property on stdout too.)
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith("CreateTime:")]
    assert len(lines) == len(records), (proc.stdout[-2000:],
                                        proc.stderr[-3000:])
    for line, (value, key, ts, headers) in zip(lines, records):
        # CreateTime:<ts>|<headers>|<key>|<value>
        ts_part, hdr_part, key_part, value_part = line.split("|", 3)
        assert ts_part == "CreateTime:%d" % ts
        assert hdr_part == ",".join("%s:%s" % (k, v.decode())
                                    for k, v in headers)
        assert key_part == key.decode()
        assert value_part == value.decode()


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_kcat_messages_decoded_by_pykafka_c(client, kafka, topic_name, codec):
    kafka.create_topic(topic_name, num_partitions=1)
    lines = []
    for i in range(30):
        lines.append("key-%d:kcat-%s-%d-%s" % (i, codec, i, "x" * i))
    subprocess.run(
        ["kcat", "-b", kafka.brokers, "-P", "-t", topic_name, "-p", "0",
         "-K", ":", "-z", codec, "-H", "origin=kcat", "-H", "n=1"],
        input="\n".join(lines) + "\n", check=True, text=True, timeout=60,
        capture_output=True)
    messages = _fetch_all(client, topic_name, len(lines))
    for i, (m, line) in enumerate(zip(messages, lines)):
        key, value = line.split(":", 1)
        assert m.offset == i
        assert m.partition_id == 0
        assert m.partition_key == key.encode()
        assert m.value == value.encode()
        assert m.headers == [("origin", b"kcat"), ("n", b"1")]
        assert m.timestamp > 0


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_java_producer_messages_decoded_by_pykafka_c(client, kafka,
                                                     topic_name, codec):
    kafka.create_topic(topic_name, num_partitions=1)
    lines = []
    expected = []
    for i in range(30):
        key = "jk-%d" % i
        value = "java-%s-%d-%s" % (codec, i, "y" * (i * 7))
        lines.append("src:java,i:%d\t%s\t%s" % (i, key, value))
        expected.append((key, value, [("src", b"java"),
                                      ("i", str(i).encode())]))
    run_kafka_tool(
        "console-producer",
        ["--bootstrap-server", kafka.brokers, "--topic", topic_name,
         "--producer-property", "acks=all",
         "--producer-property", "compression.type=%s" % codec,
         "--producer-property", "linger.ms=1000",
         "--property", "parse.key=true", "--property", "key.separator=\t",
         "--property", "parse.headers=true"],
        kafka_version=kafka.kafka_version, input="\n".join(lines) + "\n",
        timeout=120)
    messages = _fetch_all(client, topic_name, len(lines))
    for i, (m, (key, value, headers)) in enumerate(zip(messages, expected)):
        assert m.offset == i
        assert m.partition_key == key.encode()
        assert m.value == value.encode()
        assert m.headers == headers
