"""How long a consumer group takes to settle when a member joins, for each
group protocol pykafka_c speaks (issue 12), and how long the members
already in the group stop consuming meanwhile.

    python -m bench.settle [--runs N] [--protocols range,cooperative-sticky]
                           [--out FILE.md]

One Kafka 4.x broker from the harness, a topic of 6 partitions fed with a
message per partition every 20 ms.  Each run: two pykafka_c balanced
consumers of a new group settle (every partition owned by exactly one
member, the counts balanced), then a third one starts, and the clock runs
from its start until the three are settled the same way.  Every member
consumes in a thread; the "pause" is the longest time, over the two
members that stay, without a delivery from the partitions the member owns
at the end.  Every protocol runs with the same timings: the harness's
broker sets KIP-848's heartbeat interval to 500 ms and its session timeout
to 10 s (Kafka's defaults are 5 s and 45 s), and the classic members get
heartbeat_interval_ms=500 and session_timeout_ms=10000 to match
(pykafka_c's defaults are 3 s and 30 s), so the protocols are compared,
not their default timers.  Settle time and pause are medians over the
runs.

Protocols: ``range`` (pykafka's default, eager: every member gives up
everything at each rebalance), ``cooperative-sticky`` (KIP-429), and
``consumer`` (KIP-848) when this pykafka_c has ``group_protocol``.
"""

import argparse
import inspect
import statistics
import sys
import threading
import time
import uuid

PROTOCOLS = ("range", "cooperative-sticky", "consumer")
N_PARTITIONS = 6
FEED_EVERY_S = 0.02
SETTLE_TIMEOUT_S = 120.0


class Feed(threading.Thread):
    """A message to every partition every FEED_EVERY_S until halted."""

    def __init__(self, topic):
        super().__init__(daemon=True)
        self.topic = topic
        self.halt = threading.Event()
        self.error = None

    def run(self):
        parts = sorted(self.topic.partitions.values(), key=lambda p: p.id)
        by_id = {str(p.id).encode(): p for p in parts}
        try:
            with self.topic.get_producer(
                    partitioner=lambda _ps, key: by_id[key], linger_ms=5,
                    min_queued_messages=1) as producer:
                while not self.halt.is_set():
                    for key in by_id:
                        producer.produce(b"settle", partition_key=key)
                    time.sleep(FEED_EVERY_S)
        except Exception as exc:            # reported by the run
            self.error = exc


class Member(threading.Thread):
    """A balanced consumer consuming in a thread, noting when each
    message came and from which partition."""

    def __init__(self, topic, group, protocol):
        super().__init__(daemon=True)
        self.consumer = topic.get_balanced_consumer(
            group, managed=True, consumer_timeout_ms=200,
            auto_offset_reset=-1, **protocol_kwargs(protocol))
        self.deliveries = []                # (time, partition id)
        self.halt = threading.Event()
        self.error = None
        self.start()

    def run(self):
        while not self.halt.is_set():
            try:
                m = self.consumer.consume(block=True)
            except Exception as exc:        # stopped, or reported
                if not self.halt.is_set():
                    self.error = exc
                return
            if m is not None:
                self.deliveries.append((time.monotonic(), m.partition_id))

    def owned(self):
        return set(self.consumer.partitions)

    def stop(self):
        self.halt.set()
        try:
            self.consumer.stop()
        finally:
            self.join(10)


#: The classic members' timings, those the harness gives KIP-848's.
CLASSIC_TIMINGS = {"heartbeat_interval_ms": 500, "session_timeout_ms": 10000}


def protocol_kwargs(protocol):
    """The get_balanced_consumer keywords that choose ``protocol``."""
    from pykafka_c.membershipprotocol import (CooperativeStickyProtocol,
                                              RangeProtocol)
    if protocol == "range":
        return dict(CLASSIC_TIMINGS, membership_protocol=RangeProtocol)
    if protocol == "cooperative-sticky":
        return dict(CLASSIC_TIMINGS,
                    membership_protocol=CooperativeStickyProtocol)
    return {"group_protocol": "consumer"}


def available(protocol):
    """None when this pykafka_c speaks ``protocol``, else why not."""
    if protocol != "consumer":
        return None
    from pykafka_c.topic import Topic
    if "group_protocol" in inspect.signature(
            Topic.get_balanced_consumer).parameters:
        return None
    return "this pykafka_c has no group_protocol keyword (KIP-848)"


