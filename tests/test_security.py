"""TLS and SASL against the harness's real brokers (Kafka 4.x and 3.9).

Every listener kind the harness runs (SSL, mutual TLS, SASL_PLAINTEXT and
SASL_SSL with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER) carries
the whole client: produce with every codec, consume, commit and resume, a
balanced consumer pair, and confluent-kafka (librdkafka) on the same
listener reading what pykafka_c wrote and the reverse.  Then every refusal a
real broker gives: wrong password, unknown user, wrong CA, host-name
mismatch, expired certificate, a revoked one, mutual TLS without a
certificate, and the wrong kind of client on each kind of port: each a
typed error, promptly, with no secret in any message or log record.
Re-authentication (KIP-368) runs against short-lived OAUTHBEARER tokens.
What no real broker sends is in tests/test_link_hostile.py.
"""

import logging
import os
import subprocess
import threading
import time
import uuid

import confluent_kafka
import pytest

from pykafka_c import KafkaClient, SslConfig
from pykafka_c.common import CompressionType, OffsetType
from pykafka_c.exceptions import (IllegalSaslState, NoBrokersAvailableError,
                                  ProtocolDecodeError,
                                  SaslAuthenticationFailed,
                                  SocketDisconnectedError, SslError)
from pykafka_c.test.security import unsecured_jwt

CODECS = [CompressionType.NONE, CompressionType.GZIP, CompressionType.SNAPPY,
          CompressionType.LZ4, CompressionType.ZSTD]
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
FAST_GROUP = dict(heartbeat_interval_ms=500, session_timeout_ms=6000)
PROMPT_S = 5.0


# --------------------------------------------------------------- settings

def ssl_config(kafka, client_cert=False, **kwargs):
    c = kafka.certs
    if client_cert:
        return SslConfig(c.root_cert, c.client_cert, c.client_key,
                         c.client_pass, **kwargs)
    return SslConfig(c.root_cert, **kwargs)


def sasl_settings(kafka, mechanism, user=0):
    if mechanism == "OAUTHBEARER":
        return {"sasl_mechanism": mechanism,
                "sasl_oauth_token_provider":
                    lambda: unsecured_jwt("alice", 600)}
    u = kafka.sasl_users[mechanism][user]
    return {"sasl_mechanism": mechanism, "sasl_username": u.name,
            "sasl_password": u.password}


def client_settings(kafka, listener, mechanism=None):
    """KafkaClient keywords for one listener (and SASL mechanism)."""
    if listener == "SSL":
        return {"hosts": kafka.brokers_ssl, "ssl_config": ssl_config(kafka)}
    if listener == "MTLS":
        return {"hosts": kafka.brokers_mtls,
                "ssl_config": ssl_config(kafka, client_cert=True)}
    if listener == "SASL_PLAINTEXT":
        return dict(hosts=kafka.brokers_sasl_plaintext,
                    **sasl_settings(kafka, mechanism))
    if listener == "SASL_SSL":
        return dict(hosts=kafka.brokers_sasl_ssl,
                    ssl_config=ssl_config(kafka),
                    **sasl_settings(kafka, mechanism))
    raise ValueError(listener)


def confluent_settings(kafka, listener, mechanism=None):
    """The same listener and credentials for confluent-kafka."""
    c = kafka.certs
    conf = {"bootstrap.servers": client_settings(kafka, listener,
                                                 mechanism)["hosts"]}
    if listener in ("SSL", "MTLS", "SASL_SSL"):
        conf["ssl.ca.location"] = c.root_cert
    if listener == "MTLS":
        conf.update({"ssl.certificate.location": c.client_cert,
                     "ssl.key.location": c.client_key,
                     "ssl.key.password": c.client_pass})
    conf["security.protocol"] = {"SSL": "ssl", "MTLS": "ssl",
                                 "SASL_PLAINTEXT": "sasl_plaintext",
                                 "SASL_SSL": "sasl_ssl"}[listener]
    if mechanism is not None:
        conf["sasl.mechanism"] = mechanism
    if mechanism == "OAUTHBEARER":
        conf["oauth_cb"] = lambda _config: (unsecured_jwt("alice", 600),
                                            time.time() + 600)
    elif mechanism is not None:
        u = kafka.sasl_users[mechanism][0]
        conf.update({"sasl.username": u.name, "sasl.password": u.password})
    return conf


