"""TLS certificates, SASL users and OAUTHBEARER tokens for the test brokers.

Every KRaft cluster the harness starts has, beside PLAINTEXT, listeners for
clients that speak TLS or SASL (``kafka_instance.SECURITY_LISTENERS``).
This module makes what they and the tests need:

* :class:`CertManager` -- pykafka's name: a test CA and the certificates it
  signs, made with the ``openssl`` command, plus the PEM keystores the
  brokers load (KIP-651) and ``credentials.json`` (the client key's password
  and the SASL users, for tools that are not Python);
* :data:`SASL_USERS` -- the users every SASL listener knows, per mechanism;
* :func:`unsecured_jwt` -- an unsecured OAUTHBEARER token that Kafka's
  default validator accepts, on 3.9 as on 4.x.

Why ``openssl`` for everything, the expired certificate included (OpenSSL
3.0's ``x509`` cannot back-date, so that one goes through ``openssl ca``
with ``-startdate``/``-enddate`` and a small config): the command is a
system dependency already (scripts/install-system-deps.sh), whereas the
``cryptography`` package is not among pykafka_c's test dependencies.

Timing: the four RSA-2048 keys (two CAs, one broker key shared by the four
broker certificates, one client key) are most of the cost and are made in
parallel; the whole set takes about half a second.  A process makes it once
(:func:`shared_certs`) and each cluster copies it into its own folder.
"""

from __future__ import annotations

import atexit
import base64
import collections
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ._errors import HarnessError

__all__ = ["CertManager", "SaslUser", "SASL_MECHANISMS", "SASL_USERS",
           "CLIENT_KEY_PASSWORD", "shared_certs", "unsecured_jwt",
           "oauthbearer_client_first", "plain_client_first"]

#: Password of the encrypted client key (``CertManager.client_pass``).
CLIENT_KEY_PASSWORD = "pkc-client-key-secret"
#: Validity of every certificate but the expired one.
CERT_DAYS = 3650
_OPENSSL_TIMEOUT = 60.0
CREDENTIALS_FILE = "credentials.json"

# CertManager attribute -> file in the certificate folder.  ``truststore``
# is the CA file the brokers trust (PEM truststore); each ``*keystore`` is a
# broker's PEM keystore: its unencrypted PKCS#8 key, then its certificate.
# The chain stops below the root, as usual, so a client that trusts another
# CA fails with "unable to get local issuer certificate".
_FILES = {
    "root_cert": "ca.pem",
    "root_key": "ca.key",
    "truststore": "ca.pem",
    "keystore": "broker.pem",
    "broker_cert": "broker.crt",
    "broker_key": "broker.key",
    "client_cert": "client.crt",
    "client_key": "client.key",
    "other_ca_cert": "other-ca.pem",
    "other_ca_key": "other-ca.key",
    "other_client_cert": "other-client.crt",
    "expired_cert": "expired.crt",
    "expired_keystore": "expired.pem",
    "nosan_cert": "nosan.crt",
    "nosan_keystore": "nosan.pem",
    "mismatch_cert": "mismatch.crt",
    "mismatch_keystore": "mismatch.pem",
}

