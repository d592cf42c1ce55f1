"""``SslConfig`` and the compatibility name ``BrokerConnection``.

pykafka_c's connections are C objects (``pykafka_c._core.Connection``).
TLS is not implemented yet: ``SslConfig`` is accepted so code that builds
one keeps importing, and passing it to a client raises a clear
``NotImplementedError``.
"""

import ssl

from . import _core

__all__ = ["SslConfig", "BrokerConnection"]


class SslConfig(object):
    """pykafka's TLS settings: ``SslConfig(cafile, certfile=None,
    keyfile=None, password=None)``."""

    def __init__(self, cafile, certfile=None, keyfile=None, password=None):
        self.cafile = cafile
        self.certfile = certfile
        self.keyfile = keyfile
        self.password = password
        self._wrap_socket = None

    def _build_context(self):
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = False
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile, self.password)
        return ctx

    def wrap_socket(self, sock):
        """Wrap a Python socket (kept for code that calls it directly)."""
        if self._wrap_socket is None:
            self._wrap_socket = self._build_context().wrap_socket
        return self._wrap_socket(sock)


#: pykafka's connection class name; the C connection type.
BrokerConnection = _core.Connection
