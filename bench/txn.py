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


class _PykafkaC(object):
    """pykafka_c's producer; ``send`` is its produce() (the C method)."""

    def __init__(self, brokers, topic_name, transactional):
        from pykafka_c import KafkaClient
        self.client = KafkaClient(hosts=brokers)   # the topic needs it alive
        topic = self.client.topics[topic_name]
        kwargs = {"transactional_id": "bench-" + topic_name} if transactional else {}
        self.producer = topic.get_producer(required_acks=-1, delivery_reports=False,
                                           **kwargs)
        self.send = self.producer.produce
        self.init = self.producer.init_transactions
        self.begin = self.producer.begin_transaction
        self.commit = self.producer.commit_transaction

    def flush(self):
        return self.producer.flush(120)

    def close(self):
        self.producer.stop()
        self.client.close()


class _Confluent(object):
    """confluent-kafka's Producer; ``send`` serves the local queue when it
    is full, as its users do."""

    def __init__(self, brokers, topic_name, transactional):
        from confluent_kafka import Producer
        self.errors = []
        conf = {"bootstrap.servers": brokers, "acks": "all",
                "enable.idempotence": True, "on_delivery": self._on_delivery,
                "delivery.report.only.error": True}
        if transactional:
            conf["transactional.id"] = "bench-" + topic_name
        self.p = p = Producer(conf)
        produce, poll = p.produce, p.poll

        def send(value):
            while True:
                try:
                    produce(topic_name, value)
                    return
                except BufferError:   # local queue full: serve it, retry
                    poll(0.005)
        self.send = send
        self.begin = p.begin_transaction

    def _on_delivery(self, err, _msg):
        if err is not None:
            self.errors.append(str(err))

    def init(self):
        self.p.init_transactions(30)

    def commit(self):
        self.p.commit_transaction(120)

    def flush(self):
        return self.p.flush(120)

    def close(self):
        if self.errors:
            raise RuntimeError("%d delivery errors, first: %s"
                               % (len(self.errors), self.errors[0]))


def _drive(client, count, every, transactional):
    """One measurement with ``client``: the warm-up, then ``count`` values
    (a commit every ``every`` when ``transactional``).  Returns (seconds,
    CPU seconds, commits including the warm-up's)."""
    from bench.payloads import POOL_SIZE, produce_pool
    pool = produce_pool(SIZE)
    mask = POOL_SIZE - 1
    send = client.send
    commits = 0
    if transactional:
        client.init()
        client.begin()
    send(WARM_UP)                     # connected, producer id known
    if transactional:
        client.commit()
        commits += 1
    elif client.flush():
        raise RuntimeError("the warm-up message was not acknowledged")
    t0, c0 = time.perf_counter(), time.process_time()
    if transactional:
        for start in range(0, count, every):
            client.begin()
            for i in range(start, min(count, start + every)):
                send(pool[i & mask])
            client.commit()
            commits += 1
    else:
        for i in range(count):
            send(pool[i & mask])
        if client.flush():
            raise RuntimeError("messages left unacknowledged after 120 s")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.close()
    return elapsed, cpu, commits


CLIENT_CLASSES = {"pykafka_c": _PykafkaC, "confluent": _Confluent}


def one(spec):
    """Run one measurement in this process; returns a JSON-able dict."""
    transactional = spec["mode"] == "transactional"
    client = CLIENT_CLASSES[spec["client"]](spec["brokers"], spec["topic"],
                                            transactional)
    elapsed, cpu, commits = _drive(client, spec["count"], spec["every"],
                                   transactional)
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
