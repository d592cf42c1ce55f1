"""The benchmark suite's quick mode, so the benchmark code cannot rot.

``python -m bench --quick`` starts its own Kafka 4.x broker with the
harness, fills topics with kcat, runs pykafka_c's consume(),
consume_batch() and producer rows (each in its own process, every one
checked by count and checksum) and the decode-only rows, and writes the
table, results.json and (when the bench virtualenv exists) the chart.  It
needs no network: the peers run only in the full mode.

The unit tests check the parts that decide whether a row is correct: the
expected checksums, the recorded Fetch responses, and that a wrong
checksum or count fails a row.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench import payloads, suite  # noqa: E402
from bench.kafkautil import BenchError  # noqa: E402


# ---------------------------------------------------------------- unit tests

@pytest.mark.unit
def test_values_are_distinct_printable_and_sized():
    vals = [payloads.make_value(i, 100) for i in range(3000)]
    assert len(set(vals)) == 3000
    assert all(len(v) == 100 for v in vals)
    assert all(b"\n" not in v and v.isascii() for v in vals)
    assert payloads.make_value(1234, 1024)[:11] == b"0000001234 "
    with pytest.raises(ValueError):
        payloads.make_value(1, 5)


@pytest.mark.unit
@pytest.mark.parametrize("n", [1, 1023, 1024, 5000])
def test_expected_produce_equals_the_values_sent(n):
    pool = payloads.produce_pool(100)
    sent = [pool[i % payloads.POOL_SIZE] for i in range(n)]
    want = {"count": n, "bytes": 100 * n,
            "crcsum": sum(zlib.crc32(v) for v in sent) % (1 << 64)}
    assert payloads.expected_produce(n, 100) == want


@pytest.mark.unit
def test_expected_consume_is_order_independent():
    c = payloads.Checksum()
    for v in reversed(list(payloads.iter_values(777, 50))):
        c.add(v)
    assert c.as_dict() == payloads.expected_consume(777, 50)


@pytest.mark.unit
@pytest.mark.parametrize("size", [100, 1024])
def test_recorded_fetch_response_holds_messages_in_order(size):
    from bench.record_fetch import decode_values, load
    raw, meta = load(size)
    values = decode_values(raw)
    assert len(values) == meta["records"] > 100
    assert values == [payloads.make_value(i, size) for i in range(len(values))]
    c = payloads.Checksum()
    for v in values:
        c.add(v)
    assert c.as_dict() == meta["checksum"]


class _FakeCluster:
    brokers = "127.0.0.1:1"

    def __init__(self, readback=None, grow=0):
        self._readback = readback
        self._grow = grow
        self._end = 0
        self.deleted = []

    def create_topic(self, name, partitions):
        pass

    def prefill(self, name, count, size):
        pass

    def end_offset_total(self, name):
        self._end += self._grow
        return self._end

    def readback(self, name):
        return self._readback

    def delete_topic(self, name):
        self.deleted.append(name)


class _FakeRunner:
    def __init__(self, results):
        self.results = list(results)
        self.specs = []

    def worker(self, spec, tag, timeout, started=None):
        self.specs.append(spec)
        return dict(self.results.pop(0))


class _Args:
    stall_timeout = 5
    run_timeout = 10
    runs = 2
    row_budget = 100.0
    latency_seconds = 1.0
    latency_runs = 1


def _ctx(cluster):
    return suite.Context(cluster, None, "4.4.0")


@pytest.mark.unit
def test_consume_row_fails_on_a_wrong_checksum():
    row = suite.Row("consume", "pykafka_c", "consume", 100, 2000, 1, broker="4.4.0")
    want = payloads.expected_consume(2000, 100)
    bad = dict(want, crcsum=want["crcsum"] + 1, elapsed=1.0, cpu=0.5)
    with pytest.raises(BenchError, match="read"):
        suite.run_python_row(row, _ctx(_FakeCluster()), _FakeRunner([bad]), _Args())


@pytest.mark.unit
def test_consume_row_fails_on_a_short_timed_run():
    row = suite.Row("consume", "pykafka_c", "consume", 100, 2000, 1, broker="4.4.0")
    want = payloads.expected_consume(2000, 100)
    good = dict(want, elapsed=1.0, cpu=0.5)
    short = dict(good, count=1999, bytes=199900)
    runner = _FakeRunner([good, short])
    with pytest.raises(BenchError, match="1999 messages"):
        suite.run_python_row(row, _ctx(_FakeCluster()), runner, _Args())
    assert runner.specs[0]["checksum"] is True and runner.specs[1]["checksum"] is False


@pytest.mark.unit
def test_consume_row_passes_and_summarizes():
    row = suite.Row("consume", "pykafka_c", "consume", 100, 2000, 1, broker="4.4.0")
    want = payloads.expected_consume(2000, 100)
    runs = [dict(want, elapsed=1.0, cpu=0.5, peak_rss_kib=2048)] + \
           [dict(count=2000, bytes=200000, elapsed=e, cpu=0.2, peak_rss_kib=4096)
            for e in (0.5, 0.25)]
    row.result = suite.run_python_row(row, _ctx(_FakeCluster()), _FakeRunner(runs), _Args())
    suite.summarize(row)
    s = row.result["summary"]
    assert s["n_runs"] == 2
    assert s["msgs_per_s"] == pytest.approx((4000 + 8000) / 2)
    assert s["cpu_s_per_M"] == pytest.approx(100.0)
    assert s["peak_rss_mib"] == pytest.approx(4.0)
    assert row.result["verified"]["checksum"] == "warm-up run"


@pytest.mark.unit
def test_produce_row_fails_when_read_back_differs_and_deletes_its_topic():
    row = suite.Row("produce", "pykafka_c", "produce", 100, 3000, 1, "lz4", broker="4.4.0")
    want = payloads.expected_produce(3000, 100)
    cluster = _FakeCluster(readback=dict(want, crcsum=want["crcsum"] ^ 1), grow=0)
    with pytest.raises(BenchError, match="read back"):
        suite.run_python_row(row, _ctx(cluster),
                             _FakeRunner([dict(count=3000, bytes=300000, elapsed=1, cpu=1)]),
                             _Args())
    assert len(cluster.deleted) == 1


@pytest.mark.unit
def test_produce_row_fails_when_end_offsets_do_not_grow_by_n():
    row = suite.Row("produce", "pykafka_c", "produce", 100, 3000, 1, "none", broker="4.4.0")
    want = payloads.expected_produce(3000, 100)
    cluster = _FakeCluster(readback=want, grow=2999)
    res = dict(count=3000, bytes=300000, elapsed=1, cpu=1)
    with pytest.raises(BenchError, match="grew by 2999"):
        suite.run_python_row(row, _ctx(cluster), _FakeRunner([res, res, res]), _Args())


@pytest.mark.unit
def test_warm_up_runs_each_path_until_enough_runs_and_keeps_its_curve():
    from bench import report
    args = _Args()
    args.quick, args.warm_runs = False, 5
    row = suite.Row("consume", "pykafka_c", "consume", 100, 2000, 1, broker="4.4.0",
                    transport="tls")
    want = payloads.expected_consume(2000, 100)
    # each run_row is a warm-up run and args.runs timed ones: 5 needs two rows
    results = [dict(want, elapsed=1.0, cpu=0.5, broker_cpu=2.0 / k) for k in range(1, 7)]
    runner = _FakeRunner(results)
    logged = []
    ctx = suite.Context(_FakeCluster(), None, "4.4.0", tls=("127.0.0.1:1", "/ca.pem"))
    curve = suite.warm_broker(row, ctx, runner, args, logged.append)
    assert curve == [round(1000.0 / k, 2) for k in range(1, 7)] and not runner.results
    assert "consume TLS path with 5 untimed runs" in logged[0]
    # without the broker's CPU the runs still count: no endless warm-up
    runner = _FakeRunner([dict(want, elapsed=1.0, cpu=0.5)] * 6)
    assert suite.warm_broker(row, ctx, runner, args, logged.append) == []
    assert not runner.results
    # one warm-up per kind and transport; none in quick mode or for Java rows
    plain = suite.Row("consume", "pykafka_c", "consume_batch", 100, 2000, 1, broker="4.4.0",
                      batch=1000)
    warmed = {suite.warm_path(row): curve}
    assert not suite.needs_warming(row, warmed, args)
    assert suite.needs_warming(plain, warmed, args)
    java = suite.Row("consume", "java", "consume", 100, 2000, 1, broker="4.4.0")
    assert not suite.needs_warming(java, {}, args)
    args.quick = True
    assert not suite.needs_warming(plain, {}, args)
    text = report._warm_up_lines({"4.4.0": {"version": "4.4.0", "warm_up": warmed}})
    assert "Kafka 4.4.0: consume TLS 1000.00, 500.00, 333.33" in text[1]
    assert suite.parse_args([]).warm_runs == 8


@pytest.mark.unit
def test_produce_rows_show_how_long_the_broker_had_a_request():
    from bench import report
    row = suite.Row("produce", "pykafka_c", "produce", 100, 3000, 1, "none", broker="4.4.0")
    run = dict(count=3000, bytes=300000, cpu=0.1, elapsed=0.5,
               client_stats={"requests": 4, "busy_us": 450000, "backlog_us": 300000})
    row.result = {"runs": [run, dict(run, elapsed=1.0)], "verified": {}}
    suite.summarize(row)
    s = row.result["summary"]
    assert s["requests_busy_pct"] == pytest.approx((90 + 45) / 2)
    assert s["requests_backlog_pct"] == pytest.approx((60 + 30) / 2)
    table = report._requests_table([dict(workload=row.workload, broker="4.4.0",
                                         summary=s)])
    assert "| produce 100 B p1 none | 4.4.0 | %s | 4 | 68%% | 45%% |" % report._fmt_rate(
        s["msgs_per_s"]) in table
    # a client without the counters gets no such columns
    other = suite.Row("produce", "confluent", "produce", 100, 3000, 1, "none",
                      broker="4.4.0")
    other.result = {"runs": [dict(run, client_stats={})], "verified": {}}
    suite.summarize(other)
    assert "requests_busy_pct" not in other.result["summary"]


class _TaggedRunner(_FakeRunner):
    """Hands out the same result for every run and notes the runs' tags;
    the runs of one client fail from the n-th on."""

    def __init__(self, result, fail_client=None, fail_from=0):
        super().__init__([])
        self.result, self.tags = result, []
        self.fail_client, self.fail_from = fail_client, fail_from

    def worker(self, spec, tag, timeout, started=None):
        self.tags.append(tag)
        mine = [t for t in self.tags if "|%s|" % self.fail_client in t]
        if "|%s|" % self.fail_client in tag and len(mine) > self.fail_from:
            return dict(self.result, count=1)
        return dict(self.result)


@pytest.mark.unit
def test_throughput_rows_of_one_workload_alternate_their_timed_runs():
    rows = [suite.Row("produce", client, "produce", 100, 3000, 1, "none", broker="4.4.0")
            for client in ("pykafka_c", "confluent")]
    java = suite.Row("produce", "java", "produce", 100, 3000, 1, "none", broker="4.4.0")
    other = suite.Row("produce", "pykafka_c", "produce", 100, 3000, 6, "none",
                      broker="4.4.0")
    units = suite.measuring_units([rows[0], java, other, rows[1]])
    assert [[r.id for r in u] for u in units] == [
        [rows[0].id, rows[1].id], [java.id], [other.id]]
    want = payloads.expected_produce(3000, 100)
    done = dict(count=3000, bytes=300000, elapsed=1.0, cpu=0.1)
    args = _Args()
    args.runs = 3
    cluster = _FakeCluster(readback=want, grow=3000)
    runner = _TaggedRunner(done)
    out = suite.measure_unit(units[0], _ctx(cluster), runner, args)
    order = [t.split("|")[2] + t.rsplit("-", 1)[1] for t in runner.tags]
    # warm-ups first, then each round in the opposite order of the one before
    assert order == ["pykafka_cwarmup", "confluentwarmup", "pykafka_crun1", "confluentrun1",
                     "confluentrun2", "pykafka_crun2", "pykafka_crun3", "confluentrun3"]
    assert [len(out[r.id]["runs"]) for r in rows] == [3, 3]
    assert len(cluster.deleted) == 2                  # each row's topic, once
    # a run that fails fails its row alone; the other row's rounds go on
    runner = _TaggedRunner(done, fail_client="confluent", fail_from=2)
    out = suite.measure_unit(units[0], _ctx(_FakeCluster(readback=want, grow=3000)),
                             runner, args)
    assert isinstance(out[rows[1].id], BenchError) and "1 messages" in str(out[rows[1].id])
    assert len(out[rows[0].id]["runs"]) == 3
    assert sum("|confluent|" in t for t in runner.tags) == 3


@pytest.mark.unit
def test_ratios_and_targets():
    rows = []
    for client, op, rate in (("pykafka_c", "consume", 900.0), ("confluent", "consume", 300.0),
                             ("confluent", "consume_batch", 600.0),
                             ("pykafka_c", "consume_batch", 1200.0), ("java", "consume", 1000.0)):
        r = suite.Row("consume", client, op, 100, 10, 1, broker="4.4.0", batch=10)
        r.result = {"summary": {"msgs_per_s": rate}}
        rows.append(r)
    suite.add_ratios(rows)
    assert rows[1].result["summary"]["pkc_ratio"] == pytest.approx(3.0)
    assert rows[2].result["summary"]["pkc_ratio"] == pytest.approx(2.0)      # batch vs batch
    assert rows[4].result["summary"]["pkc_ratio"] == pytest.approx(0.9)
    t = {x["target"]: x for x in suite.targets(rows)}
    assert t["consume() >= 2x confluent's best API"]["value"] == pytest.approx(1.5)
    assert t["consume() >= 2x confluent's best API"]["met"] is False
    assert t["consume() >= 0.8x Kafka's Java tool"]["met"] is True


@pytest.mark.unit
def test_tls_rows_sit_beside_their_plaintext_twins():
    rows = suite.build_plan(suite.parse_args(["--tls-only"]), "4.4.0", "3.9.2")
    ids = [r.id for r in rows]
    assert ids == [
        "consume 100 B p1|4.4.0|pykafka_c|consume()",
        "consume 100 B p1|4.4.0|pykafka_c|consume_batch(1000)",
        "consume 100 B p1|4.4.0|confluent|poll()",
        "consume 100 B p1|4.4.0|confluent|consume(1000)",
        "consume 100 B p1 TLS|4.4.0|pykafka_c|consume()",
        "consume 100 B p1 TLS|4.4.0|pykafka_c|consume_batch(1000)",
        "consume 100 B p1 TLS|4.4.0|confluent|poll()",
        "consume 100 B p1 TLS|4.4.0|confluent|consume(1000)",
        # a Fetch always in flight (issue 10), over both transports
        "consume 100 B p1|4.4.0|pykafka_c|consume(), queued_max_messages=20000",
        "consume 100 B p1 TLS|4.4.0|pykafka_c|consume(), queued_max_messages=20000",
        "produce 100 B p1 none|4.4.0|pykafka_c|produce()+flush()",
        "produce 100 B p1 none|4.4.0|confluent|produce()+flush()",
        "produce 100 B p1 none TLS|4.4.0|pykafka_c|produce()+flush()",
        "produce 100 B p1 none TLS|4.4.0|confluent|produce()+flush()",
    ]
    assert all(r.count == 1000000 for r in rows)
    # each TLS row's twin is the plaintext row with the same settings
    by_twin = {r.plaintext_twin(): r for r in rows if r.transport == "plaintext"}
    deep = [r for r in rows if r.transport == "tls" and r.params]
    assert [by_twin[r.plaintext_twin()].params for r in deep] == [
        {"queued_max_messages": 20000}]
    # the full plan has the same TLS rows, and no others over TLS
    full = suite.build_plan(suite.parse_args([]), "4.4.0", "3.9.2")
    assert [r.id for r in full if r.transport == "tls"] == [i for i in ids if " TLS|" in i]
    quick = suite.build_plan(suite.parse_args(["--quick"]), "4.4.0", "3.9.2")
    assert {r.id for r in quick if r.transport == "tls"} == {
        "consume 100 B p1 TLS|4.4.0|pykafka_c|consume()",
        "consume 100 B p1 TLS|4.4.0|pykafka_c|consume_batch(1000)",
        "produce 100 B p1 none TLS|4.4.0|pykafka_c|produce()+flush()"}
    with pytest.raises(ValueError):
        suite.Row("consume", "kafka-python", "consume", 100, 10, 1, broker="4.4.0",
                  transport="tls")


@pytest.mark.unit
def test_tls_row_gets_the_ssl_listener_and_the_ca():
    row = suite.Row("consume", "pykafka_c", "consume", 100, 2000, 1, broker="4.4.0",
                    transport="tls")
    want = payloads.expected_consume(2000, 100)
    runner = _FakeRunner([dict(want, elapsed=1.0, cpu=0.5)] * 3)
    ctx = suite.Context(_FakeCluster(), None, "4.4.0", tls=("127.0.0.1:2", "/certs/ca.pem"))
    suite.run_python_row(row, ctx, runner, _Args())
    for spec in runner.specs:
        assert spec["brokers"] == "127.0.0.1:2" and spec["ssl_cafile"] == "/certs/ca.pem"
        assert spec["transport"] == "tls"
    with pytest.raises(BenchError, match="no TLS listener"):
        suite.run_python_row(row, _ctx(_FakeCluster()), runner, _Args())


@pytest.mark.unit
def test_tls_ratios_targets_and_table():
    from bench import report
    rows = []
    for transport, client, op, rate in (
            ("plaintext", "pykafka_c", "produce", 1000.0),
            ("plaintext", "confluent", "produce", 500.0),
            ("tls", "pykafka_c", "produce", 850.0),
            ("tls", "confluent", "produce", 400.0)):
        r = suite.Row("produce", client, op, 100, 10, 1, "none", broker="4.4.0",
                      transport=transport)
        r.result = {"summary": {"msgs_per_s": rate, "n_runs": 1, "mb_per_s": 0.1,
                                "peak_rss_mib": 1.0, "cpu_s_per_M": 1.0,
                                "broker_cpu_s_per_M": 0.25 if transport == "tls" else 0.0}}
        rows.append(r)
    suite.add_ratios(rows)
    assert rows[2].result["summary"]["tls_ratio"] == pytest.approx(0.85)
    assert rows[3].result["summary"]["tls_ratio"] == pytest.approx(0.8)
    assert rows[3].result["summary"]["pkc_ratio"] == pytest.approx(850.0 / 400.0)
    assert "tls_ratio" not in rows[0].result["summary"]
    t = {(x["target"], x["workload"]): x for x in suite.targets(rows)}
    ahead = t[("over TLS: produce ahead of confluent's best API", "produce 100 B p1 none TLS")]
    assert ahead["value"] == pytest.approx(850.0 / 400.0) and ahead["met"] and ahead["issue"] == 10
    own = t[("produce over TLS >= 0.8x its plaintext rate", "produce 100 B p1 none TLS")]
    assert own["value"] == pytest.approx(0.85) and own["met"]
    # the 0.8x target compares rows of the same settings, one line each
    variant = []
    for transport, rate in (("plaintext", 2000.0), ("tls", 1000.0)):
        r = suite.Row("produce", "pykafka_c", "produce", 100, 10, 1, "none",
                      broker="4.4.0", transport=transport, params={"linger_ms": 5})
        r.result = {"summary": {"msgs_per_s": rate, "n_runs": 1, "mb_per_s": 0.1,
                                "peak_rss_mib": 1.0, "cpu_s_per_M": 1.0}}
        variant.append(r)
    suite.add_ratios(rows + variant)
    t = {(x["target"], x["workload"]): x for x in suite.targets(rows + variant)}
    assert t[("produce over TLS >= 0.8x its plaintext rate",
              "produce 100 B p1 none TLS")]["value"] == pytest.approx(0.85)
    five = t[("produce over TLS >= 0.8x its plaintext rate (linger_ms=5)",
              "produce 100 B p1 none TLS")]
    assert five["value"] == pytest.approx(0.5) and not five["met"]
    # the plaintext workload keeps issue 7's target, the TLS one does not get it
    assert ("produce >= 1.5x confluent", "produce 100 B p1 none") in t
    assert ("produce >= 1.5x confluent", "produce 100 B p1 none TLS") not in t
    table = report._tls_table([dict(r.spec(), id=r.id, **r.result) for r in rows], 2)
    # the CPU ceiling on 2 cores: 2e6 / (client + broker CPU s per M msgs)
    assert ("| produce 100 B p1 none TLS | 4.4.0 | pykafka_c | produce()+flush() | 1 k "
            "| 850 | 0.85 | 1.00 → 1.00 | 0.00 → 0.25 | 2.00 M → 1.60 M |") in table
    assert "CPU ceiling on 2 cores" in table[1]


# ------------------------------------------------------------ latency rows

class _Timer:
    def __init__(self):
        self.started = self.stopped = 0

    def start(self):
        self.started += 1

    def stop(self):
        self.stopped += 1

    def mark(self, name):
        pass


def _latency_spec(tmp_path, n=1000, rate=1000.0):
    return {"count": n, "rate": rate, "size": 100, "ready_path": str(tmp_path / "ready"),
            "warmup_s": 0.0}


@pytest.mark.unit
def test_latency_values_carry_schedule_call_time_and_sequence(tmp_path, monkeypatch):
    from bench import latency
    w = latency.warmup_value(100)
    assert len(w) == 100 and latency.parse(w) == (0, 0, latency.WARMUP_SEQ)
    sent = []
    spec = _latency_spec(tmp_path, n=50, rate=1e6)
    monkeypatch.setattr(latency.time, "sleep", lambda s: None)
    out = latency.paced_send(sent.append, spec, _Timer())
    assert [latency.parse(v)[2] for v in sent] == list(range(1, 51))
    dues = [latency.parse(v)[0] for v in sent]
    # absolute schedule: message i is due at t0 + i / rate, whatever happened before
    assert [d - dues[0] for d in dues] == [int(i * 1000) for i in range(50)]
    assert all(len(v) == 100 for v in sent)
    assert out["count"] == 50 and out["bytes"] == 5000
    assert out["crcsum"] == sum(zlib.crc32(v) for v in sent)


@pytest.mark.unit
def test_latency_receiver_percentiles_and_checks(tmp_path):
    from bench import latency
    spec = _latency_spec(tmp_path, n=1000)
    timer = _Timer()
    r = latency.Receiver(spec, timer, stall=None)
    r.feed(latency.warmup_value(100), 0)
    assert timer.started == 1 and (tmp_path / "ready").exists()
    fill = latency._filler(100)
    values = []
    for seq in range(1, 1001):
        due = seq * 10 ** 6
        v = latency._HEAD % (due, due + 500, seq) + fill
        values.append(v)
        r.feed(v, due + seq * 1000)            # message seq takes seq microseconds
    r.feed(values[5], 0)                       # a duplicate is counted, not timed
    res = r.result()
    assert r.done and res["count"] == 1000 and res["duplicates"] == 1 and res["missing"] == 0
    assert res["crcsum"] == sum(zlib.crc32(v) for v in values)
    lat = res["latency"]
    assert (lat["p50_us"], lat["p99_us"], lat["p99_9_us"], lat["max_us"]) == \
        (500.0, 990.0, 999.0, 1000.0)
    assert res["latency_from_call"]["p50_us"] == 499.5
    # the warm-up seconds of the schedule are left out of the percentiles
    r2 = latency.Receiver(dict(spec, warmup_s=0.1), _Timer(), None)
    r2.feed(latency.warmup_value(100), 0)
    for seq, v in enumerate(values, 1):
        r2.feed(v, seq * 10 ** 6 + seq * 1000)
    assert r2.result()["in_percentiles"] == 900
    with pytest.raises(RuntimeError, match="warm-up"):
        latency.Receiver(spec, _Timer(), None).feed(values[0], 0)


@pytest.mark.unit
def test_latency_plan():
    full = [r for r in suite.build_plan(suite.parse_args([]), "4.4.0", "3.9.2")
            if r.kind == "latency"]
    assert len(full) == 3 * 2 * 2 * 4
    assert {r.client for r in full} == {"pykafka_c", "confluent", "kafka-python", "aiokafka"}
    assert {r.rate for r in full} == {1000, 10000, 100000}
    assert all(r.count == r.rate * 10 and r.partitions == 1 for r in full)
    assert "latency 100 B p1 10k/s|4.4.0|pykafka_c|produce() -> consume(), acks=all, " \
           "linger_ms=5" in {r.id for r in full}
    only = suite.build_plan(suite.parse_args(["--latency-only"]), "4.4.0", "3.9.2")
    assert [r.id for r in only] == [r.id for r in full]
    assert not [r for r in suite.build_plan(suite.parse_args(["--no-latency"]), "4.4.0",
                                            "3.9.2") if r.kind == "latency"]
    quick = suite.build_plan(suite.parse_args(["--quick", "--latency-only"]), "4.4.0",
                             "3.9.2")
    assert [(r.id, r.count) for r in quick] == [
        ("latency 100 B p1 1k/s|4.4.0|pykafka_c|produce() -> consume(), acks=1, linger_ms=0",
         1000)]


class _PairRunner:
    """Answers a latency row's two workers by role."""

    def __init__(self, consumer, producer, log_dir):
        self.by_role = {"consumer": consumer, "producer": producer}
        self.log_dir = str(log_dir)
        self.specs = []

    def worker(self, spec, tag, timeout, started=None):
        self.specs.append(spec)
        return dict(self.by_role[spec["role"]])


