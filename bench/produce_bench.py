"""Produce throughput benchmark (not a timed test).

Produces N messages of S bytes (default 1,000,000 x 100 B) to one topic of
a local broker with required_acks=1 and stops the clock only when every
message is acknowledged (``Producer.flush()`` returns 0 pending, i.e. the
broker answered every Produce request).  Reports messages/s, MB/s, the
process's peak RSS, and CPU seconds (user+sys of this process, all
threads) per million messages.

    python bench/produce_bench.py                 # starts a Kafka 4.x broker
    BROKERS=127.0.0.1:9092 python bench/produce_bench.py
    python bench/produce_bench.py --messages 200000 --partitions 3 \\
        --compression lz4 --runs 3

Methodology (performance.md section 5): the topic is created first, one
warm-up run of 10% of the messages is not counted, the message payloads
are made before the clock starts (one bytes object reused, as a
producing application would pass its own buffer), and the broker shares
the machine's cores with the client, as in every figure on this page.
The malloc settings in effect are printed with the results.
"""

import argparse
import os
import resource
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from pykafka_c.client import KafkaClient  # noqa: E402
from pykafka_c.common import CompressionType  # noqa: E402
from pykafka_c.producer import Producer  # noqa: E402

CODECS = {"none": CompressionType.NONE, "gzip": CompressionType.GZIP,
          "snappy": CompressionType.SNAPPY, "lz4": CompressionType.LZ4,
          "zstd": CompressionType.ZSTD}


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_once(client, topic, n, size, args, reports):
    payload = os.urandom(size)
    producer = Producer(client.cluster, topic,
                        compression=CODECS[args.compression],
                        required_acks=args.acks,
                        linger_ms=args.linger_ms,
                        min_queued_messages=args.min_queued,
                        max_queued_messages=args.max_queued,
                        delivery_reports=reports)
    produce = producer.produce
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    for _ in range(n):
        produce(payload)
    t_queued = time.perf_counter()
    pending = producer.flush()
    t1 = time.perf_counter()
    cpu1 = cpu_seconds()
    stats = producer._core.stats()
    if reports:
        got = 0
        while True:
            try:
                producer.get_delivery_report(block=False)
                got += 1
            except Exception:
                break
        assert got == n, (got, n)
    producer.stop()
    if pending or stats["failed"]:
        raise SystemExit("delivery incomplete: %d pending, %d failed"
                         % (pending, stats["failed"]))
    return t1 - t0, t_queued - t0, cpu1 - cpu0, stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--acks", type=int, default=1)
    ap.add_argument("--compression", choices=sorted(CODECS), default="none")
    ap.add_argument("--linger-ms", type=int, default=5000)
    ap.add_argument("--min-queued", type=int, default=70000)
    ap.add_argument("--max-queued", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--reports", action="store_true",
                    help="enable delivery reports and read them all")
    ap.add_argument("--kafka-version", default=None)
    args = ap.parse_args(argv)

    instance = None
    hosts = os.environ.get("BROKERS")
    if not hosts:
        from pykafka_c.test.kafka_instance import (DEFAULT_KAFKA_VERSION,
                                                   KafkaInstance)
        instance = KafkaInstance(
            1, kafka_version=args.kafka_version or DEFAULT_KAFKA_VERSION)
        hosts = instance.brokers
    try:
        client = KafkaClient(hosts)
        name = "pkc-bench-%s" % uuid.uuid4().hex[:8]
        broker = list(client.brokers.values())[0]
        broker.create_topics([{"name": name,
                               "num_partitions": args.partitions,
                               "replication_factor": 1}], timeout=10000)
        deadline = time.time() + 30
        while True:
            client.update_cluster()
            if name.encode() in client.topics:
                topic = client.topics[name]
                if all(p.leader is not None
                       for p in topic.partitions.values()):
                    break
            if time.time() > deadline:
                raise SystemExit("topic %s has no leaders" % name)
            time.sleep(0.2)

        run_once(client, topic, max(1000, args.messages // 10), args.size,
                 args, args.reports)
        print("malloc: MALLOC_TRIM_THRESHOLD_=%s PYTHONMALLOC=%s"
              % (os.environ.get("MALLOC_TRIM_THRESHOLD_", "(default)"),
                 os.environ.get("PYTHONMALLOC", "(default)")))
        print("%d x %d B, %d partition(s), acks=%d, compression=%s, "
              "linger_ms=%d, min_queued=%d, reports=%s"
              % (args.messages, args.size, args.partitions, args.acks,
                 args.compression, args.linger_ms, args.min_queued,
                 args.reports))
        for i in range(args.runs):
            total, queued, cpu, stats = run_once(
                client, topic, args.messages, args.size, args, args.reports)
            rate = args.messages / total
            print("run %d: %.3f s (produce() loop %.3f s): %.0f msg/s, "
                  "%.1f MB/s of values, peak RSS %.0f MiB, CPU %.2f s per "
                  "million (%d requests, %d batches, %.1f MB on the wire)"
                  % (i + 1, total, queued, rate, rate * args.size / 1e6,
                     peak_rss_mib(), cpu / args.messages * 1e6,
                     stats["requests"], stats["batches_sent"],
                     stats["bytes_sent"] / 1e6))
        client.close()
    finally:
        if instance is not None:
            instance.terminate()


if __name__ == "__main__":
    main()
