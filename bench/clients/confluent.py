"""confluent-kafka (librdkafka): Consumer.poll() / Consumer.consume(n) and
Producer.produce() + flush(), over plaintext or TLS.  Consumers assign
every partition at the beginning (no group membership); producers use
librdkafka's defaults except acks=1 and the codec."""

import zlib

from . import MASK, Deadline, Stall


def _connection(spec):
    """bootstrap.servers, and TLS settings for the TLS rows: the broker's
    chain checked against the harness's CA and its host name verified, as
    pykafka_c's SslConfig does by default."""
    conf = {"bootstrap.servers": spec["brokers"]}
    if spec.get("transport") == "tls":
        conf.update({"security.protocol": "ssl", "ssl.ca.location": spec["ssl_cafile"],
                     "ssl.endpoint.identification.algorithm": "https"})
    return conf


def _consume(spec, timer):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    n = spec["count"]
    want_crc = spec.get("checksum", False)
    timeout_s = float(spec.get("timeout_s", 120))
    conf = _connection(spec)
    conf.update({"group.id": "bench-%s" % spec["topic"],
                 "enable.auto.commit": False, "enable.partition.eof": False,
                 "auto.offset.reset": "earliest"})
    conf.update(spec.get("params") or {})
    timer.start()
    c = Consumer(conf)
    c.assign([TopicPartition(spec["topic"], p, OFFSET_BEGINNING)
              for p in range(spec["partitions"])])
    count = nbytes = crcsum = 0
    crc32 = zlib.crc32
    stall = Stall(timeout_s)
    if spec["op"] == "consume":
        poll = c.poll
        if want_crc:
            while count < n:
                m = poll(1.0)
                if m is None:
                    stall.check(count)
                    continue
                if m.error():
                    raise RuntimeError(str(m.error()))
                v = m.value()
                nbytes += len(v)
                crcsum += crc32(v)
                count += 1
        else:
            while count < n:
                m = poll(1.0)
                if m is None:
                    stall.check(count)
                    continue
                if m.error():
                    raise RuntimeError(str(m.error()))
                nbytes += len(m.value())
                count += 1
    else:
        batch = int(spec.get("batch_size", 1000))
        consume = c.consume
        while count < n:
            msgs = consume(min(batch, n - count), 1.0)
            if not msgs:
                stall.check(count)
                continue
            if want_crc:
                for m in msgs:
                    if m.error():
                        raise RuntimeError(str(m.error()))
                    v = m.value()
                    nbytes += len(v)
                    crcsum += crc32(v)
            else:
                for m in msgs:
                    if m.error():
                        raise RuntimeError(str(m.error()))
                    nbytes += len(m.value())
            count += len(msgs)
    timer.stop()
    c.close()
    out = {"count": count, "bytes": nbytes}
    if want_crc:
        out["crcsum"] = crcsum & MASK
    return out


def _produce(spec, timer):
    from confluent_kafka import Producer
    from bench.payloads import POOL_SIZE, produce_pool
    n = spec["count"]
    pool = produce_pool(spec["size"])
    errors = []

    def on_error_report(err, msg):
        if err is not None:
            errors.append(str(err))

    conf = _connection(spec)
    conf.update({"acks": 1, "compression.type": spec["codec"],
                 "delivery.report.only.error": True, "on_delivery": on_error_report})
    conf.update(spec.get("params") or {})
    p = Producer(conf)
    topic = spec["topic"]
    produce = p.produce
    poll = p.poll
    mask = POOL_SIZE - 1
    timer.start()
    for i in range(n):
        try:
            produce(topic, pool[i & mask])
        except BufferError:          # local queue full: serve it, then retry
            poll(0.005)
            while True:
                try:
                    produce(topic, pool[i & mask])
                    break
                except BufferError:
                    poll(0.005)
    left = p.flush(float(spec.get("timeout_s", 120)))
    timer.stop()
    if left:
        raise Deadline("%d messages still unacknowledged at the time limit" % left)
    if errors:
        raise RuntimeError("%d delivery errors, first: %s" % (len(errors), errors[0]))
    return {"count": n, "bytes": n * spec["size"]}


def _latency(spec, timer):
    """One side of a latency row (bench/latency.py): poll() one message at
    a time, or produce() + poll(0) on the pacer's schedule."""
    from bench.latency import paced_send, receive_loop, wait_for_file, warmup_value
    timeout_s = float(spec.get("timeout_s", 120))
    if spec["role"] == "consumer":
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        conf = _connection(spec)
        conf.update({"group.id": "bench-%s" % spec["topic"],
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "auto.offset.reset": "earliest"})
        c = Consumer(conf)
        c.assign([TopicPartition(spec["topic"], 0, OFFSET_BEGINNING)])
        poll = c.poll

        def next_value():
            m = poll(1.0)
            if m is None:
                return None
            if m.error():
                raise RuntimeError(str(m.error()))
            return m.value()

        out = receive_loop(next_value, spec, timer, Stall(timeout_s))
        c.close()
        return out
    from confluent_kafka import Producer
    errors = []

    def on_error_report(err, msg):
        if err is not None:
            errors.append(str(err))

    params = spec["params"]
    conf = _connection(spec)
    conf.update({"acks": params["acks"], "linger.ms": int(params["linger_ms"]),
                 "delivery.report.only.error": True, "on_delivery": on_error_report})
    p = Producer(conf)
    topic = spec["topic"]
    produce = p.produce
    poll = p.poll
    p.produce(topic, warmup_value(spec["size"]))
    if p.flush(timeout_s):
        raise Deadline("the warm-up message was not acknowledged")
    wait_for_file(spec["ready_path"], timeout_s)

    def send(v):
        while True:
            try:
                produce(topic, v)
                break
            except BufferError:      # local queue full: serve it, then retry
                poll(0.005)
        poll(0)                      # serve delivery reports, as its users do

    out = paced_send(send, spec, timer)
    left = p.flush(timeout_s)
    timer.stop()
    if left:
        raise Deadline("%d messages still unacknowledged at the time limit" % left)
    if errors:
        raise RuntimeError("%d delivery errors, first: %s" % (len(errors), errors[0]))
    return out


def run(spec, timer):
    if spec["op"] == "latency":
        return _latency(spec, timer)
    if spec["op"] in ("consume", "consume_batch"):
        return _consume(spec, timer)
    if spec["op"] == "produce":
        return _produce(spec, timer)
    raise ValueError("confluent: unknown op %r" % spec["op"])
