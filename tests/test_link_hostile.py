"""The broker link against what no real broker sends: hostile SASL and
SCRAM answers, TLS peers that misbehave, frames that are too large.

Every case must end, within the connect deadline and with bounded memory,
in a typed exception whose message says what went wrong and never holds a
secret.  What a real broker does (wrong passwords, wrong CAs, expired
certificates, ...) is tested against the harness's brokers in
tests/test_security.py.
"""

import base64
import os
import socket
import ssl
import struct
import time

import pytest

from fakebroker import FakeBroker, answer_api_versions
from pykafka_c import _core
from pykafka_c.exceptions import (ProtocolDecodeError,
                                  SaslAuthenticationFailed,
                                  SocketDisconnectedError, SslError,
                                  UnsupportedSaslMechanism)
from pykafka_c.test.security import shared_certs

pytestmark = pytest.mark.unit

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
PASSWORD = "hostile-case-password-0x5ec"
DEADLINE_MS = 4000


def _flexible(api_key, version):
    return _core.request_header_version(api_key, version) == 2


def read_request(client):
    """The next request, its header parsed at its own version."""
    head = client.recv_exactly(8)
    size, api_key, version = struct.unpack(">ihh", head)
    rest = client.recv_exactly(size - 4)
    corr, cid_len = struct.unpack_from(">ih", rest)
    pos = 6 + max(cid_len, 0)
    if _flexible(api_key, version):
        assert rest[pos] == 0, "unexpected tagged fields in a header"
        pos += 1
    body = _core.decode_request(api_key, version, rest[pos:])
    return api_key, version, corr, body


def respond(client, api_key, version, corr, fields):
    body = _core.encode_response(api_key, version, fields)
    hv = _core.response_header_version(api_key, version)
    client.respond(corr, body, header_version=hv)


def answer_sasl_api_versions(client):
    answer_api_versions(client, {
        SASL_HANDSHAKE: (0, 1), SASL_AUTHENTICATE: (0, 2), 3: (0, 12)})


def answer_handshake(client, error=0, mechanisms=("SCRAM-SHA-256",)):
    key, version, corr, body = read_request(client)
    assert key == SASL_HANDSHAKE
    respond(client, key, version, corr,
            {"error_code": error, "mechanisms": list(mechanisms)})
    return body["mechanism"]


def next_token(client):
    """(version, corr, auth_bytes) of the next SaslAuthenticate."""
    key, version, corr, body = read_request(client)
    assert key == SASL_AUTHENTICATE
    return version, corr, body["auth_bytes"]


def answer_token(client, version, corr, auth_bytes, error=0, message=None):
    respond(client, SASL_AUTHENTICATE, version, corr, {
        "error_code": error, "error_message": message,
        "auth_bytes": auth_bytes, "session_lifetime_ms": 0})


def scram_server_first(client_first, iterations=4096, nonce_suffix=b"srv9xQ",
                       replace_nonce=None):
    """A server-first answer to a client-first message."""
    attrs = dict(part.split(b"=", 1) for part in client_first.split(b",")[2:])
    nonce = replace_nonce if replace_nonce is not None else \
        attrs[b"r"] + nonce_suffix
    salt = base64.b64encode(b"pykafka-c-salt")
    return b"r=" + nonce + b",s=" + salt + b",i=" + \
        str(iterations).encode()


def scram(mechanism="SCRAM-SHA-256"):
    return _core.Security(sasl_mechanism=mechanism, sasl_username="alice",
                          sasl_password=PASSWORD)


def connect(broker, security, timeout_ms=DEADLINE_MS):
    return _core.Connection(broker.host, broker.port, timeout_ms=timeout_ms,
                            security=security, negotiate=True)


def assert_prompt_and_clean(info, started, limit_s=DEADLINE_MS / 1000.0):
    elapsed = time.monotonic() - started
    assert elapsed < limit_s, "took %.1f s" % elapsed
    text = str(info.value) + repr(info.value)
    assert PASSWORD not in text


# ------------------------------------------------------------------ SASL

def test_handshake_listing_no_mechanism_is_refused():
    """Error 0 but our mechanism not in the list (security.md row 13)."""
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client, mechanisms=())
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(ProtocolDecodeError,
                           match="does not list it") as info:
            connect(broker, scram())
    assert_prompt_and_clean(info, t0)


def test_unsupported_mechanism_lists_what_the_broker_offers():
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client, error=33, mechanisms=("PLAIN", "GSSAPI"))
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(UnsupportedSaslMechanism,
                           match="SCRAM-SHA-256.*PLAIN, GSSAPI") as info:
            connect(broker, scram())
    assert_prompt_and_clean(info, t0)


@pytest.mark.parametrize("iterations", [2147483647, 1, 99999999999])
def test_scram_absurd_iteration_count_fails_before_hashing(iterations):
    """An i= outside 4096..16384 is refused at once: no PBKDF2 of 2**31
    rounds (security.md row 14)."""
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client)
        version, corr, first = next_token(client)
        answer_token(client, version, corr,
                     scram_server_first(first, iterations))
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(SaslAuthenticationFailed,
                           match="iteration") as info:
            connect(broker, scram())
    assert_prompt_and_clean(info, t0, 2.0)


@pytest.mark.parametrize("nonce", [b"someone-elses-nonce-0123456789",
                                   None])
