"""Broker-side helpers that do not use pykafka_c's own client code.

Topics are created and deleted through the harness's pure-Python wire
client; data is written and read back with kcat (librdkafka's command
line tool), so a pykafka_c row is always checked against something
pykafka_c did not produce or read itself.
"""

import re
import shutil
import subprocess
import threading
import time
import zlib

from bench.payloads import Checksum, iter_values

__all__ = ["KcatCluster", "BenchError", "find_kcat"]

_MASK = (1 << 64) - 1


class BenchError(RuntimeError):
    """The benchmark could not set up or verify a workload."""


def find_kcat():
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        raise BenchError(
            "kcat was not found on PATH. The benchmark fills its topics and reads "
            "produced data back with it: `apt-get install kcat` (bench/run.sh does "
            "this when apt-get is available).")
    return path


class KcatCluster:
    """A cluster given by its bootstrap string."""

    def __init__(self, brokers):
        from pykafka_c.test.utils import ExternalCluster
        self.brokers = brokers
        self._admin = ExternalCluster(brokers)
        self.kcat = find_kcat()

    def create_topic(self, name, partitions):
        self._admin.create_topic(name, partitions, 1)

    def delete_topic(self, name):
        self._admin.delete_topic(name)

    def topics(self):
        return self._admin.list_topics()

    def prefill(self, name, count, size, extra=(), timeout=600):
        """Write values 0..count-1 (:func:`bench.payloads.make_value`) with
        kcat -P (acks=all, librdkafka's default batching, no compression),
        then check the topic's end offsets add up to ``count``."""
        before = self.end_offset_total(name)
        cmd = [self.kcat, "-P", "-b", self.brokers, "-t", name, "-z", "none",
               "-X", "acks=all"] + list(extra)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        err = []
        t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        t.start()
        try:
            chunk = []
            for v in iter_values(count, size):
                chunk.append(v)
                if len(chunk) == 10000:
                    proc.stdin.write(b"\n".join(chunk) + b"\n")
                    chunk = []
            if chunk:
                proc.stdin.write(b"\n".join(chunk) + b"\n")
            proc.stdin.close()
            rc = proc.wait(timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        t.join(5)
        if rc != 0:
            raise BenchError("kcat -P into %s failed (exit %d): %s"
                             % (name, rc, b"".join(err).decode("utf-8", "replace")[-2000:]))
        got = self.end_offset_total(name) - before
        if got != count:
            raise BenchError("pre-filling %s: end offsets grew by %d, not %d" % (name, got, count))

    def end_offsets(self, name, attempts=20):
        """{partition: end offset} from kcat -Q (offset for timestamp -1).
        Retried for a while: just after a topic is made, its leaders may
        not answer yet."""
        for i in range(attempts):
            try:
                return self._end_offsets(name)
            except BenchError:
                if i == attempts - 1:
                    raise
                time.sleep(0.5)

    def _end_offsets(self, name):
        md = self._admin.metadata()
        t = md.topics.get(name)
        if t is None:
            raise BenchError("topic %s does not exist" % name)
        cmd = [self.kcat, "-Q", "-b", self.brokers]
        for p in sorted(t.partitions):
            cmd += ["-t", "%s:%d:-1" % (name, p)]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=120)
        text = out.stdout.decode("utf-8", "replace")
        offs = {}
        for m in re.finditer(r"\[(\d+)\] offset (-?\d+)", text):
            offs[int(m.group(1))] = int(m.group(2))
        if out.returncode != 0 or set(offs) != set(t.partitions):
            raise BenchError("kcat -Q for %s failed: %s %s" % (
                name, text, out.stderr.decode("utf-8", "replace")[-1000:]))
        return offs

    def end_offset_total(self, name):
        return sum(self.end_offsets(name).values())

    def readback(self, name, timeout=600):
        """Checksum (count, bytes, crc sum) of every value in the topic, read
        from the beginning to the end offsets with kcat -C."""
        cmd = [self.kcat, "-C", "-b", self.brokers, "-t", name, "-o", "beginning", "-e",
               "-q", "-f", "%s\\n"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = []
        t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        t.start()
        c = Checksum()
        crc32 = zlib.crc32
        n = nbytes = s = 0
        try:
            for line in proc.stdout:
                v = line[:-1]
                n += 1
                nbytes += len(v)
                s += crc32(v)
            rc = proc.wait(timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        t.join(5)
        if rc != 0:
            raise BenchError("kcat -C of %s failed (exit %d): %s"
                             % (name, rc, b"".join(err).decode("utf-8", "replace")[-2000:]))
        c.count, c.nbytes, c.crcsum = n, nbytes, s & _MASK
        return c.as_dict()


def broker_pid(instance):
    """Process id of the first broker of a harness KafkaInstance (None if
    unknown), for reading its CPU time from /proc."""
    try:
        proc = instance._brokers[0].proc
        return proc.pid if proc is not None else None
    except (AttributeError, IndexError):
        return None

