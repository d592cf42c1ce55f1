"""Record a real Fetch response for the decode-only benchmark.

    python -m bench.record_fetch [--size 100] [--out bench/data]

Starts a Kafka 4.x broker with the project's harness (or uses ``$BROKERS``),
writes messages 0..N-1 of :mod:`bench.payloads` with kcat (librdkafka, at
most ``--batch`` records per RecordBatch, no compression), sends one Fetch
v12 for partition 0 from offset 0 with ``--max-bytes`` as the partition
limit, and stores the response body (the bytes after the response header,
exactly as the broker sent them) gzip-compressed as
``bench/data/fetch_v12_<size>B.bin.gz`` with a JSON file beside it giving
the API version, the number of records a decoder must return, and their
checksum.  The stored files are what the decode benchmark reads; this
script is how they were made and how to make them again.
"""

import argparse
import datetime
import gzip
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(HERE, "data")
FETCH_VERSION = 12


def data_paths(size, data_dir=DATA_DIR):
    base = os.path.join(data_dir, "fetch_v%d_%dB" % (FETCH_VERSION, size))
    return base + ".bin.gz", base + ".json"


def load(size, data_dir=DATA_DIR):
    """(raw response body, metadata dict) of a stored recording."""
    bin_path, meta_path = data_paths(size, data_dir)
    with gzip.open(bin_path, "rb") as f:
        raw = f.read()
    with open(meta_path) as f:
        meta = json.load(f)
    return raw, meta


def fetch_raw(host, port, topic, max_bytes):
    from pykafka_c import _core
    fields = {
        "replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": max_bytes,
        "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": topic, "partitions": [{
            "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
            "last_fetched_epoch": -1, "log_start_offset": -1,
            "partition_max_bytes": max_bytes}]}],
        "forgotten_topics_data": [], "rack_id": ""}
    body = _core.encode_request(1, FETCH_VERSION, fields)
    conn = _core.Connection(host, port, timeout_ms=30000, client_id="pkc-bench-recorder")
    try:
        return conn.request(1, FETCH_VERSION, body, flexible=True)
    finally:
        conn.close()


def decode_values(raw):
    """Values of the records in a recorded response (pykafka_c's decoder)."""
    from pykafka_c import _core
    resp = _core.decode_response(1, FETCH_VERSION, raw)
    part = resp["responses"][0]["partitions"][0]
    if part["error_code"]:
        raise RuntimeError("Fetch answered error %d" % part["error_code"])
    return [m.value for m in _core.decode_records(part["records"], 0, 0)]


def record(brokers, kafka_version, size, count, batch, max_bytes, data_dir):
    from bench.kafkautil import KcatCluster
    from bench.payloads import Checksum, make_value
    cluster = KcatCluster(brokers)
    topic = "pkc-bench-record-%dB" % size
    cluster.create_topic(topic, 1)
    cluster.prefill(topic, count, size, extra=["-X", "batch.num.messages=%d" % batch])
    host, port = brokers.split(",")[0].rsplit(":", 1)
    raw = fetch_raw(host, int(port), topic, max_bytes)
    values = decode_values(raw)
    want = [make_value(i, size) for i in range(len(values))]
    if values != want:
        raise RuntimeError("recorded response does not hold messages 0..%d in order"
                           % (len(values) - 1))
    c = Checksum()
    for v in values:
        c.add(v)
    meta = {"api_key": 1, "api_version": FETCH_VERSION, "value_size": size,
            "records": len(values), "checksum": c.as_dict(), "response_bytes": len(raw),
            "kafka_version": kafka_version,
            "producer": "kcat (librdkafka), batch.num.messages=%d, no compression" % batch,
            "partition_max_bytes": max_bytes,
            "recorded": datetime.date.today().isoformat()}
    os.makedirs(data_dir, exist_ok=True)
    bin_path, meta_path = data_paths(size, data_dir)
    with gzip.GzipFile(bin_path, "wb", mtime=0) as f:
        f.write(raw)
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    cluster.delete_topic(topic)
    return meta


def main(argv=None):
    sys.path.insert(0, os.path.dirname(HERE))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, action="append")
    ap.add_argument("--max-bytes", type=int, default=262144)
    ap.add_argument("--out", default=DATA_DIR)
    args = ap.parse_args(argv)
    sizes = args.size or [100, 1024]
    instance = None
    brokers = os.environ.get("BROKERS")
    kafka_version = os.environ.get("KAFKA_VERSION", "?")
    if not brokers:
        from pykafka_c.test.kafka_instance import DEFAULT_KAFKA_VERSION, KafkaInstance
        instance = KafkaInstance(1, kafka_version=DEFAULT_KAFKA_VERSION)
        brokers, kafka_version = instance.brokers, instance.kafka_version
    try:
        for size in sizes:
            per_batch = max(10, 100000 // size)       # ~100 KB RecordBatches
            count = max(per_batch * 4, 3 * args.max_bytes // size)
            meta = record(brokers, kafka_version, size, count, per_batch, args.max_bytes,
                          args.out)
            print(json.dumps(meta, sort_keys=True))
    finally:
        if instance is not None:
            instance.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
