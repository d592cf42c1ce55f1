"""End-to-end latency: the paced producer and the timing consumer (issue 16).

A latency row runs two worker processes of the same client on the same
machine at once, on a fresh topic with one partition:

* the **consumer** (``spec["role"] == "consumer"``) reads the partition
  from the beginning with the client's per-message API; the first message
  it gets is the producer's warm-up message, after which it writes
  ``spec["ready_path"]``; then it reads the ``count`` timed messages and,
  for each, takes ``time.monotonic_ns()`` as soon as the client hands the
  message over;
* the **producer** (``spec["role"] == "producer"``) sends the warm-up
  message, waits for its acknowledgement and for the consumer's ready file,
  and then sends ``count`` messages on a fixed schedule: message ``i``
  (1-based) is due at ``t0 + (i - 1) / rate``.  The schedule is absolute:
  the producer never waits for a message to be delivered, and when it falls
  behind (a slow ``produce()``, a late wake-up) it sends the overdue
  messages back to back without moving the schedule.

Each value (100 bytes by default) starts with the scheduled send time, the
time ``produce()`` was called (both ``time.monotonic_ns()``, the same
CLOCK_MONOTONIC in both processes) and the message's sequence number.  The
latency of a message is the consumer's receive time minus its **scheduled**
send time, so the time a message spent waiting for its turn behind a slow
producer is counted (coordinated omission: a pacer that measured from the
actual call would hide exactly the stalls a latency test is for).  The
latency from the actual ``produce()`` call is reported beside it, and so is
how late the pacer itself was (``pacer_lag``), which is part of both.

Pacing sleeps (``time.sleep``) until the next message is due and never
spins, so a 2-core machine keeps its cores for the broker and the
consumer; each wake-up is late by the kernel's timer slack and the
scheduler (tens of microseconds), and at rates where the period is shorter
than that the producer sends small bursts of overdue messages.  Both are
inside the measured latency, the same for every client.

Checks: the consumer gets every sequence number 1..count exactly once, the
values' count, bytes and CRC-32 sum equal what the producer sent (compared
by the suite), and the topic's end offset is count + 1.
"""

import math
import os
import time
import zlib

MASK = (1 << 64) - 1
#: Header of every value: scheduled ns, produce() call ns, sequence number.
_HEAD = b"%019d %019d %010d "
_HEAD_LEN = 19 + 1 + 19 + 1 + 10 + 1
#: Sequence number of the warm-up message (not timed).
WARMUP_SEQ = 0


def _filler(size):
    from bench.payloads import make_value
    if size < _HEAD_LEN + 1:
        raise ValueError("latency values must be at least %d bytes" % (_HEAD_LEN + 1))
    return make_value(0, size - _HEAD_LEN + 11)[11:]


def warmup_value(size):
    return (_HEAD % (0, 0, WARMUP_SEQ)) + _filler(size)


def parse(value):
    """(scheduled ns, produce() call ns, sequence number) of a value."""
    return int(value[0:19]), int(value[20:39]), int(value[40:50])


