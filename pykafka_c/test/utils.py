"""Helpers for tests, like pykafka's ``pykafka.test.utils``.

* :func:`get_cluster` -- the cluster named by ``$BROKERS`` when set (for
  example from ``python -m pykafka_c.test.kafka_instance N --export-hosts
  FILE``; its other listeners from ``$BROKERS_SSL`` and the like, its
  certificates from ``$PKC_TEST_CERTS``), else a new
  :class:`~pykafka_c.test.kafka_instance.KafkaInstance`.
* :func:`stop_cluster` -- terminate a started cluster, or delete the topics
  created through an external one.
* :func:`retry` -- call an assertion until it passes or time runs out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from . import _wire
from .kafka_instance import (CERTS_ENV, SECURITY_LISTENERS, ClusterAdmin, DEFAULT_KAFKA_VERSION,
                             HarnessError, KafkaInstance, listener_env_name)
from .security import SASL_USERS, CertManager

_T = TypeVar("_T")

__all__ = ["get_cluster", "stop_cluster", "retry", "ExternalCluster",
           "KafkaConnection"]


def _parse_hosts(brokers):
    out = []
    for item in brokers.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise HarnessError("bad broker address %r in %r (want host:port)" % (item, brokers))
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise HarnessError("no broker address in %r" % (brokers,))
    return out


class ExternalCluster(ClusterAdmin):
    """A running cluster this process did not start, named by a bootstrap
    string.  Offers the topic and metadata helpers of ``KafkaInstance``
    (broker ``i`` means node id ``i``); it cannot stop or start brokers nor
    read their logs.

    ``listeners`` ({name: bootstrap string}, as ``KafkaInstance.listeners``)
    names its other listeners, ``certs`` is a
    :class:`~pykafka_c.test.security.CertManager` for them; ``sasl_users``
    are those of ``certs`` (else the harness's :data:`SASL_USERS`) when a
    SASL listener is named.  :meth:`from_environment` reads all of it from
    the variables ``python -m pykafka_c.test.kafka_instance --export-hosts``
    writes."""

    brokers: str
    listeners: dict[str, str]

    def __init__(self, brokers: str, kafka_version: str | None = None,
                 listeners: Mapping[str, str] | None = None,
                 certs: CertManager | None = None) -> None:
        self.brokers = brokers
        self.kafka_version = kafka_version
        self.zookeeper = None
        self.listeners = dict(listeners or {}, PLAINTEXT=brokers)
        self.certs = certs
        if any(name.startswith("SASL_") for name in self.listeners):
            self.sasl_users = certs.sasl_users if certs is not None else SASL_USERS
        self._hosts = _parse_hosts(brokers)
        self.created_topics: list[str | bytes] = []

    @classmethod
    def from_environment(cls) -> ExternalCluster:
        """The cluster of ``$BROKERS`` (required), with ``$KAFKA_VERSION``,
        the listeners of ``$BROKERS_<NAME>`` (``$BROKERS_SSL``,
        ``$BROKERS_SASL_SSL``, ...: see :func:`listener_env_name`) and the
        certificates in the folder ``$PKC_TEST_CERTS``.  A TLS listener
        without ``$PKC_TEST_CERTS`` is a :class:`HarnessError`: its tests
        could not trust it."""
        env = os.environ
        listeners = {name: env[listener_env_name(name)] for name in SECURITY_LISTENERS
                     if env.get(listener_env_name(name))}
        certs = None
        if env.get(CERTS_ENV):
            certs = CertManager.load(env[CERTS_ENV])
        elif any(SECURITY_LISTENERS[name] in ("SSL", "SASL_SSL") for name in listeners):
            raise HarnessError(
                "%s is set but %s is not: point it at the test-certs folder that "
                "`python -m pykafka_c.test.kafka_instance` printed"
                % ("/".join(listener_env_name(n) for n in sorted(listeners)), CERTS_ENV))
        return cls(env["BROKERS"], env.get("KAFKA_VERSION") or None, listeners, certs)

    def __repr__(self) -> str:
        return "<ExternalCluster %s>" % self.brokers

    def __enter__(self) -> ExternalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    def _bootstrap_metadata(self):
        last = None
        for host, port in self._hosts:
            try:
                with _wire.Connection(host, port, timeout=30.0) as conn:
                    return conn.metadata()
            except (OSError, _wire.WireError) as exc:
                last = exc
        raise HarnessError("no broker of %s answers: %s" % (self.brokers, last))

    def _addresses(self) -> list[tuple[int, str, int]]:
        return [(node, host, port) for node, (host, port)
                in sorted(self._bootstrap_metadata().brokers.items())]

    def _address_of(self, i: int) -> tuple[int, str, int]:
        brokers = self._bootstrap_metadata().brokers
        if i not in brokers:
            raise IndexError("no broker with node id %r in %s" % (i, sorted(brokers)))
        host, port = brokers[i]
        return i, host, port

    @property
    def num_instances(self) -> int:
        return len(self._bootstrap_metadata().brokers)

    def broker_version(self, i: int = 0) -> str | None:
        """Unknown: an external cluster's logs are not readable here."""
        return None

    def create_topic(self, name: str | bytes, num_partitions: int = 1,
                     replication_factor: int = 1,
                     configs: Mapping[str, str] | None = None,
                     timeout: float = 60.0) -> None:
        super().create_topic(name, num_partitions, replication_factor, configs, timeout)
        self.created_topics.append(name)

    def delete_topic(self, name: str | bytes, timeout: float = 60.0) -> None:
        super().delete_topic(name, timeout)
        if name in self.created_topics:
            self.created_topics.remove(name)

    def log_tails(self, lines: int = 50, which: Iterable[int] | None = None) -> str:
        return "(external cluster %s: its broker logs are not available here)" % self.brokers

    def stop_broker(self, i: int) -> None:
        raise HarnessError("cannot stop a broker of an external cluster (%s)" % self.brokers)

    def start_broker(self, i: int, timeout: float | None = None) -> None:
        raise HarnessError("cannot start a broker of an external cluster (%s)" % self.brokers)

    def terminate(self) -> None:
        """Delete the topics created through this object; the cluster stays up."""
        for name in list(self.created_topics):
            try:
                self.delete_topic(name)
            except (HarnessError, OSError, _wire.WireError, _wire.KafkaErrorCode):
                pass
        self.created_topics = []


class KafkaConnection(ExternalCluster):
    """pykafka's ``KafkaConnection``: a running cluster given by its broker
    list, with pykafka's constructor.  ``bin_dir`` (pykafka ran Kafka's
    shell scripts from it) and ``zookeeper`` are kept as attributes and not
    used: topics are created and deleted with the Kafka protocol.

    With ``brokers_ssl``, ``certs`` is the
    :class:`~pykafka_c.test.security.CertManager` of the folder
    ``$PKC_TEST_CERTS``, else of ``<bin_dir>/test-certs`` (where pykafka kept
    them); :class:`HarnessError` when neither holds a set."""

    def __init__(self, bin_dir: str, brokers: str, zookeeper: str | None,
                 brokers_ssl: str | None = None,
                 kafka_version: str | None = None) -> None:
        certs = None
        if brokers_ssl is not None:
            cert_dir = os.environ.get(CERTS_ENV) or os.path.join(bin_dir, "test-certs")
            try:
                certs = CertManager.load(cert_dir)
            except HarnessError as exc:
                raise HarnessError("KafkaConnection(brokers_ssl=%r) needs the cluster's test "
                                   "certificates: set %s to the folder `python -m "
                                   "pykafka_c.test.kafka_instance` printed (%s)"
                                   % (brokers_ssl, CERTS_ENV, exc)) from None
        super().__init__(brokers, kafka_version,
                         None if brokers_ssl is None else {"SSL": brokers_ssl}, certs)
        self._bin_dir = bin_dir
        self.zookeeper = zookeeper

    def __repr__(self) -> str:
        return "<KafkaConnection %s>" % self.brokers

    def flush(self) -> None:
        """Delete every topic of the cluster except the internal ones (as
        pykafka's ``flush``)."""
        for name in self.list_topics():
            self.delete_topic(name)


def get_cluster(num_instances: int = 3, kafka_version: str = DEFAULT_KAFKA_VERSION,
                **kwargs: Any) -> KafkaInstance | ExternalCluster:
    """The cluster named by ``$BROKERS`` (``host:port,...``; its version from
    ``$KAFKA_VERSION``, its other listeners from ``$BROKERS_SSL`` (as in
    pykafka) and the other ``$BROKERS_<NAME>``, its certificates from
    ``$PKC_TEST_CERTS``: :meth:`ExternalCluster.from_environment`) or,
    without it, a new ``KafkaInstance`` of ``num_instances`` brokers (3, as
    pykafka's ``get_cluster()`` started: its tests create topics with
    replication factor 2).  Stop it with :func:`stop_cluster`."""
    if os.environ.get("BROKERS"):
        return ExternalCluster.from_environment()
    return KafkaInstance(num_instances=num_instances, kafka_version=kafka_version, **kwargs)


def stop_cluster(cluster: ClusterAdmin) -> None:
    """Terminate a cluster from :func:`get_cluster`: a started one is stopped
    and its data removed; an external one only loses the topics created
    through it."""
    cluster.terminate()


def retry(assertion_callable: Callable[[], _T], retry_time: float = 10,
          wait_between_tries: float = 0.1,
          exception_to_retry: type[BaseException] | tuple[type[BaseException], ...]
          = AssertionError) -> _T:
    """Call ``assertion_callable`` until it returns without raising
    ``exception_to_retry``; re-raise the last such exception once
    ``retry_time`` seconds have passed.  Returns the callable's result."""
    deadline = time.monotonic() + retry_time
    while True:
        try:
            return assertion_callable()
        except exception_to_retry:
            if time.monotonic() >= deadline:
                raise
            time.sleep(wait_between_tries)