def _latency_results(n):
    lat = {"p50_us": 500.0, "p99_us": 990.0, "p99_9_us": 999.0, "max_us": 1000.0,
           "min_us": 1.0, "mean_us": 500.0, "n": n}
    cons = {"count": n, "bytes": 100 * n, "crcsum": 12345, "missing": 0, "duplicates": 0,
            "out_of_order": 0, "latency": lat, "latency_from_call": lat,
            "in_percentiles": n, "elapsed": 1.0, "cpu": 0.1}
    prod = {"count": n, "bytes": 100 * n, "crcsum": 12345, "achieved_rate": 1000.0,
            "pacer_lag_mean_us": 60.0, "pacer_lag_max_us": 200.0, "sent_late": 0,
            "elapsed": 1.0, "cpu": 0.2}
    return cons, prod


def _pkc_latency_row():
    return suite.Row("latency", "pykafka_c", "latency", 100, 1000, 1, broker="4.4.0",
                     rate=1000, params={"linger_ms": 0, "acks": "1"})


@pytest.mark.unit
def test_latency_row_checks_what_arrived(tmp_path):
    row = _pkc_latency_row()
    cons, prod = _latency_results(1000)
    cluster = _FakeCluster(grow=1001)
    runner = _PairRunner(cons, prod, tmp_path)
    row.result = suite.run_latency_row(row, _ctx(cluster), runner, _Args())
    suite.summarize(row)
    s = row.result["summary"]
    assert (s["p99_us"], s["msgs_per_s"], s["target_rate"]) == (990.0, 1000.0, 1000)
    assert {sp["role"] for sp in runner.specs} == {"consumer", "producer"}
    assert len({sp["topic"] for sp in runner.specs}) == 1 and cluster.deleted
    for bad, match in ((dict(cons, crcsum=1), "received"), (dict(cons, missing=1), "missing"),
                       (dict(cons, duplicates=2), "duplicates")):
        with pytest.raises(BenchError, match=match):
            suite.run_latency_row(row, _ctx(_FakeCluster(grow=1001)),
                                  _PairRunner(bad, prod, tmp_path), _Args())
    with pytest.raises(BenchError, match="end offset is 1002"):
        suite.run_latency_row(row, _ctx(_FakeCluster(grow=1002)),
                              _PairRunner(cons, prod, tmp_path), _Args())


