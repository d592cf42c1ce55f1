"""Throughput of transactional produce (issue 13) beside plain idempotent
produce, for pykafka_c and confluent-kafka, on the same broker and data.

    python -m bench.txn [--runs N] [--count N] [--every N] [--clients ...]
                        [--out FILE.md]

One Kafka 4.x broker from the harness.  Each measurement runs in a fresh
process and produces ``count`` 100-byte values (bench/payloads.py) to a new
one-partition topic with acks=all:

* ``idempotent``: produce everything, then flush;
* ``transactional``: begin a transaction, commit it after every ``every``
  messages (and after the last), as a consume-transform-produce loop does.

The clock runs from the first produce() to the last flush or commit
returning; before it, one warm-up message (in a transaction of its own
for the transactional rows) connects the client and gets its producer id.
Check of every measurement: the partition's end offset is the message
count plus the warm-up, plus one commit marker per transaction for the
transactional rows.  Cells are medians over the runs; the client's CPU is
the CPU time of its process (all threads) over the clock, per million
messages.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid

CLIENTS = ("pykafka_c", "confluent")
MODES = ("idempotent", "transactional")
SIZE = 100
WARM_UP = b"warm-up"


def _pykafka_c(brokers, topic_name, count, every, transactional):
    from pykafka_c import KafkaClient
    from bench.payloads import POOL_SIZE, produce_pool
    pool = produce_pool(SIZE)
    mask = POOL_SIZE - 1
    client = KafkaClient(hosts=brokers)
    topic = client.topics[topic_name]
    kwargs = {"transactional_id": "bench-" + topic_name} if transactional else {}
    producer = topic.get_producer(required_acks=-1, delivery_reports=False,
                                  **kwargs)
    produce = producer.produce
    commits = 0
    if transactional:
        producer.init_transactions()
        producer.begin_transaction()
    produce(WARM_UP)                  # connected, producer id known
    if transactional:
        producer.commit_transaction()
        commits += 1
    elif producer.flush(120):
        raise RuntimeError("the warm-up message was not acknowledged")
    t0, c0 = time.perf_counter(), time.process_time()
    if transactional:
        for start in range(0, count, every):
            producer.begin_transaction()
            for i in range(start, min(count, start + every)):
                produce(pool[i & mask])
            producer.commit_transaction()
            commits += 1
    else:
        for i in range(count):
            produce(pool[i & mask])
        if producer.flush(120):
            raise RuntimeError("messages left unacknowledged after 120 s")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    producer.stop()
    return elapsed, cpu, commits


def _confluent(brokers, topic_name, count, every, transactional):
    from confluent_kafka import Producer
    from bench.payloads import POOL_SIZE, produce_pool
    pool = produce_pool(SIZE)
    mask = POOL_SIZE - 1
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    conf = {"bootstrap.servers": brokers, "acks": "all",
            "enable.idempotence": True, "on_delivery": on_delivery,
            "delivery.report.only.error": True}
    if transactional:
        conf["transactional.id"] = "bench-" + topic_name
    p = Producer(conf)
    produce, poll = p.produce, p.poll

    def send(value):
        while True:
            try:
                produce(topic_name, value)
                return
            except BufferError:       # local queue full: serve it, retry
                poll(0.005)

    commits = 0
    if transactional:
        p.init_transactions(30)
        p.begin_transaction()
    send(WARM_UP)                     # connected, producer id known
    if transactional:
        p.commit_transaction(120)
        commits += 1
    elif p.flush(120):
        raise RuntimeError("the warm-up message was not acknowledged")
    t0, c0 = time.perf_counter(), time.process_time()
    if transactional:
        for start in range(0, count, every):
            p.begin_transaction()
            for i in range(start, min(count, start + every)):
                send(pool[i & mask])
            p.commit_transaction(120)
            commits += 1
    else:
        for i in range(count):
            send(pool[i & mask])
        if p.flush(120):
            raise RuntimeError("messages left unacknowledged after 120 s")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if errors:
        raise RuntimeError("%d delivery errors, first: %s" % (len(errors), errors[0]))
    return elapsed, cpu, commits


RUNNERS = {"pykafka_c": _pykafka_c, "confluent": _confluent}


def one(spec):
    """Run one measurement in this process; returns a JSON-able dict."""
    elapsed, cpu, commits = RUNNERS[spec["client"]](
        spec["brokers"], spec["topic"], spec["count"], spec["every"],
        spec["mode"] == "transactional")
    return {"elapsed_s": elapsed, "commits": commits, "cpu_s": cpu}


def _end_offset(client, topic_name):
    topic = client.topics[topic_name]
    (offsets,) = [r.offset for r in topic.latest_available_offsets().values()]
    return offsets[0]


def measure(clients, runs, count, every, log=sys.stderr):
    from pykafka_c import KafkaClient
    from pykafka_c.test.kafka_instance import KafkaInstance
    samples = {(c, m): [] for c in clients for m in MODES}
    inst = KafkaInstance(1, name="txn")
    try:
        client = KafkaClient(hosts=inst.brokers)
        for run in range(runs):
            for (name, mode) in samples:
                topic_name = "txn-%s-%s" % (mode[:3], uuid.uuid4().hex[:8])
                inst.create_topic(topic_name, 1)
                spec = {"client": name, "mode": mode, "brokers": inst.brokers,
                        "topic": topic_name, "count": count, "every": every}
                out = subprocess.run(
                    [sys.executable, "-m", "bench.txn", "--one", json.dumps(spec)],
                    check=True, capture_output=True, text=True, timeout=600)
                res = json.loads(out.stdout.strip().splitlines()[-1])
                client.update_cluster()
                end = _end_offset(client, topic_name)
                if end != 1 + count + res["commits"]:
                    raise RuntimeError("%s %s: end offset %d, expected 1 + %d messages "
                                       "+ %d markers" % (name, mode, end, count,
                                                         res["commits"]))
                samples[(name, mode)].append(res)
                log.write("txn: run %d %s %s: %.0f msg/s, %.2f CPU s/M\n" % (
                    run + 1, name, mode, count / res["elapsed_s"],
                    res["cpu_s"] / count * 1e6))
        kafka = inst.kafka_version
    finally:
        inst.terminate()
    return {key: {"msgs_per_s": statistics.median(count / r["elapsed_s"] for r in rs),
                  "cpu_s_per_M": statistics.median(r["cpu_s"] / count * 1e6 for r in rs),
                  "commits": rs[0]["commits"], "runs": rs}
            for key, rs in samples.items()}, kafka


def markdown(results, kafka, runs, count, every):
    base = results.get(("confluent", "transactional"))
    lines = ["| Client | Mode | msg/s | CPU s per M | vs confluent-kafka's "
             "transactional | Transactions |", "|---|---|---|---|---|---|"]
    for (name, mode), r in results.items():
        ratio = ("%.2fx" % (r["msgs_per_s"] / base["msgs_per_s"])) if base else ""
        lines.append("| %s | %s | %.0f k | %.2f | %s | %d |" % (
            name, mode, r["msgs_per_s"] / 1000, r["cpu_s_per_M"], ratio,
            r["commits"]))
    lines.append("")
    lines.append("Kafka %s, one broker, one partition; %d x %d B, acks=all, a "
                 "commit every %d messages in the transactional rows; medians "
                 "of %d runs, each client in its own process (bench/txn.py)."
                 % (kafka, count, SIZE, every, runs))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--every", type=int, default=10_000)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--out", default=None, help="also write the table here")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one(json.loads(args.one))))
        return 0
    clients = [c for c in args.clients.split(",") if c]
    unknown = sorted(set(clients) - set(CLIENTS))
    if unknown:
        ap.error("unknown client(s): %s" % ", ".join(unknown))
    results, kafka = measure(clients, args.runs, args.count, args.every)
    table = markdown(results, kafka, args.runs, args.count, args.every)
    sys.stdout.write(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