def wait_for_file(path, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError("the consumer was not ready after %.0f s (%s)"
                               % (timeout_s, path))
        time.sleep(0.001)


class Pacer:
    """The producer's schedule: ``wait(i)`` says how long to sleep before
    message i (0-based) is due, ``value(i)`` makes its value (stamped with
    its due time and the time now) and keeps the pacing statistics."""

    def __init__(self, spec):
        self.n = int(spec["count"])
        self.rate = float(spec["rate"])
        self.size = int(spec["size"])
        self.period_ns = 1e9 / self.rate
        self.fill = _filler(self.size)
        self.crcsum = self.lag_sum = self.lag_max = 0
        self.behind = 0              # messages sent more than one period late
        self.t0 = self.due = None

    def start(self, timer):
        timer.start()
        self.t0 = time.monotonic_ns() + 1000000    # the first message is due 1 ms from now

    def wait(self, i):
        self.due = due = self.t0 + int(i * self.period_ns)
        return (due - time.monotonic_ns()) / 1e9

    def value(self, i):
        t = time.monotonic_ns()
        lag = t - self.due
        self.lag_sum += lag
        if lag > self.lag_max:
            self.lag_max = lag
        if lag > self.period_ns:
            self.behind += 1
        v = _HEAD % (self.due, t, i + 1) + self.fill
        self.crcsum += zlib.crc32(v)
        return v

    def result(self):
        t_end = time.monotonic_ns()
        n = self.n
        return {"count": n, "bytes": n * self.size, "crcsum": self.crcsum & MASK,
                "schedule_s": (n - 1) * self.period_ns / 1e9,
                "send_s": (t_end - self.t0) / 1e9,
                "achieved_rate": (n / ((t_end - self.t0) / 1e9)) if t_end > self.t0 else None,
                "pacer_lag_mean_us": self.lag_sum / n / 1000.0 if n else None,
                "pacer_lag_max_us": self.lag_max / 1000.0,
                "sent_late": self.behind}


def paced_send(send, spec, timer):
    """Send spec["count"] values through ``send(value)`` at spec["rate"]
    messages/s on an absolute schedule (see the module docstring), sleeping
    with time.sleep.  Returns what was sent: count, bytes, crcsum, and how
    the pacing went.  Starts the timer; the caller stops it."""
    p = Pacer(spec)
    sleep, wait, value = time.sleep, p.wait, p.value
    p.start(timer)
    for i in range(p.n):
        w = wait(i)
        if w > 0:
            sleep(w)
        send(value(i))
    return p.result()


async def paced_send_async(send, spec, timer):
    """paced_send for asyncio clients: ``await send(value)``, and
    ``await asyncio.sleep`` between messages, so the client's own tasks run
    while the pacer waits.  asyncio's event loop wakes timers with
    millisecond resolution (selectors round the timeout up to a whole
    millisecond), which is part of the measured latency of such a client,
    as it is for its users."""
    import asyncio
    p = Pacer(spec)
    sleep, wait, value = asyncio.sleep, p.wait, p.value
    p.start(timer)
    for i in range(p.n):
        w = wait(i)
        if w > 0:
            await sleep(w)
        await send(value(i))
    return p.result()


class Receiver:
    """Collects the timed messages on the consumer side."""

    def __init__(self, spec, timer=None, stall=None):
        from array import array
        self.timer = timer
        self.stall = stall
        self.n = int(spec["count"])
        self.size = int(spec["size"])
        self.ready_path = spec["ready_path"]
        self.rate = float(spec["rate"])
        # The messages due in the first warmup_s seconds of the schedule are
        # checked but not in the percentiles (first connections, allocations).
        self.skip_seq = min(int(float(spec.get("warmup_s", 0.0)) * self.rate), self.n - 1)
        self.lat = array("q")            # receive - scheduled, ns
        self.lat_call = array("q")       # receive - produce() call, ns
        self.seen = bytearray(self.n + 1)
        self.count = 0
        self.bytes = 0
        self.crcsum = 0
        self.dups = 0
        self.out_of_order = 0
        self.last_seq = 0
        self.ready = False
        self.first_recv = self.last_recv = None

    def warmup(self, value):
        """The first message: the warm-up one.  Signals the producer."""
        seq = parse(value)[2]
        if seq != WARMUP_SEQ:
            raise RuntimeError("first message has sequence number %d, not the warm-up" % seq)
        with open(self.ready_path + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(self.ready_path + ".tmp", self.ready_path)
        self.ready = True

    def add(self, value, recv_ns):
        due, call, seq = parse(value)
        if seq < 1 or seq > self.n:
            raise RuntimeError("unexpected sequence number %d" % seq)
        if self.seen[seq]:
            self.dups += 1
            return
        self.seen[seq] = 1
        if seq < self.last_seq:
            self.out_of_order += 1
        self.last_seq = seq
        if self.first_recv is None:
            self.first_recv = recv_ns
        self.last_recv = recv_ns
        self.count += 1
        self.bytes += len(value)
        self.crcsum += zlib.crc32(value)
        if seq > self.skip_seq:
            self.lat.append(recv_ns - due)
            self.lat_call.append(recv_ns - call)

    @property
    def done(self):
        return self.count >= self.n

    def feed(self, value, recv_ns):
        """One poll's result: None (nothing came: checks for a stall), the
        warm-up message (starts the timer), or a timed message."""
        if value is None:
            self.stall.check(self.count + self.ready)
        elif self.ready:
            self.add(value, recv_ns)
        else:
            self.warmup(value)
            self.timer.start()

    def result(self):
        """Percentiles (exact, of the sorted latencies) and the checks."""
        missing = self.n - sum(self.seen[1:])
        out = {"count": self.count, "bytes": self.bytes, "crcsum": self.crcsum & MASK,
               "missing": missing, "duplicates": self.dups,
               "out_of_order": self.out_of_order,
               "latency": _stats(self.lat), "latency_from_call": _stats(self.lat_call),
               "in_percentiles": len(self.lat)}
        if self.first_recv is not None and self.last_recv > self.first_recv:
            out["receive_rate"] = (self.count - 1) / ((self.last_recv - self.first_recv) / 1e9)
        return out


def _stats(arr):
    """p50/p99/p99.9/max/mean in microseconds of the latencies in ``arr``."""
    xs = sorted(arr)
    if not xs:
        return None
    n = len(xs)

    def pct(q):
        # nearest rank: the smallest sample with at least q % of them at or below it
        k = max(0, min(n - 1, math.ceil(q * n / 100.0 - 1e-9) - 1))
        return xs[k] / 1000.0

    return {"p50_us": pct(50), "p99_us": pct(99), "p99_9_us": pct(99.9),
            "max_us": xs[-1] / 1000.0, "min_us": xs[0] / 1000.0,
            "mean_us": sum(xs) / n / 1000.0, "n": n}


def receive_loop(next_value, spec, timer, stall):
    """Drive a per-message consumer: ``next_value()`` returns the next
    message's value or None (nothing within its poll timeout).  The first
    value must be the warm-up message."""
    r = Receiver(spec, timer, stall)
    feed, now_ns = r.feed, time.monotonic_ns
    while not r.done:
        v = next_value()
        feed(v, now_ns())
    timer.stop()
    return r.result()


async def receive_loop_async(next_value, spec, timer, stall):
    """receive_loop for asyncio clients: ``await next_value()``."""
    r = Receiver(spec, timer, stall)
    feed, now_ns = r.feed, time.monotonic_ns
    while not r.done:
        v = await next_value()
        feed(v, now_ns())
    timer.stop()
    return r.result()