class _FreshTopics(_FakeCluster):
    """Each latency run's topic is new: its end offset is ``grow``."""

    def end_offset_total(self, name):
        return self._grow


class _Runs(_PairRunner):
    """A latency row's workers over several runs: the consumer reports
    the next p99 of ``p99s`` each time."""

    def __init__(self, consumer, producer, log_dir, p99s):
        super().__init__(consumer, producer, log_dir)
        self.p99s = list(p99s)

    def worker(self, spec, tag, timeout, started=None):
        out = super().worker(spec, tag, timeout, started)
        if spec["role"] == "consumer":
            out["latency"] = dict(out["latency"], p99_us=self.p99s.pop(0))
        return out


@pytest.mark.unit
def test_latency_row_takes_the_median_of_its_runs(tmp_path):
    row = _pkc_latency_row()
    cons, prod = _latency_results(1000)
    cluster = _FreshTopics(grow=1001)
    runner = _Runs(cons, prod, tmp_path, [5000.0, 900.0, 1200.0])
    args = _Args()
    args.latency_runs = 3
    row.result = suite.run_latency_row(row, _ctx(cluster), runner, args)
    suite.summarize(row)
    s = row.result["summary"]
    assert (s["p99_us"], s["p99_runs_us"], s["n_runs"]) == (1200.0, [5000.0, 900.0, 1200.0], 3)
    assert s["in_percentiles"] == 3000 and len(cluster.deleted) == 3
    assert len({sp["topic"] for sp in runner.specs}) == 3   # a fresh topic each run
    from bench import report
    table = "\n".join(report.latency_table([dict(row.spec(), id=row.id, **row.result)]))
    assert "| 1.2 ms | 999 µs | 1.0 ms |" in table
    assert table.splitlines()[3].endswith("| - | 5.0 ms / 900 µs / 1.2 ms |")
    assert suite.parse_args([]).latency_runs == 3
    assert suite.parse_args(["--quick"]).latency_runs == 1


