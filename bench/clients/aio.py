"""aiokafka: AIOKafkaConsumer (``async for`` and ``getmany()``) and
AIOKafkaProducer (``await send()`` for every message, then ``flush()``),
each run from its own asyncio event loop (``asyncio.run``), as asyncio
applications use them.  Consumers assign every partition and seek to the
beginning (no group); producers use aiokafka's defaults (linger_ms=0,
max_batch_size=16384, no idempotence) except acks=1 and the codec
(aiokafka's lz4 and zstd codecs come from cramjam).

``await producer.send()`` returns as soon as the message is in aiokafka's
batch accumulator (it waits only when the accumulator is full) and gives a
future of the delivery; the run keeps the futures, checks the finished
ones as it goes, and checks the rest after ``flush()``, so every failed
delivery fails the row.  ``send_and_wait()`` per message would wait for
each acknowledgement in turn and batch nothing."""

import asyncio
import os
import time
import zlib

from . import MASK, Deadline, Stall


class _Watchdog:
    """Cancels the run when ``progress()`` has not changed for ``limit``
    seconds (a loop waiting on the broker would otherwise wait forever)."""

    def __init__(self, limit, progress):
        self.limit = limit
        self.progress = progress
        self.stalled = None

    async def watch(self, task):
        last, since = -1, time.monotonic()
        while not task.done():
            await asyncio.sleep(0.5)
            now, p = time.monotonic(), self.progress()
            if p != last:
                last, since = p, now
            elif now - since > self.limit:
                self.stalled = "no progress for %.0f s after %d" % (self.limit, p)
                task.cancel()
                return

    async def run(self, coro):
        task = asyncio.ensure_future(coro)
        dog = asyncio.ensure_future(self.watch(task))
        try:
            return await task
        except asyncio.CancelledError:
            if self.stalled:
                raise Deadline(self.stalled)
            raise
        finally:
            dog.cancel()


async def _consume(spec, timer):
    from aiokafka import AIOKafkaConsumer, TopicPartition
    n = spec["count"]
    want_crc = spec.get("checksum", False)
    batch = int(spec.get("batch_size") or 1000)
    state = {"count": 0, "bytes": 0, "crcsum": 0}
    timer.start()
    c = AIOKafkaConsumer(bootstrap_servers=spec["brokers"], group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         **(spec.get("params") or {}))
    await c.start()
    try:
        c.assign([TopicPartition(spec["topic"], p) for p in range(spec["partitions"])])
        await c.seek_to_beginning()

        async def per_message():
            count = nbytes = crcsum = 0
            crc32 = zlib.crc32
            try:
                async for m in c:
                    v = m.value
                    nbytes += len(v)
                    if want_crc:
                        crcsum += crc32(v)
                    count += 1
                    if count >= n:
                        break
                    if not count & 1023:
                        state["count"] = count
            finally:
                state.update(count=count, bytes=nbytes, crcsum=crcsum)

        async def batches():
            count = nbytes = crcsum = 0
            crc32 = zlib.crc32
            getmany = c.getmany
            try:
                while count < n:
                    got = await getmany(timeout_ms=1000, max_records=min(batch, n - count))
                    for msgs in got.values():
                        for m in msgs:
                            v = m.value
                            nbytes += len(v)
                            if want_crc:
                                crcsum += crc32(v)
                        count += len(msgs)
                    state["count"] = count
            finally:
                state.update(count=count, bytes=nbytes, crcsum=crcsum)

        dog = _Watchdog(float(spec.get("timeout_s", 120)), lambda: state["count"])
        await dog.run(per_message() if spec["op"] == "consume" else batches())
        timer.stop()
    finally:
        await c.stop()
    out = {"count": state["count"], "bytes": state["bytes"]}
    if want_crc:
        out["crcsum"] = state["crcsum"] & MASK
    return out


def _check(futs):
    """Raise the error of a finished, failed delivery; return the unfinished."""
    still = []
    for f in futs:
        if f.done():
            exc = f.exception()
            if exc is not None:
                raise exc
        else:
            still.append(f)
    return still


async def _produce(spec, timer):
    from aiokafka import AIOKafkaProducer
    from bench.payloads import POOL_SIZE, produce_pool
    n = spec["count"]
    pool = produce_pool(spec["size"])
    conf = dict(bootstrap_servers=spec["brokers"], acks=1,
                compression_type=None if spec["codec"] == "none" else spec["codec"])
    conf.update(spec.get("params") or {})
    p = AIOKafkaProducer(**conf)
    await p.start()
    topic = spec["topic"]
    try:
        send = p.send
        mask = POOL_SIZE - 1
        state = {"i": 0}
        pending = []

        async def produce_all():
            nonlocal pending
            for i in range(n):
                pending.append(await send(topic, pool[i & mask]))
                if not i & 16383:
                    pending = _check(pending)
                    state["i"] = i
            state["i"] = n
            await p.flush()

        timer.start()
        await _Watchdog(float(spec.get("timeout_s", 120)), lambda: state["i"]).run(
            produce_all())
        timer.stop()
        left = _check(pending)
        if left:
            raise Deadline("%d deliveries unfinished after flush()" % len(left))
    finally:
        await p.stop()
    return {"count": n, "bytes": n * spec["size"]}


async def _latency(spec, timer):
    """One side of a latency row (bench/latency.py): ``async for`` one
    message at a time, or ``await send()`` on the pacer's schedule, with
    ``asyncio.sleep`` between messages."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from bench.latency import paced_send_async, receive_loop_async, warmup_value
    timeout_s = float(spec.get("timeout_s", 120))
    if spec["role"] == "consumer":
        c = AIOKafkaConsumer(bootstrap_servers=spec["brokers"], group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest")
        await c.start()
        try:
            c.assign([TopicPartition(spec["topic"], 0)])
            await c.seek_to_beginning()
            it = c.__aiter__()

            async def next_value():
                try:
                    return (await asyncio.wait_for(it.__anext__(), 1.0)).value
                except asyncio.TimeoutError:
                    return None

            return await receive_loop_async(next_value, spec, timer, Stall(timeout_s))
        finally:
            await c.stop()
    params = spec["params"]
    p = AIOKafkaProducer(bootstrap_servers=spec["brokers"],
                         acks="all" if params["acks"] == "all" else 1,
                         linger_ms=int(params["linger_ms"]))
    await p.start()
    try:
        topic = spec["topic"]
        await p.send_and_wait(topic, warmup_value(spec["size"]))
        t_wait = time.monotonic()
        while not os.path.exists(spec["ready_path"]):
            if time.monotonic() - t_wait > timeout_s:
                raise Deadline("the consumer was not ready after %.0f s" % timeout_s)
            await asyncio.sleep(0.001)
        send = p.send
        pending = []

        async def send_one(v):
            pending.append(await send(topic, v))

        out = await paced_send_async(send_one, spec, timer)
        await p.flush()
        timer.stop()
        if _check(pending):
            raise Deadline("deliveries unfinished after flush()")
        return out
    finally:
        await p.stop()


def run(spec, timer):
    if spec["op"] == "latency":
        return asyncio.run(_latency(spec, timer))
    if spec["op"] in ("consume", "consume_batch"):
        return asyncio.run(_consume(spec, timer))
    if spec["op"] == "produce":
        return asyncio.run(_produce(spec, timer))
    raise ValueError("aiokafka: unknown op %r" % spec["op"])