CONFIGS = [("SSL", None), ("MTLS", None)] + \
    [(listener, m) for listener in ("SASL_PLAINTEXT", "SASL_SSL")
     for m in MECHANISMS]
CONFIG_IDS = ["%s%s" % (listener, "-" + m if m else "")
              for listener, m in CONFIGS]


# --------------------------------------------------------------- helpers

def confluent_produce(conf, topic, values):
    p = confluent_kafka.Producer(dict(conf, **{"linger.ms": 0}))
    errors = []

    def report(err, _msg):
        if err is not None:
            errors.append(err)

    for v in values:
        p.produce(topic, v, partition=0, on_delivery=report)
    assert p.flush(30) == 0 and not errors, errors


def confluent_consume(conf, topic, partitions, n, timeout=30.0):
    """n values of the topic's partitions, read from the start without a
    group commit."""
    c = confluent_kafka.Consumer(dict(conf, **{
        "group.id": "pkc-confluent-%s" % uuid.uuid4().hex[:8],
        "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    c.assign([confluent_kafka.TopicPartition(topic, p, 0)
              for p in partitions])
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got.append(m.value())
    finally:
        c.close()
    return got


def consume_all(consumer, n, timeout=30.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = consumer.consume(block=True)
        if m is not None:
            got.append(m)
    return got


def balanced_pair_consumes(topic, group, n, timeout=60.0):
    """Two balanced consumers of one group split the partitions and
    consume n messages between them."""
    pair = [topic.get_balanced_consumer(
        group, managed=True, auto_offset_reset=OffsetType.EARLIEST,
        consumer_timeout_ms=200, **FAST_GROUP) for _ in range(2)]
    got = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            owned = [set(c.partitions) for c in pair]
            for c in pair:
                m = c.consume(block=False)
                while m is not None:
                    got.append(m.value)
                    m = c.consume(block=False)
            if len(got) >= n and all(owned) and not owned[0] & owned[1]:
                return got, owned
            time.sleep(0.05)
    finally:
        for c in pair:
            c.stop()
    raise AssertionError("the pair consumed %d of %d (owned %s)"
                         % (len(got), n, [set(c.partitions) for c in pair]))


def main_connection(client):
    return next(iter(client.brokers.values()))._channel("main").conn


# -------------------------------------------------------- the whole client

@pytest.mark.parametrize("listener,mechanism", CONFIGS, ids=CONFIG_IDS)
def test_whole_client_over(kafka, topic_name, listener, mechanism):
    """Produce with every codec, consume, commit and resume, a balanced
    pair, and confluent-kafka both ways, over one kind of listener."""
    kafka.create_topic(topic_name, 2)
    client = KafkaClient(**client_settings(kafka, listener, mechanism))
    try:
        tls = main_connection(client).tls
        assert (tls is not None) == (listener != "SASL_PLAINTEXT"), tls
        topic = client.topics[topic_name]
        sent = []
        for codec in CODECS:
            with topic.get_sync_producer(compression=codec) as producer:
                for i in range(10):
                    v = b"%d-%d" % (codec, i)
                    producer.produce(v, partition_key=b"%d" % i)
                    sent.append(v)
        group = ("g-" + topic_name).encode()
        consumer = topic.get_simple_consumer(
            consumer_group=group, auto_offset_reset=OffsetType.EARLIEST,
            consumer_timeout_ms=10000)
        got = consume_all(consumer, len(sent))
        assert sorted(m.value for m in got) == sorted(sent)
        if mechanism is not None:
            assert consumer._fetcher.stats()["authentications"] >= 1
        consumer.commit_offsets()
        consumer.stop()
        with topic.get_sync_producer() as producer:
            producer.produce(b"after-commit", partition_key=b"0")
        resumed = topic.get_simple_consumer(
            consumer_group=group, auto_offset_reset=OffsetType.EARLIEST,
            consumer_timeout_ms=10000)
        assert [m.value for m in consume_all(resumed, 1)] == \
            [b"after-commit"]
        resumed.stop()

        got, owned = balanced_pair_consumes(
            topic, ("pair-" + topic_name).encode(), len(sent) + 1)
        assert set(got) == set(sent) | {b"after-commit"}
        assert owned[0] | owned[1] == {0, 1}

        # confluent-kafka on the same listener: it reads everything
        # pykafka_c wrote, and pykafka_c reads what it writes.
        conf = confluent_settings(kafka, listener, mechanism)
        written = sent + [b"after-commit"]
        assert sorted(confluent_consume(conf, topic_name, [0, 1],
                                        len(written))) == sorted(written)
        from_confluent = [b"librdkafka-%d" % i for i in range(5)]
        confluent_produce(conf, topic_name, from_confluent)
        reader = topic.get_simple_consumer(
            auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=10000)
        values = [m.value for m in consume_all(
            reader, len(written) + len(from_confluent))]
        reader.stop()
        assert sorted(values) == sorted(written + from_confluent)
    finally:
        client.close()


@pytest.mark.parametrize("listener", ["SSL", "SASL_SSL"])
def test_megabyte_fetch_answers_over_tls(kafka, topic_name, listener):
    """Fetch answers of a megabyte arrive as many TLS records; the fetch
    thread waits for them in large steps (SO_RCVLOWAT, less what OpenSSL
    may hold of a record) and must never wait for bytes that are not
    coming: 12 MB with pykafka's default fetch settings, every answer but
    the last a whole megabyte, all read in order."""
    kafka.create_topic(topic_name, 1)
    mechanism = "SCRAM-SHA-256" if listener == "SASL_SSL" else None
    client = KafkaClient(**client_settings(kafka, listener, mechanism))
    try:
        topic = client.topics[topic_name]
        values = [(b"%08d" % i) * 125 for i in range(12000)]  # 1000 B each
        with topic.get_producer(linger_ms=50) as producer:
            for v in values:
                producer.produce(v)
        consumer = topic.get_simple_consumer(
            auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=10000)
        got = consume_all(consumer, len(values))
        stats = consumer._fetcher.stats()
        consumer.stop()
        assert [m.value for m in got] == values
        assert [m.offset for m in got] == list(range(len(values)))
        # about a megabyte per answer (pykafka's fetch_message_max_bytes)
        assert stats["responses"] <= 16, stats
    finally:
        client.close()


# ------------------------------------------------------------- refusals

def refused(kafka, exc_type, match, **settings):
    """KafkaClient with `settings` raises exc_type promptly, its message
    matching `match` and holding no password."""
    t0 = time.monotonic()
    with pytest.raises(exc_type, match=match) as info:
        KafkaClient(socket_timeout_ms=10000, **settings)
    assert time.monotonic() - t0 < PROMPT_S, time.monotonic() - t0
    text = str(info.value) + repr(info.value)
    for secret in all_secrets(kafka):
        assert secret not in text
    return info.value


def all_secrets(kafka):
    """Every password of the harness's users and keys."""
    return [u.password for users in kafka.sasl_users.values()
            for u in users if u.password] + [kafka.certs.client_pass]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256",
                                       "SCRAM-SHA-512"])