def test_scram_nonce_must_extend_ours(nonce):
    """A server nonce without our prefix, or equal to ours (row 15)."""
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client)
        version, corr, first = next_token(client)
        ours = dict(p.split(b"=", 1)
                    for p in first.split(b",")[2:])[b"r"]
        answer_token(client, version, corr, scram_server_first(
            first, replace_nonce=nonce if nonce is not None else ours))
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(SaslAuthenticationFailed, match="nonce") as info:
            connect(broker, scram())
    assert_prompt_and_clean(info, t0)


@pytest.mark.parametrize("final", [
    b"v=" + base64.b64encode(b"\x00" * 32),       # a wrong signature
    b"e=other-error",                              # a SCRAM error
    b"",                                           # no v= at all
])
def test_scram_server_signature_is_verified(final):
    """ErrorCode 0 from the broker is no proof: the server signature must
    verify (row 16)."""
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client)
        version, corr, first = next_token(client)
        answer_token(client, version, corr, scram_server_first(first))
        version, corr, _final = next_token(client)
        answer_token(client, version, corr, final)
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(SaslAuthenticationFailed) as info:
            connect(broker, scram("SCRAM-SHA-256"))
    assert_prompt_and_clean(info, t0)


def test_broker_error_58_carries_its_message():
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client, mechanisms=("PLAIN",))
        version, corr, _ = next_token(client)
        answer_token(client, version, corr, b"", error=58,
                     message="Authentication failed: Invalid username or "
                             "password")
        client.wait_closed()

    sec = _core.Security(sasl_mechanism="PLAIN", sasl_username="alice",
                         sasl_password=PASSWORD)
    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(SaslAuthenticationFailed,
                           match="Invalid username or password") as info:
            connect(broker, sec)
    assert_prompt_and_clean(info, t0)


@pytest.mark.parametrize("when", ["after handshake", "between rounds"])
def test_broker_closing_mid_authentication(when):
    """EOF in the middle: a transport error, never "authenticated"."""
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client)
        if when == "between rounds":
            version, corr, first = next_token(client)
            answer_token(client, version, corr, scram_server_first(first))
            next_token(client)
        client.close()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(SocketDisconnectedError) as info:
            connect(broker, scram())
    assert_prompt_and_clean(info, t0)


def test_huge_sasl_answer_is_refused_before_allocating():
    """A frame length over the maximum is refused from its 4 bytes (row
    22)."""
    def script(client):
        answer_sasl_api_versions(client)
        answer_handshake(client)
        next_token(client)
        client.send_raw(struct.pack(">i", 2**31 - 1))
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(ProtocolDecodeError, match="exceeds") as info:
            connect(broker, scram())
    assert_prompt_and_clean(info, t0)


def test_silent_broker_times_out_at_the_deadline():
    def script(client):
        answer_sasl_api_versions(client)
        read_request(client)          # the handshake, never answered
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(SocketDisconnectedError,
                           match="timed out") as info:
            connect(broker, scram(), timeout_ms=1000)
    assert time.monotonic() - t0 >= 0.9
    assert_prompt_and_clean(info, t0, 3.0)


# ------------------------------------------------------------------ TLS

@pytest.fixture(scope="module")
def certs():
    return shared_certs()


def tls_server(certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.broker_cert, certs.broker_key)
    return ctx


def test_tls_to_a_broker_signed_by_another_ca(certs):
    with FakeBroker(tls=tls_server(certs)) as broker:
        t0 = time.monotonic()
        with pytest.raises(SslError, match="did not verify") as info:
            connect(broker, _core.Security(tls=True,
                                           cafile=certs.other_ca_cert))
    assert_prompt_and_clean(info, t0)


def test_tls_client_on_a_plaintext_port_names_the_likely_cause():
    """A plaintext listener reads the ClientHello as a huge frame length
    and closes (security.md row 9)."""
    def script(client):
        client.recv_exactly(4)
        client.close()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises(SslError, match="PLAINTEXT") as info:
            connect(broker, _core.Security(tls=True))
    assert_prompt_and_clean(info, t0)


def test_plaintext_client_on_a_tls_port_sees_the_alert(certs):
    """The TLS side answers our ApiVersions with an alert record (row
    10): named as TLS, and nothing allocated for its "length"."""
    def script(client):
        client.recv_exactly(4)
        client.send_raw(b"\x15\x03\x03\x00\x02\x02\x50")
        client.wait_closed()

    with FakeBroker(script) as broker:
        t0 = time.monotonic()
        with pytest.raises((ProtocolDecodeError, SocketDisconnectedError),
                           match="TLS") as info:
            connect(broker, None)
    assert_prompt_and_clean(info, t0)


def test_wrong_key_password_fails_when_the_client_is_made(certs):
    with pytest.raises(SslError, match="key") as info:
        _core.Security(tls=True, cafile=certs.root_cert,
                       certfile=certs.client_cert, keyfile=certs.client_key,
                       key_password=PASSWORD)
    assert PASSWORD not in str(info.value)


def test_missing_ca_file_is_named(certs, tmp_path):
    missing = str(tmp_path / "no-such-ca.pem")
    with pytest.raises(SslError, match="no-such-ca.pem"):
        _core.Security(tls=True, cafile=missing)


def test_security_repr_holds_no_secret():
    sec = _core.Security(sasl_mechanism="SCRAM-SHA-512",
                         sasl_username="alice", sasl_password=PASSWORD)
    assert PASSWORD not in repr(sec)
    assert "SCRAM-SHA-512" in repr(sec)
    oauth = _core.Security(sasl_mechanism="OAUTHBEARER")
    assert not oauth.has_credentials
    oauth.set_token("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
    assert oauth.has_credentials and "eyJ" not in repr(oauth)
    with pytest.raises(ValueError):
        oauth.set_token("a token with spaces")
