"""Lifecycle calls from many threads at once, on shared objects.

Eight threads call the lifecycle methods of one SimpleConsumer, one
balanced consumer, one producer (asynchronous and synchronous) at random
for a bounded time, several rounds each: start, stop, consume, iteration,
consume_batch, commit_offsets, reset_offsets, held_offsets, produce, flush,
get_delivery_report, the context managers.  Each call either works or
raises one of the typed exceptions the object documents for a stopped
object (ConsumerStoppedException, ProducerStoppedException, queue.Empty);
nothing hangs (every thread ends within its budget), nothing crashes, and
the object is still usable afterwards (start(), then a message goes
through).  A last test drops objects without stopping them and lets the
interpreter exit.
"""

import faulthandler
import io
import queue
import random
import subprocess
import sys
import threading
import time

import pytest

from cbuild import python_env
from pykafka_c import KafkaClient, _core
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import (ConsumerStoppedException,
                                  ProducerStoppedException)

THREADS = 8
ROUND_S = 3.0
ROUNDS = 3
#: A thread that has not finished this long after its round ended hangs.
HANG_S = 30.0


def hammer(obj, actions, allowed, seed):
    """THREADS threads call random actions on obj for ROUND_S seconds.
    Returns the unexpected exceptions; fails if a thread hangs."""
    errors = []
    stop_at = time.monotonic() + ROUND_S
    calls = [0]

    def run(tid):
        rnd = random.Random(seed * 100 + tid)
        while time.monotonic() < stop_at:
            name, fn = rnd.choice(actions)
            try:
                fn(obj)
            except allowed:
                pass
            except Exception as exc:  # recorded for the assertion below
                errors.append((name, exc))
            calls[0] += 1

    threads = [threading.Thread(target=run, args=(i,), daemon=True)
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(ROUND_S + HANG_S)
    alive = [t for t in threads if t.is_alive()]
    if alive:
        out = io.StringIO()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise AssertionError("%d thread(s) hang in %r%s" % (len(alive), obj,
                                                           out.getvalue()))
    assert calls[0] > THREADS, "the threads made only %d calls" % calls[0]
    return errors


def produce_n(topic, n, prefix):
    with topic.get_sync_producer() as p:
        for i in range(n):
            p.produce(b"%s-%d" % (prefix, i), partition_key=b"%d" % i)


def threads_gone(threads, timeout=5.0):
    """Wait up to `timeout` s for `threads()` to return no thread; returns
    what it returns last."""
    deadline = time.monotonic() + timeout
    while threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    return threads()


@pytest.fixture
def client(kafka):
    c = KafkaClient(kafka.brokers)
    yield c
    c.close()


# ------------------------------------------------------------- consumers

def simple_consumer_actions():
    def consume_block(c):
        c.consume(block=True)

    def iterate(c):
        for _ in c:
            break

    def consume_batch(c):
        c.consume_batch(10, 20)

    return [
        ("start", lambda c: c.start()),
        ("stop", lambda c: c.stop()),
        ("consume", lambda c: c.consume(block=False)),
        ("consume-block", consume_block),
        ("iterate", iterate),
        ("consume_batch", consume_batch),
        ("commit_offsets", lambda c: c.commit_offsets()),
        ("reset_offsets", lambda c: c.reset_offsets()),
        ("held_offsets", lambda c: c.held_offsets),
        ("fetch_offsets", lambda c: c.fetch_offsets()),
    ]


def test_simple_consumer_lifecycle_from_eight_threads(kafka, client,
                                                      topic_name):
    kafka.create_topic(topic_name, 3)
    topic = client.topics[topic_name]
    produce_n(topic, 300, b"m")
    consumer = topic.get_simple_consumer(
        consumer_group=("g-" + topic_name).encode(),
        auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=50,
        auto_commit_enable=True, auto_commit_interval_ms=100)
    for r in range(ROUNDS):
        errors = hammer(consumer, simple_consumer_actions(),
                        (ConsumerStoppedException,), r)
        assert errors == [], errors[:5]
    # Still usable: start, and a new message arrives.
    consumer.start()
    consumer.reset_offsets([(p, OffsetType.LATEST)
                            for p in topic.partitions.values()])
    produce_n(topic, 1, b"after")
    deadline = time.monotonic() + 30
    got = None
    while got is None and time.monotonic() < deadline:
        got = consumer.consume(block=True)
    consumer.stop()
    assert got is not None and got.value == b"after-0"


def test_fetcher_start_after_racing_start_and_stop_runs_the_thread():
    """start() and stop() of one Fetcher at once in two threads, then a
    start() alone: the fetch thread runs.  (A start() that returned while
    the other thread's stop() was joining once left a flag saying
    "running" over a stopped engine, and every later start() believed
    it: the consumer never fetched again.)"""
    fetcher = _core.Fetcher(b"race")
    try:
        for i in range(1500):
            gate = threading.Barrier(2)

            def call(method):
                gate.wait()
                method()

            racers = [threading.Thread(target=call, args=(m,))
                      for m in (fetcher.start, fetcher.stop)]
            for t in racers:
                t.start()
            for t in racers:
                t.join()
            fetcher.start()
            assert fetcher.running, "round %d: start() left no thread" % i
            fetcher.stop()
            assert not fetcher.running, "round %d" % i
    finally:
        fetcher.stop()


def test_simple_consumer_start_and_stop_leave_one_autocommitter(
        kafka, client, topic_name):
    """Concurrent start() and stop() calls leave one auto-commit thread
    at most, and none after a last stop()."""
    kafka.create_topic(topic_name, 1)
    consumer = client.topics[topic_name].get_simple_consumer(
        consumer_group=("ac-" + topic_name).encode(),
        auto_commit_enable=True, auto_commit_interval_ms=50)

    def all_committers():
        return [t for t in threading.enumerate() if t.is_alive() and
                t.name == "pykafka_c.SimpleConsumer.autocommitter"]

    others = set(all_committers())  # earlier tests' consumers, if any

    def committers():
        return [t for t in all_committers() if t not in others]

    try:
        for _ in range(20):
            racers = [threading.Thread(target=m) for m in
                      (consumer.start, consumer.start, consumer.stop,
                       consumer.start)]
            for t in racers:
                t.start()
            for t in racers:
                t.join()
            consumer.start()
            assert len(committers()) <= 1
    finally:
        consumer.stop()
    assert threads_gone(committers) == []


def test_balanced_consumer_lifecycle_from_eight_threads(kafka, client,
                                                        topic_name):
    kafka.create_topic(topic_name, 3)
    topic = client.topics[topic_name]
    produce_n(topic, 100, b"m")
    consumer = topic.get_balanced_consumer(
        ("bg-" + topic_name).encode(), managed=True,
        auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=50,
        heartbeat_interval_ms=300, session_timeout_ms=6000)
    actions = [a for a in simple_consumer_actions()
               if a[0] not in ("fetch_offsets", "consume_batch")]
    for r in range(ROUNDS):
        errors = hammer(consumer, actions, (ConsumerStoppedException,), r)
        assert errors == [], errors[:5]
    consumer.start()
    deadline = time.monotonic() + 60
    while not consumer.partitions and time.monotonic() < deadline:
        time.sleep(0.1)
    consumer.stop()
    assert time.monotonic() < deadline, "the consumer never got partitions"


def test_balanced_consumer_concurrent_starts_leave_one_heartbeat_thread(
        kafka, client, topic_name):
    """start() from four threads at once joins the group once: one
    heartbeat thread, none after stop()."""
    kafka.create_topic(topic_name, 1)
    group = "hb-" + topic_name
    consumer = client.topics[topic_name].get_balanced_consumer(
        group.encode(), managed=True, auto_start=False,
        heartbeat_interval_ms=300, session_timeout_ms=6000)

    def heartbeat_threads():
        return [t for t in threading.enumerate() if t.is_alive() and
                t.name == "pykafka_c.BalancedConsumer.heartbeats[%s]" % group]

    try:
        starters = [threading.Thread(target=consumer.start)
                    for _ in range(4)]
        for t in starters:
            t.start()
        for t in starters:
            t.join(60)
        assert not any(t.is_alive() for t in starters), "a start() hangs"
        assert len(heartbeat_threads()) == 1
        assert consumer.partitions, "the consumer has no partition"
    finally:
        consumer.stop()
    assert threads_gone(heartbeat_threads) == []


def test_balanced_commit_and_reset_after_stop_raise_at_once(kafka, client,
                                                           topic_name):
    """After stop() the member has left the group: commit_offsets() and
    reset_offsets() say so with ConsumerStoppedException instead of
    retrying the coordinator's UNKNOWN_MEMBER_ID for seconds."""
    kafka.create_topic(topic_name, 2)
    topic = client.topics[topic_name]
    produce_n(topic, 10, b"m")
    group = ("st-" + topic_name).encode()
    consumer = topic.get_balanced_consumer(
        group, managed=True, auto_offset_reset=OffsetType.EARLIEST,
        auto_commit_enable=False, consumer_timeout_ms=10000)
    got = [consumer.consume() for _ in range(3)]
    assert all(m is not None for m in got)
    consumer.commit_offsets()
    consumer.stop()
    for call in (consumer.commit_offsets, consumer.reset_offsets):
        t0 = time.monotonic()
        with pytest.raises(ConsumerStoppedException,
                           match="stopped and left the group"):
            call()
        assert time.monotonic() - t0 < HANG_S / 10
    # What was committed before stop() stands: a new member resumes there.
    again = topic.get_balanced_consumer(
        group, managed=True, auto_offset_reset=OffsetType.EARLIEST,
        consumer_timeout_ms=10000)
    try:
        rest = [again.consume() for _ in range(7)]
    finally:
        again.stop()
    assert sorted(m.value for m in got + rest) == \
        sorted(b"m-%d" % i for i in range(10))


# ------------------------------------------------------------- producers

def producer_actions(sync):
    def produce(p):
        p.produce(b"x", partition_key=b"%d" % random.randrange(3))

    def report(p):
        p.get_delivery_report(block=False)

    def report_wait(p):
        p.get_delivery_report(block=True, timeout=0.05)

    def context(p):
        with p:
            produce(p)

    actions = [
        ("start", lambda p: p.start()),
        ("stop", lambda p: p.stop()),
        ("produce", produce),
        ("produce", produce),
        ("produce", produce),
        ("flush", lambda p: p.flush(1.0)),
        ("context", context),
    ]
    if not sync:
        actions += [("report", report), ("report-wait", report_wait)]
    return actions


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_producer_lifecycle_from_eight_threads(kafka, client, topic_name,
                                               sync):
    kafka.create_topic(topic_name, 3)
    topic = client.topics[topic_name]
    if sync:
        producer = topic.get_sync_producer()
    else:
        producer = topic.get_producer(linger_ms=5, delivery_reports=True,
                                      pending_timeout_ms=2000)
    for r in range(ROUNDS):
        errors = hammer(producer, producer_actions(sync),
                        (ProducerStoppedException, queue.Empty), r)
        assert errors == [], errors[:5]
    producer.start()
    producer.produce(b"after", partition_key=b"0")
    assert producer.flush(30) == 0
    producer.stop()


# ------------------------------------------------------- interpreter exit

def test_objects_left_running_at_interpreter_exit(kafka, topic_name):
    """A script that starts a consumer, a balanced consumer and producers
    and exits without stopping them (or while another thread consumes)
    ends promptly and cleanly."""
    kafka.create_topic(topic_name, 2)
    script = """
import sys, threading
from pykafka_c import KafkaClient
client = KafkaClient(sys.argv[1])
topic = client.topics[sys.argv[2]]
producer = topic.get_producer(linger_ms=1000)
for i in range(100):
    producer.produce(b"exit-%d" % i)
sync = topic.get_sync_producer()
sync.produce(b"sync")
consumer = topic.get_simple_consumer(consumer_group=b"exit-g",
                                     auto_commit_enable=True)
balanced = topic.get_balanced_consumer(b"exit-b", managed=True)
t = threading.Thread(target=lambda: consumer.consume(block=True), daemon=True)
t.start()
print("started", flush=True)
"""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script, kafka.brokers,
                           topic_name], capture_output=True, text=True,
                          timeout=120, env=python_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "started" in proc.stdout
    assert "Fatal Python error" not in proc.stderr
    assert time.monotonic() - t0 < 60
