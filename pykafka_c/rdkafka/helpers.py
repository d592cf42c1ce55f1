"""``rdk_ssl_config``: pykafka's mapping of a cluster's ``SslConfig`` to
librdkafka configuration keys, kept for code that calls it."""

from __future__ import annotations

from typing import Any

__all__ = ["rdk_ssl_config"]


def rdk_ssl_config(cluster: Any) -> dict[str, Any]:
    """rdk_ssl_config(cluster) -> dict --

    librdkafka's TLS settings for ``cluster._ssl_config``: {} for plaintext,
    else ``security.protocol``, ``ssl.ca.location``,
    ``ssl.certificate.location``, ``ssl.key.location`` and
    ``ssl.key.password`` for the values that are set.  (pykafka also copied
    the cipher suites of its open Python sockets into
    ``ssl.cipher.suites``; pykafka_c's connections are C objects without
    Python sockets, so that key is left out.)"""
    conf = getattr(cluster, "_ssl_config", None)
    if conf is None:
        return {}
    out = {"security.protocol": "ssl",
           "ssl.ca.location": getattr(conf, "cafile", None),
           "ssl.certificate.location": getattr(conf, "certfile", None),
           "ssl.key.location": getattr(conf, "keyfile", None),
           "ssl.key.password": getattr(conf, "password", None)}
    return {k: v for k, v in out.items() if v is not None}