_CA_EXTENSIONS = ["-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
_SERVER_EXT = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
_CLIENT_EXT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
_EXPIRED_DATES = ("20200101000000Z", "20200102000000Z")

# `openssl ca` needs a config, an index file and a serial file; this is
# the least it accepts (it is only used for the back-dated certificate).
_CA_CONFIG = """\
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
serial = serial
new_certs_dir = .
certificate = %(cert)s
private_key = %(key)s
default_md = sha256
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
"""


# ------------------------------------------------------------------ SASL

#: One SASL user: ``iterations`` is the SCRAM iteration count (None for
#: PLAIN and OAUTHBEARER); OAUTHBEARER users have no password (they are the
#: ``sub`` of an :func:`unsecured_jwt` token).
class SaslUser(NamedTuple):
    """A SASL user of the test brokers (``password`` None for OAUTHBEARER,
    ``iterations`` only for SCRAM)."""
    name: str
    password: str | None
    iterations: int | None


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
SCRAM_DEFAULT_ITERATIONS = 4096

#: Users of both SASL listeners, per mechanism; the first is the one to use
#: by default, the second is "another user".  PLAIN users live in the
#: listeners' JAAS config; SCRAM users are created when the storage is
#: formatted (``--add-scram``, KIP-900), carol with 8192 iterations instead
#: of the default 4096.  Passwords differ per mechanism, so a client that
#: sends the wrong mechanism's password fails.  The unsecured OAUTHBEARER
#: validator accepts any principal; alice and bob are just the names to use.
SASL_USERS: dict[str, tuple[SaslUser, ...]] = {
    "PLAIN": (SaslUser("alice", "alice-plain-secret", None),
              SaslUser("bob", "bob-plain-secret", None)),
    "SCRAM-SHA-256": (SaslUser("alice", "alice-sha256-secret", SCRAM_DEFAULT_ITERATIONS),
                      SaslUser("bob", "bob-sha256-secret", SCRAM_DEFAULT_ITERATIONS),
                      SaslUser("carol", "carol-sha256-secret", 8192)),
    "SCRAM-SHA-512": (SaslUser("alice", "alice-sha512-secret", SCRAM_DEFAULT_ITERATIONS),
                      SaslUser("bob", "bob-sha512-secret", SCRAM_DEFAULT_ITERATIONS),
                      SaslUser("carol", "carol-sha512-secret", 8192)),
    "OAUTHBEARER": (SaslUser("alice", None, None), SaslUser("bob", None, None)),
}


def plain_jaas_users(users: Mapping[str, Iterable[SaslUser]] = SASL_USERS
                     ) -> str:
    """The ``user_<name>="<password>"`` options of the brokers' PLAIN JAAS
    config."""
    return " ".join('user_%s="%s"' % (u.name, u.password) for u in users["PLAIN"])


def scram_format_args(users: Mapping[str, Iterable[SaslUser]] = SASL_USERS
                      ) -> list[str]:
    """``--add-scram`` arguments for Kafka's StorageTool (Kafka 3.5+): one
    per SCRAM user and mechanism, iterations given only when not the
    default."""
    args = []
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        for u in users[mech]:
            spec = "name=%s" % u.name
            if u.iterations is not None and u.iterations != SCRAM_DEFAULT_ITERATIONS:
                spec += ",iterations=%d" % u.iterations
            args += ["--add-scram", "%s=[%s,password=%s]" % (mech, spec, u.password)]
    return args


def _b64url_json(obj: object) -> str:
    """base64url (no padding) of compact ASCII JSON, free of '-' and '_'.

    base64url writes '-' or '_' for a 6-bit group of value 62 or 63.  For
    bytes below 0x80 the first three groups of every 3-byte block stay at or
    below 61; only the fourth, the low six bits of the block's third byte,
    reaches 62/63, and only for '>' (0x3E), '?' (0x3F), '~' (0x7E) or DEL.
    ``ensure_ascii`` keeps every byte below 0x80 and the four characters can
    only occur inside JSON strings, where ``\\u00XX`` escapes mean the same:
    so no token made here can contain '-' or '_'."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, sort_keys=True)
    for ch in ">?~\x7f":
        text = text.replace(ch, "\\u%04x" % ord(ch))
    return base64.urlsafe_b64encode(text.encode("ascii")).rstrip(b"=").decode("ascii")


def unsecured_jwt(sub: str = "alice", lifetime: float = 3600.0,
                  iat: float | None = None, scope: Iterable[str] | None = None,
                  claims: Mapping[str, Any] | None = None) -> str:
    """An unsecured OAUTHBEARER token (RFC 7515 appendix A.5, what Kafka's
    default ``OAuthBearerUnsecuredValidatorCallbackHandler`` checks):
    ``base64url({"alg":"none"}) "." base64url(claims) "."`` with ``sub``,
    ``iat`` (default now) and ``exp`` = ``iat + lifetime`` in whole seconds
    (a negative ``lifetime`` gives an expired token), ``scope`` (a list of
    strings) when given, and any other ``claims`` (a dict, merged last).

    The base64url text never contains '-' or '_' (see :func:`_b64url_json`):
    Kafka 3.9 to 4.1 decode the token with the basic Base64 decoder and
    reject such tokens (KAFKA-17089), so the same token works on every
    tested version."""
    now = time.time() if iat is None else float(iat)
    body: dict[str, Any] = {"sub": sub, "iat": int(now), "exp": int(now + lifetime)}
    if scope is not None:
        body["scope"] = list(scope)
    body.update(claims or {})
    token = "%s.%s." % (_b64url_json({"alg": "none"}), _b64url_json(body))
    if "-" in token or "_" in token:           # cannot happen; see _b64url_json
        raise HarnessError("unsecured_jwt made a token with '-' or '_': %r" % token)
    return token


def oauthbearer_client_first(token: str,
                             extensions: Mapping[str, str] | None = None) -> bytes:
    """The OAUTHBEARER client's first message (RFC 7628, KIP-255):
    ``n,,\\x01auth=Bearer <token>[\\x01key=value...]\\x01\\x01``."""
    parts = ["auth=Bearer " + token] + ["%s=%s" % kv for kv in sorted((extensions or {}).items())]
    return ("n,,\x01" + "\x01".join(parts) + "\x01\x01").encode("utf-8")


def plain_client_first(user: str, password: str) -> bytes:
    """The PLAIN client's one message (RFC 4616), empty authzid."""
    return b"\x00" + user.encode("utf-8") + b"\x00" + password.encode("utf-8")


# ---------------------------------------------------------- certificates

def _openssl_exe():
    exe = shutil.which("openssl")
    if exe is None:
        raise HarnessError(
            "the openssl command was not found on PATH; the harness makes the brokers' "
            "test certificates with it. Run scripts/install-system-deps.sh or "
            "`apt-get install openssl`.")
    return exe


def _check(proc, args, out):
    if proc.returncode != 0:
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")
        raise HarnessError("`openssl %s` failed (exit %d):\n%s"
                           % (" ".join(args), proc.returncode, text.strip()[-2000:]))


def _openssl(exe, cwd, args):
    try:
        proc = subprocess.run([exe] + args, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=_OPENSSL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise HarnessError("`openssl %s` did not finish within %.0f s"
                           % (" ".join(args), _OPENSSL_TIMEOUT)) from None
    _check(proc, args, proc.stdout)


def _openssl_parallel(exe, cwd, commands):
    procs = []
    try:
        for args in commands:
            procs.append((args, subprocess.Popen([exe] + args, cwd=cwd, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL)))
        for args, p in procs:
            try:
                out, _ = p.communicate(timeout=_OPENSSL_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise HarnessError("`openssl %s` did not finish within %.0f s"
                                   % (" ".join(args), _OPENSSL_TIMEOUT)) from None
            _check(p, args, out)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def _rsa_key(out, password=None):
    args = ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", out]
    if password is not None:              # encrypted PKCS#8 (AES-256-CBC, PBKDF2)
        args += ["-aes-256-cbc", "-pass", "pass:" + password]
    return args


def _generate(cert_dir, days=CERT_DAYS):
    """Write the whole set into ``cert_dir`` (credentials.json last, so its
    presence means the set is complete)."""
    exe = _openssl_exe()
    os.makedirs(cert_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".work-", dir=cert_dir)
    pw = CLIENT_KEY_PASSWORD
    try:
        _openssl_parallel(exe, cert_dir, [_rsa_key("ca.key"), _rsa_key("other-ca.key"),
                                          _rsa_key("broker.key"), _rsa_key("client.key", pw)])
        for key, cert, cn in (("ca.key", "ca.pem", "pykafka_c test CA"),
                              ("other-ca.key", "other-ca.pem", "pykafka_c other test CA")):
            _openssl(exe, cert_dir, ["req", "-x509", "-new", "-key", key, "-sha256",
                                     "-days", str(days), "-subj", "/CN=" + cn, "-out", cert]
                     + _CA_EXTENSIONS)
        csrs = {}
        for name, key, cn, extra in (("localhost", "broker.key", "localhost", []),
                                     ("example", "broker.key", "example.com", []),
                                     ("client", "client.key", "pykafka-c-client",
                                      ["-passin", "pass:" + pw])):
            csrs[name] = os.path.join(work, name + ".csr")
            _openssl(exe, cert_dir, ["req", "-new", "-key", key, "-subj", "/CN=" + cn,
                                     "-out", csrs[name]] + extra)
        # (certificate, CSR, signing CA, extensions)
        for out, csr, ca, ext in (
                ("broker.crt", "localhost", "ca",
                 _SERVER_EXT + "subjectAltName=DNS:localhost,IP:127.0.0.1\n"),
                ("nosan.crt", "localhost", "ca", _SERVER_EXT),
                ("mismatch.crt", "example", "ca", _SERVER_EXT + "subjectAltName=DNS:example.com\n"),
                ("client.crt", "client", "ca", _CLIENT_EXT),
                ("other-client.crt", "client", "other-ca", _CLIENT_EXT)):
            extfile = os.path.join(work, out + ".ext")
            with open(extfile, "w") as f:
                f.write(ext)
            # x509 -req keeps no CSR extension unless given -extfile
            _openssl(exe, cert_dir, ["x509", "-req", "-in", csrs[csr], "-CA", ca + ".pem",
                                     "-CAkey", ca + ".key", "-sha256", "-days", str(days),
                                     "-set_serial", str(secrets.randbits(63)),
                                     "-extfile", extfile, "-out", out])
        _expired_cert(exe, cert_dir, work, csrs["localhost"])
        for keystore, cert in (("broker.pem", "broker.crt"), ("expired.pem", "expired.crt"),
                               ("nosan.pem", "nosan.crt"), ("mismatch.pem", "mismatch.crt")):
            with open(os.path.join(cert_dir, keystore), "wb") as f:
                for part in ("broker.key", cert):
                    with open(os.path.join(cert_dir, part), "rb") as src:
                        f.write(src.read())
        _write_credentials(cert_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _expired_cert(exe, cert_dir, work, csr):
    """expired.crt: the broker's key and SANs, signed by the test CA, valid
    only on 1 January 2020."""
    cfg = os.path.join(work, "ca.cnf")
    with open(cfg, "w") as f:
        f.write(_CA_CONFIG % {"cert": os.path.join(cert_dir, "ca.pem"),
                              "key": os.path.join(cert_dir, "ca.key")})
    open(os.path.join(work, "index.txt"), "w").close()
    with open(os.path.join(work, "serial"), "w") as f:
        f.write("%016X\n" % secrets.randbits(63))
    extfile = os.path.join(work, "expired.ext")
    with open(extfile, "w") as f:
        f.write(_SERVER_EXT + "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(exe, work, ["ca", "-batch", "-config", cfg, "-notext", "-in", csr,
                         "-startdate", _EXPIRED_DATES[0], "-enddate", _EXPIRED_DATES[1],
                         "-extfile", extfile, "-out", os.path.join(cert_dir, "expired.crt")])


def _write_credentials(cert_dir):
    data = {
        "comment": "pykafka_c test credentials: the client key's password and the SASL "
                   "users of the cluster whose brokers use these certificates",
        "client_pass": CLIENT_KEY_PASSWORD,
        "files": dict(sorted(_FILES.items())),
        "sasl_users": {mech: [list(u) for u in users] for mech, users in SASL_USERS.items()},
    }
    path = os.path.join(cert_dir, CREDENTIALS_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


class CertManager:
    """pykafka's ``CertManager``: the test certificates of a cluster.

    ``CertManager(root_dir)`` uses ``<root_dir>/test-certs`` (as pykafka
    did), making the set there when it is not complete yet;
    :meth:`load` only reads an existing folder.  Every attribute but the
    passwords is an absolute file path (PEM):

    ========================  ==================================================
    ``root_cert``             the test CA's certificate (trust it in clients)
    ``root_key``              the CA's key (unencrypted, so ``root_pass`` is None)
    ``truststore``            what the brokers trust: the same file as root_cert
    ``keystore``              the brokers' PEM keystore (key, certificate);
                              PEM keystores have no password: ``broker_pass``
                              is None
    ``broker_cert``           CN=localhost, SAN DNS:localhost, IP:127.0.0.1
    ``broker_key``            its unencrypted PKCS#8 key
    ``client_cert``           CN=pykafka-c-client, signed by the CA (mTLS)
    ``client_key``            its key, encrypted PKCS#8 ...
    ``client_pass``           ... with this password (str)
    ``other_ca_cert``         an unrelated CA ("wrong CA" cases) and its
    ``other_ca_key``          key
    ``other_client_cert``     the client key certified by the other CA
                              (an mTLS client the brokers must refuse)
    ``expired_cert``          like broker_cert, valid only on 2020-01-01;
    ``expired_keystore``      the EXPIRED listener's keystore
    ``nosan_cert``            CN=localhost without any SAN;
    ``nosan_keystore``        the NOSAN listener's keystore
    ``mismatch_cert``         CN=example.com, SAN DNS:example.com only;
    ``mismatch_keystore``     the MISMATCH listener's keystore
    ========================  ==================================================

    ``cert_dir`` is the folder, ``credentials_file`` its ``credentials.json``
    (client_pass and the SASL users, for tools that are not Python) and
    ``sasl_users`` the users read from it (see :data:`SASL_USERS`).
    """

    root_pass = None
    broker_pass = None

    # the files (absolute paths), set from _FILES by _read()
    root_cert: str
    root_key: str
    truststore: str
    keystore: str
    broker_cert: str
    broker_key: str
    client_cert: str
    client_key: str
    other_ca_cert: str
    other_ca_key: str
    other_client_cert: str
    expired_cert: str
    expired_keystore: str
    nosan_cert: str
    nosan_keystore: str
    mismatch_cert: str
    mismatch_keystore: str
    cert_dir: str
    credentials_file: str
    client_pass: str
    sasl_users: dict[str, tuple[SaslUser, ...]]

    def __init__(self, root_dir: str) -> None:
        cert_dir = os.path.join(os.path.abspath(root_dir), "test-certs")
        if not self._complete(cert_dir):
            _generate(cert_dir)
        self._read(cert_dir)

    @classmethod
    def load(cls, cert_dir: str) -> CertManager:
        """The certificates in ``cert_dir`` (a folder made by this class, such
        as the ``PKC_TEST_CERTS`` that ``python -m
        pykafka_c.test.kafka_instance`` prints); :class:`HarnessError` when it
        is not complete."""
        cert_dir = os.path.abspath(cert_dir)
        if not cls._complete(cert_dir):
            raise HarnessError("%s does not hold a complete set of pykafka_c test "
                               "certificates (%s and the files it lists)"
                               % (cert_dir, CREDENTIALS_FILE))
        self = cls.__new__(cls)
        self._read(cert_dir)
        return self

    @staticmethod
    def _complete(cert_dir):
        return (os.path.isfile(os.path.join(cert_dir, CREDENTIALS_FILE))
                and all(os.path.isfile(os.path.join(cert_dir, f)) for f in _FILES.values()))

    def _read(self, cert_dir):
        self.cert_dir = cert_dir
        self.credentials_file = os.path.join(cert_dir, CREDENTIALS_FILE)
        for attr, name in _FILES.items():
            setattr(self, attr, os.path.join(cert_dir, name))
        try:
            with open(self.credentials_file) as f:
                data = json.load(f)
            self.client_pass = data["client_pass"]
            self.sasl_users = {mech: tuple(SaslUser(*u) for u in users)
                               for mech, users in data["sasl_users"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HarnessError("cannot read %s: %s" % (self.credentials_file, exc)) from None

    def copy_to(self, root_dir: str) -> CertManager:
        """A copy of this set in ``<root_dir>/test-certs``, as a new
        CertManager (a cluster keeps its own copy in its data folder)."""
        shutil.copytree(self.cert_dir, os.path.join(root_dir, "test-certs"))
        return CertManager.load(os.path.join(root_dir, "test-certs"))

    def __repr__(self) -> str:
        return "<CertManager %s>" % self.cert_dir


_shared: CertManager | None = None
_shared_lock = threading.Lock()


def shared_certs() -> CertManager:
    """This process's set of test certificates, made on first use in a
    temporary folder that is removed at exit.  Clusters copy it
    (:meth:`CertManager.copy_to`), so a process pays for the keys once."""
    global _shared
    with _shared_lock:
        if _shared is None:
            root = tempfile.mkdtemp(prefix="pkc-certs-")
            atexit.register(shutil.rmtree, root, True)
            try:
                _shared = CertManager(root)
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
        return _shared
