"""Build and run the plain-C tests of the SASL client mechanisms
(csrc/wire/sasl.c, scram.c, scram_msg.c, base64.c; tests/c/test_sasl.c)
under AddressSanitizer and UndefinedBehaviorSanitizer.

The C program checks RFC 7677's SCRAM-SHA-256 exchange byte for byte, the
PLAIN and OAUTHBEARER bytes, and the hostile server messages.  The
SCRAM-SHA-512 exchanges are checked here against an independent
implementation of RFC 5802 (hashlib.pbkdf2_hmac / hmac): this side computes
the client-first, client-final and server-final messages from the same
inputs, passes the server's messages to the C client through PKC_SASL_KAT_*
variables, and compares what the client printed.
"""

import base64
import hashlib
import hmac
import os

import pytest

from cbuild import ROOT, build, run

pytestmark = [pytest.mark.unit, pytest.mark.cprogram]


@pytest.fixture(scope="module")
def test_sasl(tmp_path_factory):
    return build("test_sasl", tmp_path_factory.mktemp("sasl"))


def test_sasl_c(test_sasl):
    out = run(test_sasl, timeout=300)
    assert " 0 failures" in out, out


def test_sasl_c_without_openssl(tmp_path):
    exe = build("test_sasl", tmp_path, without=("PKC_HAVE_OPENSSL",))
    out = run(exe, timeout=120)
    assert "scram: unavailable without OpenSSL" in out, out
    assert " 0 failures" in out, out


def _saslname(user):
    return user.replace("=", "=3D").replace(",", "=2C")


def scram_exchange(hash_name, user, password, client_nonce, server_nonce,
                   salt, iterations, extensions=""):
    """The messages of one SCRAM exchange (RFC 5802 section 3), as str;
    ``extensions`` (e.g. ",x=1") is appended to the server-first message."""
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    bare = "n=%s,r=%s" % (_saslname(user), client_nonce)
    server_first = "r=%s%s,s=%s,i=%d%s" % (client_nonce, server_nonce,
                                            b64(salt), iterations, extensions)
    without_proof = "c=biws,r=%s%s" % (client_nonce, server_nonce)
    auth_message = ",".join((bare, server_first, without_proof)).encode()
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt,
                                 iterations)
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored_key = hashlib.new(hash_name, client_key).digest()
    client_signature = hmac.new(stored_key, auth_message, hash_name).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, client_signature))
    server_key = hmac.new(salted, b"Server Key", hash_name).digest()
    server_signature = hmac.new(server_key, auth_message, hash_name).digest()
    return {
        "client_first": "n,," + bare,
        "server_first": server_first,
        "client_final": without_proof + ",p=" + b64(proof),
        "server_final": "v=" + b64(server_signature),
    }


