"""Integration tests against real brokers (Kafka 4.x and 3.9): the
kafka-tools command line (``python -m pykafka_c.cli.kafka_tools``, run as a
subprocess, as a user runs it) and the rdkafka-compatible classes behind
``use_rdkafka=True``."""

import os
import re
import subprocess
import sys
import time

import pytest

from pykafka_c import KafkaClient
from pykafka_c.handlers import ThreadingHandler
from pykafka_c.rdkafka import RdKafkaProducer, RdKafkaSimpleConsumer
from pykafka_c.test.utils import retry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tools(kafka, *args, timeout=120):
    """Run kafka-tools against ``kafka``; returns the CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "pykafka_c.cli.kafka_tools", "-b",
         kafka.brokers] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=timeout, cwd=ROOT, env=env)


def ok(kafka, *args):
    proc = tools(kafka, *args)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def rows(text):
    """Data rows of a printed table: lists of cells split on 2+ spaces."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and set(line.replace(" ", "")) == {"-"}:
            return [re.split(r"\s{2,}", l.strip()) for l in lines[i + 1:]
                    if l.strip() and not l.strip().startswith("Total lag")]
    raise AssertionError("no table in %r" % text)


def table_of(text, key=0):
    return {r[key]: r for r in rows(text)}


def produce(kafka, topic_name, count):
    client = KafkaClient(hosts=kafka.brokers)
    try:
        topic = client.topics[topic_name]
        with topic.get_producer(linger_ms=10, min_queued_messages=1) as p:
            for i in range(count):
                p.produce(b"m%d" % i)
    finally:
        client.cluster.disconnect()


def test_kafka_tools_against_a_broker(kafka, topic_name):
    # create_topic, then print_topics and desc_topic see it
    ok(kafka, "create_topic", topic_name, "-p", "3", "-r", "1",
       "-c", '{"retention.ms": "3600000"}')
    retry(lambda: table_of(ok(kafka, "print_topics"))[topic_name] == [
        topic_name, "3", "1"] or pytest.fail("not listed"), retry_time=30,
        wait_between_tries=0.5)
    topics = table_of(ok(kafka, "print_topics"))
    assert topics[topic_name] == [topic_name, "3", "1"]
    assert not any(name.startswith("__") for name in topics)

    out = ok(kafka, "desc_topic", topic_name)
    assert "Topic: %s" % topic_name in out
    assert "Partitions: 3" in out and "Replicas: 1" in out
    desc = table_of(out)
    assert sorted(desc) == ["0", "1", "2"]
    for pid, (_, leader, replicas, isr) in desc.items():
        assert replicas == isr == "[%s]" % leader

    # creating it again fails with the broker's error
    again = tools(kafka, "create_topic", topic_name)
    assert again.returncode == 1
    assert "error" in again.stderr and "36" in again.stderr

    # offsets before and after producing 30 messages (10 per partition)
    latest = table_of(ok(kafka, "print_offsets", topic_name, "latest"))
    assert latest == {str(p): [str(p), "0"] for p in range(3)}
    produce(kafka, topic_name, 30)
    latest = table_of(ok(kafka, "print_offsets", topic_name, "LATEST"))
    assert latest == {str(p): [str(p), "10"] for p in range(3)}
    earliest = table_of(ok(kafka, "print_offsets", topic_name, "earliest"))
    assert earliest == {str(p): [str(p), "0"] for p in range(3)}

    # reset_offsets, then print_consumer_lag
    group = "kt-group-" + topic_name[-8:]
    ok(kafka, "reset_offsets", topic_name, group, "latest")
    out = ok(kafka, "print_consumer_lag", topic_name, group)
    lag = table_of(out)
    assert sorted(lag) == ["0", "1", "2"]
    for pid, row in lag.items():
        assert row[1:4] == ["0", "10", "10"], row
    assert "Total lag: 0 messages." in out
    ok(kafka, "reset_offsets", topic_name, group, "earliest")
    out = ok(kafka, "print_consumer_lag", topic_name, group)
    for pid, row in table_of(out).items():
        assert row[1:4] == ["10", "10", "0"], row
    assert "Total lag: 30 messages." in out

    # a group that only committed is listed, as is a live managed consumer
    client = KafkaClient(hosts=kafka.brokers)
    live_group = "kt-live-" + topic_name[-8:]
    consumer = client.topics[topic_name].get_balanced_consumer(
        live_group, managed=True, heartbeat_interval_ms=500,
        consumer_timeout_ms=100)
    try:
        retry(lambda: len(consumer.partitions) == 3 or pytest.fail("join"),
              retry_time=60, wait_between_tries=0.2)
        out = ok(kafka, "print_managed_consumer_groups", topic_name)
        assert "Topic: %s" % topic_name in out
        groups = table_of(out)
        assert groups[group][1] == "Empty", groups
        assert groups[live_group][1:] == ["Stable", "range", "consumer"], groups
    finally:
        consumer.stop()
        client.cluster.disconnect()

    # delete_topic: gone from print_topics; unknown topics are errors
    ok(kafka, "delete_topic", topic_name)
    retry(lambda: topic_name not in table_of(ok(kafka, "print_topics"))
          or pytest.fail("still listed"), retry_time=30,
          wait_between_tries=0.5)
    gone = tools(kafka, "desc_topic", topic_name)
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_kafka_tools_consume_topic(kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=1)
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pykafka_c.cli.kafka_tools", "-b",
         kafka.brokers, "consume_topic", topic_name, "-l", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=env)
    client = KafkaClient(hosts=kafka.brokers)
    try:
        # consume_topic starts at the latest offset: keep producing until
        # it has printed its three messages and exited
        with client.topics[topic_name].get_producer(
                linger_ms=0, min_queued_messages=1) as p:
            deadline = time.monotonic() + 60
            i = 0
            while proc.poll() is None and time.monotonic() < deadline:
                p.produce(b"line %d" % i)
                p.flush()
                i += 1
                time.sleep(0.1)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        client.cluster.disconnect()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    first = int(lines[0].split()[1])
    assert lines == ["line %d" % n for n in range(first, first + 3)]


