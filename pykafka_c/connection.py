"""``SslConfig`` and the compatibility name ``BrokerConnection``.

pykafka_c's connections are C objects (``pykafka_c._core.Connection``)
set up by the C broker link: TCP, TLS on the system's OpenSSL, ApiVersions
and SASL.  ``SslConfig`` keeps pykafka's signature; pykafka_c reads its
files in C (``_core.Security``), so ``wrap_socket`` exists only for code
that calls it directly on a Python socket.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from . import _core

#: A key password: bytes, str, or a callable that returns one.
_Password = bytes | str | Callable[[], "bytes | str"]

__all__ = ["SslConfig", "BrokerConnection"]


class SslConfig(object):
    """pykafka's TLS settings: ``SslConfig(cafile, certfile=None,
    keyfile=None, password=None)``.

    ``cafile`` is the PEM file of the CAs to trust (None: the system's
    store, or ``capath``); ``certfile`` / ``keyfile`` the client certificate
    chain and key for mutual TLS, ``password`` the key's passphrase (bytes,
    str, or a callable returning it).

    pykafka_c's trailing keywords: ``capath`` (a directory of hashed CA
    certificates), ``crlfile`` (a PEM CRL: broker certificates it revokes
    are refused), and ``check_hostname`` (default True: the broker's
    certificate must name the host that was dialled, its DNS or IP subject
    alternative names; pykafka did not check the host name, pass False to
    behave as it did).
    """

    def __init__(self, cafile: str | None, certfile: str | None = None,
                 keyfile: str | None = None, password: _Password | None = None,
                 capath: str | None = None, crlfile: str | None = None,
                 check_hostname: bool = True) -> None:
        self.cafile = cafile
        self.certfile = certfile
        self.keyfile = keyfile
        self.password = password
        self.capath = capath
        self.crlfile = crlfile
        self.check_hostname = check_hostname
        self._wrap_socket: Callable[[socket.socket], ssl.SSLSocket] | None \
            = None

    def __repr__(self) -> str:
        return "<%s.%s cafile=%r certfile=%r check_hostname=%r>" % (
            self.__class__.__module__, self.__class__.__name__,
            self.cafile, self.certfile, self.check_hostname)

    def _build_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cafile,
                                         capath=self.capath)
        ctx.check_hostname = False
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile, self.password)
        return ctx

    def wrap_socket(self, sock: socket.socket) -> ssl.SSLSocket:
        """Wrap a Python socket as pykafka did (kept for code that calls it
        directly; pykafka_c's own connections do TLS in C)."""
        if self._wrap_socket is None:
            self._wrap_socket = self._build_context().wrap_socket
        return self._wrap_socket(sock)


#: pykafka's connection class name; the C connection type.
BrokerConnection = _core.Connection