def test_independent_implementation_matches_rfc7677():
    # The reference itself, checked against RFC 7677's published exchange.
    msgs = scram_exchange("sha256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO",
                          "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                          base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
    assert msgs["client_final"].endswith(
        ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert msgs["server_final"] == \
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


KAT_CASES = [
    # mechanism, user, password, client nonce, server nonce, salt, i
    ("SCRAM-SHA-512", "alice", "alice-secret", "fyko+d2lbbFgONRv9qkxdawL",
     "3rfcNHYJY1ZVvWVs7j", b"kafka-salt-bytes", 4096),
    ("SCRAM-SHA-512", "a,l=i,ce", "p\u00e4ss w=rd,", "K0afKa-nonce!~",
     "server-part-0123456789", bytes(range(40)), 8192),
    ("SCRAM-SHA-512", "=,", "x" * 300, "n", "s", b"\x00", 16384),
    ("SCRAM-SHA-256", "bob", "bob-secret", "Zm9vYmFyYmF6cXV4",
     "1xk3rd7a6s8bq2l0wv", b"0123456789abcdefghijklmnopqrstuv", 4096),
]


@pytest.mark.parametrize("case", KAT_CASES,
                         ids=["%s-%d" % (c[0], i)
                              for i, c in enumerate(KAT_CASES)])
def test_scram_against_python(test_sasl, case):
    mech, user, password, cnonce, snonce, salt, iterations = case
    hash_name = "sha512" if mech.endswith("512") else "sha256"
    msgs = scram_exchange(hash_name, user, password, cnonce, snonce, salt,
                          iterations)
    env = dict(os.environ,
               PKC_SASL_KAT_MECHANISM=mech,
               PKC_SASL_KAT_USER=user,
               PKC_SASL_KAT_PASSWORD=password,
               PKC_SASL_KAT_NONCE=cnonce,
               PKC_SASL_KAT_SERVER_FIRST=msgs["server_first"],
               PKC_SASL_KAT_SERVER_FINAL=msgs["server_final"])
    out = run(test_sasl, timeout=300, env=env)
    assert "kat client-first: %s\n" % msgs["client_first"] in out, out
    assert "kat client-final: %s\n" % msgs["client_final"] in out, out
    assert "kat server-final: ok\n" in out, out
    assert " 0 failures" in out, out


# ---------------------------------------------- seeds of csrc/fuzz/fuzz_sasl.c

FUZZ_USER = "fuzz-user"
FUZZ_PASSWORD = "fuzz-password-never-in-errors"
FUZZ_NONCE = "fyko+d2lbbFgONRv9qkxdawL"
FUZZ_CORPUS = os.path.join(ROOT, "csrc", "fuzz", "corpus", "sasl")


def _fuzz_input(mechanism, first=b"", second=b""):
    # fuzz_sasl.c's layout: mechanism byte, 2-byte length of the first
    # server message, the first message, the second.
    return bytes([mechanism]) + len(first).to_bytes(2, "big") + first + second


def fuzz_seeds():
    """name -> contents of the seed corpus of csrc/fuzz/fuzz_sasl.c."""
    seeds = {}
    for mechanism, hash_name, size in ((0, "sha256", 32), (1, "sha512", 64)):
        tag = "scram" + hash_name[3:]
        for ext in ("", ",x=ext"):
            msgs = scram_exchange(hash_name, FUZZ_USER, FUZZ_PASSWORD,
                                  FUZZ_NONCE, "3rfcNHYJY1ZVvWVs7j",
                                  b"kafka-salt-0123456789", 4096, ext)
            first = msgs["server_first"].encode()
            final = msgs["server_final"].encode()
            seeds[tag + ("-valid-extension" if ext else "-valid")] = \
                _fuzz_input(mechanism, first, final)
        wrong = b"v=" + base64.b64encode(bytes(size))
        seeds[tag + "-wrong-signature"] = _fuzz_input(mechanism, first, wrong)
        seeds[tag + "-missing-v"] = _fuzz_input(mechanism, first, b"")
        seeds[tag + "-e-final"] = _fuzz_input(mechanism, first,
                                              b"e=invalid-proof")
    first = first.replace(b",x=ext", b"")
    salt = first[first.index(b",s="):first.index(b",i=")]
    hostile_first = {
        "e-first": b"e=unknown-user",
        "i-huge": first.replace(b"i=4096", b"i=2147483647"),
        "i-one": first.replace(b"i=4096", b"i=1"),
        "i-not-digits": first.replace(b"i=4096", b"i=4o96"),
        "i-leading-zero": first.replace(b"i=4096", b"i=04096"),
        "nonce-equal": b"r=" + FUZZ_NONCE.encode() + first[first.index(b","):],
        "nonce-foreign": b"r=X" + first[3:],
        "m-extension": b"m=x," + first,
        "duplicate-salt": first + b",s=QQ==",
        "missing-salt": first.replace(salt, b""),
        "bad-base64-salt": first.replace(salt, salt[:-1]),
    }
    for name, msg in hostile_first.items():
        seeds["scram512-" + name] = _fuzz_input(1, msg)
    seeds["oauthbearer-success"] = _fuzz_input(2)
    seeds["oauthbearer-error-json"] = _fuzz_input(
        2, b'{"status":"invalid_token"}')
    seeds["plain-success"] = _fuzz_input(3)
    seeds["plain-unexpected-answer"] = _fuzz_input(3, b"\x00\x01junk")
    return seeds


def test_fuzz_seed_corpus_is_current():
    for name, data in fuzz_seeds().items():
        path = os.path.join(FUZZ_CORPUS, name)
        assert os.path.exists(path), \
            "missing seed %s: run python3 tests/test_sasl_c.py" % name
        with open(path, "rb") as f:
            assert f.read() == data, \
                "stale seed %s: run python3 tests/test_sasl_c.py" % name


if __name__ == "__main__":
    # Rewrite the fuzz seeds of csrc/fuzz/corpus/sasl/.
    os.makedirs(FUZZ_CORPUS, exist_ok=True)
    for seed_name, seed_data in fuzz_seeds().items():
        with open(os.path.join(FUZZ_CORPUS, seed_name), "wb") as out:
            out.write(seed_data)