class _ClientRuns(_PairRunner):
    """Latency workers of several clients: records which client each run
    was, and fails the consumer of ``fail_client``'s second run."""

    def __init__(self, consumer, producer, log_dir, fail_client=None):
        super().__init__(consumer, producer, log_dir)
        self.order, self.fail_client = [], fail_client

    def worker(self, spec, tag, timeout, started=None):
        if spec["role"] == "consumer":
            self.order.append(spec["client"])
            if spec["client"] == self.fail_client and self.order.count(spec["client"]) == 2:
                raise BenchError("%s: consumer stalled" % spec["client"])
        return super().worker(spec, tag, timeout, started)


def _latency_setting(linger=5):
    return [suite.Row("latency", client, "latency", 100, 1000, 1, broker="4.4.0", rate=1000,
                      params={"linger_ms": linger, "acks": "1"})
            for client in ("pykafka_c", "confluent")]


@pytest.mark.unit
def test_latency_rows_of_one_setting_alternate_their_runs(tmp_path):
    other = suite.Row("consume", "pykafka_c", "consume", 100, 2000, 1, broker="4.4.0")
    plan = [other] + _latency_setting(0) + _latency_setting(5)
    units = suite.measuring_units(plan)
    assert [[(r.client, r.params.get("linger_ms")) for r in u] for u in units] == [
        [("pykafka_c", None)], [("pykafka_c", 0), ("confluent", 0)],
        [("pykafka_c", 5), ("confluent", 5)]]
    cons, prod = _latency_results(1000)
    args = _Args()
    args.latency_runs = 4
    runner = _ClientRuns(cons, prod, tmp_path)
    pkc, conf = units[2]
    out = suite.measure_unit(units[2], _ctx(_FreshTopics(grow=1001)), runner, args)
    # each round reverses the order of the one before: drift falls on both
    assert runner.order == ["pykafka_c", "confluent", "confluent", "pykafka_c"] * 2
    assert [len(out[r.id]["runs"]) for r in (pkc, conf)] == [4, 4]
    # a failed run fails its own row; the other client's runs go on
    runner = _ClientRuns(cons, prod, tmp_path, fail_client="confluent")
    out = suite.measure_unit(units[2], _ctx(_FreshTopics(grow=1001)), runner, args)
    assert runner.order == ["pykafka_c", "confluent", "confluent"] + ["pykafka_c"] * 3
    assert len(out[pkc.id]["runs"]) == 4 and isinstance(out[conf.id], BenchError)
    suite.record_outcome(conf, out[conf.id], 1.0, lambda msg: None)
    suite.record_outcome(pkc, out[pkc.id], 1.0, lambda msg: None)
    assert "stalled" in conf.result["error"] and pkc.result["summary"]["n_runs"] == 4


