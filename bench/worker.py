"""One measured run of one client, in its own process.

    python -m bench.worker SPEC_JSON

The suite starts a fresh interpreter per run (the peers' from the bench
virtualenv, pykafka_c's from the interpreter running the suite), so peak
RSS and CPU belong to that client alone.  The client module calls
``timer.start()`` and ``timer.stop()`` around the timed interval; the
result (elapsed seconds, CPU user+sys of the whole process over that
interval, the broker's CPU over it, peak RSS, and what was read or
written) is written as JSON to ``spec["result_path"]``.
"""

import importlib
import json
import os
import resource
import sys
import time
import traceback

CLIENT_MODULES = {
    "pykafka_c": "bench.clients.pkc",
    "confluent": "bench.clients.confluent",
    "kafka-python": "bench.clients.kafkapython",
    "pykafka": "bench.clients.pykafka28",
    "aiokafka": "bench.clients.aio",
    "decode": "bench.clients.decode",
}

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid):
    """utime+stime of a process from /proc/<pid>/stat (None if gone)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_thread_cpu_seconds(pid):
    """``{thread id: (thread name, utime+stime)}`` of every thread of a
    process, from /proc/<pid>/task (empty if gone)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid), "rb") as f:
                data = f.read()
        except OSError:
            continue                    # the thread ended meanwhile
        name = data[data.index(b"(") + 1:data.rindex(b")")].decode("ascii", "replace")
        fields = data[data.rindex(b")") + 2:].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / _CLK_TCK)
    return out


def busiest_thread(before, after):
    """``(name, CPU seconds)`` of the thread that used the most CPU between
    two proc_thread_cpu_seconds() samples, or None."""
    best = None
    for tid, (name, cpu1) in after.items():
        used = cpu1 - before.get(tid, (name, 0.0))[1]
        if best is None or used > best[1]:
            best = (name, used)
    return best


def proc_status_kib(key, pid="self"):
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Timer:
    def __init__(self, broker_pid=None):
        self.broker_pid = broker_pid
        self.t0 = self.t1 = None
        self.ru0 = self.ru1 = None
        self.b0 = self.b1 = None
        self.bt0 = self.bt1 = None      # the broker's threads' CPU
        self.rss_before = None
        self.marks = {}

    def start(self):
        self.rss_before = proc_status_kib("VmRSS")
        if self.broker_pid:
            self.b0 = proc_cpu_seconds(self.broker_pid)
            self.bt0 = proc_thread_cpu_seconds(self.broker_pid)
        self.ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.perf_counter()

    def mark(self, name):
        """Time since start() under ``name`` (e.g. when the first message came)."""
        self.marks[name] = time.perf_counter() - self.t0

    def stop(self):
        self.t1 = time.perf_counter()
        self.ru1 = resource.getrusage(resource.RUSAGE_SELF)
        if self.broker_pid:
            self.b1 = proc_cpu_seconds(self.broker_pid)
            self.bt1 = proc_thread_cpu_seconds(self.broker_pid)

    def as_dict(self):
        if self.t0 is None or self.t1 is None:
            raise RuntimeError("the client module did not start and stop the timer")
        cpu = ((self.ru1.ru_utime - self.ru0.ru_utime)
               + (self.ru1.ru_stime - self.ru0.ru_stime))
        out = {"elapsed": self.t1 - self.t0, "cpu": cpu,
               "cpu_user": self.ru1.ru_utime - self.ru0.ru_utime,
               "cpu_sys": self.ru1.ru_stime - self.ru0.ru_stime,
               "rss_before_kib": self.rss_before, "marks": self.marks}
        if self.b0 is not None and self.b1 is not None:
            out["broker_cpu"] = self.b1 - self.b0
        busiest = busiest_thread(self.bt0 or {}, self.bt1 or {})
        if busiest is not None:
            out["broker_busiest_thread"] = busiest
        return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m bench.worker SPEC_JSON\n")
        return 2
    spec = json.loads(argv[0])
    result = {"ok": False}
    try:
        mod = importlib.import_module(CLIENT_MODULES[spec["client"]])
        timer = Timer(spec.get("broker_pid"))
        data = mod.run(spec, timer)
        result.update(timer.as_dict())
        result.update(data)
        result["ok"] = True
    except BaseException as exc:        # reported to the suite, which fails the row
        result["error"] = "%s: %s" % (exc.__class__.__name__, exc)
        result["traceback"] = traceback.format_exc()
    result["peak_rss_kib"] = proc_status_kib("VmHWM")
    result["python"] = sys.version.split()[0]
    tmp = spec["result_path"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, spec["result_path"])
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: some clients' background threads make exit
    # slow or noisy, and it is not part of any measurement.
    os._exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    sys.exit(main())
