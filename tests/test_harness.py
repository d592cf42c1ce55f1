"""Tests of the Kafka test harness itself (pykafka_c.test).

Unit tests check the harness's own wire code and helpers without a broker.
Integration tests start real Kafka 4.x and 3.9 brokers: both versions start
and report their version, topics are created and deleted, Kafka's own tools
round-trip records, a 3-broker cluster started from the command line takes
an RF=3 topic, and a killed broker comes back into the cluster and the ISR.

The TLS and SASL listeners are checked with peers independent of
pykafka_c's client: Python's ssl module (under the harness's own wire
code), kcat (librdkafka) and Kafka's own Java client
(tests/java/SecurityCheck.java).
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

import pytest

from pykafka_c.test import _wire
from pykafka_c.test import kafka_instance as ki
from pykafka_c.test import security
from pykafka_c.test.utils import (ExternalCluster, KafkaConnection, _parse_hosts, get_cluster,
                                  retry, stop_cluster)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ unit

def _api_versions_v0_body(error, entries):
    body = struct.pack(">hi", error, len(entries))
    for k, lo, hi in entries:
        body += struct.pack(">hhh", k, lo, hi)
    return body


def _s(text):
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _metadata_body(version):
    """Metadata v`version` response body: 2 brokers, 1 topic with 2 partitions."""
    body = b""
    if version >= 3:
        body += struct.pack(">i", 0)                            # throttle
    body += struct.pack(">i", 2)
    body += struct.pack(">i", 0) + _s("127.0.0.1") + struct.pack(">i", 9092) + struct.pack(">h", -1)
    body += struct.pack(">i", 1) + _s("127.0.0.1") + struct.pack(">i", 9093) + _s("r1")
    if version >= 2:
        body += _s("cid")
    body += struct.pack(">i", 1)                                # controller
    body += struct.pack(">i", 1) + struct.pack(">h", 0) + _s("t") + b"\x00"
    body += struct.pack(">i", 2)
    for pid, leader in ((0, 0), (1, -1)):
        body += struct.pack(">hii", 5 if leader < 0 else 0, pid, leader)
        body += struct.pack(">iii", 2, 0, 1)                    # replicas
        body += struct.pack(">ii", 1, 0)                        # isr
        if version >= 5:
            body += struct.pack(">ii", 1, 1)                    # offline
    return body


@pytest.mark.unit
def test_encode_api_versions_request_bytes():
    req = _wire.encode_request(18, 0, 7, "probe", b"")
    assert req == b"\x00\x00\x00\x0f" + b"\x00\x12\x00\x00\x00\x00\x00\x07\x00\x05probe"


@pytest.mark.unit
def test_decode_api_versions_v0():
    body = _api_versions_v0_body(0, [(0, 3, 12), (18, 0, 4)])
    error, versions = _wire.decode_api_versions_v0(_wire.Reader(body))
    assert error == 0
    assert versions == {0: (3, 12), 18: (0, 4)}


@pytest.mark.unit
def test_decode_api_versions_rejects_hostile_count_and_trailing_bytes():
    hostile = struct.pack(">hi", 0, 0x7FFFFFFF)
    with pytest.raises(_wire.WireError, match="cannot fit"):
        _wire.decode_api_versions_v0(_wire.Reader(hostile))
    with pytest.raises(_wire.WireError, match="negative array"):
        _wire.decode_api_versions_v0(_wire.Reader(struct.pack(">hi", 0, -5)))
    with pytest.raises(_wire.WireError, match="trailing"):
        _wire.decode_api_versions_v0(_wire.Reader(_api_versions_v0_body(0, []) + b"x"))


@pytest.mark.unit
@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_decode_metadata(version):
    md = _wire.decode_metadata(_wire.Reader(_metadata_body(version)), version)
    assert md.brokers == {0: ("127.0.0.1", 9092), 1: ("127.0.0.1", 9093)}
    assert md.controller_id == 1
    assert md.cluster_id == ("cid" if version >= 2 else None)
    t = md.topics["t"]
    assert (t.error, t.internal) == (0, False)
    assert [(p.id, p.error, p.leader, p.replicas, p.isr) for p in t.partitions.values()] == \
        [(0, 0, 0, [0, 1], [0]), (1, 5, -1, [0, 1], [0])]
    assert t.partitions[0].offline == ([1] if version >= 5 else [])


@pytest.mark.unit
@pytest.mark.parametrize("version", [1, 5])
def test_decode_metadata_truncated_anywhere_is_a_wire_error(version):
    body = _metadata_body(version)
    for cut in range(len(body)):
        with pytest.raises(_wire.WireError):
            _wire.decode_metadata(_wire.Reader(body[:cut]), version)


@pytest.mark.unit
def test_list_offsets_v1_bytes_and_truncation():
    # Request: replica_id -1, one topic "t" with partitions 0 and 3, latest.
    assert _wire.encode_list_offsets(1, "t", [0, 3]) == (
        struct.pack(">i", -1) + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t"
        + struct.pack(">i", 2) + struct.pack(">iq", 0, -1) + struct.pack(">iq", 3, -1))
    body = (struct.pack(">i", 1) + struct.pack(">h", 1) + b"t" + struct.pack(">i", 2)
            + struct.pack(">ihqq", 0, 0, -1, 42) + struct.pack(">ihqq", 3, 6, -1, -1))
    assert _wire.decode_list_offsets(_wire.Reader(body), 1) == {
        ("t", 0): (0, 42), ("t", 3): (6, -1)}
    for cut in range(len(body)):
        with pytest.raises(_wire.WireError):
            _wire.decode_list_offsets(_wire.Reader(body[:cut]), 1)


@pytest.mark.unit
def test_reader_rejects_bad_strings():
    with pytest.raises(_wire.WireError, match="negative string"):
        _wire.Reader(struct.pack(">h", -2)).nullable_string()
    with pytest.raises(_wire.WireError, match="null where a string"):
        _wire.Reader(struct.pack(">h", -1)).string()
    with pytest.raises(_wire.WireError, match="UTF-8"):
        _wire.Reader(struct.pack(">h", 2) + b"\xff\xfe").string()
    assert _wire.Reader(struct.pack(">h", -1)).nullable_string() is None


@pytest.mark.unit
def test_encode_create_and_delete_topics_bytes():
    body = _wire.encode_create_topics(4, "ab", 3, 2, {"min.insync.replicas": 2}, 5000)
    expect = (struct.pack(">i", 1) + _s("ab") + struct.pack(">ih", 3, 2)
              + struct.pack(">i", 0)                                   # no assignments
              + struct.pack(">i", 1) + _s("min.insync.replicas") + _s("2")
              + struct.pack(">i", 5000) + b"\x00")
    assert body == expect
    assert _wire.encode_delete_topics(1, ["a", "bc"], 100) == \
        struct.pack(">i", 2) + _s("a") + _s("bc") + struct.pack(">i", 100)
    assert _wire.encode_metadata(1) == struct.pack(">i", -1)
    assert _wire.encode_metadata(4, ["x"]) == struct.pack(">i", 1) + _s("x") + b"\x00"


@pytest.mark.unit
def test_decode_create_topics_errors():
    body = struct.pack(">ii", 0, 1) + _s("t") + struct.pack(">h", 36) + _s("exists")
    assert _wire.decode_create_topics(_wire.Reader(body), 2) == [("t", 36, "exists")]
    body = struct.pack(">ii", 0, 1) + _s("t") + struct.pack(">h", 3)
    assert _wire.decode_delete_topics(_wire.Reader(body), 1) == [("t", 3)]


@pytest.mark.unit
def test_connection_checks_size_and_correlation_id():
    """A loopback peer that answers with a wrong correlation id, then with an
    absurd size: both are WireErrors, not hangs or huge reads."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        for reply, match in ((struct.pack(">ii", 4, 999), "correlation"),
                             (struct.pack(">i", 0x7FFFFFF0), "implausible"),
                             (struct.pack(">i", 10) + b"\x00\x00", "closed")):
            with _wire.Connection("127.0.0.1", port, timeout=5.0) as conn:
                peer, _ = srv.accept()
                with peer:
                    peer.sendall(reply)
                    peer.shutdown(socket.SHUT_WR)
                    with pytest.raises(_wire.WireError, match=match):
                        conn.request(18, 0, b"")
    finally:
        srv.close()


