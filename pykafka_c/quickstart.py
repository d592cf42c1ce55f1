"""The pykafka_c quickstart: produce and consume with pykafka's API.

    python -m pykafka_c.quickstart [--hosts HOST:PORT,...] [--messages N]

With no ``--hosts`` it starts a local Apache Kafka (the newest 4.x, from
Maven Central, through ``pykafka_c.test.kafka_instance``), creates a topic,
produces messages with ``topic.get_producer()``, reads them back with
``topic.get_simple_consumer()``, commits the offsets of a consumer group,
and reports what it did and how fast.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any


def _run(hosts: str, messages: int, partitions: int, size: int,
         out: Callable[[str], None]) -> int:
    import pykafka_c as pykafka
    from pykafka_c.common import OffsetType

    client = pykafka.KafkaClient(hosts=hosts)
    brokers = sorted(client.brokers.values(), key=lambda b: b.id)
    out("connected to %d broker(s): %s" % (
        len(brokers), ", ".join("%d@%s:%d" % (b.id, b.host, b.port)
                                for b in brokers)))
    topic_name = "pykafka-c-quickstart-%s" % uuid.uuid4().hex[:8]
    broker = brokers[0]
    resp = broker.create_topics([{"name": topic_name,
                                  "num_partitions": partitions,
                                  "replication_factor": 1}], timeout=10000)
    err = resp["topics"][0]["error_code"]
    if err:
        from pykafka_c.exceptions import error_for_code
        raise error_for_code(err, "creating %s" % topic_name)
    client.update_cluster()
    topic = client.topics[topic_name]
    out("created topic %s with %d partitions" % (topic_name,
                                                 len(topic.partitions)))

    payload = b"x" * size
    t0 = time.perf_counter()
    with topic.get_producer(delivery_reports=False, linger_ms=5,
                            min_queued_messages=10000) as producer:
        for i in range(messages):
            producer.produce(payload, partition_key=b"%d" % i)
    produce_s = time.perf_counter() - t0
    out("produced %d messages of %d bytes in %.3f s: %.0f msg/s, %.1f MB/s"
        % (messages, size, produce_s, messages / produce_s,
           messages * size / produce_s / 1e6))

    latest = topic.latest_available_offsets()
    stored = sum(r.offset[0] for r in latest.values())
    out("the broker holds %d messages (sum of latest offsets)" % stored)

    consumer = topic.get_simple_consumer(
        consumer_group=b"pykafka-c-quickstart",
        auto_offset_reset=OffsetType.EARLIEST,
        consumer_timeout_ms=5000)
    t0 = time.perf_counter()
    count = 0
    total = 0
    for message in consumer:
        count += 1
        total += len(message.value or b"")
        if count == messages:
            break
    consume_s = time.perf_counter() - t0
    out("consumed %d messages (%d bytes) in %.3f s: %.0f msg/s, %.1f MB/s"
        % (count, total, consume_s, count / consume_s,
           total / consume_s / 1e6))
    consumer.commit_offsets()
    committed = sum(r.offset for _, r in consumer.fetch_offsets())
    out("committed offsets for group pykafka-c-quickstart: %d in all"
        % committed)
    consumer.stop()
    client.close()
    ok = count == messages == stored and committed == messages
    out("OK" if ok else "MISMATCH: produced %d, stored %d, consumed %d, "
        "committed %d" % (messages, stored, count, committed))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pykafka_c.quickstart",
        description="Produce and consume with pykafka_c (pykafka's API).")
    parser.add_argument("--hosts", help="bootstrap brokers host:port,...; "
                        "default: start a local Kafka with the harness")
    parser.add_argument("--messages", type=int, default=200000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--size", type=int, default=100,
                        help="message size in bytes")
    parser.add_argument("--kafka-version", default=None,
                        help="Kafka version for the local broker")
    args = parser.parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    if args.hosts:
        return _run(args.hosts, args.messages, args.partitions, args.size,
                    out)
    from pykafka_c.test.kafka_instance import KafkaInstance
    kwargs: dict[str, Any] = {}
    if args.kafka_version:
        kwargs["kafka_version"] = args.kafka_version
    out("starting a local Kafka broker (first run downloads it from Maven "
        "Central)...")
    t0 = time.perf_counter()
    instance = KafkaInstance(num_instances=1, **kwargs)
    try:
        out("Kafka %s up at %s in %.1f s" % (instance.kafka_version,
                                             instance.brokers,
                                             time.perf_counter() - t0))
        return _run(instance.brokers, args.messages, args.partitions,
                    args.size, out)
    finally:
        instance.terminate()


if __name__ == "__main__":
    sys.exit(main())