def test_wrong_password_and_unknown_user(kafka, mechanism):
    u = kafka.sasl_users[mechanism][0]
    other = kafka.sasl_users[mechanism][1]
    for name, password in ((u.name, other.password),
                           ("nobody-%s" % uuid.uuid4().hex[:6], u.password)):
        exc = refused(kafka, SaslAuthenticationFailed,
                      "SASL authentication with %s failed" % mechanism,
                      hosts=kafka.brokers_sasl_plaintext,
                      sasl_mechanism=mechanism, sasl_username=name,
                      sasl_password=password)
        assert "nvalid" in str(exc)  # the broker's own words


def test_wrong_ca(kafka):
    refused(kafka, SslError, "did not verify: unable to get local issuer",
            hosts=kafka.brokers_ssl,
            ssl_config=SslConfig(kafka.certs.other_ca_cert))


def test_host_name_mismatch_and_how_to_relax_it(kafka):
    refused(kafka, SslError, "mismatch", hosts=kafka.brokers_mismatch,
            ssl_config=ssl_config(kafka))
    # pykafka did not check host names; check_hostname=False behaves so.
    client = KafkaClient(hosts=kafka.brokers_mismatch,
                         ssl_config=ssl_config(kafka, check_hostname=False))
    try:
        assert main_connection(client).tls.startswith("TLS")
    finally:
        client.close()