def test_rdkafka_classes_through_use_rdkafka(kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=2)
    client = KafkaClient(hosts=kafka.brokers)
    try:
        assert isinstance(client.cluster.handler, ThreadingHandler)
        topic = client.topics[topic_name]
        with pytest.raises(TypeError):
            topic.get_producer(use_rdkafka=True, pending_timeout_ms=10)
        producer = topic.get_producer(use_rdkafka=True,
                                      block_on_queue_full=True,
                                      delivery_reports=True, linger_ms=10)
        assert type(producer) is RdKafkaProducer
        assert producer._min_queued_messages == 2000
        assert producer._block_on_queue_full is False
        sent = [b"rd-%d" % i for i in range(40)]
        for value in sent:
            producer.produce(value)
        producer.stop()
        reports = []
        while len(reports) < len(sent):
            msg, exc = producer.get_delivery_report(timeout=10)
            assert exc is None, exc
            reports.append(msg)
        assert sorted(m.value for m in reports) == sorted(sent)
        assert all(m.offset >= 0 for m in reports)

        sync = topic.get_producer(use_rdkafka=True, sync=True,
                                  required_acks=5)
        assert sync._required_acks == -1
        msg = sync.produce(b"sync-one")
        assert msg.offset >= 0
        sync.stop()

        consumer = topic.get_simple_consumer(use_rdkafka=True,
                                             consumer_timeout_ms=5000)
        assert type(consumer) is RdKafkaSimpleConsumer
        assert consumer._queued_max_messages == 100000
        got = []
        for message in consumer:
            got.append(message.value)
            if len(got) == len(sent) + 1:
                break
        assert sorted(got) == sorted(sent + [b"sync-one"])
        # rdkafka quirk kept: consumer_timeout_ms=0 returns None at once
        consumer._consumer_timeout_ms = 0
        t0 = time.monotonic()
        assert consumer.consume() is None
        assert time.monotonic() - t0 < 0.5
        assert list(consumer) == []
        consumer.stop()
    finally:
        client.cluster.disconnect()