class _MeetingRuns(_PairRunner):
    """Latency workers whose consumers wait for each other: two runs of a
    round pass only when they run at the same time."""

    def __init__(self, consumer, producer, log_dir, parties):
        super().__init__(consumer, producer, log_dir)
        self.barrier = threading.Barrier(parties, timeout=10)

    def worker(self, spec, tag, timeout, started=None):
        if spec["role"] == "consumer":
            self.barrier.wait()
        return super().worker(spec, tag, timeout, started)


@pytest.mark.unit
def test_latency_rows_together_run_each_round_at_once(tmp_path):
    cons, prod = _latency_results(1000)
    args = _Args()
    args.latency_runs, args.latency_together = 3, True
    unit = _latency_setting(0)
    runner = _MeetingRuns(cons, prod, tmp_path, parties=2)
    out = suite.measure_unit(unit, _ctx(_FreshTopics(grow=1001)), runner, args)
    assert [len(out[r.id]["runs"]) for r in unit] == [3, 3]
    topics = [sp["topic"] for sp in runner.specs if sp["role"] == "consumer"]
    assert len(set(topics)) == 6                        # a topic of its own, each run
    assert suite.parse_args(["--latency-together"]).latency_together
    assert not suite.parse_args([]).latency_together


@pytest.mark.unit
def test_runner_kill_all_takes_down_the_children_of_other_threads(tmp_path):
    runner = suite.Runner(_Args(), None, str(tmp_path))
    out = {}
    t = threading.Thread(target=lambda: out.setdefault(
        "rc", runner.spawn(["sleep", "60"], "sleeper", 120)[0]))
    t.start()
    deadline = time.monotonic() + 10
    while not runner.live and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(runner.live) == 1
    runner.kill_all()
    t.join(10)
    assert not t.is_alive() and out["rc"] == -signal.SIGKILL and not runner.live


