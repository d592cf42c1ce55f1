"""Output: the Markdown table (stdout and results.md), results.json and the
chart (chart.png, drawn by :mod:`bench.chart` in the bench virtualenv,
where matplotlib is installed)."""

import json
import os
import subprocess
import sys

from bench.env import REPO

CLIENT_NAMES = {"pykafka_c": "pykafka_c", "confluent": "confluent-kafka",
                "kafka-python": "kafka-python", "pykafka": "pykafka 2.8 (pure)",
                "java": "Kafka Java tool", "aiokafka": "aiokafka"}


def settings_text(args):
    return {
        "runs": "median of %d timed runs after one warm-up run (fewer when a row's "
                "warm-up shows the runs would exceed %.0f s), the Python clients' rows "
                "of one workload in rounds of one timed run each, every round in the "
                "opposite order of the one before; before the first row of "
                "each kind and transport on a broker (consume, produce; plaintext, TLS), "
                "%d untimed runs of it warm the broker's JVM"
                % (args.runs, args.row_budget, getattr(args, "warm_runs", 0)),
        "batch_size": args.batch_size,
        "consumers": "from the earliest offset, every partition assigned directly (no "
                     "group membership); clock from consumer creation to the N-th message",
        "producers": "acks=1; clock from the first produce() to the moment every message "
                     "is acknowledged; each client's own batching defaults (pykafka and "
                     "pykafka_c: linger_ms=5000, min_queued_messages=70000; librdkafka: "
                     "linger.ms=5, batch.num.messages=10000; kafka-python: linger_ms=0, "
                     "batch_size=16384; Java: linger.ms=5, batch.size=16384)",
        "payloads": "printable text values starting with their index (bench/payloads.py); "
                    "producers cycle through 1024 pre-built values",
        "mb": "MB = 10^6 bytes of message values",
        "checks": "every run: message count and value bytes (producers: the topic's end "
                  "offsets); warm-up run: CRC-32 sum of every value read, or of every value "
                  "read back with kcat after producing, equal to what was written",
        "cpu": "user+sys CPU seconds of the client process (all threads) over the timed "
               "interval, per million messages; Java tools: the whole JVM process, start-up "
               "included; broker CPU from /proc over the same interval; the broker's busiest "
               "thread: the most CPU any one broker thread used over that interval, in % "
               "of one core (a thread at 100% is a ceiling for whatever it serialises)",
        "rss": "peak RSS of the client process (VmHWM; Java: ru_maxrss from wait4)",
        "slow_peers": "pykafka and kafka-python rows use smaller counts (see Messages) "
                      "unless --full-counts",
        "latency": "each row is %d schedule(s), the table shows the median of their "
                   "percentiles (the largest max) and each run's p99; the rows of one "
                   "setting run in rounds, %s; in each schedule, the "
                   "client's producer sends 100 B messages on a fixed schedule "
                   "(absolute times, %.0f s) to a fresh one-partition topic while the "
                   "same client's consumer reads it in another process; latency = the "
                   "consumer's time.monotonic_ns() when the message is in its hand minus the "
                   "message's scheduled send time (written into the value), so a producer "
                   "that falls behind its schedule is charged for it (coordinated omission "
                   "counted); 'from produce()' columns measure from the actual call instead; "
                   "exact percentiles of every timed message after the first %.1f s; the "
                   "pacer sleeps until each message is due (no spinning) and its own "
                   "wake-up delay is part of the latency; producers: linger and acks as "
                   "shown, everything else each client's defaults (pykafka_c: "
                   "min_queued_messages=70000, enable_idempotence=True; librdkafka and "
                   "kafka-python: no idempotence); consumers: each client's defaults, "
                   "per-message API; checks: every message received once, count, bytes and "
                   "CRC-32 sum equal to what was sent, end offset = count + 1; before the "
                   "first row, one untimed run of it warms the broker's JVM"
                   % (getattr(args, "latency_runs", 1),
                      "every client at the same time on its own topic (--latency-together)"
                      if getattr(args, "latency_together", False) else
                      "one client after the other, each round in the opposite order of "
                      "the one before",
                      args.latency_seconds,
                      min(1.0, args.latency_seconds / 10.0)),
    }


