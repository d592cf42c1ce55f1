"""kafka-python: KafkaConsumer iteration and KafkaProducer.send() + flush().
Consumers assign every partition and seek to the beginning (no group);
producers use kafka-python's defaults except acks=1 and the codec (the
lz4/zstandard/crc32c extras are installed in the bench virtualenv)."""

import zlib

from . import MASK, Deadline, Stall


def _consume(spec, timer):
    from kafka import KafkaConsumer, TopicPartition
    n = spec["count"]
    want_crc = spec.get("checksum", False)
    timeout_ms = int(spec.get("timeout_s", 120) * 1000)
    conf = dict(bootstrap_servers=spec["brokers"], group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", consumer_timeout_ms=timeout_ms)
    conf.update(spec.get("params") or {})
    timer.start()
    c = KafkaConsumer(**conf)
    c.assign([TopicPartition(spec["topic"], p) for p in range(spec["partitions"])])
    c.seek_to_beginning()
    count = nbytes = crcsum = 0
    crc32 = zlib.crc32
    if want_crc:
        for m in c:
            v = m.value
            nbytes += len(v)
            crcsum += crc32(v)
            count += 1
            if count >= n:
                break
    else:
        for m in c:
            nbytes += len(m.value)
            count += 1
            if count >= n:
                break
    timer.stop()
    c.close()
    if count < n:
        raise Deadline("iteration ended (consumer_timeout_ms) after %d of %d" % (count, n))
    out = {"count": count, "bytes": nbytes}
    if want_crc:
        out["crcsum"] = crcsum & MASK
    return out


def _produce(spec, timer):
    from kafka import KafkaProducer
    from bench.payloads import POOL_SIZE, produce_pool
    n = spec["count"]
    pool = produce_pool(spec["size"])
    conf = dict(bootstrap_servers=spec["brokers"], acks=1,
                compression_type=None if spec["codec"] == "none" else spec["codec"])
    conf.update(spec.get("params") or {})
    p = KafkaProducer(**conf)
    topic = spec["topic"]
    send = p.send
    mask = POOL_SIZE - 1
    timer.start()
    fut = None
    for i in range(n):
        fut = send(topic, pool[i & mask])
    p.flush(timeout=float(spec.get("timeout_s", 120)))
    timer.stop()
    if fut is not None:
        fut.get(timeout=1)          # raises the error if the last batch failed
    p.close()
    return {"count": n, "bytes": n * spec["size"]}


def _latency(spec, timer):
    """One side of a latency row (bench/latency.py): next() on the
    KafkaConsumer iterator, or send() on the pacer's schedule."""
    from bench.latency import paced_send, receive_loop, wait_for_file, warmup_value
    timeout_s = float(spec.get("timeout_s", 120))
    if spec["role"] == "consumer":
        from kafka import KafkaConsumer, TopicPartition
        c = KafkaConsumer(bootstrap_servers=spec["brokers"], group_id=None,
                          enable_auto_commit=False, auto_offset_reset="earliest",
                          consumer_timeout_ms=1000)
        c.assign([TopicPartition(spec["topic"], 0)])
        c.seek_to_beginning()

        def next_value():
            try:
                return next(c).value
            except StopIteration:        # consumer_timeout_ms passed
                return None

        out = receive_loop(next_value, spec, timer, Stall(timeout_s))
        c.close()
        return out
    from kafka import KafkaProducer
    params = spec["params"]
    p = KafkaProducer(bootstrap_servers=spec["brokers"],
                      acks="all" if params["acks"] == "all" else 1,
                      linger_ms=int(params["linger_ms"]))
    topic = spec["topic"]
    p.send(topic, warmup_value(spec["size"])).get(timeout=timeout_s)
    wait_for_file(spec["ready_path"], timeout_s)
    send = p.send
    last = []

    def send_one(v):
        last[:] = [send(topic, v)]

    out = paced_send(send_one, spec, timer)
    p.flush(timeout=timeout_s)
    timer.stop()
    if last:
        last[0].get(timeout=1)           # raises the error if the last batch failed
    p.close()
    return out


def run(spec, timer):
    if spec["op"] == "latency":
        return _latency(spec, timer)
    if spec["op"] == "consume":
        return _consume(spec, timer)
    if spec["op"] == "produce":
        return _produce(spec, timer)
    raise ValueError("kafka-python: unknown op %r" % spec["op"])