@pytest.mark.unit
def test_free_ports_are_distinct_bindable_and_not_ephemeral():
    ports = ki._free_ports(6)
    assert len(set(ports)) == 6
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph_lo = int(f.read().split()[0])
    for p in ports:
        assert p < eph_lo
        assert ki._port_is_free(p)


@pytest.mark.unit
def test_cluster_id_format():
    for _ in range(200):
        cid = ki._new_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
        assert not cid.startswith("-")


@pytest.mark.unit
def test_versions_and_tool_classes():
    assert ki._logging_flavour(ki.DEFAULT_KAFKA_VERSION) == "log4j2"
    assert ki._logging_flavour(ki.KAFKA_39_VERSION) == "reload4j"
    assert ki.DEFAULT_KAFKA_VERSION.startswith("4.")
    assert ki.KAFKA_39_VERSION.startswith("3.9.")
    for bad in ("4.4", "latest", "2.0.1", "1.1.1"):
        with pytest.raises(ki.HarnessError):
            ki._parse_version(bad)
    assert ki._logging_flavour(ki.KAFKA_OLD_VERSION) == "reload4j"
    assert not ki.uses_zookeeper(ki.DEFAULT_KAFKA_VERSION)
    assert not ki.uses_zookeeper("3.3.0")
    assert ki.uses_zookeeper("3.2.3") and ki.uses_zookeeper(ki.KAFKA_OLD_VERSION)
    assert ki.scala_binary_version("2.1.1") == "2.12"
    assert ki.scala_binary_version("2.4.0") == "2.13"
    assert ki.scala_binary_version(ki.DEFAULT_KAFKA_VERSION) == "2.13"
    assert "zookeeper35" in ki._profiles("2.1.1", "broker")
    assert "zookeeper35" not in ki._profiles("2.8.2", "broker")
    assert ki.tool_class("console-producer", "4.4.0") == "org.apache.kafka.tools.ConsoleProducer"
    assert ki.tool_class("console-producer", "3.9.2") == "kafka.tools.ConsoleProducer"
    assert ki.tool_class("topics", "2.1.1") == "kafka.admin.TopicCommand"
    assert ki.tool_class("org.example.Main", "4.4.0") == "org.example.Main"


@pytest.mark.unit
def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ki.HarnessError, match="java was not found"):
        ki.check_java()


@pytest.mark.unit
def test_old_java_is_a_clear_error(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.21" 2023-10-17\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ki.HarnessError, match="Java 11; Kafka 4.x brokers need Java 17"):
        ki.check_java()


@pytest.mark.unit
def test_missing_mvn_is_a_clear_error_before_anything_starts(monkeypatch, tmp_path):
    # A Java 17 that only answers -version: the check must not need a JDK.
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho \'openjdk version "17.0.9" 2023-10-17\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    monkeypatch.setenv("PATH", str(tmp_path))

    def must_not_start(self):
        raise AssertionError("the cluster was started although mvn is missing")

    monkeypatch.setattr(ki.KafkaInstance, "_start_cluster", must_not_start)
    with pytest.raises(ki.HarnessError, match=r"Maven \(mvn\) was not found"):
        ki.KafkaInstance(1, download_dir=str(tmp_path / "empty-cache"))


@pytest.mark.unit
def test_retry():
    calls = []

    def flaky():
        calls.append(1)
        assert len(calls) >= 3
        return "ok"

    assert retry(flaky, retry_time=5, wait_between_tries=0.01) == "ok"
    assert len(calls) == 3

    def never():
        raise AssertionError("never")

    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="never"):
        retry(never, retry_time=0.3, wait_between_tries=0.05)
    assert time.monotonic() - t0 >= 0.3

    def other():
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        retry(other, retry_time=5)