def _fmt_rate(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.0f k" % (x / 1e3)
    return "%.0f" % x


def _fmt(x, f="%.1f"):
    return "-" if x is None else f % x


def _count(n):
    if n >= 1000000 and n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def markdown(doc):
    m = doc["machine"]
    lines = []
    b = doc.get("brokers") or {}
    lines.append("Measured %s (%s mode) on %d cores (%s), %s GiB RAM, Linux %s, Python %s; "
                 "load average %.1f at start, %.1f at end (other work shared the machine). "
                 "Brokers: %s, one node each, on loopback%s. pykafka_c %s%s."
                 % (doc["generated"], doc["mode"], m["cores"], m["cpu_model"],
                    m["memory_gib"], m["kernel"], m["python"], m["loadavg_start"][0],
                    m["loadavg_end"][0],
                    ", ".join("Kafka %s" % v["version"] for v in b.values()) or "none",
                    "" if not any(r.get("transport") == "tls" for r in doc["rows"]) else
                    "; TLS rows: the same broker's SSL listener (the broker's "
                    "certificate chain and host name verified against the harness's CA)",
                    m["pykafka_c_commit"],
                    "" if not (doc["clients"].get("peers")) else "; peers: " + ", ".join(
                        "%s %s" % (k, v) for k, v in doc["clients"]["peers"].items()
                        if k in ("pykafka", "kafka-python", "confluent-kafka", "aiokafka") and v)))
    if doc.get("reused_rows_from"):
        lines.append("")
        lines.append("Rows measured in two invocations of the same command on this machine: "
                     "the rows missing from the run of %s were measured at %s "
                     "(`--reuse`); load average at the start of the earlier run: %s."
                     % (doc["reused_rows_from"], doc["generated"],
                        m.get("loadavg_reused_run") and "%.1f" % m["loadavg_reused_run"][0]))
    throughput = [r for r in doc["rows"] if r["kind"] not in ("decode", "latency")]
    if throughput:
        lines.append("")
        lines.append("| Workload | Kafka | Client | API | Messages | msg/s | MB/s | Peak RSS MiB "
                     "| CPU s / M msgs | Broker CPU s / M | Broker's busiest thread | "
                     "pykafka_c ÷ row | Runs |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in throughput:
        name = CLIENT_NAMES.get(r["client"], r["client"])
        if "error" in r:
            lines.append("| %s | %s | %s | %s | %s | FAILED: %s | | | | | | | |"
                         % (r["workload"], r["broker"], name, r["api"], _count(r["count"]),
                            r["error"].splitlines()[0][:120].replace("|", "/")))
            continue
        s = r["summary"]
        spread = ""
        if s["n_runs"] > 1 and s["msgs_per_s"]:
            spread = " (±%.0f%%)" % (50.0 * (s["max_msgs_per_s"] - s["min_msgs_per_s"])
                                     / s["msgs_per_s"])
        ratio = s.get("pkc_ratio")
        lines.append("| %s | %s | %s | %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %d |"
                     % (r["workload"], r["broker"], name, r["api"], _count(r["count"]),
                        _fmt_rate(s["msgs_per_s"]), spread, _fmt(s["mb_per_s"]),
                        _fmt(s["peak_rss_mib"], "%.0f"), _fmt(s["cpu_s_per_M"], "%.2f"),
                        _fmt(s.get("broker_cpu_s_per_M"), "%.2f"),
                        _fmt(s.get("broker_busiest_thread_pct"), "%.0f%%"),
                        "-" if ratio is None else "%.2fx" % ratio, s["n_runs"]))
    lines += _warm_up_lines(b)
    notes = sorted({r["note"] for r in doc["rows"] if r.get("note")})
    for n in notes:
        lines.append("")
        lines.append("Note: %s." % n)
    dec = [r for r in doc["rows"] if r["kind"] == "decode"]
    if dec:
        lines.append("")
        lines.append("| Decode only (no broker) | ns / message | msg/s | ns / message, "
                     "records only | ns / bytes object (bytes.split) | Messages per response |")
        lines.append("|---|---|---|---|---|---|")
        for r in dec:
            if "error" in r:
                lines.append("| %s | FAILED: %s | | | | |"
                             % (r["workload"], r["error"].splitlines()[0][:120]))
                continue
            d = r["decode"]
            lines.append("| %s (recorded Fetch v%d response, %d bytes) | %.0f | %s | %.0f "
                         "| %.0f | %d |"
                         % (r["workload"], d["recording"]["api_version"], d["response_bytes"],
                            d["ns_per_msg"], _fmt_rate(1e9 / d["ns_per_msg"]),
                            d["ns_per_msg_records_only"], d["ns_per_bytes_object"],
                            d["msgs_per_response"]))
    lines += _tls_table(doc["rows"], m["cores"])
    lines += _requests_table(doc["rows"])
    lines += latency_table(doc["rows"], doc.get("settings", {}).get("latency"))
    tg = doc.get("targets") or []
    if tg:
        lines.append("")
        lines.append("| Target | Issue | Workload | Kafka | Measured | Met |")
        lines.append("|---|---|---|---|---|---|")
        for t in tg:
            val = ("%.0f ns" % t["value"]) if t.get("unit", "ns" if "decode" in t["target"]
                                                    else "x") == "ns" else "%.2fx" % t["value"]
            lines.append("| %s | %s | %s | %s | %s | %s |"
                         % (t["target"], t.get("issue", 7), t["workload"], t["broker"] or "-",
                            val, "yes" if t["met"] else "**no**"))
    st = doc["settings"]
    if not throughput and not dec:
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.append("Method: %s. Consumers: %s. Producers: %s. Checks: %s. CPU: %s. %s. "
                 "Decode: CPU time per message of decoding a recorded Fetch response into "
                 "pykafka_c Message objects, best of several passes; the bytes column is "
                 "C-level creation of as many bytes objects of the same size."
                 % (st["runs"], st["consumers"], st["producers"], st["checks"], st["cpu"],
                    st["mb"]))
    return "\n".join(lines) + "\n"


def _requests_table(rows):
    """pykafka_c's produce rows: how much of the run the broker had one of
    its requests, and the next one waiting (then the broker, not the
    client, set the pace of the connection)."""
    rows = [r for r in rows if "summary" in r and "requests_busy_pct" in r["summary"]]
    if not rows:
        return []
    out = ["", "| pykafka_c's Produce requests | Kafka | msg/s | Requests per run | "
           "Broker had one of them | ... and the next one waiting |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        s = r["summary"]
        out.append("| %s | %s | %s | %.0f | %.0f%% | %.0f%% |"
                   % (r["workload"], r["broker"], _fmt_rate(s["msgs_per_s"]),
                      s["requests_per_run"], s["requests_busy_pct"],
                      s["requests_backlog_pct"]))
    out += ["", "Shares of the timed interval (medians of the timed runs), from the "
            "producer's own counters: while the broker has the next request waiting, "
            "the client is ahead of it on that connection (Kafka serves one request per "
            "connection at a time)."]
    return out


def _warm_up_lines(brokers):
    """The broker's CPU per message over each path's warm-up runs."""
    parts = ["Kafka %s: %s" % (info["version"], "; ".join(
                 "%s %s" % (path, ", ".join("%.2f" % x for x in curve))
                 for path, curve in info["warm_up"].items()))
             for info in brokers.values() if info.get("warm_up")]
    if not parts:
        return []
    return ["", "Broker warm-up, CPU s per M messages of each untimed run in order: %s."
            % ". ".join(parts)]


def _cpu_ceiling(summary, cores):
    """The rate at which a client and its broker, at the CPU seconds per
    million messages measured in this row, would use every core of the
    machine between them (both on one machine): what no amount of
    overlap can beat.  None when either CPU figure is missing."""
    client, broker = summary.get("cpu_s_per_M"), summary.get("broker_cpu_s_per_M")
    if not client or broker is None or not cores:
        return None
    return cores * 1e6 / (client + broker)


def _tls_table(rows, cores):
    """Each TLS row beside the same client and API over plaintext on the
    same broker: the cost of TLS per client (issue 10), and the CPU ceiling
    of each transport on this machine (_cpu_ceiling)."""
    tls = [r for r in rows if r.get("transport") == "tls"]
    if not tls:
        return []
    by_id = {r["id"]: r for r in rows}
    lines = ["", "| Over TLS | Kafka | Client | API | plaintext msg/s | TLS msg/s "
             "| TLS ÷ plaintext | CPU s / M msgs, plaintext → TLS "
             "| Broker CPU s / M, plaintext → TLS "
             "| CPU ceiling on %d cores, plaintext → TLS |" % cores,
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in tls:
        s = r.get("summary") or {}
        twin = by_id.get(s.get("tls_ratio_against")) or {}
        ts = twin.get("summary") or {}
        ratio = s.get("tls_ratio")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s → %s | %s → %s | %s → %s |"
                     % (r["workload"], r["broker"], CLIENT_NAMES.get(r["client"], r["client"]),
                        r["api"], _fmt_rate(ts.get("msgs_per_s")),
                        _fmt_rate(s.get("msgs_per_s")) if s else "FAILED",
                        "-" if ratio is None else "%.2f" % ratio,
                        _fmt(ts.get("cpu_s_per_M"), "%.2f"), _fmt(s.get("cpu_s_per_M"), "%.2f"),
                        _fmt(ts.get("broker_cpu_s_per_M"), "%.2f"),
                        _fmt(s.get("broker_cpu_s_per_M"), "%.2f"),
                        _fmt_rate(_cpu_ceiling(ts, cores)), _fmt_rate(_cpu_ceiling(s, cores))))
    lines += ["", "CPU ceiling: the machine's cores divided by the client's and the "
              "broker's CPU seconds per million messages in that row, added (both run on "
              "this machine): the rate at which the two would use every core between them, "
              "which no overlap of their work can beat."]
    return lines


def _us(x):
    if x is None:
        return "-"
    if x >= 100000:
        return "%.0f ms" % (x / 1000.0)
    if x >= 1000:
        return "%.1f ms" % (x / 1000.0)
    return "%.0f µs" % x


def latency_table(rows, method=None):
    """The end-to-end latency rows (issue 16): percentiles from the
    scheduled send time, the achieved rate, and the same percentiles from
    the actual produce() call."""
    lat = [r for r in rows if r.get("kind") == "latency"]
    if not lat:
        return []
    lines = ["", "| Latency | Kafka | Client | API | Messages | Target msg/s | Achieved msg/s "
             "| p50 | p99 | p99.9 | max | p50 / p99 / p99.9 from produce() "
             "| CPU % producer / consumer | p99 ÷ pykafka_c's | p99 of each run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in lat:
        name = CLIENT_NAMES.get(r["client"], r["client"])
        if "error" in r:
            lines.append("| %s | %s | %s | %s | %s | %s | FAILED: %s | | | | | | | | |"
                         % (r["workload"], r["broker"], name, r["api"], _count(r["count"]),
                            _fmt_rate(r.get("rate")),
                            r["error"].splitlines()[0][:120].replace("|", "/")))
            continue
        s = r["summary"]
        ratio = s.get("p99_ratio")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s "
                     "| %s / %s | %s | %s |"
                     % (r["workload"], r["broker"], name, r["api"], _count(r["count"]),
                        _fmt_rate(s["target_rate"]), _fmt_rate(s["msgs_per_s"]),
                        _us(s["p50_us"]), _us(s["p99_us"]), _us(s["p99_9_us"]),
                        _us(s["max_us"]), _us(s["call_p50_us"]), _us(s["call_p99_us"]),
                        _us(s["call_p99_9_us"]), _fmt(s.get("producer_cpu_pct"), "%.0f"),
                        _fmt(s.get("consumer_cpu_pct"), "%.0f"),
                        "-" if ratio is None else "%.2fx" % ratio,
                        " / ".join(_us(x) for x in s.get("p99_runs_us", ()))))
    if method:
        lines += ["", "Latency: %s." % method]
    return lines


def write_all(doc, out_dir, venv_py, log):
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, "results.json")
    md_path = os.path.join(out_dir, "results.md")
    png_path = os.path.join(out_dir, "chart.png")
    doc["chart"] = None
    py = venv_py
    if py is None:
        from bench.env import venv_python
        py = venv_python(install=False)
    if not any(r.get("kind") in ("consume", "produce") and "summary" in r
               for r in doc["rows"]):
        doc["chart_note"] = "no chart: no throughput row was measured"
    elif py is not None:
        tmp = json_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True, default=str)
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        r = subprocess.run([py, "-m", "bench.chart", tmp, png_path], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        os.unlink(tmp)
        if r.returncode == 0:
            doc["chart"] = png_path
        else:
            log("bench: the chart failed:\n%s" % r.stdout.decode(errors="replace")[-2000:])
            doc["chart"] = "failed"
    else:
        doc["chart_note"] = ("no chart: matplotlib lives in the bench virtualenv, which does "
                             "not exist yet (a run with the peers, or --setup-only, makes it)")
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    with open(md_path, "w") as f:
        f.write(markdown(doc))
    paths = [json_path, md_path]
    if doc["chart"] and doc["chart"] != "failed":
        paths.append(png_path)
    return paths


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(markdown(json.load(f)))