@pytest.mark.unit
def test_latency_ratio_target_and_table(tmp_path):
    from bench import report
    rows = []
    for client, p99 in (("pykafka_c", 2000.0), ("confluent", 3000.0), ("aiokafka", 1000.0)):
        r = suite.Row("latency", client, "latency", 100, 1000, 1, broker="4.4.0", rate=1000,
                      params={"linger_ms": 5, "acks": "all"})
        cons, prod = _latency_results(1000)
        cons["latency"] = dict(cons["latency"], p99_us=p99)
        r.result = suite.run_latency_row(r, _ctx(_FakeCluster(grow=1001)),
                                         _PairRunner(cons, prod, tmp_path), _Args())
        suite.summarize(r)
        rows.append(r)
    suite.add_ratios(rows)
    assert rows[1].result["summary"]["p99_ratio"] == pytest.approx(1.5)
    assert rows[2].result["summary"]["p99_ratio"] == pytest.approx(0.5)
    assert "pkc_ratio" not in rows[1].result["summary"]
    t = [x for x in suite.targets(rows) if x["issue"] == 16]
    assert len(t) == 1 and t[0]["met"] and t[0]["value"] == pytest.approx(1.5)
    table = "\n".join(report.latency_table([dict(r.spec(), id=r.id, **r.result)
                                            for r in rows]))
    assert ("| latency 100 B p1 1k/s | 4.4.0 | confluent-kafka | produce()+poll(0) -> poll(), "
            "acks=all, linger_ms=5 | 1k | 1 k | 1 k | 500 µs | 3.0 ms | 999 µs |") in table