@pytest.mark.unit
def test_parse_hosts():
    assert _parse_hosts("127.0.0.1:1, localhost:22") == [("127.0.0.1", 1), ("localhost", 22)]
    for bad in ("", "host", "host:x", ":1"):
        with pytest.raises(ki.HarnessError):
            _parse_hosts(bad)


# ------------------------------------------------- TLS and SASL (unit)

def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.unit
def test_unsecured_jwt_is_valid_and_never_has_dash_or_underscore():
    """Kafka 3.9-4.1 decode tokens with the basic Base64 decoder
    (KAFKA-17089): the harness's tokens must never contain '-' or '_',
    whatever the claims, and still decode to the same claims."""
    token = security.unsecured_jwt("alice", lifetime=60, iat=1000, scope=["a", "b"])
    header, claims, signature = token.split(".")
    assert signature == ""
    assert json.loads(_b64url_decode(header)) == {"alg": "none"}
    assert json.loads(_b64url_decode(claims)) == {"sub": "alice", "iat": 1000, "exp": 1060,
                                                  "scope": ["a", "b"]}
    rng = __import__("random").Random(7)
    alphabet = ">?~\x7f\u00e9\u20ac\U0001f600abc \"\\/"
    for _ in range(500):
        sub = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        token = security.unsecured_jwt(sub, lifetime=rng.randrange(-100, 10 ** 6),
                                       claims={"x": sub})
        assert "-" not in token and "_" not in token, (sub, token)
        body = json.loads(_b64url_decode(token.split(".")[1]))
        assert body["sub"] == body["x"] == sub
    assert security.unsecured_jwt("a", lifetime=-10, iat=100).split(".")[1] == \
        base64.urlsafe_b64encode(b'{"exp":90,"iat":100,"sub":"a"}').rstrip(b"=").decode()


@pytest.mark.unit
def test_sasl_client_first_messages():
    assert security.plain_client_first("alice", "pw") == b"\x00alice\x00pw"
    assert security.oauthbearer_client_first("T") == b"n,,\x01auth=Bearer T\x01\x01"
    assert security.oauthbearer_client_first("T", {"traceId": "1"}) == \
        b"n,,\x01auth=Bearer T\x01traceId=1\x01\x01"


@pytest.mark.unit
def test_sasl_users_and_storage_format_arguments():
    users = security.SASL_USERS
    assert tuple(users) == security.SASL_MECHANISMS == (
        "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
    for mech, listed in users.items():
        assert len({u.name for u in listed}) >= 2, mech        # "another user" exists
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        assert {u.iterations for u in users[mech]} == {4096, 8192}
    args = security.scram_format_args()
    assert args[:2] == ["--add-scram", "SCRAM-SHA-256=[name=alice,password=alice-sha256-secret]"]
    assert "SCRAM-SHA-512=[name=carol,iterations=8192,password=carol-sha512-secret]" in args
    assert len(args) == 2 * (len(users["SCRAM-SHA-256"]) + len(users["SCRAM-SHA-512"]))
    assert security.plain_jaas_users() == \
        'user_alice="alice-plain-secret" user_bob="bob-plain-secret"'
    passwords = [u.password for m in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
                 for u in users[m]]
    assert len(set(passwords)) == len(passwords)               # one per mechanism and user


def _cert_info(path):
    """Subject, issuer, SANs and validity of a PEM certificate (openssl).

    ``-nameopt oneline`` ("CN = localhost") is said explicitly: OpenSSL 3.0
    prints that by default, 3.6 (Debian sid's) prints "CN=localhost"."""
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-nameopt", "oneline",
                          "-subject", "-issuer", "-startdate", "-enddate",
                          "-ext", "subjectAltName"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=True).stdout
    info = dict(re.findall(r"^(subject|issuer|notBefore|notAfter)=(.*)$", out, re.M))
    m = re.search(r"Subject Alternative Name:\s*\n\s*(.*)", out)
    info["san"] = m.group(1).strip() if m else None
    return info


