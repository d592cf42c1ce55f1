"""pykafka 2.8.0, pure Python (its librdkafka extension is not built), on
the Kafka 3.9 broker: SimpleConsumer.consume() and Producer.produce() +
stop().  pykafka 2.8 speaks Fetch/Produce v0-v2 only, which Kafka 4
removed."""

import zlib

from . import MASK, Deadline

#: Newest broker_version pykafka 2.8 knows; makes it use ApiVersions and
#: message format v1 (timestamps).
BROKER_VERSION = "1.0.0"


def _client(spec):
    from pykafka import KafkaClient
    client = KafkaClient(hosts=spec["brokers"], broker_version=BROKER_VERSION)
    return client, client.topics[spec["topic"].encode()]


def _consume(spec, timer):
    from pykafka.common import OffsetType
    n = spec["count"]
    want_crc = spec.get("checksum", False)
    timeout_ms = int(spec.get("timeout_s", 120) * 1000)
    client, topic = _client(spec)
    params = dict(spec.get("params") or {})
    timer.start()
    consumer = topic.get_simple_consumer(
        auto_offset_reset=OffsetType.EARLIEST, reset_offset_on_start=True,
        consumer_timeout_ms=timeout_ms, **params)
    consume = consumer.consume
    count = nbytes = crcsum = 0
    crc32 = zlib.crc32
    if want_crc:
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
    timer.stop()
    consumer.stop()
    out = {"count": count, "bytes": nbytes}
    if want_crc:
        out["crcsum"] = crcsum & MASK
    return out


def _produce(spec, timer):
    from pykafka.common import CompressionType
    from bench.payloads import POOL_SIZE, produce_pool
    codecs = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4,
              "gzip": CompressionType.GZIP, "snappy": CompressionType.SNAPPY}
    if spec["codec"] not in codecs:
        raise ValueError("pykafka 2.8 has no %s codec" % spec["codec"])
    note = None
    if spec["codec"] == "lz4":
        note = _kafka_compatible_lz4()
    n = spec["count"]
    pool = produce_pool(spec["size"])
    client, topic = _client(spec)
    params = dict(pending_timeout_ms=int(spec.get("timeout_s", 120) * 1000))
    params.update(spec.get("params") or {})
    producer = topic.get_producer(required_acks=1, compression=codecs[spec["codec"]],
                                  delivery_reports=False, **params)
    produce = producer.produce
    mask = POOL_SIZE - 1
    timer.start()
    for i in range(n):
        produce(pool[i & mask])
    producer.stop()              # waits until every message is acknowledged
    timer.stop()
    out = {"count": n, "bytes": n * spec["size"]}
    if note:
        out["note"] = note
    return out


def _kafka_compatible_lz4():
    """pykafka 2.8 calls lz4.frame.compress() with the lz4 package's
    defaults; lz4 >= 1.0 makes linked-block frames by default, which Kafka
    refuses ("Dependent block stream is unsupported": every Produce fails).
    The benchmark makes pykafka's encoder pass block_linked=False, the only
    change to pykafka it makes."""
    import functools

    import lz4.frame
    from pykafka.utils import compression
    compression.encode_lz4 = functools.partial(lz4.frame.compress, block_linked=False)
    return ("pykafka 2.8's LZ4 frames are refused by Kafka with python-lz4 >= 1.0 "
            "(linked blocks); the benchmark patches its encoder to block_linked=False")


def run(spec, timer):
    if spec["op"] == "consume":
        return _consume(spec, timer)
    if spec["op"] == "produce":
        return _produce(spec, timer)
    raise ValueError("pykafka: unknown op %r" % spec["op"])
