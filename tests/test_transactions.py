"""read_committed and read_uncommitted against records written by a real
transactional producer: Kafka's own Java client (tests/java/TxnProducer.java,
run with the JDK's single-file source launcher on the harness's Maven
classpath) commits, aborts and holds a transaction open, and pykafka_c's
SimpleConsumer (isolation_level 1 and 0) must see exactly what Kafka's
transaction rules say: committed records only, never past the last stable
offset, control records never surfaced."""

import os
import subprocess
import threading

import pytest

from pykafka_c import KafkaClient
from pykafka_c.test.kafka_instance import check_java, resolve_classpath

pytestmark = pytest.mark.integration

JAVA_SOURCE = os.path.join(os.path.dirname(__file__), "java",
                           "TxnProducer.java")


class TxnProducer(object):
    """Drives tests/java/TxnProducer.java one command at a time."""

    def __init__(self, kafka, topic):
        cmd = [check_java(), "-Xmx256m", "-XX:+UseSerialGC",
               "-XX:TieredStopAtLevel=1",
               "-cp", resolve_classpath(kafka.kafka_version, "tools"),
               JAVA_SOURCE, kafka.brokers, topic]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._stderr = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        self._expect("ready", timeout=120)

    def _drain(self):
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _expect(self, what, timeout=60):
        box = []
        t = threading.Thread(target=lambda: box.append(
            self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        line = box[0].strip() if box else ""
        if not line.startswith("ok"):
            self.proc.kill()
            raise AssertionError(
                "TxnProducer.java: expected 'ok %s', got %r; stderr:\n%s"
                % (what, line or "(nothing within %d s)" % timeout,
                   "".join(self._stderr[-40:])))
        return line

    def do(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._expect(command.split()[0])

    def close(self):
        if self.proc.poll() is None:
            try:
                self.do("quit")
                self.proc.wait(30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self._drainer.join(10)   # stderr reaches EOF once the JVM exits
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


def _drain(consumer):
    """Every message consume() gives before its consumer_timeout_ms."""
    out = []
    while True:
        m = consumer.consume()
        if m is None:
            return out
        out.append(m)


def test_read_committed_and_uncommitted_against_a_java_transactional_producer(
        kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=1)
    client = KafkaClient(hosts=kafka.brokers)
    txn = TxnProducer(kafka, topic_name)
    committed = uncommitted = None
    try:
        txn.do("begin")
        txn.do("send 0 c1 c2 c3")
        txn.do("commit")                       # offsets 0-2, marker 3
        txn.do("begin")
        txn.do("send 0 a1 a2")
        txn.do("abort")                        # offsets 4-5, marker 6
        txn.do("begin")
        txn.do("send 0 c4 c5")                 # offsets 7-8, still open
        txn.do("flush")

        topic = client.topics[topic_name]
        uncommitted = topic.get_simple_consumer(consumer_timeout_ms=3000,
                                                isolation_level=0)
        committed = topic.get_simple_consumer(consumer_timeout_ms=3000,
                                              isolation_level=1)
        got = _drain(uncommitted)
        assert [(m.offset, m.value) for m in got] == [
            (0, b"c1"), (1, b"c2"), (2, b"c3"), (4, b"a1"), (5, b"a2"),
            (7, b"c4"), (8, b"c5")]
        assert [m.partition_key for m in got] == [m.value for m in got]
        # The open transaction is written (read_uncommitted saw it) but
        # lies past the last stable offset: read_committed stops before it
        # and skips the aborted records.
        got = _drain(committed)
        assert [(m.offset, m.value) for m in got] == [
            (0, b"c1"), (1, b"c2"), (2, b"c3")]
        assert committed.held_offsets == {0: 2}

        txn.do("commit")                       # marker 9
        got = _drain(committed)
        assert [(m.offset, m.value) for m in got] == [(7, b"c4"), (8, b"c5")]
        assert committed.held_offsets == {0: 8}

        # Nothing more after the last marker, and the consumer is not
        # stuck on it: a later transaction is read too.
        txn.do("begin")
        txn.do("send 0 c6")
        txn.do("commit")
        got = _drain(committed)
        assert [(m.offset, m.value) for m in got] == [(10, b"c6")]
        got = _drain(uncommitted)
        assert [(m.offset, m.value) for m in got] == [(10, b"c6")]
    finally:
        for c in (committed, uncommitted):
            if c is not None:
                c.stop()
        txn.close()
        client.close()
