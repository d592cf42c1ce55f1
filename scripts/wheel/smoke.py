"""Smoke test of an installed pykafka_c wheel against a real broker.

Run by scripts/test-wheel.sh inside a clean chroot (no compiler, no
headers) with only the wheel installed; needs nothing but the standard
library and pykafka_c.  The environment gives the broker: BROKERS,
BROKERS_SSL, BROKERS_SASL_SSL and PKC_TEST_CERTS (as
``python -m pykafka_c.test.kafka_instance 1 --export-hosts FILE`` writes
them).  It checks that pykafka_c comes from site-packages with its codec
and TLS libraries from the wheel's own pykafka_c.libs/, then produces and
consumes with every codec over PLAINTEXT, over TLS (the CA given as a file,
then found in the system's store: test-wheel.sh puts the test CA there), and
over SASL_SSL with SCRAM-SHA-512.  Ends with "wheel smoke: N passed, N failed".
"""

import json
import os
import sys
import time
import uuid

import pykafka_c
from pykafka_c import KafkaClient, SslConfig, _core
from pykafka_c.common import CompressionType, OffsetType

N = 200
results = []


def check(name, fn):
    t = time.monotonic()
    try:
        detail = fn()
    except Exception as exc:  # report every check, then fail at the end
        results.append(False)
        print("FAIL %-34s %s: %s" % (name, type(exc).__name__, exc), flush=True)
    else:
        results.append(True)
        print("ok   %-34s %s (%.1f s)" % (name, detail or "", time.monotonic() - t),
              flush=True)


def where():
    site = os.path.dirname(os.path.dirname(pykafka_c.__file__))
    assert site.endswith("site-packages"), pykafka_c.__file__
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "pykafka_c.libs" in path:
                libs.add(os.path.basename(path))
    for want in ("libsnappy", "liblz4", "libzstd", "libssl", "libcrypto"):
        assert any(lib.startswith(want) for lib in libs), (want, sorted(libs))
    return "%s; from the wheel: %s" % (_core.__file__, ", ".join(sorted(libs)))


def roundtrip(hosts, codec, **client_kw):
    client = KafkaClient(hosts=hosts, **client_kw)
    name = ("wheel-smoke-%s-%s" % (codec.lower(), uuid.uuid4().hex[:8])).encode()
    topic = client.topics[name]
    sent = [b"%s message %d " % (name, i) + os.urandom(8).hex().encode() * 8
            for i in range(N)]
    with topic.get_producer(compression=getattr(CompressionType, codec),
                            min_queued_messages=50, linger_ms=5,
                            sync=False) as producer:
        for i, value in enumerate(sent):
            producer.produce(value, partition_key=b"%d" % i,
                             headers=[("n", b"%d" % i)])
    consumer = topic.get_simple_consumer(auto_offset_reset=OffsetType.EARLIEST,
                                         consumer_timeout_ms=10000)
    got = []
    for message in consumer:
        got.append(message.value)
        assert message.headers == [("n", message.partition_key)], message.headers
        if len(got) == N:
            break
    consumer.stop()
    assert sorted(got) == sorted(sent), "%d of %d messages back" % (len(got), N)
    return "%d messages" % N


def main():
    env = os.environ
    certs = env["PKC_TEST_CERTS"]
    with open(os.path.join(certs, "credentials.json")) as f:
        user = json.load(f)["sasl_users"]["SCRAM-SHA-512"][0]
    ca = os.path.join(certs, "ca.pem")
    print("pykafka_c wheel smoke test, Python %s" % sys.version.split()[0], flush=True)
    check("installed from the wheel", where)
    for codec in ("NONE", "GZIP", "SNAPPY", "LZ4", "ZSTD"):
        check("PLAINTEXT, %s" % codec.lower(),
              lambda codec=codec: roundtrip(env["BROKERS"], codec))
    check("SSL (TLS), zstd",
          lambda: roundtrip(env["BROKERS_SSL"], "ZSTD", ssl_config=SslConfig(cafile=ca)))
    check("SSL, system CA store, gzip",
          lambda: roundtrip(env["BROKERS_SSL"], "GZIP", ssl_config=SslConfig(cafile=None)))
    check("SASL_SSL SCRAM-SHA-512, lz4",
          lambda: roundtrip(env["BROKERS_SASL_SSL"], "LZ4", ssl_config=SslConfig(cafile=ca),
                            sasl_mechanism="SCRAM-SHA-512", sasl_username=user[0],
                            sasl_password=user[1]))
    print("wheel smoke: %d passed, %d failed" % (results.count(True), results.count(False)),
          flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