def test_certificate_without_san(kafka):
    """The NOSAN certificate names only CN=localhost: the advertised
    127.0.0.1 does not match it (OpenSSL's CN fallback is for DNS names)."""
    refused(kafka, SslError, "mismatch", hosts=kafka.brokers_nosan,
            ssl_config=ssl_config(kafka))


def test_expired_certificate(kafka):
    refused(kafka, SslError, "certificate has expired",
            hosts=kafka.brokers_expired, ssl_config=ssl_config(kafka))


def test_mutual_tls_without_a_client_certificate(kafka):
    refused(kafka, SslError, "client certificate", hosts=kafka.brokers_mtls,
            ssl_config=ssl_config(kafka))


def test_wrong_kind_of_client_on_each_kind_of_port(kafka):
    refused(kafka, ProtocolDecodeError, "TLS record", hosts=kafka.brokers_ssl)
    refused(kafka, SslError, "PLAINTEXT", hosts=kafka.brokers,
            ssl_config=ssl_config(kafka))
    refused(kafka, IllegalSaslState, "SASL listener", hosts=kafka.brokers,
            **sasl_settings(kafka, "SCRAM-SHA-256"))
    exc = refused(kafka, NoBrokersAvailableError, "require SASL or TLS",
                  hosts=kafka.brokers_sasl_plaintext)
    assert isinstance(exc, NoBrokersAvailableError)


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_crl(certs, revoke, out_dir):
    """A CRL signed by the test CA revoking the certificates in `revoke`."""
    out_dir = str(out_dir)
    with open(os.path.join(out_dir, "index.txt"), "w"):
        pass
    with open(os.path.join(out_dir, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = test\n[test]\n"
                "database = index.txt\ndefault_md = sha256\n"
                "default_crl_days = 2\n")
    for cert in revoke:
        _openssl("ca", "-config", "ca.cnf", "-keyfile", certs.root_key,
                 "-cert", certs.root_cert, "-revoke", cert, cwd=out_dir)
    _openssl("ca", "-config", "ca.cnf", "-keyfile", certs.root_key, "-cert",
             certs.root_cert, "-gencrl", "-out", "crl.pem", cwd=out_dir)
    return os.path.join(out_dir, "crl.pem")


def test_crl_refuses_a_revoked_broker_certificate(kafka, tmp_path):
    (tmp_path / "none").mkdir()
    (tmp_path / "revoked").mkdir()
    empty = make_crl(kafka.certs, [], tmp_path / "none")
    revoked = make_crl(kafka.certs, [kafka.certs.broker_cert],
                       tmp_path / "revoked")
    client = KafkaClient(hosts=kafka.brokers_ssl,
                         ssl_config=ssl_config(kafka, crlfile=empty))
    client.close()
    refused(kafka, SslError, "revoked", hosts=kafka.brokers_ssl,
            ssl_config=ssl_config(kafka, crlfile=revoked))


def test_no_secret_in_logs_or_reprs(kafka, topic_name, caplog):
    """A session with every secret in play (SCRAM password, key password,
    a token) and a refused one log nothing that holds them, nor does any
    repr or Jupyter table (_repr_html_) of its objects."""
    caplog.set_level(logging.DEBUG)
    secrets = all_secrets(kafka)
    u = kafka.sasl_users["SCRAM-SHA-512"][0]
    token = unsecured_jwt("alice", 600)
    secrets.append(token)
    kafka.create_topic(topic_name, 1)
    for settings in (
            dict(hosts=kafka.brokers_sasl_ssl,
                 ssl_config=ssl_config(kafka, client_cert=True),
                 sasl_mechanism="SCRAM-SHA-512", sasl_username=u.name,
                 sasl_password=u.password),
            dict(hosts=kafka.brokers_sasl_ssl, ssl_config=ssl_config(kafka),
                 sasl_mechanism="OAUTHBEARER",
                 sasl_oauth_token_provider=lambda: token)):
        client = KafkaClient(**settings)
        topic = client.topics[topic_name]
        with topic.get_sync_producer() as p:
            p.produce(b"x")
            producer_texts = [repr(p), p._repr_html_()]
        c = topic.get_simple_consumer(consumer_timeout_ms=5000)
        assert consume_all(c, 1)
        b = topic.get_balanced_consumer(b"g-" + uuid.uuid4().hex[:8].encode(),
                                        managed=True, consumer_timeout_ms=500,
                                        **FAST_GROUP)
        partition = topic.partitions[0]
        # every repr and every Jupyter table (those that asked the brokers
        # for versions and offsets over this listener included)
        texts = producer_texts + [
            repr(client), repr(client.cluster), repr(topic), repr(c),
            repr(b), repr(partition), repr(partition.leader),
            repr(c._partitions[partition]),
            repr(settings["ssl_config"]), repr(client.cluster._security),
            client._repr_html_(), client.cluster._repr_html_(),
            topic._repr_html_(), partition._repr_html_(), c._repr_html_(),
            b._repr_html_()]
        assert "negotiated API versions" in texts[-6]
        assert "SASL <b>%s</b>" % settings["sasl_mechanism"] in texts[-6]
        b.stop()
        c.stop()
        client.close()
        for text in texts:
            assert not any(s in text for s in secrets), text
    with pytest.raises(SaslAuthenticationFailed):
        KafkaClient(hosts=kafka.brokers_sasl_plaintext,
                    sasl_mechanism="SCRAM-SHA-512", sasl_username=u.name,
                    sasl_password="not-" + u.password)
    for record in caplog.records:
        text = record.getMessage()
        assert not any(s in text for s in secrets), text


# ------------------------------------------------------- re-authentication

def test_reauthentication_with_short_lived_tokens(kafka, topic_name):
    """OAUTHBEARER tokens that live 8 s: the broker gives each session that
    lifetime; the refresher fetches new tokens, and the fetch and send
    threads re-authenticate on their connections (KIP-368) instead of
    being cut off, losing and duplicating nothing."""
    kafka.create_topic(topic_name, 1)
    issued = []

    def provider():
        issued.append(time.time())
        return unsecured_jwt("alice", 8.0), time.time() + 8.0

    client = KafkaClient(hosts=kafka.brokers_sasl_ssl,
                         ssl_config=ssl_config(kafka),
                         sasl_mechanism="OAUTHBEARER",
                         sasl_oauth_token_provider=provider)
    topic = client.topics[topic_name]
    producer = topic.get_producer(linger_ms=10, delivery_reports=True)
    consumer = topic.get_simple_consumer(consumer_timeout_ms=3000)
    sent, got = [], []
    try:
        deadline = time.monotonic() + 12
        i = 0
        while time.monotonic() < deadline:
            v = b"m%d" % i
            producer.produce(v)
            sent.append(v)
            i += 1
            m = consumer.consume(block=False)
            while m is not None:
                got.append(m.value)
                m = consumer.consume(block=False)
            time.sleep(0.05)
        producer.flush(10)
        reports = [producer.get_delivery_report(True, 10) for _ in sent]
        assert all(exc is None for _, exc in reports)
        while len(got) < len(sent):
            m = consumer.consume(block=True)
            assert m is not None, "only %d of %d consumed" % (len(got),
                                                             len(sent))
            got.append(m.value)
        fetch = consumer._fetcher.stats()
        send = producer._core.stats()
    finally:
        consumer.stop()
        producer.stop()
        client.close()
    assert got == sent
    assert len(issued) >= 2
    # One connection each, authenticated again on it at least once.
    assert fetch["connects"] == 1 and fetch["authentications"] >= 2, fetch
    assert send["connects"] == 1 and send["authentications"] >= 2, (send, issued)