@pytest.mark.unit
def test_cert_manager_makes_every_certificate_the_listeners_need():
    t0 = time.monotonic()
    certs = security.shared_certs()
    made = time.monotonic() - t0
    # pykafka's attribute names
    for attr in ("root_cert", "root_key", "truststore", "keystore", "client_cert",
                 "client_key"):
        assert os.path.isfile(getattr(certs, attr)), attr
    assert certs.root_pass is None and certs.broker_pass is None
    assert certs.client_pass == security.CLIENT_KEY_PASSWORD
    assert certs.truststore == certs.root_cert
    assert certs.sasl_users == security.SASL_USERS

    broker = _cert_info(certs.broker_cert)
    assert broker["subject"] == "CN = localhost"
    assert broker["issuer"] == "CN = pykafka_c test CA"
    assert broker["san"] == "DNS:localhost, IP Address:127.0.0.1"
    assert _cert_info(certs.nosan_cert)["san"] is None
    assert _cert_info(certs.nosan_cert)["subject"] == "CN = localhost"
    assert _cert_info(certs.mismatch_cert)["san"] == "DNS:example.com"
    expired = _cert_info(certs.expired_cert)
    assert expired["notAfter"] == "Jan  2 00:00:00 2020 GMT"
    assert expired["san"] == broker["san"]
    assert _cert_info(certs.other_ca_cert)["subject"] == "CN = pykafka_c other test CA"
    assert _cert_info(certs.other_client_cert)["issuer"] == "CN = pykafka_c other test CA"
    verify = subprocess.run(["openssl", "verify", "-CAfile", certs.root_cert, certs.broker_cert,
                             certs.nosan_cert, certs.mismatch_cert, certs.client_cert],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert verify.returncode == 0, verify.stdout

    # PEM keystores (KIP-651): an unencrypted PKCS#8 key, then one certificate
    for keystore in (certs.keystore, certs.expired_keystore, certs.nosan_keystore,
                     certs.mismatch_keystore):
        with open(keystore) as f:
            text = f.read()
        assert text.startswith("-----BEGIN PRIVATE KEY-----"), keystore
        assert text.count("BEGIN CERTIFICATE") == 1, keystore
    # the client key is encrypted: it loads with client_pass only
    with open(certs.client_key) as f:
        assert f.read().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(certs.client_cert, certs.client_key, certs.client_pass)
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(certs.client_cert, certs.client_key, "wrong")

    # made once per process; clusters copy it
    assert security.shared_certs() is certs
    print("\ntest certificates made in %.2f s (0 if an earlier test made them)" % made)


@pytest.mark.unit
def test_cert_manager_load_copy_and_pykafka_constructor(tmp_path):
    certs = security.shared_certs()
    copy = certs.copy_to(str(tmp_path / "cluster"))
    assert copy.cert_dir == str(tmp_path / "cluster" / "test-certs")
    assert os.path.dirname(copy.client_key) == copy.cert_dir
    again = security.CertManager(str(tmp_path / "cluster"))    # pykafka's constructor: reuses
    assert again.root_cert == copy.root_cert
    with open(again.root_cert) as f, open(certs.root_cert) as g:
        assert f.read() == g.read()
    with pytest.raises(ki.HarnessError, match="complete set"):
        security.CertManager.load(str(tmp_path))


@pytest.mark.unit
def test_listener_names_and_environment(monkeypatch, tmp_path):
    assert ki.CertManager is security.CertManager            # pykafka's import path
    assert ki.listener_env_name("PLAINTEXT") == "BROKERS"
    assert ki.listener_env_name("SSL") == "BROKERS_SSL"
    assert ki.listener_env_name("SASL_SSL") == "BROKERS_SASL_SSL"
    assert set(ki.SECURITY_LISTENERS) == {"SSL", "SASL_PLAINTEXT", "SASL_SSL", "MTLS",
                                          "EXPIRED", "NOSAN", "MISMATCH"}
    certs = security.shared_certs()
    for name in list(os.environ):
        if name.startswith("BROKERS") or name == ki.CERTS_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("BROKERS", "127.0.0.1:1")
    monkeypatch.setenv("BROKERS_SSL", "127.0.0.1:2")
    with pytest.raises(ki.HarnessError, match="PKC_TEST_CERTS"):
        get_cluster()
    monkeypatch.setenv(ki.CERTS_ENV, certs.cert_dir)
    monkeypatch.setenv("BROKERS_SASL_SSL", "127.0.0.1:3")
    cluster = get_cluster()
    assert isinstance(cluster, ExternalCluster)
    assert cluster.listeners == {"PLAINTEXT": "127.0.0.1:1", "SSL": "127.0.0.1:2",
                                 "SASL_SSL": "127.0.0.1:3"}
    assert (cluster.brokers_ssl, cluster.brokers_sasl_ssl, cluster.brokers_mtls) == \
        ("127.0.0.1:2", "127.0.0.1:3", None)
    assert cluster.certs.root_cert == certs.root_cert
    assert cluster.sasl_users == security.SASL_USERS

    # pykafka's KafkaConnection(bin_dir, brokers, zookeeper, brokers_ssl)
    conn = KafkaConnection("/nonexistent", "127.0.0.1:1", None, brokers_ssl="127.0.0.1:2")
    assert conn.brokers_ssl == "127.0.0.1:2" and conn.certs.client_pass == certs.client_pass
    monkeypatch.delenv(ki.CERTS_ENV)
    with pytest.raises(ki.HarnessError, match="PKC_TEST_CERTS"):
        KafkaConnection("/nonexistent", "127.0.0.1:1", None, brokers_ssl="127.0.0.1:2")
    certs.copy_to(str(tmp_path))                      # pykafka kept them in bin_dir/test-certs
    conn = KafkaConnection(str(tmp_path), "127.0.0.1:1", None, brokers_ssl="127.0.0.1:2")
    assert conn.certs.cert_dir == str(tmp_path / "test-certs")
    assert KafkaConnection("/x", "127.0.0.1:1", None).certs is None


@pytest.mark.unit
def test_decode_sasl_responses():
    body = struct.pack(">hi", 33, 2) + _s("PLAIN") + _s("OAUTHBEARER")
    assert _wire.decode_sasl_handshake(_wire.Reader(body)) == (33, ["PLAIN", "OAUTHBEARER"])
    body = (struct.pack(">h", 58) + _s("bad") + struct.pack(">i", 2) + b"{}"
            + struct.pack(">q", 3600000))
    assert _wire.decode_sasl_authenticate_v1(_wire.Reader(body)) == (58, "bad", b"{}", 3600000)
    body = struct.pack(">hhiq", 0, -1, -1, 0)
    assert _wire.decode_sasl_authenticate_v1(_wire.Reader(body)) == (0, None, None, 0)
    for cut in range(len(body)):
        with pytest.raises(_wire.WireError):
            _wire.decode_sasl_authenticate_v1(_wire.Reader(body[:cut]))


# ----------------------------------------------------------- integration

def test_broker_starts_and_reports_its_version(kafka, capsys):
    versions = kafka.api_versions()
    for api in (0, 1, 3, 18):          # Produce, Fetch, Metadata, ApiVersions
        assert api in versions
    md = kafka.metadata()
    assert set(md.brokers) == set(kafka.node_ids)
    if isinstance(kafka, ki.KafkaInstance):
        logged = kafka.broker_version(0)
        assert logged == kafka.kafka_version
    else:                                   # $BROKERS: no log to read
        logged = "unknown (external cluster)"
    with capsys.disabled():
        print("\nKafka broker at %s answered: version %s (from its log), ApiVersions "
              "Produce %d-%d, Fetch %d-%d, Metadata %d-%d, ApiVersions %d-%d"
              % (kafka.brokers, logged, *versions[0], *versions[1], *versions[3],
                 *versions[18]))


def test_create_and_delete_topic(kafka, topic_name):
    kafka.create_topic(topic_name, num_partitions=3, configs={"retention.ms": 3600000})
    t = kafka.metadata().topics[topic_name]
    assert sorted(t.partitions) == [0, 1, 2]
    assert all(p.leader in kafka.node_ids for p in t.partitions.values())
    assert topic_name in kafka.list_topics()
    with pytest.raises(_wire.KafkaErrorCode) as info:
        kafka.create_topic(topic_name)
    assert info.value.code == _wire.ERR_TOPIC_ALREADY_EXISTS
    kafka.delete_topic(topic_name)
    assert topic_name not in kafka.metadata().topics


def test_bytes_topic_names_as_pykafka_passes_them(kafka, topic_name):
    """pykafka's tests call ``create_topic(b'name', 3, 1)``: bytes work like
    str everywhere a harness helper takes a topic name, and delete waits
    until the topic is gone."""
    name = topic_name.encode()
    t0 = time.monotonic()
    kafka.create_topic(name, 3, 1)
    assert time.monotonic() - t0 < 30
    assert sorted(kafka.metadata().topics[topic_name].partitions) == [0, 1, 2]
    kafka.wait_in_sync([name])
    kafka.delete_topic(name)
    assert topic_name not in kafka.metadata().topics
    with pytest.raises(TypeError):
        kafka.create_topic(42)


@pytest.mark.slow
def test_kafka_tools_round_trip(kafka, topic_name):
    kafka.create_topic(topic_name)
    sent = ["record-%d" % i for i in range(20)]
    kafka.produce_messages(topic_name, sent)
    out = ki.run_kafka_tool("console-consumer",
                            ["--bootstrap-server", kafka.brokers, "--topic", topic_name,
                             "--from-beginning", "--max-messages", str(len(sent)),
                             "--timeout-ms", "60000"],
                            kafka_version=kafka.kafka_version)
    assert out.stdout.splitlines() == sent
    kafka.delete_topic(topic_name)


def _wait_for_file(path, proc, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError("kafka_instance exited with %d before writing %s"
                                 % (proc.returncode, path))
        if time.monotonic() > deadline:
            raise AssertionError("kafka_instance did not write %s within %d s" % (path, timeout))
        time.sleep(0.25)


def _port_closed(port):
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.integration
@pytest.mark.cluster3
@pytest.mark.slow
def test_command_line_three_brokers_rf3_topic(tmp_path, monkeypatch, capsys):
    """``python -m pykafka_c.test.kafka_instance 3 --export-hosts FILE``
    prints and writes every listener's bootstrap string and the
    certificate folder; get_cluster() reads them all back from the
    environment; TLS (Python's ssl) and SASL_SSL (kcat) reach all three
    brokers; an RF=3 topic round-trips records of kcat and Kafka's console
    producer; SIGTERM stops everything and removes the data and
    certificates."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed (scripts/install-system-deps.sh installs it)"
    hosts = tmp_path / "hosts"
    err_path = tmp_path / "stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "pykafka_c.test.kafka_instance", "3",
                                 "--export-hosts", str(hosts)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL)
    try:
        _wait_for_file(str(hosts), proc, timeout=240)
        lines = hosts.read_text().splitlines()
        assert lines[0].startswith("BROKERS=")
        info = dict(line.split("=", 1) for line in lines)
        brokers = info["BROKERS"]
        # stdout: every listener's bootstrap string, then the certificates
        names = ["BROKERS"] + ["BROKERS_" + n for n in ki.SECURITY_LISTENERS] + [ki.CERTS_ENV]
        printed = [proc.stdout.readline().decode().strip() for _ in names]
        assert printed == lines[:len(names)]
        assert [line.split("=", 1)[0] for line in printed] == names
        assert list(info) == names + ["KAFKA_VERSION"]
        ports = [p for name in names[:-1] for _, p in _parse_hosts(info[name])]
        assert len(ports) == 3 * (1 + len(ki.SECURITY_LISTENERS)) == len(set(ports))
        assert len(brokers.split(",")) == 3

        for name, value in info.items():
            monkeypatch.setenv(name, value)
        cluster = get_cluster()
        assert isinstance(cluster, ExternalCluster)
        assert cluster.listeners == {n: info[ki.listener_env_name(n)]
                                     for n in ["PLAINTEXT"] + list(ki.SECURITY_LISTENERS)}
        assert cluster.certs.cert_dir == info[ki.CERTS_ENV]
        assert cluster.sasl_users == security.SASL_USERS
        _, md = _api_versions_over(cluster.brokers_ssl, _tls(cluster.certs.root_cert))
        assert sorted(md.brokers.values()) == sorted(_parse_hosts(cluster.brokers_ssl))
        alice = cluster.sasl_users["PLAIN"][0]
        listed = _kcat_metadata(kcat, cluster.brokers_sasl_ssl, "sasl_ssl", "PLAIN",
                                cluster.certs, alice.name, alice.password)
        assert listed.returncode == 0, listed.stderr
        assert " 3 brokers:" in listed.stdout, listed.stdout
        topic = "pkc-cli-rf3"
        cluster.create_topic(topic, num_partitions=3, replication_factor=3,
                             configs={"min.insync.replicas": 2})
        md = cluster.metadata()
        assert len(md.brokers) == 3
        for p in md.topics[topic].partitions.values():
            assert sorted(p.replicas) == sorted(md.brokers)

        via_kcat = ["kcat-%d" % i for i in range(10)]
        subprocess.run([kcat, "-P", "-b", brokers, "-t", topic, "-X", "acks=all"],
                       input="\n".join(via_kcat) + "\n", text=True, check=True, timeout=60)
        via_tool = ["tool-%d" % i for i in range(10)]
        ki.run_kafka_tool("console-producer",
                          ["--bootstrap-server", brokers, "--topic", topic,
                           "--producer-property", "acks=all"],
                          input="\n".join(via_tool) + "\n")
        got = subprocess.run([kcat, "-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e",
                              "-q", "-f", "%s\n"],
                             stdout=subprocess.PIPE, text=True, check=True, timeout=60).stdout
        assert sorted(got.splitlines()) == sorted(via_kcat + via_tool)
        with capsys.disabled():
            print("\n3-broker cluster from the command line: %s, RF=3 topic round-tripped %d "
                  "records" % (brokers, len(got.splitlines())))
        stop_cluster(cluster)                 # deletes the topic it created
        assert topic not in cluster.list_topics()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
    stderr = err_path.read_text()
    assert rc == 0, stderr
    m = re.search(r"data in (\S+?)\. ", stderr)
    assert m, stderr
    assert not os.path.exists(m.group(1)), "data folder left behind"
    assert "Test certificates in %s;" % info[ki.CERTS_ENV] in stderr, stderr
    assert info[ki.CERTS_ENV].startswith(m.group(1) + os.sep)
    for hp in brokers.split(","):
        assert _port_closed(int(hp.rsplit(":", 1)[1]))


@pytest.mark.slow
def test_stop_and_start_broker_rejoins_cluster_and_isr(kafka_cluster3, topic_name):
    k = kafka_cluster3
    k.create_topic(topic_name, num_partitions=3, replication_factor=3)
    k.wait_in_sync([topic_name])
    victim = 1
    k.stop_broker(victim)
    try:
        assert not k.is_running(victim)

        def dropped():
            md = k.metadata(0)
            assert victim not in md.brokers
            for p in md.topics[topic_name].partitions.values():
                assert victim not in p.isr
                assert p.leader in (0, 2)

        retry(dropped, retry_time=60, wait_between_tries=0.25)
    finally:
        k.start_broker(victim)
    for i in range(3):
        assert set(k.metadata(i).brokers) == {0, 1, 2}

    def back_in_isr():
        for i in range(3):
            for p in k.metadata(i).topics[topic_name].partitions.values():
                assert victim in p.isr, p

    retry(back_in_isr, retry_time=60, wait_between_tries=0.25)
    k.delete_topic(topic_name)


@pytest.mark.integration
@pytest.mark.slow
def test_unresolvable_kafka_version_is_a_clear_error(tmp_path):
    """Maven cannot find the jars: a HarnessError with Maven's output, raised
    before any broker or temporary folder exists."""
    with pytest.raises(ki.HarnessError, match=r"could not resolve the Kafka 4\.99\.99 broker jars"):
        ki.resolve_classpath("4.99.99", download_dir=str(tmp_path))
    assert not (tmp_path / "kafka-4.99.99" / "broker").exists()
    assert not (tmp_path / "kafka-4.99.99" / "broker.jars").exists()



def test_kafka_connection_is_pykafkas_external_cluster(kafka, topic_name):
    # pykafka's KafkaConnection(bin_dir, brokers, zookeeper, brokers_ssl=None),
    # importable from kafka_instance as in pykafka.
    from pykafka_c import KafkaClient
    from pykafka_c.test.kafka_instance import KafkaConnection
    conn = KafkaConnection("/nonexistent/kafka-bin", kafka.brokers, None)
    assert conn.brokers == kafka.brokers and conn.zookeeper is None
    assert conn.brokers_ssl is None
    conn.create_topic(topic_name, num_partitions=2, replication_factor=1)
    assert topic_name in conn.list_topics()
    conn.produce_messages(topic_name, ["a", "b", "c"])
    client = KafkaClient(hosts=conn.brokers)
    try:
        latest = client.topics[topic_name].latest_available_offsets()
        assert sum(r.offset[0] for r in latest.values()) == 3
    finally:
        client.close()
    conn.flush()   # deletes every non-internal topic, as pykafka's flush
    assert conn.list_topics() == []
    assert kafka.list_topics() == []


# ------------------------------------------- TLS and SASL listeners (real brokers)

JAVA_SECURITY_CHECK = os.path.join(ROOT, "tests", "java", "SecurityCheck.java")
# librdkafka before 2.6.1 sends the client nonce twice in SCRAM's
# client-final message (librdkafka #4895); Kafka 4.0 and newer demand the
# exact server nonce (the CVE-2024-56128 fix), so such a kcat cannot log in
# with SCRAM there, whatever the password.
KCAT_SCRAM_NONCE_FIX = (2, 6, 1)


def _security(kafka):
    """The cluster's listeners, certificates and users, or a failure that
    says what is missing (an external cluster started without them)."""
    missing = [n for n in ki.SECURITY_LISTENERS if n not in kafka.listeners]
    if missing or kafka.certs is None:
        pytest.fail("this cluster lacks TLS/SASL listeners %s or certificates (%s); start it "
                    "with `python -m pykafka_c.test.kafka_instance` and export what it "
                    "prints" % (missing, kafka.certs), pytrace=False)
    return kafka.listeners, kafka.certs


def _first(bootstrap):
    host, port = _parse_hosts(bootstrap)[0]
    return host, port


def _tls(cafile, check_hostname=True, cert=None):
    """A client context like pykafka's SslConfig (only ``cafile`` trusted),
    with host-name checks on unless told otherwise."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = check_hostname
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def _api_versions_over(bootstrap, ctx, server_hostname=None, metadata=True):
    """ApiVersions (and Metadata, which a SASL listener answers only after
    authentication) over TLS -> (TLS version, metadata or None)."""
    host, port = _first(bootstrap)
    with _wire.Connection(host, port, timeout=15.0, ssl_context=ctx,
                          server_hostname=server_hostname) as conn:
        versions = conn.api_versions()
        assert 18 in versions
        return conn.sock.version(), conn.metadata() if metadata else None


def _verify_error(bootstrap, ctx, server_hostname=None):
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        _api_versions_over(bootstrap, ctx, server_hostname)
    return info.value


def test_ssl_listener_verifies_with_the_test_ca(kafka):
    """TLS handshake and ApiVersions/Metadata over the SSL listener with
    Python's ssl module, trusting only the test CA, host names checked for
    both names the broker certificate covers; Metadata advertises the SSL
    listener's own ports."""
    listeners, certs = _security(kafka)
    ssl_ports = {p for _, p in _parse_hosts(listeners["SSL"])}
    for name in ("localhost", "127.0.0.1"):
        version, md = _api_versions_over(listeners["SSL"], _tls(certs.root_cert), name)
        assert version in ("TLSv1.2", "TLSv1.3")
        assert {port for _, port in md.brokers.values()} == ssl_ports
        assert {host for host, _ in md.brokers.values()} == {"127.0.0.1"}
    # SASL_SSL speaks TLS with the same certificate (SASL comes after it)
    _api_versions_over(listeners["SASL_SSL"], _tls(certs.root_cert), "localhost", metadata=False)


def test_tls_listeners_that_must_fail_verification(kafka):
    """Wrong CA, expired certificate, host-name mismatch and a certificate
    without SAN, each as Python's ssl module (OpenSSL 3) reports it."""
    listeners, certs = _security(kafka)
    good = _tls(certs.root_cert)
    err = _verify_error(listeners["SSL"], _tls(certs.other_ca_cert))
    assert err.verify_code == 20 and "unable to get local issuer certificate" in str(err)

    err = _verify_error(listeners["EXPIRED"], good, "localhost")
    assert err.verify_code == 10 and "certificate has expired" in str(err)

    # X509_V_ERR_HOSTNAME_MISMATCH 62, X509_V_ERR_IP_ADDRESS_MISMATCH 64
    for name, code, text in (("localhost", 62, "Hostname mismatch"),
                             ("127.0.0.1", 64, "IP address mismatch")):
        err = _verify_error(listeners["MISMATCH"], good, name)
        assert err.verify_code == code and text in str(err)
    _api_versions_over(listeners["MISMATCH"], good, "example.com")   # the chain itself is fine
    _api_versions_over(listeners["MISMATCH"], _tls(certs.root_cert, check_hostname=False))

    # No SAN, CN=localhost: OpenSSL falls back to the CN for a DNS name
    # (Python's default), never for an IP address, and not when told so.
    _api_versions_over(listeners["NOSAN"], good, "localhost")
    err = _verify_error(listeners["NOSAN"], good, "127.0.0.1")
    assert err.verify_code == 64 and "IP address mismatch" in str(err)
    strict = _tls(certs.root_cert)
    strict.hostname_checks_common_name = False
    err = _verify_error(listeners["NOSAN"], strict, "localhost")
    assert err.verify_code == 62


def test_mtls_listener_wants_a_client_certificate_from_the_test_ca(kafka):
    """MTLS (ssl.client.auth=required): refused without a client
    certificate (under TLS 1.3 the handshake completes and the broker's
    bad_certificate alert arrives with the first read) and with one from
    another CA; accepted with the test client certificate, whose key is
    encrypted (password ``certs.client_pass``)."""
    listeners, certs = _security(kafka)
    client = (certs.client_cert, certs.client_key, certs.client_pass)
    other = (certs.other_client_cert, certs.client_key, certs.client_pass)
    for cert in (None, other):
        with pytest.raises((ssl.SSLError, _wire.WireError), match="(?i)certificate"):
            _api_versions_over(listeners["MTLS"], _tls(certs.root_cert, cert=cert))
    _, md = _api_versions_over(listeners["MTLS"], _tls(certs.root_cert, cert=client))
    assert set(md.brokers) == set(kafka.node_ids)


def _kcat_version():
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed (scripts/install-system-deps.sh installs it)"
    out = subprocess.run([kcat, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=30).stdout
    m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    assert m, "cannot tell kcat's librdkafka version from `kcat -V`:\n" + out
    return kcat, tuple(int(x) for x in m.groups())


def _kcat_metadata(kcat, bootstrap, protocol, mechanism, certs, user, password=None,
                   timeout_s=10):
    """``kcat -L`` over a SASL listener; ``builtin.features`` makes a kcat
    whose librdkafka lacks a needed feature fail and name it."""
    features = "sasl_plain,sasl_scram,sasl_oauthbearer" + (",ssl" if "ssl" in protocol else "")
    cmd = [kcat, "-L", "-b", bootstrap, "-m", str(timeout_s),
           "-X", "builtin.features=" + features,
           "-X", "security.protocol=" + protocol, "-X", "sasl.mechanism=" + mechanism]
    if mechanism == "OAUTHBEARER":
        cmd += ["-X", "enable.sasl.oauthbearer.unsecure.jwt=true",
                "-X", "sasl.oauthbearer.config=principal=%s lifeSeconds=600" % user]
    else:
        cmd += ["-X", "sasl.username=" + user, "-X", "sasl.password=" + password]
    if "ssl" in protocol:
        cmd += ["-X", "ssl.ca.location=" + certs.root_cert]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout_s + 60)


def test_sasl_listeners_with_kcat(kafka):
    """kcat (librdkafka) lists the metadata over SASL_PLAINTEXT and SASL_SSL
    (CA checked, host-name check on) with PLAIN, SCRAM-SHA-256 and
    SCRAM-SHA-512 (where its librdkafka can do SCRAM with this broker, see
    KCAT_SCRAM_NONCE_FIX; test_sasl_listeners_with_kafkas_java_client covers
    SCRAM everywhere) and OAUTHBEARER with librdkafka's unsecured JWT; a
    wrong password fails with the broker's message."""
    listeners, certs = _security(kafka)
    kcat, librdkafka = _kcat_version()
    major = int((kafka.kafka_version or ki.DEFAULT_KAFKA_VERSION).split(".")[0])
    mechanisms = ["PLAIN", "OAUTHBEARER"]
    if librdkafka >= KCAT_SCRAM_NONCE_FIX or major < 4:
        mechanisms += ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
        ports = [p for _, p in _parse_hosts(listeners[listener])]
        for mech in mechanisms:
            user = kafka.sasl_users[mech][0]
            got = _kcat_metadata(kcat, listeners[listener], listener.lower(), mech, certs,
                                 user.name, user.password)
            assert got.returncode == 0, (listener, mech, got.stderr)
            for port in ports:
                assert "at 127.0.0.1:%d" % port in got.stdout, (listener, mech, got.stdout)
    alice = kafka.sasl_users["PLAIN"][0]
    got = _kcat_metadata(kcat, listeners["SASL_SSL"], "sasl_ssl", "PLAIN", certs, alice.name,
                         alice.password + "-wrong", timeout_s=3)
    assert got.returncode != 0
    assert "Invalid username or password" in got.stderr, got.stderr


def _java_client_config(path, bootstrap, protocol, certs, mechanism=None, jaas=None):
    lines = ["bootstrap.servers=" + bootstrap, "security.protocol=" + protocol,
             "request.timeout.ms=20000", "default.api.timeout.ms=30000"]
    if mechanism:
        lines += ["sasl.mechanism=" + mechanism, "sasl.jaas.config=" + jaas]
    if "SSL" in protocol:
        lines += ["ssl.truststore.type=PEM", "ssl.truststore.location=" + certs.root_cert]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_sasl_listeners_with_kafkas_java_client(kafka, tmp_path):
    """Kafka's own Java client (tests/java/SecurityCheck.java, one JVM)
    describes the cluster over both SASL listeners: SCRAM-SHA-256 and
    SCRAM-SHA-512 for alice and for carol (8192 iterations), PLAIN for bob,
    OAUTHBEARER with Kafka's unsecured login module; a wrong SCRAM password
    and an unknown SCRAM user fail with the broker's message."""
    listeners, certs = _security(kafka)
    users = kafka.sasl_users
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    cases, expect = [], {}

    def case(name, listener, mech, jaas, ok=True):
        cases.append(_java_client_config(tmp_path / name, listeners[listener], listener, certs,
                                         mech, jaas))
        expect[name] = ok

    def login(module, user, password):
        return '%s username="%s" password="%s";' % (module, user, password)

    for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for u in users[mech]:
                if u.name in ("alice", "carol"):
                    case("%s-%s-%s" % (listener, mech, u.name), listener, mech,
                         login(scram, u.name, u.password))
    bob = users["PLAIN"][1]
    case("SASL_SSL-PLAIN-bob", "SASL_SSL", "PLAIN", login(plain, bob.name, bob.password))
    case("SASL_SSL-OAUTHBEARER-bob", "SASL_SSL", "OAUTHBEARER",
         "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
         'unsecuredLoginStringClaim_sub="bob";')
    alice = users["SCRAM-SHA-512"][0]
    case("wrong-password", "SASL_PLAINTEXT", "SCRAM-SHA-512",
         login(scram, alice.name, alice.password + "-wrong"), ok=False)
    case("unknown-user", "SASL_SSL", "SCRAM-SHA-256", login(scram, "mallory", "x"), ok=False)

    out = ki.run_kafka_tool(JAVA_SECURITY_CHECK, cases, kafka_version=kafka.kafka_version
                            or ki.DEFAULT_KAFKA_VERSION, timeout=240).stdout
    results = {}
    for line in out.splitlines():
        status, name, rest = (line.split(" ", 2) + [""])[:3]
        results[name] = (status, rest)
    assert set(results) == set(expect), out
    for name, ok in expect.items():
        status, rest = results[name]
        if ok:
            assert status == "ok", (name, rest)
            assert {int(n.split("@")[0]) for n in rest.split()} == set(kafka.node_ids), rest
        else:
            assert status == "error", (name, rest)
            assert "SaslAuthenticationException" in rest and "invalid credentials" in rest, rest


def test_sasl_mechanisms_and_harness_oauthbearer_tokens(kafka):
    """Both SASL listeners enable exactly the four mechanisms (a handshake
    for GSSAPI gets error 33 and the list); tokens from ``unsecured_jwt``
    are accepted on both Kafka versions (also one whose claims would give
    '-' and '_' without the escaping: KAFKA-17089) with a session lifetime
    from ``exp``, and an expired one is refused (error 58, after the 0x01
    step)."""
    listeners, certs = _security(kafka)
    tls = _tls(certs.root_cert)
    for listener, ctx in (("SASL_PLAINTEXT", None), ("SASL_SSL", tls)):
        host, port = _first(listeners[listener])

        def connect():
            return _wire.Connection(host, port, timeout=15.0, ssl_context=ctx)

        with connect() as conn, pytest.raises(_wire.KafkaErrorCode) as info:
            conn.sasl_login("GSSAPI", b"")
        assert info.value.code == 33
        enabled = info.value.error_message.split(": ", 1)[1].split(",")
        assert sorted(enabled) == sorted(security.SASL_MECHANISMS)
        for sub in ("alice", "b>o?b~"):
            with connect() as conn:
                token = security.unsecured_jwt(sub, lifetime=600)
                lifetime = conn.sasl_login("OAUTHBEARER", security.oauthbearer_client_first(token))
                assert 500000 < lifetime <= 600000
                assert set(conn.metadata().brokers) == set(kafka.node_ids)
        with connect() as conn, pytest.raises(_wire.KafkaErrorCode) as info:
            conn.sasl_login("OAUTHBEARER",
                            security.oauthbearer_client_first(security.unsecured_jwt(
                                "alice", lifetime=-60)))
        assert info.value.code == 58 and "invalid_token" in info.value.error_message
        bob = kafka.sasl_users["PLAIN"][1]
        with connect() as conn:
            assert conn.sasl_login("PLAIN", security.plain_client_first(bob.name,
                                                                         bob.password)) == 0
            assert set(conn.metadata().brokers) == set(kafka.node_ids)