def settled(members):
    """Every partition owned by exactly one member, counts balanced."""
    sets = [m.owned() for m in members]
    union = set().union(*sets)
    return (len(union) == N_PARTITIONS == sum(len(s) for s in sets)
            and max(map(len, sets)) - min(map(len, sets)) <= 1)


def wait_settled(members, what):
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not settled(members):
        for m in members:
            if m.error is not None:
                raise RuntimeError("%s: a member failed: %r" % (what, m.error))
        if time.monotonic() > deadline:
            raise RuntimeError("%s: not settled after %.0f s (owned: %s)"
                               % (what, SETTLE_TIMEOUT_S,
                                  [sorted(m.owned()) for m in members]))
        time.sleep(0.01)
    return time.monotonic()


def longest_pause(member, start, end):
    """Longest time in [start, end] without a delivery to ``member`` from
    the partitions it owns at the end."""
    kept = member.owned()
    times = [start] + [t for t, pid in list(member.deliveries)
                       if pid in kept and start <= t <= end] + [end]
    return max(b - a for a, b in zip(times, times[1:]))


def one_run(client, topic_name, protocol):
    topic = client.topics[topic_name]
    group = "settle-%s-%s" % (protocol, uuid.uuid4().hex[:8])
    members = []
    try:
        members = [Member(topic, group, protocol) for _ in range(2)]
        wait_settled(members, "two members")
        time.sleep(1.0)                     # deliveries before the join
        joined_at = time.monotonic()
        members.append(Member(topic, group, protocol))
        settled_at = wait_settled(members, "three members")
        return settled_at - joined_at, max(
            longest_pause(m, joined_at, settled_at) for m in members[:2])
    finally:
        for m in members:
            m.stop()


def measure(protocols, runs, log=sys.stderr):
    from pykafka_c import KafkaClient
    from pykafka_c.test.kafka_instance import KafkaInstance
    results = {}
    inst = KafkaInstance(1, name="settle")
    try:
        topic_name = "settle-%s" % uuid.uuid4().hex[:8]
        inst.create_topic(topic_name, N_PARTITIONS)
        client = KafkaClient(hosts=inst.brokers)
        feed = Feed(client.topics[topic_name])
        feed.start()
        try:
            for protocol in protocols:
                why = available(protocol)
                if why is not None:
                    results[protocol] = {"error": why}
                    continue
                samples = []
                for i in range(runs):
                    samples.append(one_run(client, topic_name, protocol))
                    log.write("settle: %s run %d: settled in %.2f s, pause "
                              "%.2f s\n" % (protocol, i + 1, *samples[-1]))
                results[protocol] = {
                    "settle_s": statistics.median(s for s, _ in samples),
                    "pause_s": statistics.median(p for _, p in samples),
                    "runs": samples}
        finally:
            feed.halt.set()
            feed.join(30)
        if feed.error is not None:
            raise RuntimeError("the feed failed: %r" % (feed.error,))
        results["_kafka"] = inst.kafka_version
    finally:
        inst.terminate()
    return results


def markdown(results, runs):
    lines = ["| Group protocol | Settle after a third member joins (s) "
             "| Longest pause of the members that stay (s) | Runs |",
             "|---|---|---|---|"]
    for protocol in PROTOCOLS:
        r = results.get(protocol)
        if r is None:
            continue
        if "error" in r:
            lines.append("| %s | not measured: %s | | |" % (protocol, r["error"]))
            continue
        lines.append("| %s | %.2f | %.2f | %d |" % (protocol, r["settle_s"],
                                                   r["pause_s"], runs))
    lines.append("")
    lines.append("Kafka %s, one broker; 6 partitions fed a message each every "
                 "20 ms; every protocol with a 500 ms heartbeat and a 10 s "
                 "session timeout; medians (bench/settle.py)."
                 % results.get("_kafka", "?"))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--protocols", default=",".join(PROTOCOLS),
                    help="comma-separated, of: %s" % ", ".join(PROTOCOLS))
    ap.add_argument("--out", default=None, help="also write the table here")
    args = ap.parse_args(argv)
    protocols = [p for p in args.protocols.split(",") if p]
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        ap.error("unknown protocol(s): %s" % ", ".join(unknown))
    table = markdown(measure(protocols, args.runs), args.runs)
    sys.stdout.write(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