# ------------------------------------------------------------ the quick run

@pytest.mark.integration
@pytest.mark.slow
def test_quick_suite_runs_and_checks_every_row(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=900)
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, "python -m bench --quick failed:\n%s\n%s" % (
        stdout[-4000:], stderr[-6000:])
    doc = json.loads((out / "results.json").read_text())
    assert doc["mode"] == "quick"
    rows = {r["id"]: r for r in doc["rows"]}
    wanted = {
        "consume 100 B p1|4.4.0|pykafka_c|consume()",
        "consume 100 B p1|4.4.0|pykafka_c|consume_batch(1000)",
        "consume 100 B p6|4.4.0|pykafka_c|consume()",
        "consume 1 KiB p1|4.4.0|pykafka_c|consume()",
        "produce 100 B p1 none|4.4.0|pykafka_c|produce()+flush()",
        "produce 100 B p1 zstd|4.4.0|pykafka_c|produce()+flush()",
        "produce 1 KiB p6 lz4|4.4.0|pykafka_c|produce()+flush()",
        "consume 100 B p1 TLS|4.4.0|pykafka_c|consume()",
        "consume 100 B p1 TLS|4.4.0|pykafka_c|consume_batch(1000)",
        "produce 100 B p1 none TLS|4.4.0|pykafka_c|produce()+flush()",
        "decode 100 B|-|pykafka_c|decode_records",
        "decode 1 KiB|-|pykafka_c|decode_records",
    }
    assert wanted <= set(rows), sorted(rows)
    for rid in wanted:
        r = rows[rid]
        assert "error" not in r, (rid, r.get("error"))
        s = r["summary"]
        assert s["msgs_per_s"] > 0 and s["peak_rss_mib"] > 0, (rid, s)
        if r["kind"] == "decode":
            d = r["decode"]
            assert d["ns_per_msg"] > 0 and d["ns_per_bytes_object"] > 0
            assert r["verified"]["checksum"].startswith("one response")
            continue
        assert s["n_runs"] == 1 and s["cpu_s_per_M"] > 0
        assert r["verified"]["count"] is True
        assert r["verified"]["checksum"].startswith("warm-up run")
        for run in r["runs"]:
            assert run["count"] == r["count"] and run["bytes"] == r["count"] * r["size"]
        assert r["warmup"]["count"] == r["count"]
    m = doc["machine"]
    for key in ("cores", "cpu_model", "kernel", "python", "malloc", "loadavg_start",
                "loadavg_end"):
        assert m[key], key
    assert doc["brokers"]["4.4.0"]["version"].startswith("4.")
    assert "| consume 100 B p1 | 4.4.0 | pykafka_c | consume() |" in stdout
    assert "| consume 100 B p1 TLS | 4.4.0 | pykafka_c | consume() |" in stdout
    for rid in ("consume 100 B p1 TLS|4.4.0|pykafka_c|consume()",
                "produce 100 B p1 none TLS|4.4.0|pykafka_c|produce()+flush()"):
        assert rows[rid]["transport"] == "tls"
        assert rows[rid]["summary"]["tls_ratio"] > 0
    assert "| Over TLS |" in stdout
    lat = rows["latency 100 B p1 1k/s|4.4.0|pykafka_c|produce() -> consume(), acks=1, "
               "linger_ms=0"]
    assert "error" not in lat, lat.get("error")
    assert lat["runs"][0]["count"] == lat["count"] == 1000
    s = lat["summary"]
    assert 0 < s["p50_us"] <= s["p99_us"] <= s["p99_9_us"] <= s["max_us"]
    assert s["msgs_per_s"] > 500 and s["target_rate"] == 1000
    assert lat["verified"]["checksum"].startswith("every timed message received once")
    assert "| Latency |" in stdout
    assert (out / "results.md").read_text() in stdout
    if doc["chart"]:
        assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "virtualenv" in doc["chart_note"]


@pytest.mark.unit
def test_settle_bench_settled_and_pause():
    from bench import settle

    class M:
        def __init__(self, owned, deliveries=()):
            self._owned = set(owned)
            self.deliveries = list(deliveries)

        def owned(self):
            return self._owned
    assert settle.settled([M({0, 1}), M({2, 3}), M({4, 5})])
    assert not settle.settled([M({0, 1, 2, 3}), M({4, 5}), M(())])  # unbalanced
    assert not settle.settled([M({0, 1, 2}), M({2, 3, 4, 5})])      # 2 twice
    assert not settle.settled([M({0, 1}), M({2, 3})])               # 4, 5 unowned
    m = M({0}, [(10.0, 0), (10.5, 1), (11.0, 0), (13.0, 0)])
    # partition 1 is not kept; the window's edges count as deliveries
    assert settle.longest_pause(m, 9.5, 14.0) == pytest.approx(2.0)
    table = settle.markdown({"range": {"settle_s": 2.0, "pause_s": 1.5},
                             "consumer": {"error": "no KIP-848"},
                             "_kafka": "4.4.0"}, 3)
    assert "| range | 2.00 | 1.50 | 3 |" in table
    assert "| consumer | not measured: no KIP-848 | | |" in table
