"""``RdKafkaProducer``: pykafka's librdkafka-backed Producer, as a thin
subclass of pykafka_c's C Producer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..common import CompressionType
from ..producer import Producer

if TYPE_CHECKING:
    from .._typing import PartitionerFunc, Serializer
    from ..cluster import Cluster
    from ..topic import Topic

__all__ = ["RdKafkaProducer"]


class RdKafkaProducer(Producer):
    """A Producer with pykafka's rdkafka signature, defaults and behaviour.

    The signature has no ``queue_empty_timeout_ms``, ``block_on_queue_full``
    nor ``pending_timeout_ms`` (passing them raises ``TypeError``, as in
    pykafka; ``Topic.get_producer(use_rdkafka=True)`` drops
    ``block_on_queue_full``).  The mapping of pykafka's rdkafka settings,
    and the choice made for each documented quirk:

    * ``min_queued_messages`` defaults to 2000 (librdkafka's
      ``batch.num.messages``).  Kept.
    * A full queue raises ``ProducerQueueFullError`` at once, never blocks
      (librdkafka's behaviour).  Kept: ``block_on_queue_full=False``.
    * ``required_acks`` above 1 becomes -1 (all in-sync replicas), as the
      rdkafka class mapped it.  Kept: Kafka refuses other values anyway.
    * librdkafka failed a message after ``message.timeout.ms = 1.2 *
      max_retries * (ack_timeout_ms + retry_backoff_ms)`` and ``stop()``
      waited for every message to be delivered or so failed.  Here that
      time is the producer's ``pending_timeout_ms`` (how long ``stop()``
      and a ``sync`` produce wait before failing what is pending); with
      ``max_retries=0`` (librdkafka: no timeout) it is unlimited.
    * ``retry_backoff_ms`` is the exact wait between retries (as in
      librdkafka; the plain Producer behaves the same in pykafka_c).
    * Delivery reports set ``offset`` and ``timestamp`` on the Message, as
      the plain Producer does.
    * The ``broker_version`` of the client need not be set: versions are
      negotiated with ApiVersions.
    """

    def __init__(self, cluster: Cluster, topic: Topic,
                 partitioner: PartitionerFunc | None = None,
                 compression: int = CompressionType.NONE,
                 max_retries: int = 3, retry_backoff_ms: int = 100,
                 required_acks: int = 1, ack_timeout_ms: int = 10 * 1000,
                 max_queued_messages: int = 100000,
                 min_queued_messages: int = 2000,  # differs from Producer
                 linger_ms: int = 5 * 1000, max_request_size: int = 1000012,
                 sync: bool = False, delivery_reports: bool = False,
                 auto_start: bool = True,
                 serializer: Serializer | None = None) -> None:
        message_timeout_ms = int(1.2 * max_retries
                                 * (ack_timeout_ms + retry_backoff_ms))
        super(RdKafkaProducer, self).__init__(
            cluster, topic, partitioner=partitioner, compression=compression,
            max_retries=max_retries, retry_backoff_ms=retry_backoff_ms,
            required_acks=required_acks if required_acks <= 1 else -1,
            ack_timeout_ms=ack_timeout_ms,
            max_queued_messages=max_queued_messages,
            min_queued_messages=min_queued_messages, linger_ms=linger_ms,
            block_on_queue_full=False, max_request_size=max_request_size,
            sync=sync, delivery_reports=delivery_reports,
            pending_timeout_ms=(message_timeout_ms if message_timeout_ms > 0
                                else -1),
            auto_start=auto_start, serializer=serializer)
