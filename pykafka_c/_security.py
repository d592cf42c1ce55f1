"""How a client's connections prove themselves to the brokers.

``make_security`` turns pykafka's ``SslConfig`` and pykafka_c's SASL
keywords of :class:`~pykafka_c.client.KafkaClient` into one
``_core.Security``: the TLS context and SASL credentials that every
connection of the client uses (the Python layer's, the consumer's fetch
thread's and the producer's send thread's).  ``TokenRefresher`` keeps an
OAUTHBEARER client's token fresh from the application's token provider.

No secret (password, key password, token) is ever logged or put into an
exception text or a repr here.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _core

if TYPE_CHECKING:
    from .connection import SslConfig

#: What an OAUTHBEARER token provider returns: the token, or the token and
#: its expiry in seconds since the epoch.
TokenProvider = Callable[[], "str | bytes | tuple[str | bytes, float | None]"]

__all__ = ["SASL_MECHANISMS", "make_security", "security_of",
           "TokenRefresher"]

log = logging.getLogger(__name__)

#: The SASL mechanisms pykafka_c speaks, by Kafka's names.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")

#: Without an expiry from the provider or in the token, refresh this often.
DEFAULT_TOKEN_REFRESH_S = 3600.0
#: After a failed refresh, try again this soon.
TOKEN_RETRY_S = 10.0


def _tls_settings(ssl_config: SslConfig) -> dict[str, Any]:
    """The Security keywords of an SslConfig (pykafka's four attributes
    plus pykafka_c's trailing ones)."""
    from .connection import SslConfig
    if not isinstance(ssl_config, SslConfig):
        raise TypeError(
            "ssl_config must be a pykafka_c SslConfig (pykafka_c's TLS runs "
            "in C on OpenSSL and cannot use a Python ssl context); got %s"
            % type(ssl_config).__name__)
    password = ssl_config.password
    if callable(password):
        password = password()
    return {"tls": True, "cafile": ssl_config.cafile,
            "capath": ssl_config.capath, "certfile": ssl_config.certfile,
            "keyfile": ssl_config.keyfile, "key_password": password,
            "crlfile": ssl_config.crlfile,
            "check_hostname": bool(ssl_config.check_hostname)}


def _sasl_mechanism(name: str | bytes | None) -> str | None:
    if name is None:
        return None
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    if not isinstance(name, str) or name.upper() not in SASL_MECHANISMS:
        raise ValueError("sasl_mechanism must be one of %s or None, not %r"
                         % (", ".join(SASL_MECHANISMS), name))
    return name.upper()


def _check_sasl(mechanism: str | None, username: str | None,
                password: str | None,
                token_provider: TokenProvider | None) -> None:
    if mechanism is None:
        if username is not None or password is not None or \
                token_provider is not None:
            raise ValueError("SASL credentials were given without "
                             "sasl_mechanism")
        return
    if mechanism == "OAUTHBEARER":
        if token_provider is None or not callable(token_provider):
            raise ValueError("sasl_mechanism='OAUTHBEARER' needs "
                             "sasl_oauth_token_provider, a callable that "
                             "returns the token (or the token and its expiry "
                             "in seconds since the epoch)")
        if username is not None or password is not None:
            raise ValueError("OAUTHBEARER takes a token provider, not "
                             "sasl_username / sasl_password")
        return
    if token_provider is not None:
        raise ValueError("sasl_oauth_token_provider is only used with "
                         "sasl_mechanism='OAUTHBEARER'")
    if not username or not password:
        raise ValueError("sasl_mechanism=%r needs sasl_username and "
                         "sasl_password" % mechanism)


def make_security(ssl_config: SslConfig | None = None,
                  sasl_mechanism: str | None = None,
                  sasl_username: str | None = None,
                  sasl_password: str | None = None,
                  sasl_oauth_token_provider: TokenProvider | None = None
                  ) -> _core.Security | None:
    """A ``_core.Security`` for these settings, or None for plain TCP
    without SASL.  Certificate files are loaded here, so a missing file or
    a wrong key password raises ``SslError`` at once; a build without
    OpenSSL raises ``SslUnavailableError``."""
    mechanism = _sasl_mechanism(sasl_mechanism)
    _check_sasl(mechanism, sasl_username, sasl_password,
                sasl_oauth_token_provider)
    if ssl_config is None and mechanism is None:
        return None
    kwargs: dict[str, Any] = (_tls_settings(ssl_config)
                              if ssl_config is not None else {})
    if mechanism is not None:
        kwargs.update(sasl_mechanism=mechanism, sasl_username=sasl_username,
                      sasl_password=sasl_password)
    return _core.Security(**kwargs)


def security_of(cluster: object) -> _core.Security | None:
    """The cluster's ``_core.Security`` for an engine: None for plain TCP,
    or for a stand-in cluster (a test's mock) that has none."""
    security = getattr(cluster, "_security", None)
    return security if isinstance(security, _core.Security) else None


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (seconds since the epoch) of a JWT, or None."""
    parts = token.split(".")
    if len(parts) < 2:
        return None
    try:
        pad = "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + pad))
        exp = claims.get("exp") if isinstance(claims, dict) else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


def _call_provider(provider: TokenProvider) -> tuple[str, float | None]:
    """(token str, expiry in seconds since the epoch or None)."""
    result: object = provider()
    expiry: object = None
    if isinstance(result, tuple):
        if len(result) != 2:
            raise TypeError("the token provider must return a token or "
                            "(token, expiry)")
        result, expiry = result
    if isinstance(result, bytes):
        result = result.decode("ascii")
    if not isinstance(result, str):
        raise TypeError("the token provider must return the token as str "
                        "or bytes, not %s" % type(result).__name__)
    if expiry is None:
        return result, _jwt_expiry(result)
    if not isinstance(expiry, (int, float)):
        raise TypeError("the token's expiry must be seconds since the "
                        "epoch (int or float), not %s"
                        % type(expiry).__name__)
    return result, float(expiry)


class TokenRefresher(object):
    """Keeps an OAUTHBEARER ``_core.Security`` supplied with a token.

    The first token is fetched by the constructor (so a failing provider
    fails ``KafkaClient()``); a daemon thread fetches the next one at 80 %
    of the current token's lifetime (its expiry from the provider, else the
    token's JWT ``exp``, else every hour), and retries every
    ``TOKEN_RETRY_S`` seconds after a failure, which is logged without the
    token.  Connections authenticate with the token current when they start
    (and re-authenticate, KIP-368, when the broker's session ends).
    """

    def __init__(self, security: _core.Security,
                 provider: TokenProvider) -> None:
        self._security = security
        self._provider = provider
        self._stop = threading.Event()
        self._expiry: float | None = None
        self.refresh()
        # The thread holds only a weak reference, so a client that is
        # dropped without close() takes its refresher with it.
        threading.Thread(target=_refresh_loop,
                         args=(weakref.ref(self), self._stop), daemon=True,
                         name="pykafka_c.oauthbearer-refresh").start()

    def refresh(self) -> None:
        """Fetch a token now and hand it to the C core."""
        token, expiry = _call_provider(self._provider)
        self._security.set_token(token)
        self._expiry = expiry

    def next_refresh_s(self) -> float:
        """Seconds until the next refresh is due."""
        if self._expiry is None:
            return DEFAULT_TOKEN_REFRESH_S
        return max(1.0, 0.8 * (self._expiry - time.time()))

    def stop(self) -> None:
        self._stop.set()

    def __del__(self) -> None:
        self._stop.set()


def _refresh_loop(ref: weakref.ref[TokenRefresher],
                  stop: threading.Event) -> None:
    refresher = ref()
    wait = refresher.next_refresh_s() if refresher is not None else 0.0
    refresher = None
    while not stop.wait(wait):
        refresher = ref()
        if refresher is None:
            return
        try:
            refresher.refresh()
            wait = refresher.next_refresh_s()
        except Exception as exc:  # the provider is application code
            log.warning("Refreshing the OAUTHBEARER token failed (%s); "
                        "trying again in %.0f s", type(exc).__name__,
                        TOKEN_RETRY_S)
            wait = TOKEN_RETRY_S
        refresher = None
