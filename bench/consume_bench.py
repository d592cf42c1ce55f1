"""Consume throughput of pykafka_c's SimpleConsumer (not a timed test).

Pre-fills a topic on a local broker with N messages of S bytes (default 1
million x 100 bytes, uncompressed, written as large RecordBatch v2 batches
with pykafka_c's encoder), then consumes all of them in fresh processes,
once per mode:

* ``consume``  -- ``m = consumer.consume()`` in a Python loop (the
  pykafka API, one call per message);
* ``iter``     -- ``for m in consumer`` (the C iterator);
* ``batch``    -- ``consumer.consume_batch(10000)`` (pykafka_c extra).

Each mode reads ``m.value`` of every message (the application's minimum
work), and reports messages/s, MB/s of values, CPU seconds per million
messages (process CPU: the Python thread plus the C fetch thread) and peak
RSS of the consuming process.  The broker runs on the same machine and its
CPU is not counted.

Usage::

    python bench/consume_bench.py                # starts a Kafka 4.x broker
    python bench/consume_bench.py --brokers HOST:PORT   # an existing one
    python bench/consume_bench.py --messages 200000 --modes consume,batch

Options --queued-max-messages and --fetch-message-max-bytes pass through to
the consumer (defaults: pykafka's 2000 and 1 MiB).  Record the malloc
settings (MALLOC_* / PYTHONMALLOC) with the numbers; see
performance.md section 5.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def _produce_all(brokers, topic_name, partitions, n, size):
    from pykafka_c import _core
    from pykafka_c.broker import ApiKey
    from pykafka_c.client import KafkaClient

    client = KafkaClient(brokers)
    topic = client.topics[topic_name]
    value = b"x" * size
    # Batches of about 64 KiB, as a producer with a modest batch size
    # writes them (Java's default batch.size is 16 KiB, librdkafka's 1 MB).
    per_batch = max(1, (64 * 1024) // (size + 16))
    sent = 0
    t0 = time.monotonic()
    pid = 0
    while sent < n:
        k = min(per_batch, n - sent)
        batch = _core.encode_record_batch([(value, None, None, [])] * k)
        part = topic.partitions[pid % partitions]
        for attempt in range(20):
            resp = part.leader.request(ApiKey.PRODUCE, {
                "transactional_id": None, "acks": 1, "timeout_ms": 30000,
                "topic_data": [{"name": topic_name, "partition_data": [
                    {"index": part.id, "records": batch}]}]})
            err = resp["responses"][0]["partition_responses"][0][
                "error_code"]
            if err == 0:
                break
            time.sleep(0.5)
            client.update_cluster()
            part = topic.partitions[pid % partitions]
        else:
            raise RuntimeError("produce failed with error %d" % err)
        sent += k
        pid += 1
    client.close()
    return time.monotonic() - t0


def _consume(args):
    """One mode, in this (fresh) process; prints a JSON result line."""
    from pykafka_c.client import KafkaClient

    client = KafkaClient(args.brokers)
    topic = client.topics[args.topic]
    consumer = topic.get_simple_consumer(
        queued_max_messages=args.queued_max_messages,
        fetch_message_max_bytes=args.fetch_message_max_bytes,
        consumer_timeout_ms=10000)
    n = args.messages
    nbytes = 0
    count = 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if args.mode == "consume":
        consume = consumer.consume
        while count < n:
            m = consume()
            if m is None:
                break
            nbytes += len(m.value)
            count += 1
    elif args.mode == "iter":
        for m in consumer:
            nbytes += len(m.value)
            count += 1
            if count == n:
                break
    elif args.mode == "batch":
        while count < n:
            msgs = consumer.consume_batch(10000, -1)
            if not msgs:
                break
            for m in msgs:
                nbytes += len(m.value)
            count += len(msgs)
    else:
        raise SystemExit("unknown mode %r" % args.mode)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    stats = consumer._fetcher.stats()
    consumer.stop()
    client.close()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "mode": args.mode, "messages": count, "seconds": elapsed,
        "msgs_per_s": count / elapsed, "mb_per_s": nbytes / elapsed / 1e6,
        "cpu_s_per_million": cpu / count * 1e6 if count else None,
        "peak_rss_mb": rss_kb / 1024.0, "fetches": stats["fetches_sent"],
        "wakeups": stats["wakeups"]}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", help="host:port of a running cluster "
                    "(default: start a single Kafka broker)")
    ap.add_argument("--kafka-version", default=None)
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--modes", default="consume,iter,batch")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--queued-max-messages", type=int, default=2000)
    ap.add_argument("--fetch-message-max-bytes", type=int, default=1048576)
    ap.add_argument("--topic")
    ap.add_argument("--mode", help=argparse.SUPPRESS)  # child process
    args = ap.parse_args(argv)

    if args.mode:
        return _consume(args)

    kafka = None
    if not args.brokers:
        from pykafka_c.test.kafka_instance import (DEFAULT_KAFKA_VERSION,
                                                   KafkaInstance)
        kafka = KafkaInstance(num_instances=1, kafka_version=(
            args.kafka_version or DEFAULT_KAFKA_VERSION))
        args.brokers = kafka.brokers
    try:
        if not args.topic:
            from pykafka_c.test.utils import ExternalCluster
            args.topic = "bench-%d" % int(time.time())
            admin = kafka or ExternalCluster(args.brokers)
            admin.create_topic(args.topic, num_partitions=args.partitions)
            secs = _produce_all(args.brokers, args.topic, args.partitions,
                                args.messages, args.size)
            print("pre-filled %d x %d B in %.1f s" % (args.messages,
                                                     args.size, secs))
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        print("%-8s %10s %9s %8s %10s %9s" % ("mode", "msg/s", "MB/s",
                                              "seconds", "CPU s/M",
                                              "RSS MB"))
        for _ in range(args.repeat):
            for mode in args.modes.split(","):
                cmd = [sys.executable, os.path.abspath(__file__),
                       "--brokers", args.brokers, "--topic", args.topic,
                       "--messages", str(args.messages), "--mode", mode,
                       "--queued-max-messages",
                       str(args.queued_max_messages),
                       "--fetch-message-max-bytes",
                       str(args.fetch_message_max_bytes)]
                out = subprocess.run(cmd, env=env, capture_output=True,
                                     text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                print("%-8s %10.0f %9.1f %8.2f %10.2f %9.1f%s" % (
                    r["mode"], r["msgs_per_s"], r["mb_per_s"],
                    r["seconds"], r["cpu_s_per_million"], r["peak_rss_mb"],
                    "" if r["messages"] == args.messages else
                    "  (only %d messages!)" % r["messages"]))
    finally:
        if kafka is not None:
            kafka.terminate()


if __name__ == "__main__":
    main()
