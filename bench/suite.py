"""The benchmark suite: plan, brokers, data, runs, checks, results.

See bench/README.md for what is measured and how.  Entry point:
``python -m bench [--quick] ...`` (:func:`main`).
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

from bench import env
from bench.kafkautil import BenchError, KcatCluster, broker_pid, find_kcat
from bench.payloads import expected_consume, expected_produce
from bench.worker import busiest_thread, proc_cpu_seconds, proc_thread_cpu_seconds

REPO = env.REPO

#: Messages per workload: (value size, count).
FULL_SIZES = ((100, 1000000), (1024, 200000))
QUICK_SIZES = ((100, 20000), (1024, 4000))
#: Workloads that also run over TLS: (size, partitions) of the consumers,
#: (size, partitions, codec) of the producers; 100 B at the full count is
#: issue 10's 1M x 100 B.
TLS_CONSUME = ((100, 1),)
TLS_PRODUCE = ((100, 1, "none"),)
#: Pure-Python peers read and write this fraction of the counts (from topics
#: of their own with that many messages), so that a full run fits in well
#: under an hour; the table shows every row's count.  --full-counts: 1.
SLOW_SCALE = {"pykafka": 0.1, "kafka-python": 0.2, "aiokafka": 0.2}

#: Latency rows (issue 16; bench/latency.py): target rates in messages/s,
#: linger (ms) and acks of the producer, and the clients.  Each row runs the
#: schedule for --latency-seconds (quick: one row of about a second).
LATENCY_RATES = (1000, 10000, 100000)
LATENCY_LINGERS = (0, 5)
LATENCY_ACKS = ("1", "all")
LATENCY_CLIENTS = ("pykafka_c", "confluent", "kafka-python", "aiokafka")
LATENCY_SIZE = 100

#: (client, op) -> API label shown in the table.
APIS = {
    ("pykafka_c", "consume"): "consume()",
    ("pykafka_c", "consume_batch"): "consume_batch(%d)",
    ("pykafka_c", "iterate"): "iteration",
    ("confluent", "consume"): "poll()",
    ("confluent", "consume_batch"): "consume(%d)",
    ("kafka-python", "consume"): "iteration",
    ("pykafka", "consume"): "consume()",
    ("java", "consume"): "ConsumerPerformance",
    ("pykafka_c", "produce"): "produce()+flush()",
    ("confluent", "produce"): "produce()+flush()",
    ("kafka-python", "produce"): "send()+flush()",
    ("aiokafka", "consume"): "async for",
    ("aiokafka", "consume_batch"): "getmany(max_records=%d)",
    ("aiokafka", "produce"): "await send()+flush()",
    ("pykafka", "produce"): "produce()+stop()",
    ("java", "produce"): "ProducerPerformance",
    ("pykafka_c", "decode"): "decode_records",
    ("pykafka_c", "latency"): "produce() -> consume()",
    ("confluent", "latency"): "produce()+poll(0) -> poll()",
    ("kafka-python", "latency"): "send() -> next(iterator)",
    ("aiokafka", "latency"): "await send() -> async for",
}
PEERS = ("confluent", "kafka-python", "aiokafka", "pykafka")
#: How a client reaches the broker: the harness's PLAINTEXT listener, or its
#: SSL listener (server authentication, the harness's own CA; issue 10).
TRANSPORTS = ("plaintext", "tls")
#: The consumer setting of the rows that keep a Fetch in flight (issue 10).
DEEP_QUEUE = {"queued_max_messages": 20000}
#: Clients that have TLS rows (the TLS comparison of issue 10).
TLS_CLIENTS = ("pykafka_c", "confluent")
#: What a TLS row's workload label ends with ("consume 100 B p1 TLS").
TLS_SUFFIX = " TLS"


class Row:
    """One client and API on one workload."""

    def __init__(self, kind, client, op, size, count, partitions=None, codec=None,
                 broker=None, batch=None, params=None, transport="plaintext", rate=None):
        self.kind = kind              # consume | produce | decode | latency
        self.client = client
        self.op = op
        self.size = size
        self.count = count
        self.partitions = partitions
        self.codec = codec
        self.broker = broker          # Kafka version string, None for decode
        self.batch = batch
        if transport not in TRANSPORTS:
            raise ValueError("unknown transport %r" % (transport,))
        if transport != "plaintext" and client not in TLS_CLIENTS:
            raise ValueError("%s has no %s rows" % (client, transport))
        self.transport = transport
        self.rate = rate              # latency rows: target messages/s
        api = APIS[(client, op)]
        self.api = api % batch if "%d" in api else api
        self.params = dict(params or {})
        if self.params:
            self.api += ", " + ", ".join("%s=%s" % kv for kv in sorted(self.params.items()))
        self.result = None

    @property
    def workload(self):
        sz = "%d B" % self.size if self.size < 1024 else "%d KiB" % (self.size // 1024)
        if self.kind == "decode":
            return "decode %s" % sz
        w = "%s %s p%d" % (self.kind, sz, self.partitions)
        if self.kind == "latency":
            w += " %s/s" % _rate_label(self.rate)
        if self.kind == "produce":
            w += " " + self.codec
        if self.transport == "tls":
            w += TLS_SUFFIX
        return w

    @property
    def id(self):
        return "%s|%s|%s|%s" % (self.workload, self.broker or "-", self.client, self.api)

    def spec(self):
        return {"kind": self.kind, "client": self.client, "op": self.op, "api": self.api,
                "size": self.size, "count": self.count, "partitions": self.partitions,
                "codec": self.codec, "broker": self.broker, "batch_size": self.batch,
                "params": self.params, "workload": self.workload,
                "transport": self.transport, "rate": self.rate}

    def plaintext_twin(self):
        """Identity of the same row over plaintext (the row a TLS row is
        compared with)."""
        return (self.kind, self.client, self.op, self.size, self.count, self.partitions,
                self.codec, self.broker, self.batch, tuple(sorted(self.params.items())))


def _rate_label(rate):
    return "%dk" % (rate // 1000) if rate >= 1000 and rate % 1000 == 0 else "%d" % rate


def latency_rows(args, k4):
    """The latency rows (issue 16): each client produces at a fixed rate and
    consumes the same partition in another process; linger 0 and 5 ms,
    acks 1 and all.  --quick: pykafka_c at 1k/s, linger 0, acks 1 (and
    confluent's with --peers)."""
    clients = [c for c in LATENCY_CLIENTS if c == "pykafka_c" or args.peers]
    if args.quick:
        rates, lingers, acks = (1000,), (0,), ("1",)
        clients = [c for c in clients if c in ("pykafka_c", "confluent")]
    else:
        rates, lingers, acks = LATENCY_RATES, LATENCY_LINGERS, LATENCY_ACKS
    rows = []
    for rate in rates:
        n = max(100, int(rate * args.latency_seconds))
        for linger in lingers:
            for a in acks:
                for client in clients:
                    rows.append(Row("latency", client, "latency", LATENCY_SIZE, n, 1,
                                    broker=k4, rate=rate,
                                    params={"linger_ms": linger, "acks": a}))
    return rows


def build_plan(args, k4, k39):
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    peers = args.peers
    java = args.java
    batch = args.batch_size
    scale = {} if args.full_counts or args.quick else SLOW_SCALE
    rows = []

    def n_for(client, n):
        return max(1000, int(n * scale.get(client, 1.0)))

    def tls_rows(kind, size, n, p, codec=None):
        """The TLS rows of one workload (issue 10): pykafka_c and
        confluent-kafka on the same broker's SSL listener, with the same
        data, beside their plaintext rows."""
        ops = (("consume", None), ("consume_batch", batch)) if kind == "consume" \
            else (("produce", None),)
        out = []
        for client in TLS_CLIENTS:
            if client != "pykafka_c" and not peers:
                continue
            for op, b in ops:
                out.append(Row(kind, client, op, size, n, p, codec, broker=k4, batch=b,
                               transport="tls"))
        return out

    for size, n in sizes:
        rows.append(Row("decode", "pykafka_c", "decode", size, n if not args.quick
                        else 100000 // (1 + size // 512)))
    if args.quick:
        consume_parts = {100: (1, 6), 1024: (1,)}
        produce_set = [(100, 1, "none"), (100, 1, "zstd"), (1024, 6, "lz4")]
        produce39 = []
    else:
        consume_parts = {100: (1, 6), 1024: (1, 6)}
        produce_set = [(s, p, "none") for s, _ in sizes for p in (1, 6)] + \
                      [(s, 1, c) for s, _ in sizes for c in ("lz4", "zstd")]
        produce39 = [(s, 1, c) for s, _ in sizes for c in ("none", "lz4")]
    counts = dict(sizes)
    for size, n in sizes:
        for p in consume_parts[size]:
            rows.append(Row("consume", "pykafka_c", "consume", size, n, p, broker=k4))
            rows.append(Row("consume", "pykafka_c", "consume_batch", size, n, p, broker=k4,
                            batch=batch))
            if not args.quick:
                rows.append(Row("consume", "pykafka_c", "iterate", size, n, p, broker=k4))
            if peers:
                rows.append(Row("consume", "confluent", "consume", size, n, p, broker=k4))
                rows.append(Row("consume", "confluent", "consume_batch", size, n, p,
                                broker=k4, batch=batch))
                rows.append(Row("consume", "kafka-python", "consume", size,
                                n_for("kafka-python", n), p, broker=k4))
                rows.append(Row("consume", "aiokafka", "consume", size,
                                n_for("aiokafka", n), p, broker=k4))
                rows.append(Row("consume", "aiokafka", "consume_batch", size,
                                n_for("aiokafka", n), p, broker=k4, batch=batch))
            if java:
                rows.append(Row("consume", "java", "consume", size, n, p, broker=k4))
            if (size, p) in TLS_CONSUME:
                rows += tls_rows("consume", size, n, p)
                if not args.quick:
                    # pykafka's queued_max_messages=2000 lets a Fetch go
                    # out only when the queue is nearly empty, so the
                    # client waits out each answer; with room for two
                    # answers one is always in flight (issue 10)
                    for transport in TRANSPORTS:
                        rows.append(Row("consume", "pykafka_c", "consume", size, n, p,
                                        broker=k4, transport=transport,
                                        params=DEEP_QUEUE))
            if k39 and not args.quick:
                rows.append(Row("consume", "pykafka_c", "consume", size, n, p, broker=k39))
                if peers:
                    rows.append(Row("consume", "pykafka", "consume", size,
                                    n_for("pykafka", n), p, broker=k39))
    for size, p, codec in produce_set:
        n = counts[size]
        rows.append(Row("produce", "pykafka_c", "produce", size, n, p, codec, broker=k4))
        if peers:
            rows.append(Row("produce", "confluent", "produce", size, n, p, codec, broker=k4))
            rows.append(Row("produce", "kafka-python", "produce", size,
                            n_for("kafka-python", n), p, codec, broker=k4))
            rows.append(Row("produce", "aiokafka", "produce", size,
                            n_for("aiokafka", n), p, codec, broker=k4))
        if java:
            rows.append(Row("produce", "java", "produce", size, n, p, codec, broker=k4))
            if codec == "none" and not args.quick:
                # The Java producer's defaults (batch.size=16384, linger.ms=5) are
                # not its best; this row is the ceiling with big batches.
                rows.append(Row("produce", "java", "produce", size, n, p, codec, broker=k4,
                                params={"batch.size": 1048576, "linger.ms": 20}))
        if (size, p, codec) in TLS_PRODUCE:
            rows += tls_rows("produce", size, n, p, codec)
    if k39:
        for size, p, codec in produce39:
            n = counts[size]
            rows.append(Row("produce", "pykafka_c", "produce", size, n, p, codec, broker=k39))
            if peers:
                rows.append(Row("produce", "pykafka", "produce", size, n_for("pykafka", n), p,
                                codec, broker=k39))
                if codec == "none":
                    # pykafka's defaults (linger_ms=5000, min_queued_messages=70000)
                    # send one max_request_size request per linger period once
                    # fewer than 70000 messages are queued; librdkafka's linger
                    # shows what pykafka does without that stall.
                    rows.append(Row("produce", "pykafka", "produce", size,
                                    n_for("pykafka", n), p, codec, broker=k39,
                                    params={"linger_ms": 5}))
    if args.latency:
        rows += latency_rows(args, k4)
    if args.latency_only:
        rows = [r for r in rows if r.kind == "latency"]
    if args.tls_only:
        twins = {r.plaintext_twin() for r in rows if r.transport == "tls"}
        rows = [r for r in rows if r.transport == "tls" or r.plaintext_twin() in twins]
    if args.only:
        rx = re.compile(args.only)
        rows = [r for r in rows if rx.search(r.id)]
    return rows


# ------------------------------------------------------------------ processes

class Runner:
    """Starts worker processes and Kafka tools and measures them: one at a
    time, but a latency run's consumer and producer together (and with
    --latency-together, the runs of a round)."""

    def __init__(self, args, venv_py, log_dir):
        self.args = args
        self.venv_py = venv_py
        self.log_dir = log_dir
        self.seq = 0
        self.live = set()           # children running now (rows run together)
        env_ = dict(os.environ)
        env_["PYTHONPATH"] = REPO + os.pathsep + env_.get("PYTHONPATH", "")
        env_.pop("PYTHONSTARTUP", None)
        self.env = env_

    def _log_path(self, tag):
        self.seq += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag)[:80]
        return os.path.join(self.log_dir, "%04d-%s.log" % (self.seq, safe))

    def spawn(self, argv, tag, timeout, started=None):
        """Run argv to completion in a new session; returns (exit status,
        rusage of the child, log path, stdout+stderr text).  ``started``, if
        given, is called with the Popen object once the child runs."""
        log_path = self._log_path(tag)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            self.live.add(proc)
            if started is not None:
                started(proc)
            killed = []

            def kill():
                killed.append(True)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                _, status, ru = os.wait4(proc.pid, 0)
            except BaseException:            # interrupted: take the child down too
                kill()
                proc.wait()
                raise
            finally:
                timer.cancel()
                self.live.discard(proc)
            proc.returncode = os.waitstatus_to_exitcode(status)
        with open(log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        if killed:
            text += "\n[bench: killed after %.0f s]\n" % timeout
        return proc.returncode, ru, log_path, text

    def kill_all(self):
        """Kill every child still running (an interrupted round of rows
        run together: their threads cannot see the interrupt)."""
        for proc in list(self.live):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def worker(self, spec, tag, timeout, started=None):
        py = sys.executable if spec["client"] in ("pykafka_c", "decode") else self.venv_py
        if py is None:
            raise BenchError("no bench virtualenv for %s" % spec["client"])
        spec = dict(spec)
        spec["result_path"] = self._log_path(tag + "-result")[:-4] + ".json"
        rc, ru, log_path, text = self.spawn([py, "-m", "bench.worker", json.dumps(spec)],
                                            tag, timeout, started)
        try:
            with open(spec["result_path"]) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res = {"ok": False, "error": "worker exit %d without a result; log %s:\n%s"
                   % (rc, log_path, text[-3000:])}
        res["wait4_maxrss_kib"] = ru.ru_maxrss
        res["wait4_cpu"] = ru.ru_utime + ru.ru_stime
        res["log"] = log_path
        if not res.get("ok"):
            raise BenchError("%s failed: %s\n%s" % (tag, res.get("error"),
                                                   res.get("traceback", "")[-3000:]))
        return res


# ----------------------------------------------------------------- the rows

def _median(xs):
    return statistics.median(xs) if xs else None


class Context:
    """One running broker: ``cluster`` (a KcatCluster on its PLAINTEXT
    listener, which fills and checks the topics), and ``tls``, the bootstrap
    string of its SSL listener and the CA file that signed its certificate
    (None when the broker has no TLS listener)."""

    def __init__(self, cluster, bpid, kafka_version, tls=None):
        self.cluster = cluster
        self.broker_pid = bpid
        self.kafka_version = kafka_version
        self.tls = tls
        self.filled = {}

    def connection(self, transport):
        """Worker spec entries that reach this broker over ``transport``."""
        if transport == "plaintext":
            return {"brokers": self.cluster.brokers}
        if self.tls is None:
            raise BenchError("the Kafka %s broker has no TLS listener" % self.kafka_version)
        brokers, cafile = self.tls
        return {"brokers": brokers, "ssl_cafile": cafile}

    def consume_topic(self, size, partitions, count):
        """Name of the topic holding values 0..count-1, made and filled on
        first use (a failure is remembered and raised again for later rows)."""
        key = (size, partitions, count)
        got = self.filled.get(key)
        if got is None:
            name = "bench-c-%dB-p%d-n%d" % (size, partitions, count)
            try:
                self.cluster.create_topic(name, partitions)
                t0 = time.monotonic()
                self.cluster.prefill(name, count, size)
                sys.stderr.write("bench: filled %s (Kafka %s) in %.1f s\n"
                                 % (name, self.kafka_version, time.monotonic() - t0))
                got = name
            except Exception as exc:
                got = BenchError("could not make topic %s: %s" % (name, exc))
            self.filled[key] = got
        if isinstance(got, Exception):
            raise got
        return got


class PythonRowRuns:
    """The runs of one Python client's throughput row: its topic (a
    prefilled one to consume, a fresh one to produce into, deleted by
    :meth:`close`), a warm-up run that is not timed and checks the CRC-32
    sum of every value, then timed runs, each checked by count and bytes
    (producers: by the topic's end offsets too)."""

    def __init__(self, row, ctx, runner, args):
        self.row, self.ctx, self.runner, self.args = row, ctx, runner, args
        self.base = row.spec()
        self.base.update(ctx.connection(row.transport), broker_pid=ctx.broker_pid,
                         timeout_s=args.stall_timeout)
        self.produce_topic = None
        self.warm, self.runs, self.verified, self.n_runs = None, [], {}, 0
        if row.kind == "consume":
            self.base["topic"] = ctx.consume_topic(row.size, row.partitions, row.count)
        else:
            self.produce_topic = "bench-p-%s-%s" % (row.client, uuid.uuid4().hex[:8])
            ctx.cluster.create_topic(self.produce_topic, row.partitions)
            self.base["topic"] = self.produce_topic

    def warm_up(self):
        """The warm-up run; sets how many timed runs the row's budget allows."""
        row, ctx = self.row, self.ctx
        self.warm = self.runner.worker(dict(self.base, checksum=True),
                                       "%s-warmup" % row.id, self.args.run_timeout)
        if row.kind == "consume":
            got = {k: self.warm.get(k) for k in ("count", "bytes", "crcsum")}
            want = expected_consume(row.count, row.size)
            if got != want:
                raise BenchError("%s: read %r, wrote %r" % (row.id, got, want))
            self.verified = {"count": True, "bytes": True, "checksum": "warm-up run"}
        else:
            got = ctx.cluster.readback(self.produce_topic)
            want = expected_produce(row.count, row.size)
            if got != want:
                raise BenchError("%s: wrote %r, read back %r (kcat)" % (row.id, want, got))
            self.verified = {"count": True, "bytes": True,
                             "checksum": "warm-up run, read back with kcat"}
        self.n_runs = self.args.runs
        if self.warm["elapsed"] > 0:
            self.n_runs = max(1, min(self.args.runs,
                                     int(self.args.row_budget / self.warm["elapsed"])))

    def timed_run(self):
        row, topic = self.row, self.produce_topic
        i = len(self.runs) + 1
        before = self.ctx.cluster.end_offset_total(topic) if topic else 0
        res = self.runner.worker(dict(self.base, checksum=False), "%s-run%d" % (row.id, i),
                                 self.args.run_timeout)
        if res["count"] != row.count or res["bytes"] != row.count * row.size:
            raise BenchError("%s run %d: %d messages / %d bytes, expected %d / %d"
                             % (row.id, i, res["count"], res["bytes"], row.count,
                                row.count * row.size))
        if topic:
            grew = self.ctx.cluster.end_offset_total(topic) - before
            if grew != row.count:
                raise BenchError("%s run %d: end offsets grew by %d, not %d"
                                 % (row.id, i, grew, row.count))
        self.runs.append(res)

    def result(self):
        self.verified["timed_runs"] = ("count and bytes" if self.row.kind == "consume"
                                       else "count (end offsets) and bytes")
        out = {"warmup": _slim(self.warm), "runs": [_slim(r) for r in self.runs],
               "verified": self.verified}
        if self.warm.get("note"):
            out["note"] = self.warm["note"]
        return out

    def close(self):
        if self.produce_topic:
            try:
                self.ctx.cluster.delete_topic(self.produce_topic)
            except Exception as exc:          # leftover topic: harmless, say so
                sys.stderr.write("bench: could not delete %s: %s\n"
                                 % (self.produce_topic, exc))


def run_python_row(row, ctx, runner, args):
    """One Python client's throughput row: warm-up, then its timed runs."""
    return _raise_failure(run_throughput_setting([row], ctx, runner, args)[row.id])


def _raise_failure(outcome):
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_throughput_setting(rows, ctx, runner, args):
    """The Python clients' rows of one throughput workload on one broker:
    each row's warm-up run, then rounds of one timed run of each row, each
    round in the opposite order of the one before (A B, B A, ...), as for
    the latency rows.  The broker's cost per message drifts over the
    minutes a workload takes (bench/RESULTS.md, "Reading the run"), and
    rows measured one after the other put that drift on one client.  A row
    that fails is left out of the later rounds; the others go on.  Returns
    {row id: result, or the exception that failed it}."""
    outcomes, live = {}, []
    try:
        for row in rows:
            try:
                runs = PythonRowRuns(row, ctx, runner, args)
            except Exception as exc:
                outcomes[row.id] = exc
                continue
            live.append(runs)
            try:
                runs.warm_up()
            except Exception as exc:
                outcomes[row.id] = exc
        going = [r for r in live if r.row.id not in outcomes]
        for n in range(max([r.n_runs for r in going] or [0])):
            for runs in (going if n % 2 == 0 else going[::-1]):
                if runs.row.id in outcomes or n >= runs.n_runs:
                    continue
                try:
                    runs.timed_run()
                except Exception as exc:
                    outcomes[runs.row.id] = exc
        for runs in going:
            outcomes.setdefault(runs.row.id, runs.result())
    finally:
        for runs in live:
            runs.close()
    return outcomes


def _slim(res):
    keep = ("elapsed", "cpu", "cpu_user", "cpu_sys", "broker_cpu", "broker_busiest_thread",
            "peak_rss_kib",
            "wait4_maxrss_kib", "wait4_cpu", "rss_before_kib", "count", "bytes",
            "client_stats", "log")
    return {k: res[k] for k in keep if k in res}


def _in_threads(calls, on_interrupt):
    """Run each of ``calls`` in a thread of its own and wait for all of
    them, in short joins so that Ctrl-C and SIGTERM reach this thread; on
    such an interrupt, ``on_interrupt()`` runs before it propagates."""
    threads = [threading.Thread(target=call, daemon=True) for call in calls]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except BaseException:
        on_interrupt()
        raise


def _run_pair(runner, specs, tags, timeout):
    """Run the consumer and producer workers of a latency row at once; when
    one fails, the other is killed (it would wait for its peer in vain).
    Returns their results in the order given; raises the first failure."""
    procs, results, errors = {}, {}, {}

    def kill_others(me):
        for k, proc in list(procs.items()):
            if k != me:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def one(k):
        try:
            results[k] = runner.worker(specs[k], tags[k], timeout,
                                       started=lambda p: procs.__setitem__(k, p))
        except BaseException as exc:
            errors[k] = exc
            kill_others(k)

    _in_threads([lambda k=k: one(k) for k in range(len(specs))],
                on_interrupt=lambda: kill_others(None))
    if errors:
        # the first failure in time is the cause; the other was killed
        first = min(errors, key=lambda k: 0 if not isinstance(errors[k], BenchError)
                    or "killed" not in str(errors[k]) else 1)
        raise errors[first]
    return [results[k] for k in range(len(specs))]


_LATENCY_VERIFIED = {"count": True, "bytes": True,
                     "checksum": "every timed message received once; count, bytes "
                                 "and CRC-32 sum equal to what the producer sent; "
                                 "end offset = count + 1 (each run)"}


def run_latency_row(row, ctx, runner, args):
    """A latency row (bench/latency.py) alone: ``args.latency_runs``
    schedules, each checked (:func:`_latency_run`); the summary takes the
    median of their percentiles."""
    outcome = run_latency_setting([row], ctx, runner, args)[row.id]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_latency_setting(rows, ctx, runner, args):
    """The latency rows of one setting (rate, linger, acks), one per
    client, in rounds.  Each round runs every row once, in the opposite
    order of the round before (A B, B A, A B, ...): the broker and the
    machine drift over the minutes a setting takes (a young collection
    more or less, a noisy neighbour), and rows run one after the other put
    that drift on one client, where rounds spread it over all of them.
    With ``args.latency_together`` a round runs its rows at the same time
    instead, each client with its own topic, producer and consumer, so that
    every broker pause falls on all of them at once (for rates the machine
    can carry twice over).  A run that fails fails its row and the others
    go on.  Returns {row id: result, or the exception that failed it}."""
    runs = {row.id: [] for row in rows}
    failed = {}
    for n in range(getattr(args, "latency_runs", 1)):
        todo = [row for row in (rows if n % 2 == 0 else rows[::-1]) if row.id not in failed]
        if getattr(args, "latency_together", False):
            outcomes = _latency_runs_together(todo, ctx, runner, args)
        else:
            outcomes = {row.id: _latency_run_or_error(row, ctx, runner, args)
                        for row in todo}
        for row in todo:
            if isinstance(outcomes[row.id], BaseException):
                failed[row.id] = outcomes[row.id]
            else:
                runs[row.id].append(outcomes[row.id])
    return {row.id: failed.get(row.id) or {"runs": runs[row.id],
                                           "verified": dict(_LATENCY_VERIFIED)}
            for row in rows}


def _latency_run_or_error(row, ctx, runner, args):
    try:
        return _latency_run(row, ctx, runner, args)
    except Exception as exc:
        return exc


def _latency_runs_together(rows, ctx, runner, args):
    """One run of each row, all at once; {row id: run or exception}."""
    outcomes = {}

    def one(row):
        outcomes[row.id] = _latency_run_or_error(row, ctx, runner, args)
    # each run's pair of workers waits in its own thread, which an interrupt
    # of the main thread does not reach: the runner takes them all down
    _in_threads([lambda row=row: one(row) for row in rows],
                on_interrupt=lambda: runner.kill_all())
    return outcomes


def _latency_run(row, ctx, runner, args):
    """One schedule of a latency row: a fresh one-partition topic, the
    client's consumer and producer in two processes at once; checks that
    the consumer got every message once and the same bytes and CRC-32 sum
    the producer sent, and that the topic's end offset is count + 1 (the
    warm-up message and the timed ones)."""
    topic = "bench-l-%s-%s" % (row.client, uuid.uuid4().hex[:8])
    ctx.cluster.create_topic(topic, 1)
    base = row.spec()
    base.update(ctx.connection(row.transport), broker_pid=ctx.broker_pid,
                timeout_s=args.stall_timeout, topic=topic,
                warmup_s=min(1.0, args.latency_seconds / 10.0),
                ready_path=os.path.join(runner.log_dir, "ready-%s" % topic))
    try:
        cons, prod = _run_pair(
            runner, [dict(base, role="consumer"), dict(base, role="producer")],
            ["%s-consumer" % row.id, "%s-producer" % row.id],
            args.run_timeout)
        sent = {k: prod[k] for k in ("count", "bytes", "crcsum")}
        got = {k: cons[k] for k in ("count", "bytes", "crcsum")}
        if sent["count"] != row.count:
            raise BenchError("%s: the producer sent %d messages, not %d"
                             % (row.id, sent["count"], row.count))
        if got != sent or cons["missing"] or cons["duplicates"]:
            raise BenchError("%s: sent %r, received %r (%d missing, %d duplicates)"
                             % (row.id, sent, got, cons["missing"], cons["duplicates"]))
        end = ctx.cluster.end_offset_total(topic)
        if end != row.count + 1:
            raise BenchError("%s: the topic's end offset is %d, not %d"
                             % (row.id, end, row.count + 1))
        keep = ("elapsed", "cpu", "cpu_user", "cpu_sys", "peak_rss_kib", "wait4_maxrss_kib",
                "log")
        return {"count": cons["count"], "bytes": cons["bytes"],
                "producer": {k: prod[k] for k in keep + (
                    "achieved_rate", "schedule_s", "send_s", "pacer_lag_mean_us",
                    "pacer_lag_max_us", "sent_late") if k in prod},
                "consumer": {k: cons[k] for k in keep + (
                    "receive_rate", "out_of_order", "in_percentiles") if k in cons},
                "latency": cons["latency"],
                "latency_from_call": cons["latency_from_call"]}
    finally:
        try:
            os.unlink(base["ready_path"])
        except OSError:
            pass
        try:
            ctx.cluster.delete_topic(topic)
        except Exception as exc:
            sys.stderr.write("bench: could not delete %s: %s\n" % (topic, exc))


# --------------------------------------------------------------- Java tools

_CONSUMER_HEADER = re.compile(r"start\.time,\s*end\.time")
_PRODUCER_TOTAL = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec", re.M)


def java_argv(row, topic, brokers, kafka_version):
    from pykafka_c.test.kafka_instance import kafka_tool_command
    if row.kind == "consume":
        args = ["--bootstrap-server", brokers, "--topic", topic, "--messages", row.count,
                "--timeout", 120000]
        tool = "consumer-perf-test"
    else:
        args = ["--topic", topic, "--num-records", row.count, "--record-size", row.size,
                "--throughput", -1, "--producer-props", "bootstrap.servers=" + brokers,
                "acks=1", "compression.type=" + row.codec] + \
               ["%s=%s" % kv for kv in sorted(row.params.items())]
        tool = "producer-perf-test"
    return kafka_tool_command(tool, args, kafka_version=kafka_version, heap="512m")


def java_once(row, topic, ctx, runner, args, tag):
    argv = java_argv(row, topic, ctx.cluster.brokers, ctx.kafka_version)
    b0 = proc_cpu_seconds(ctx.broker_pid) if ctx.broker_pid else None
    bt0 = proc_thread_cpu_seconds(ctx.broker_pid) if ctx.broker_pid else {}
    w0 = time.perf_counter()
    rc, ru, log_path, text = runner.spawn(argv, tag, args.run_timeout)
    wall = time.perf_counter() - w0
    b1 = proc_cpu_seconds(ctx.broker_pid) if ctx.broker_pid else None
    bt1 = proc_thread_cpu_seconds(ctx.broker_pid) if ctx.broker_pid else {}
    if rc != 0:
        raise BenchError("%s: Kafka tool exited %d; log %s:\n%s" % (tag, rc, log_path,
                                                                    text[-3000:]))
    res = {"wait4_maxrss_kib": ru.ru_maxrss, "peak_rss_kib": ru.ru_maxrss,
           "cpu": ru.ru_utime + ru.ru_stime, "wait4_cpu": ru.ru_utime + ru.ru_stime,
           "process_wall": wall, "log": log_path}
    if b0 is not None and b1 is not None:
        res["broker_cpu"] = b1 - b0
    busiest = busiest_thread(bt0, bt1)
    if busiest is not None:
        # over the process's whole life, start-up included, like its CPU
        res["broker_busiest_thread"] = busiest
    if row.kind == "consume":
        lines = text.splitlines()
        idx = [i for i, line in enumerate(lines) if _CONSUMER_HEADER.search(line)]
        if not idx or idx[-1] + 1 >= len(lines):
            raise BenchError("%s: no result line in ConsumerPerformance output:\n%s"
                             % (tag, text[-2000:]))
        names = [x.strip() for x in lines[idx[-1]].split(",")]
        vals = [x.strip() for x in lines[idx[-1] + 1].split(",")]
        rec = dict(zip(names, vals))
        res["count"] = int(rec["data.consumed.in.nMsg"])
        res["elapsed"] = float(rec["fetch.time.ms"]) / 1000.0
        res["tool"] = rec
    else:
        m = _PRODUCER_TOTAL.findall(text)
        if not m:
            raise BenchError("%s: no total line in ProducerPerformance output:\n%s"
                             % (tag, text[-2000:]))
        sent, rate = int(m[-1][0]), float(m[-1][1])
        res["count"] = sent
        res["elapsed"] = sent / rate if rate else float("inf")
        res["tool"] = {"records_sent": sent, "records_per_sec": rate}
    res["bytes"] = res["count"] * row.size
    return res


def run_java_row(row, ctx, runner, args):
    produce_topic = None
    if row.kind == "consume":
        topic = ctx.consume_topic(row.size, row.partitions, row.count)
    else:
        produce_topic = topic = "bench-p-java-%s" % uuid.uuid4().hex[:8]
        ctx.cluster.create_topic(topic, row.partitions)
    try:
        def once(tag):
            before = ctx.cluster.end_offset_total(produce_topic) if produce_topic else 0
            res = java_once(row, topic, ctx, runner, args, tag)
            if res["count"] != row.count:
                raise BenchError("%s: the tool handled %d messages, not %d"
                                 % (tag, res["count"], row.count))
            if produce_topic:
                grew = ctx.cluster.end_offset_total(produce_topic) - before
                if grew != row.count:
                    raise BenchError("%s: end offsets grew by %d, not %d"
                                     % (tag, grew, row.count))
            return res
        warm = once("%s-warmup" % row.id)
        n_runs = max(1, min(args.runs, int(args.row_budget / max(warm["process_wall"], 1e-3))))
        runs = [once("%s-run%d" % (row.id, i + 1)) for i in range(n_runs)]
        verified = {"count": True, "bytes": "fixed record size",
                    "checksum": "n/a (the tool's own payload)",
                    "timed_runs": "count" + (" (end offsets)" if produce_topic else "")}
        return {"warmup": _slim_java(warm), "runs": [_slim_java(r) for r in runs],
                "verified": verified}
    finally:
        if produce_topic:
            try:
                ctx.cluster.delete_topic(produce_topic)
            except Exception as exc:
                sys.stderr.write("bench: could not delete %s: %s\n" % (produce_topic, exc))


def _slim_java(res):
    out = _slim(res)
    out["process_wall"] = res["process_wall"]
    out["tool"] = res["tool"]
    return out


def run_decode_row(row, runner, args):
    spec = row.spec()
    spec["client"] = "decode"
    spec["reps"] = 3 if args.quick else 5
    res = runner.worker(spec, row.id, args.run_timeout)
    return {"runs": [_slim(res)], "decode": {k: res[k] for k in res if k.startswith("ns_")
                                             or k in ("msgs_per_response", "response_bytes",
                                                      "recording", "method",
                                                      "decode_cpu_s", "decode_wall_s")},
            "verified": {"count": True, "checksum": "one response, against the recording"}}


# --------------------------------------------------------------- aggregation

def summarize(row):
    r = row.result
    if r is None or "error" in r:
        return
    if row.kind == "decode":
        d = r["decode"]
        r["summary"] = {"msgs_per_s": 1e9 / d["ns_per_msg"], "ns_per_msg": d["ns_per_msg"],
                        "ns_per_bytes_object": d["ns_per_bytes_object"],
                        "mb_per_s": 1e9 / d["ns_per_msg"] * row.size / 1e6,
                        "peak_rss_mib": r["runs"][0]["peak_rss_kib"] / 1024.0,
                        "cpu_s_per_M": d["ns_per_msg"] / 1000.0, "n_runs": 1}
        return
    if row.kind == "latency":
        r["summary"] = _latency_summary(row, r["runs"])
        return
    runs = r["runs"]
    rates = [x["count"] / x["elapsed"] for x in runs]
    cpus = [x["cpu"] / x["count"] * 1e6 for x in runs]
    bcpu = [x["broker_cpu"] / x["count"] * 1e6 for x in runs if x.get("broker_cpu") is not None]
    rss = [x.get("peak_rss_kib") or x.get("wait4_maxrss_kib") for x in runs]
    # the broker's busiest thread, % of one core over the run's clock
    busy = [100.0 * x["broker_busiest_thread"][1] / (x.get("process_wall") or x["elapsed"])
            for x in runs if x.get("broker_busiest_thread") and x.get("elapsed")]
    med = _median(rates)
    r["summary"] = {
        "msgs_per_s": med, "mb_per_s": med * row.size / 1e6,
        "min_msgs_per_s": min(rates), "max_msgs_per_s": max(rates),
        "cpu_s_per_M": _median(cpus), "broker_cpu_s_per_M": _median(bcpu),
        "broker_busiest_thread_pct": _median(busy),
        "peak_rss_mib": max(rss) / 1024.0 if rss and all(rss) else None,
        "n_runs": len(runs)}
    r["summary"].update(_requests_at_broker(runs))


def _requests_at_broker(runs):
    """pykafka_c's producer: the share of each timed run during which the
    broker had one of its Produce requests, and had the next one waiting
    behind it (the engine's busy_us and backlog_us), medians in %."""
    stats = [(x.get("client_stats") or {}, x["elapsed"]) for x in runs]
    if not stats or any("busy_us" not in st or not el for st, el in stats):
        return {}
    return {"requests_busy_pct": _median([st["busy_us"] / 1e4 / el for st, el in stats]),
            "requests_backlog_pct": _median([st["backlog_us"] / 1e4 / el
                                             for st, el in stats]),
            "requests_per_run": _median([st["requests"] for st, _ in stats])}


def _latency_summary(row, runs):
    """A latency row's summary: the median over its runs of each
    percentile, rate and CPU share (the largest max and RSS); with each
    run's p99 beside it."""
    def med(get):
        vals = [get(x) for x in runs]
        return None if any(v is None for v in vals) else _median(vals)

    def pct(part):
        return lambda x: (100.0 * x[part]["cpu"] / x[part]["elapsed"]
                          if x[part]["elapsed"] else None)
    rss = [x[part].get("peak_rss_kib") or x[part].get("wait4_maxrss_kib")
           for x in runs for part in ("producer", "consumer")]
    rate = med(lambda x: x["producer"]["achieved_rate"])
    return {
        "msgs_per_s": rate, "target_rate": row.rate,
        "p50_us": med(lambda x: x["latency"]["p50_us"]),
        "p99_us": med(lambda x: x["latency"]["p99_us"]),
        "p99_9_us": med(lambda x: x["latency"]["p99_9_us"]),
        "max_us": max(x["latency"]["max_us"] for x in runs),
        "p99_runs_us": [x["latency"]["p99_us"] for x in runs],
        "call_p50_us": med(lambda x: x["latency_from_call"]["p50_us"]),
        "call_p99_us": med(lambda x: x["latency_from_call"]["p99_us"]),
        "call_p99_9_us": med(lambda x: x["latency_from_call"]["p99_9_us"]),
        "pacer_lag_mean_us": med(lambda x: x["producer"]["pacer_lag_mean_us"]),
        "sent_late": sum(x["producer"]["sent_late"] for x in runs),
        "in_percentiles": sum(x["latency"]["n"] for x in runs),
        "producer_cpu_pct": med(pct("producer")),
        "consumer_cpu_pct": med(pct("consumer")),
        "peak_rss_mib": max(rss) / 1024.0 if all(rss) else None,
        "mb_per_s": rate * row.size / 1e6, "n_runs": len(runs)}


def _fmt_us(us):
    if us is None:
        return "-"
    if us >= 1000:
        return "%.1f ms" % (us / 1000.0) if us < 100000 else "%.0f ms" % (us / 1000.0)
    return "%.0f us" % us


def _measured(r):
    return bool(r.result) and "summary" in r.result


def add_ratios(rows):
    """ratio = pykafka_c msg/s / this row's msg/s, against the pykafka_c row
    of the same workload and broker with the same kind of API (per-message
    against per-message, batch against batch; Kafka's tools and the
    producers against pykafka_c's consume() / produce()).  A TLS row also
    gets its rate as a fraction of the same client and API over plaintext
    (``tls_ratio``), when that row was measured."""
    index = {}
    plain = {}
    lat = {}
    for r in rows:
        if r.kind == "latency" and _measured(r) and r.client == "pykafka_c":
            lat[(r.workload, r.broker, r.api.split(", ", 1)[1])] = r
    for r in rows:
        if r.kind != "latency" or r.client == "pykafka_c" or not _measured(r):
            continue
        ref = lat.get((r.workload, r.broker, r.api.split(", ", 1)[1]))
        if ref is not None and ref.result["summary"]["p99_us"]:
            r.result["summary"]["p99_ratio"] = (r.result["summary"]["p99_us"]
                                                / ref.result["summary"]["p99_us"])
            r.result["summary"]["p99_ratio_against"] = ref.id
    rows = [r for r in rows if r.kind != "latency"]
    for r in rows:
        if r.client == "pykafka_c" and _measured(r):
            index[(r.workload, r.broker, r.op)] = r
        if r.transport == "plaintext" and _measured(r):
            plain[r.plaintext_twin()] = r
    for r in rows:
        twin = plain.get(r.plaintext_twin()) if r.transport == "tls" and _measured(r) else None
        if twin is not None:
            r.result["summary"]["tls_ratio"] = (r.result["summary"]["msgs_per_s"]
                                                / twin.result["summary"]["msgs_per_s"])
            r.result["summary"]["tls_ratio_against"] = twin.id
    for r in rows:
        if r.client == "pykafka_c" or not r.result or "summary" not in r.result:
            continue
        ref = index.get((r.workload, r.broker, r.op))
        if ref is not None:
            r.result["summary"]["pkc_ratio"] = (ref.result["summary"]["msgs_per_s"]
                                                / r.result["summary"]["msgs_per_s"])
            r.result["summary"]["pkc_ratio_against"] = ref.id


def targets(rows):
    """Issue 7's targets, each with the measured value and whether it was met."""
    by = {}
    for r in rows:
        if r.result and "summary" in r.result:
            key = (r.workload, r.broker, r.client, r.op)
            # several rows of one client and API (other settings): its best one
            by[key] = max(by.get(key, 0.0), r.result["summary"]["msgs_per_s"])
    out = []
    workloads = sorted({(r.workload, r.broker, r.kind, r.transport) for r in rows
                        if r.kind not in ("decode", "latency")})
    for wl, broker, kind, transport in workloads:
        pkc = by.get((wl, broker, "pykafka_c", kind))
        if pkc is None:
            continue
        if transport == "tls":
            out += _tls_targets(by, wl, broker, kind, pkc, rows)
            continue
        if kind == "consume":
            conf = [by.get((wl, broker, "confluent", op)) for op in ("consume", "consume_batch")]
            conf = [c for c in conf if c]
            if conf:
                out.append(_target("consume() >= 2x confluent's best API", wl, broker,
                                   pkc / max(conf), 2.0))
        else:
            c = by.get((wl, broker, "confluent", "produce"))
            if c:
                out.append(_target("produce >= 1.5x confluent", wl, broker, pkc / c, 1.5))
        pk = by.get((wl, broker, "pykafka", kind))
        if pk:
            out.append(_target("%s >= 30x pure pykafka" % ("consume()" if kind == "consume"
                                                          else "produce"), wl, broker,
                               pkc / pk, 30.0))
        j = by.get((wl, broker, "java", kind))
        if j:
            out.append(_target("%s >= 0.8x Kafka's Java tool" % ("consume()" if kind == "consume"
                                                                else "produce"), wl, broker,
                               pkc / j, 0.8))
    for r in rows:
        ratio = r.result and r.result.get("summary", {}).get("p99_ratio")
        if r.kind == "latency" and r.client == "confluent" and ratio is not None:
            out.append({"target": "latency: p99 <= confluent's (%s)" % r.api.split(", ", 1)[1],
                        "workload": r.workload, "broker": r.broker, "value": ratio,
                        "goal": 1.0, "unit": "x", "met": ratio >= 1.0, "issue": 16})
    for r in rows:
        if r.kind == "decode" and r.size == 100 and r.result and "summary" in r.result:
            ns = r.result["summary"]["ns_per_msg"]
            out.append({"target": "decode <= 100 ns per 100-byte message", "workload": r.workload,
                        "broker": None, "value": ns, "goal": 100.0, "unit": "ns",
                        "met": ns <= 100.0, "issue": 7})
    return out


def _tls_targets(by, wl, broker, kind, pkc, rows):
    """Issue 10's targets for one TLS workload: pykafka_c ahead of
    confluent-kafka over TLS (consume(): against confluent's best API), and
    pykafka_c over TLS at >= 80 % of its own plaintext rate with the same
    settings (each settings variant its own line, the defaults first)."""
    api = "consume()" if kind == "consume" else "produce"
    ops = ("consume", "consume_batch") if kind == "consume" else ("produce",)
    out = []
    conf = [c for c in (by.get((wl, broker, "confluent", op)) for op in ops) if c]
    if conf:
        out.append(_target("over TLS: %s ahead of confluent's best API" % api, wl, broker,
                           pkc / max(conf), 1.0, issue=10))
    own = [r for r in rows if (r.workload, r.broker, r.client, r.op) ==
           (wl, broker, "pykafka_c", kind) and _measured(r)
           and r.result["summary"].get("tls_ratio") is not None]
    for r in sorted(own, key=lambda r: sorted(r.params.items())):
        settings = "".join(" (%s=%s)" % kv for kv in sorted(r.params.items()))
        out.append(_target("%s over TLS >= 0.8x its plaintext rate%s" % (api, settings),
                           wl, broker, r.result["summary"]["tls_ratio"], 0.8, issue=10))
    return out


def _target(name, wl, broker, value, goal, issue=7):
    return {"target": name, "workload": wl, "broker": broker, "value": value, "goal": goal,
            "unit": "x", "met": value >= goal, "issue": issue}


# ----------------------------------------------------------------- the run

def start_broker(version, args):
    from pykafka_c.test.kafka_instance import KafkaInstance
    t0 = time.monotonic()
    inst = KafkaInstance(1, kafka_version=version, heap=args.broker_heap, name="bench")
    sys.stderr.write("bench: Kafka %s broker at %s ready in %.1f s\n"
                     % (version, inst.brokers, time.monotonic() - t0))
    return inst


def run_row(row, ctx, runner, args):
    """Measure one row of any kind; returns its result."""
    if row.kind == "decode":
        return run_decode_row(row, runner, args)
    if row.client == "java":
        return run_java_row(row, ctx, runner, args)
    if row.kind == "latency":
        return run_latency_row(row, ctx, runner, args)
    return run_python_row(row, ctx, runner, args)


def warm_path(row):
    """The broker code path a row exercises, which one warm-up serves:
    its kind (consume, produce, latency) and transport (plaintext, TLS)."""
    return "%s%s" % (row.kind, TLS_SUFFIX if row.transport == "tls" else "")


def needs_warming(row, warmed, args):
    """Whether ``row`` is the first row of a path not yet warmed on its
    broker (none in quick mode; Java rows and decode rows warm nothing)."""
    return (not args.quick and args.warm_runs > 0 and row.kind != "decode"
            and row.client != "java" and warm_path(row) not in warmed)


def warm_broker(row, ctx, runner, args, log):
    """Untimed runs of the first row of each path (:func:`warm_path`) on a
    broker, so that no client's row meets a cold JVM; returns the broker's
    CPU seconds per million messages of each run (the warm-up curve).

    A fresh broker spends several times the CPU per message of a warm one
    on a path until its JIT compiler is done with it: 1M x 100 B produce
    runs in a row cost it 1.8, 0.6, 0.7, 0.5, 0.4 CPU s per M, then
    0.3-0.5; TLS consume runs 2.5, 1.2, 0.7, 0.5, 0.4, 0.3, 0.3, 0.2
    (bench/RESULTS.md, "A warm broker for the TLS rows").  Without this the
    first row of a path (pykafka_c's) ran at a lower ceiling than the rows
    after it.  Latency rows warm with one schedule: their JIT compiler and
    first collections put pauses of 10-20 ms into the first row's p99."""
    log("bench: warming the broker's %s path with %s"
        % (warm_path(row), "one schedule" if row.kind == "latency"
           else "%d untimed runs" % args.warm_runs))
    curve = []
    try:
        if row.kind == "latency":
            _latency_run(row, ctx, runner, args)    # one schedule, not --latency-runs
            return curve
        done = 0
        while done < args.warm_runs:
            res = run_row(row, ctx, runner, args)
            runs = [res["warmup"]] + res["runs"]
            done += len(runs)
            curve += [round(r["broker_cpu"] / r["count"] * 1e6, 2) for r in runs
                      if r.get("broker_cpu") is not None and r.get("count")]
    except Exception as exc:
        log("bench: the warm-up run failed (%s); the rows run anyway"
            % str(exc).splitlines()[0])
    if curve:
        log("bench: broker CPU s per M over the warm-up: %s"
            % ", ".join("%.2f" % x for x in curve))
    return curve


def measuring_units(rows):
    """The rows of one broker in plan order, as units measured together,
    each at the place of its first row: the latency rows of one setting
    (workload, broker, linger, acks) form one unit, whose runs alternate
    between its clients (:func:`run_latency_setting`), and so do the
    Python clients' rows of one throughput workload (workload, broker;
    :func:`run_throughput_setting`); Java and decode rows are units
    alone."""
    units, grouped = [], {}
    for row in rows:
        if row.kind == "latency":
            setting = (row.workload, row.broker, tuple(sorted(row.params.items())))
        elif row.kind in ("consume", "produce") and row.client != "java":
            setting = (row.workload, row.broker)
        else:
            units.append([row])
            continue
        if setting not in grouped:
            grouped[setting] = []
            units.append(grouped[setting])
        grouped[setting].append(row)
    return units


def measure_unit(unit, ctx, runner, args):
    """{row id: result, or the exception that failed it} for one unit of
    :func:`measuring_units`."""
    if unit[0].kind == "latency":
        return run_latency_setting(unit, ctx, runner, args)
    if unit[0].kind in ("consume", "produce") and unit[0].client != "java":
        return run_throughput_setting(unit, ctx, runner, args)
    row = unit[0]
    try:
        return {row.id: run_row(row, ctx, runner, args)}
    except Exception as exc:
        return {row.id: exc}


def record_outcome(row, outcome, seconds, log):
    """Store a row's result (or its failure) and log its line."""
    if isinstance(outcome, BaseException):
        import traceback
        row.result = {"error": "%s: %s" % (outcome.__class__.__name__, outcome)}
        if not isinstance(outcome, BenchError):
            row.result["traceback"] = "".join(traceback.format_exception(
                type(outcome), outcome, outcome.__traceback__))
        log("bench: %-62s FAILED: %s" % (row.id, str(outcome).splitlines()[0]))
        return
    row.result = outcome
    summarize(row)
    s = row.result["summary"]
    if row.kind == "latency":
        log("bench: %-62s p50 %s, p99 %s, p99.9 %s at %.0f msg/s (%.0f s)"
            % (row.id, _fmt_us(s["p50_us"]), _fmt_us(s["p99_us"]),
               _fmt_us(s["p99_9_us"]), s["msgs_per_s"], seconds))
    else:
        log("bench: %-62s %12.0f msg/s (%d runs, %.0f s)"
            % (row.id, s["msgs_per_s"], s["n_runs"], seconds))


def execute(rows, args, runner, log, checkpoint=None):
    by_broker = {}
    for r in rows:
        by_broker.setdefault(r.broker, []).append(r)
    brokers_info = {}
    for version in [None] + sorted(v for v in by_broker if v is not None):
        group = [r for r in by_broker.get(version, []) if r.result is None]
        if not group:
            continue
        inst = ctx = None
        try:
            if version is not None:
                inst = start_broker(version, args)
                tls = ((inst.brokers_ssl, inst.certs.root_cert) if inst.brokers_ssl
                       else None)
                ctx = Context(KcatCluster(inst.brokers), broker_pid(inst), version, tls)
                brokers_info[version] = {"version": inst.broker_version() or version,
                                         "heap": args.broker_heap, "brokers": 1,
                                         "replication_factor": 1,
                                         "startup_s": round(inst.startup_seconds or 0, 1),
                                         "tls_listener": ("SSL (TLS, server authentication "
                                                          "by the harness's own CA)"
                                                          if tls else None),
                                         "settings": "pykafka_c.test.kafka_instance defaults "
                                                     "(KRaft combined node, "
                                                     "num.network.threads=2, "
                                                     "num.io.threads=4)"}
            warmed = {}     # path -> the broker's CPU per M over its warm-up runs
            for unit in measuring_units(group):
                first = unit[0]
                if needs_warming(first, warmed, args):
                    warmed[warm_path(first)] = warm_broker(first, ctx, runner, args, log)
                    brokers_info[version]["warm_up"] = {
                        path: curve for path, curve in warmed.items() if curve}
                t0 = time.monotonic()
                for row in unit:
                    log("bench: %-62s ..." % row.id)
                outcomes = measure_unit(unit, ctx, runner, args)
                for row in unit:
                    record_outcome(row, outcomes[row.id], time.monotonic() - t0, log)
                if checkpoint is not None:
                    checkpoint(brokers_info)
        finally:
            if inst is not None:
                inst.terminate()
    return brokers_info


def parse_args(argv):
    from pykafka_c.test.kafka_instance import DEFAULT_KAFKA_VERSION, KAFKA_39_VERSION
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="pykafka_c against pykafka 2.8, kafka-python, confluent-kafka and "
                    "Kafka's own perf tools, on brokers started by the project's harness.")
    ap.add_argument("--quick", action="store_true",
                    help="small counts, 1 timed run, pykafka_c and decode rows only "
                         "(add --peers / --java for those); what the test suite runs")
    ap.add_argument("--runs", type=int, default=None,
                    help="timed runs per row after the warm-up (default 3; quick: 1)")
    ap.add_argument("--row-budget", type=float, default=None,
                    help="seconds of timed runs per row; slow rows get fewer runs "
                         "(default 150; quick: 60)")
    ap.add_argument("--peers", dest="peers", action="store_true", default=None,
                    help="run the peers (default: on, off with --quick)")
    ap.add_argument("--no-peers", dest="peers", action="store_false")
    ap.add_argument("--java", dest="java", action="store_true", default=None,
                    help="run Kafka's ProducerPerformance/ConsumerPerformance (default: on, "
                         "off with --quick)")
    ap.add_argument("--no-java", dest="java", action="store_false")
    ap.add_argument("--no-kafka39", action="store_true",
                    help="skip the Kafka 3.9 broker (pykafka's rows and pykafka_c on 3.9)")
    ap.add_argument("--full-counts", action="store_true",
                    help="pure-Python peers handle the full counts too (slow)")
    ap.add_argument("--batch-size", type=int, default=1000,
                    help="messages per call of the batch APIs (default 1000)")
    ap.add_argument("--only", metavar="REGEX", default=None,
                    help="run only the rows whose id matches, e.g. 'consume 100 B'")
    ap.add_argument("--tls-only", action="store_true",
                    help="run only the TLS rows (pykafka_c and confluent-kafka on the "
                         "broker's SSL listener) and the same rows over plaintext")
    ap.add_argument("--warm-runs", type=int, default=8,
                    help="untimed runs of the first row of each kind and transport "
                         "(consume, produce; plaintext, TLS) on a broker before any row "
                         "of it, to warm the broker's JIT compiler (default 8; 0 and "
                         "quick mode: none; latency rows warm with one schedule)")
    ap.add_argument("--latency", dest="latency", action="store_true", default=True,
                    help="run the end-to-end latency rows (default: on)")
    ap.add_argument("--no-latency", dest="latency", action="store_false")
    ap.add_argument("--latency-only", action="store_true",
                    help="run only the latency rows (fixed-rate producer, consumer in "
                         "another process; bench/latency.py)")
    ap.add_argument("--latency-runs", type=int, default=None,
                    help="schedules per latency row, each checked; the table shows the "
                         "median of their percentiles (default 3; quick 1)")
    ap.add_argument("--latency-together", action="store_true",
                    help="run the latency rows of one setting (one per client) at the "
                         "same time, each with its own topic, so that every broker pause "
                         "falls on all clients at once (default: one after the other, "
                         "in alternating order)")
    ap.add_argument("--latency-seconds", type=float, default=None,
                    help="length of each latency row's schedule (default 10; quick 1)")
    ap.add_argument("--kafka-version", default=DEFAULT_KAFKA_VERSION)
    ap.add_argument("--kafka39-version", default=KAFKA_39_VERSION)
    ap.add_argument("--broker-heap", default="1g")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"),
                    help="folder for results.json, results.md, chart.png and logs")
    ap.add_argument("--stall-timeout", type=float, default=60.0,
                    help="a run fails when no message arrives for this long")
    ap.add_argument("--run-timeout", type=float, default=None,
                    help="a run is killed after this many seconds (default 900; quick 180)")
    ap.add_argument("--reuse", metavar="RESULTS_JSON", default=None,
                    help="take the rows of an earlier results.json (measured or failed) "
                         "and run only the rows of the plan it lacks")
    ap.add_argument("--retry-failed", action="store_true",
                    help="with --reuse: run the rows that failed there again")
    ap.add_argument("--setup-only", action="store_true",
                    help="install the peers' virtualenv and exit")
    ap.add_argument("--list", action="store_true", help="print the plan and exit")
    args = ap.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.row_budget is None:
        args.row_budget = 60.0 if args.quick else 150.0
    if args.run_timeout is None:
        args.run_timeout = 180.0 if args.quick else 900.0
    if args.peers is None:
        args.peers = not args.quick
    if args.java is None:
        args.java = not args.quick
    if args.latency_seconds is None:
        args.latency_seconds = 1.0 if args.quick else 10.0
    if args.latency_runs is None:
        args.latency_runs = 1 if args.quick else 3
    if args.latency_runs < 1:
        ap.error("--latency-runs must be at least 1")
    if args.latency_only:
        args.latency = True
    if args.latency_seconds <= 0:
        ap.error("--latency-seconds must be positive")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.warm_runs < 0:
        ap.error("--warm-runs must not be negative")
    return args


class Interrupted(BaseException):
    pass


def _on_signal(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted("signal %d" % signum)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM unwinds like Ctrl-C, so the running child and the brokers stop.
    signal.signal(signal.SIGTERM, _on_signal)

    def log(msg):
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    try:
        import pykafka_c._core  # noqa: F401
    except ImportError as exc:
        log("bench: pykafka_c's C extension is not built (%s). Build it in place first: "
            "`python3 setup.py build_ext --inplace` (bench/run.sh does this)." % exc)
        return 2
    k39 = None if args.no_kafka39 else args.kafka39_version
    rows = build_plan(args, args.kafka_version, k39)
    if args.list:
        for r in rows:
            print("%-70s n=%d" % (r.id, r.count))
        return 0
    venv_py = None
    if args.peers or args.setup_only:
        try:
            venv_py = env.venv_python(install=True)
        except env.SetupError as exc:
            log("bench: %s" % exc)
            return 2
        if args.setup_only:
            print(venv_py)
            return 0
    try:
        find_kcat()
    except BenchError as exc:
        log("bench: %s" % exc)
        return 2
    os.makedirs(args.out, exist_ok=True)
    log_dir = os.path.join(args.out, "logs")
    os.makedirs(log_dir, exist_ok=True)
    for f in os.listdir(log_dir):
        os.unlink(os.path.join(log_dir, f))
    facts = env.machine_facts()
    peers = env.venv_versions(venv_py) if venv_py else {}
    reused_from = None
    old_brokers = {}
    if args.reuse:
        with open(args.reuse) as f:
            old = json.load(f)
        reused_from = old.get("generated")
        old_brokers = old.get("brokers") or {}
        spec_keys = set(rows[0].spec()) | {"id"} if rows else set()
        old_rows = {r["id"]: r for r in old.get("rows", [])
                    if not (args.retry_failed and "error" in r) and r.get("error") != "not run"}
        for r in rows:
            o = old_rows.get(r.id)
            if o is not None:
                r.result = {k: v for k, v in o.items() if k not in spec_keys}
                r.result["reused_from"] = reused_from
        log("bench: reusing %d rows from %s (%s)"
            % (sum(1 for r in rows if r.result), args.reuse, reused_from))
        # load averages of both runs are reported
        facts["loadavg_reused_run"] = old.get("machine", {}).get("loadavg_start")
    runner = Runner(args, venv_py, log_dir)
    t0 = time.monotonic()
    log("bench: %d rows; load average %.2f %.2f %.2f" % ((len(rows),) + os.getloadavg()))
    partial = os.path.join(args.out, "results.partial.json")

    def checkpoint(done_brokers):
        """After each row: what is measured so far, usable with --reuse if the
        run is cut short."""
        b = dict(old_brokers)
        b.update(done_brokers)
        part = {"generated": time.strftime("%Y-%m-%d %H:%M:%S %z"), "mode": "partial",
                "machine": dict(facts, loadavg_end=os.getloadavg()), "brokers": b,
                "rows": [dict(r.spec(), id=r.id, **r.result) for r in rows if r.result]}
        with open(partial + ".tmp", "w") as f:
            json.dump(part, f, default=str)
        os.replace(partial + ".tmp", partial)

    brokers_info = dict(old_brokers)
    brokers_info.update(execute(rows, args, runner, log, checkpoint))
    facts["loadavg_end"] = os.getloadavg()
    add_ratios(rows)
    from bench import report
    doc = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "mode": "quick" if args.quick else "full",
        "duration_s": round(time.monotonic() - t0, 1),
        "machine": facts,
        "brokers": brokers_info,
        "clients": {
            "pykafka_c": {"commit": facts["pykafka_c_commit"], "python": sys.executable},
            "peers": {k: peers.get(k) for k in ("pykafka", "kafka-python", "confluent-kafka",
                                                "aiokafka", "lz4", "zstandard", "crc32c",
                                                "cramjam", "matplotlib")}
            if peers else None,
        },
        "settings": report.settings_text(args),
        "reused_rows_from": reused_from,
        "rows": [dict(r.spec(), id=r.id, **(r.result or {"error": "not run"})) for r in rows],
        "targets": targets(rows),
    }
    paths = report.write_all(doc, args.out, venv_py, log)
    print(report.markdown(doc))
    log("bench: results in %s" % ", ".join(paths))
    failed = [r for r in rows if not r.result or "error" in r.result]
    if failed:
        log("bench: %d row(s) FAILED: %s" % (len(failed), ", ".join(r.id for r in failed)))
        return 1
    return 0
