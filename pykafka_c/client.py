"""``KafkaClient``: the entry point, as in pykafka."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import _display
from .cluster import Cluster
from .handlers import ThreadingHandler

if TYPE_CHECKING:
    from ._security import TokenProvider
    from .broker import Broker
    from .cluster import TopicDict
    from .connection import SslConfig

__all__ = ["KafkaClient"]

log = logging.getLogger(__name__)


class KafkaClient(object):
    """A connection to a Kafka cluster.

    ``KafkaClient(hosts="127.0.0.1:9092")`` connects, negotiates API
    versions and reads metadata; ``client.topics[name]`` gives a
    :class:`pykafka_c.topic.Topic`.

    Compatibility notes: ``zookeeper_hosts`` is accepted and ignored with a
    warning (Kafka 4 has no ZooKeeper); ``use_greenlets`` is accepted but
    pykafka_c's C core does not cooperate with gevent, so ``True`` raises
    ``ImportError`` as pykafka does when gevent is missing;
    ``broker_version`` is accepted and unused (ApiVersions negotiation
    decides every version).

    TLS: ``ssl_config`` (an :class:`~pykafka_c.connection.SslConfig`)
    makes every connection TLS, as in pykafka; unlike pykafka, the
    broker's host name is checked against its certificate unless
    ``SslConfig(..., check_hostname=False)``.

    SASL (pykafka_c's trailing keywords): ``sasl_mechanism`` is ``"PLAIN"``,
    ``"SCRAM-SHA-256"``, ``"SCRAM-SHA-512"`` or ``"OAUTHBEARER"`` (None: no
    SASL); ``sasl_username`` / ``sasl_password`` for PLAIN and SCRAM;
    ``sasl_oauth_token_provider`` for OAUTHBEARER: a callable returning the
    token, or ``(token, expiry)`` with the expiry in seconds since the
    epoch; it is called now and again before the token expires.  SASL runs
    over TLS when ``ssl_config`` is given, over plain TCP otherwise.  A
    refused login raises ``SaslAuthenticationFailed`` (or
    ``UnsupportedSaslMechanism``) with the broker's message; a TLS failure
    raises ``SslError``.
    """

    def __init__(self, hosts: str = '127.0.0.1:9092',
                 zookeeper_hosts: str | None = None,
                 socket_timeout_ms: int = 30 * 1000,
                 offsets_channel_socket_timeout_ms: int = 10 * 1000,
                 use_greenlets: bool = False,
                 exclude_internal_topics: bool = True,
                 source_address: str = '',
                 ssl_config: SslConfig | None = None,
                 broker_version: str = '0.9.0',
                 sasl_mechanism: str | None = None,
                 sasl_username: str | None = None,
                 sasl_password: str | None = None,
                 sasl_oauth_token_provider: TokenProvider | None = None
                 ) -> None:
        if use_greenlets:
            raise ImportError("pykafka_c does not support gevent "
                              "(use_greenlets=True): its I/O runs in C "
                              "threads")
        self._seed_hosts = hosts
        self._source_address = source_address
        self._socket_timeout_ms = socket_timeout_ms
        self._offsets_channel_socket_timeout_ms = \
            offsets_channel_socket_timeout_ms
        # pykafka's handler object: pykafka_c's I/O does not use it, but
        # cluster.handler / broker.handler give it to code that spawns
        # workers or makes Events through it, as pykafka's did.
        self._handler = ThreadingHandler()
        self._use_greenlets = use_greenlets
        self._broker_version = broker_version
        self.cluster = Cluster(
            hosts, self._handler,
            socket_timeout_ms=socket_timeout_ms,
            offsets_channel_socket_timeout_ms=offsets_channel_socket_timeout_ms,
            exclude_internal_topics=exclude_internal_topics,
            source_address=source_address,
            zookeeper_hosts=zookeeper_hosts,
            ssl_config=ssl_config,
            broker_version=broker_version,
            sasl_mechanism=sasl_mechanism,
            sasl_username=sasl_username,
            sasl_password=sasl_password,
            sasl_oauth_token_provider=sasl_oauth_token_provider)
        #: ``{node id: Broker}``, the cluster's (the same dict).
        self.brokers: dict[int, Broker] = self.cluster.brokers
        #: The topics by name: ``client.topics[name]`` gives a Topic.
        self.topics: TopicDict = self.cluster.topics

    @_display.safe_repr
    def __repr__(self) -> str:
        return _display.cluster_repr(self, self.cluster)

    @_display.safe_html
    def _repr_html_(self) -> str:
        """Jupyter's display: the brokers (id, address, TLS, the API
        versions negotiated with each) and the topics."""
        return _display.cluster_html(self.cluster, "KafkaClient",
                                     self._seed_hosts)

    def update_cluster(self) -> None:
        """Re-read metadata (brokers, topics, partitions)."""
        self.cluster.update()

    def close(self) -> None:
        """Close every connection (pykafka_c addition)."""
        self.cluster.disconnect()

    def __enter__(self) -> KafkaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
