"""Helpers for tests, like pykafka's ``pykafka.test.utils``.

* :func:`get_cluster` -- the cluster named by ``$BROKERS`` when set (for
  example from ``python -m pykafka_c.test.kafka_instance N --export-hosts
  FILE``), else a new :class:`~pykafka_c.test.kafka_instance.KafkaInstance`.
* :func:`stop_cluster` -- terminate a started cluster, or delete the topics
  created through an external one.
* :func:`retry` -- call an assertion until it passes or time runs out.
"""

import os
import time

from . import _wire
from .kafka_instance import ClusterAdmin, DEFAULT_KAFKA_VERSION, HarnessError, KafkaInstance

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
    read their logs."""

    def __init__(self, brokers, kafka_version=None):
        self.brokers = brokers
        self.kafka_version = kafka_version
        self.zookeeper = None
        self.listeners = {"PLAINTEXT": brokers}
        self._hosts = _parse_hosts(brokers)
        self.created_topics = []

    def __repr__(self):
        return "<ExternalCluster %s>" % self.brokers

    def __enter__(self):
        return self

    def __exit__(self, *exc):
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

    def _addresses(self):
        return [(node, host, port) for node, (host, port)
                in sorted(self._bootstrap_metadata().brokers.items())]

    def _address_of(self, i):
        brokers = self._bootstrap_metadata().brokers
        if i not in brokers:
            raise IndexError("no broker with node id %r in %s" % (i, sorted(brokers)))
        return (i,) + tuple(brokers[i])

    @property
    def num_instances(self):
        return len(self._bootstrap_metadata().brokers)

    def broker_version(self, i=0):
        """Unknown: an external cluster's logs are not readable here."""
        return None

    def create_topic(self, name, num_partitions=1, replication_factor=1, configs=None,
                     timeout=60.0):
        super().create_topic(name, num_partitions, replication_factor, configs, timeout)
        self.created_topics.append(name)

    def delete_topic(self, name, timeout=60.0):
        super().delete_topic(name, timeout)
        if name in self.created_topics:
            self.created_topics.remove(name)

    def log_tails(self, lines=50, which=None):
        return "(external cluster %s: its broker logs are not available here)" % self.brokers

    def stop_broker(self, i):
        raise HarnessError("cannot stop a broker of an external cluster (%s)" % self.brokers)

    def start_broker(self, i, timeout=None):
        raise HarnessError("cannot start a broker of an external cluster (%s)" % self.brokers)

    def terminate(self):
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
    used: topics are created and deleted with the Kafka protocol."""

    def __init__(self, bin_dir, brokers, zookeeper, brokers_ssl=None,
                 kafka_version=None):
        super().__init__(brokers, kafka_version)
        self._bin_dir = bin_dir
        self.zookeeper = zookeeper
        if brokers_ssl is not None:
            self.listeners["SSL"] = brokers_ssl

    def __repr__(self):
        return "<KafkaConnection %s>" % self.brokers

    def flush(self):
        """Delete every topic of the cluster except the internal ones (as
        pykafka's ``flush``)."""
        for name in self.list_topics():
            self.delete_topic(name)


def get_cluster(num_instances=1, kafka_version=DEFAULT_KAFKA_VERSION, **kwargs):
    """The cluster named by ``$BROKERS`` (``host:port,...``; its version from
    ``$KAFKA_VERSION`` when set) or, without it, a new ``KafkaInstance`` of
    ``num_instances`` brokers.  Stop it with :func:`stop_cluster`."""
    brokers = os.environ.get("BROKERS")
    if brokers:
        return ExternalCluster(brokers, os.environ.get("KAFKA_VERSION") or None)
    return KafkaInstance(num_instances=num_instances, kafka_version=kafka_version, **kwargs)


def stop_cluster(cluster):
    """Terminate a cluster from :func:`get_cluster`: a started one is stopped
    and its data removed; an external one only loses the topics created
    through it."""
    cluster.terminate()


def retry(assertion_callable, retry_time=10, wait_between_tries=0.1,
          exception_to_retry=AssertionError):
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
