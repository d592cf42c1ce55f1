"""pykafka_c: SimpleConsumer.consume() / consume_batch() and Producer, over
plaintext or TLS (``spec["transport"]``)."""

import zlib

from . import MASK, Deadline, Stall


def _client(spec):
    from pykafka_c import KafkaClient
    kwargs = {}
    if spec.get("transport") == "tls":
        # pykafka's SslConfig; the broker's chain and host name are verified.
        from pykafka_c import SslConfig
        kwargs["ssl_config"] = SslConfig(cafile=spec["ssl_cafile"])
    client = KafkaClient(hosts=spec["brokers"], **kwargs)
    return client, client.topics[spec["topic"]]


def _consume(spec, timer):
    from pykafka_c.common import OffsetType
    n = spec["count"]
    want_crc = spec.get("checksum", False)
    timeout_ms = int(spec.get("timeout_s", 120) * 1000)
    client, topic = _client(spec)
    params = dict(spec.get("params") or {})
    timer.start()
    consumer = topic.get_simple_consumer(
        auto_offset_reset=OffsetType.EARLIEST, reset_offset_on_start=True,
        consumer_timeout_ms=timeout_ms, **params)
    count = nbytes = crcsum = 0
    if spec["op"] == "consume":
        consume = consumer.consume
        if want_crc:
            crc32 = zlib.crc32
            while count < n:
                m = consume()
                if m is None:
                    raise Deadline("no message for %d ms after %d" % (timeout_ms, count))
                v = m.value
                nbytes += len(v)
                crcsum += crc32(v)
                count += 1
        else:
            while count < n:
                m = consume()
                if m is None:
                    raise Deadline("no message for %d ms after %d" % (timeout_ms, count))
                nbytes += len(m.value)
                count += 1
    elif spec["op"] == "iterate":
        # for m in consumer: the C iterator; consumer_timeout_ms ends it.
        if want_crc:
            crc32 = zlib.crc32
            for m in consumer:
                v = m.value
                nbytes += len(v)
                crcsum += crc32(v)
                count += 1
                if count >= n:
                    break
        else:
            for m in consumer:
                nbytes += len(m.value)
                count += 1
                if count >= n:
                    break
        if count < n:
            raise Deadline("iteration ended after %d of %d" % (count, n))
    else:
        batch = int(spec.get("batch_size", 1000))
        consume_batch = consumer.consume_batch
        crc32 = zlib.crc32
        while count < n:
            msgs = consume_batch(min(batch, n - count), timeout_ms)
            if not msgs:
                raise Deadline("no message for %d ms after %d" % (timeout_ms, count))
            if want_crc:
                for m in msgs:
                    v = m.value
                    nbytes += len(v)
                    crcsum += crc32(v)
            else:
                for m in msgs:
                    nbytes += len(m.value)
            count += len(msgs)
    timer.stop()
    consumer.stop()
    client.close() if hasattr(client, "close") else None
    out = {"count": count, "bytes": nbytes}
    if want_crc:
        out["crcsum"] = crcsum & MASK
    return out


def _produce(spec, timer):
    from pykafka_c.common import CompressionType
    from bench.payloads import POOL_SIZE, produce_pool
    codecs = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4,
              "zstd": CompressionType.ZSTD, "gzip": CompressionType.GZIP,
              "snappy": CompressionType.SNAPPY}
    n = spec["count"]
    pool = produce_pool(spec["size"])
    client, topic = _client(spec)
    params = dict(spec.get("params") or {})
    producer = topic.get_producer(required_acks=1, compression=codecs[spec["codec"]],
                                  delivery_reports=False, **params)
    produce = producer.produce
    mask = POOL_SIZE - 1
    timer.start()
    for i in range(n):
        produce(pool[i & mask])
    pending = producer.flush(spec.get("timeout_s", 120))
    timer.stop()
    stats = producer._core.stats()
    producer.stop()
    if pending:
        raise Deadline("%d messages still unacknowledged at the time limit" % pending)
    if stats.get("failed"):
        raise RuntimeError("%d messages failed" % stats["failed"])
    return {"count": n, "bytes": n * spec["size"],
            "client_stats": {k: stats[k] for k in ("requests", "batches_sent", "bytes_sent",
                                                   "busy_us", "backlog_us")
                             if k in stats}}


def _latency(spec, timer):
    """One side of a latency row (bench/latency.py): consume() one message
    at a time, or produce() on the pacer's schedule."""
    from bench.latency import paced_send, receive_loop, wait_for_file, warmup_value
    timeout_s = float(spec.get("timeout_s", 120))
    client, topic = _client(spec)
    if spec["role"] == "consumer":
        from pykafka_c.common import OffsetType
        consumer = topic.get_simple_consumer(
            auto_offset_reset=OffsetType.EARLIEST, reset_offset_on_start=True,
            consumer_timeout_ms=1000)
        consume = consumer.consume

        def next_value():
            m = consume()
            return None if m is None else m.value

        out = receive_loop(next_value, spec, timer, Stall(timeout_s))
        consumer.stop()
        client.close()
        return out
    params = spec["params"]
    producer = topic.get_producer(required_acks=-1 if params["acks"] == "all" else 1,
                                  linger_ms=int(params["linger_ms"]),
                                  delivery_reports=False)
    producer.produce(warmup_value(spec["size"]))
    if producer.flush(timeout_s):
        raise Deadline("the warm-up message was not acknowledged")
    wait_for_file(spec["ready_path"], timeout_s)
    out = paced_send(producer.produce, spec, timer)
    pending = producer.flush(timeout_s)
    timer.stop()
    stats = producer._core.stats()
    producer.stop()
    client.close()
    if pending:
        raise Deadline("%d messages still unacknowledged at the time limit" % pending)
    if stats.get("failed"):
        raise RuntimeError("%d messages failed" % stats["failed"])
    return out


def run(spec, timer):
    if spec["op"] == "latency":
        return _latency(spec, timer)
    if spec["op"] in ("consume", "consume_batch", "iterate"):
        return _consume(spec, timer)
    if spec["op"] == "produce":
        return _produce(spec, timer)
    raise ValueError("pykafka_c: unknown op %r" % spec["op"])
