"""The patterns of pykafka's usage guide, on pykafka_c, as a typed program.

pykafka's usage guide (doc/usage.rst in pykafka 2.8) shows three patterns
every pykafka user knows: choosing where a consumer starts (the
``auto_offset_reset`` / ``reset_offset_on_start`` rules), keeping one
producer per topic when producing to several topics, and recovering from
connection loss.  Here they are as written in the guide, with
``import pykafka_c as pykafka`` in place of ``import pykafka`` and type
annotations, so that ``mypy --strict`` checks them against pykafka_c's
types (``tests/test_typing.py`` does, with the README's examples).  The
notebook ``examples/usage_guide.ipynb`` runs the same patterns against a
broker.

Run it against a broker: ``python examples/usage_guide_patterns.py
HOST:PORT`` (it creates two topics named ``usage-guide-*``).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable

import pykafka_c as pykafka
from pykafka_c.common import OffsetType
from pykafka_c.exceptions import NoBrokersAvailableError, SocketDisconnectedError
from pykafka_c.producer import Producer
from pykafka_c.protocol import Message
from pykafka_c.simpleconsumer import SimpleConsumer
from pykafka_c.topic import Topic


def initial_offsets(topic: Topic, group: bytes) -> list[int | None]:
    """Consumer patterns: setting the initial offset.

    For a group/topic/partition without committed offsets consumption
    starts at ``auto_offset_reset``; with committed offsets it starts after
    the last committed one, unless ``reset_offset_on_start=True``, which
    always starts at ``auto_offset_reset``.  Returns the offset of the
    first message each of the guide's three consumers reads."""
    # assuming the group has no committed offsets

    # starts from the latest available offset
    consumer = topic.get_simple_consumer(
        consumer_group=group,
        auto_offset_reset=OffsetType.LATEST,
        consumer_timeout_ms=2000,
    )
    first = consumer.consume()
    consumer.commit_offsets()
    consumer.stop()

    # starts from the last committed offset
    consumer_2 = topic.get_simple_consumer(
        consumer_group=group,
        consumer_timeout_ms=2000,
    )
    second = consumer_2.consume()
    consumer_2.stop()

    # starts from the earliest available offset
    consumer_3 = topic.get_simple_consumer(
        consumer_group=group,
        auto_offset_reset=OffsetType.EARLIEST,
        reset_offset_on_start=True,
        consumer_timeout_ms=2000,
    )
    third = consumer_3.consume()
    consumer_3.stop()
    return [m.offset if m is not None else None
            for m in (first, second, third)]


def produce_to_many(topics_to_produce_to: Iterable[Topic],
                    consumed_messages: Iterable[tuple[Topic, bytes]]) -> None:
    """Producer patterns: producing to multiple topics.

    Keep one producer per topic instead of making (and garbage-collecting)
    one for every message."""
    topic_producers: dict[bytes, Producer] = {
        topic.name: topic.get_producer() for topic in topics_to_produce_to}
    for destination_topic, message in consumed_messages:
        topic_producers[destination_topic.name].produce(message)
    for producer in topic_producers.values():
        producer.stop()


def consume_with_recovery(topic: Topic) -> Message | None:
    """Handling connection loss.

    A component raises NoBrokersAvailableError or SocketDisconnectedError
    when it cannot reach enough of the cluster; catch them and make the
    component again, or ``stop(); start()`` it."""
    # this illustrates consumer error catching; a similar method can be
    # used for producers
    consumer: SimpleConsumer = topic.get_simple_consumer(
        consumer_timeout_ms=1000)
    try:
        return consumer.consume()
    except (SocketDisconnectedError, NoBrokersAvailableError):
        consumer = topic.get_simple_consumer(consumer_timeout_ms=1000)
        # use either the above method or the following:
        consumer.stop()
        consumer.start()
        return consumer.consume()
    finally:
        consumer.stop()


def main(argv: list[str]) -> int:
    hosts = argv[1] if len(argv) > 1 else "127.0.0.1:9092"
    suffix = uuid.uuid4().hex[:8]
    with pykafka.KafkaClient(hosts=hosts) as client:
        topics = [client.topics["usage-guide-%s-%d" % (suffix, i)]
                  for i in range(2)]
        produce_to_many(topics, [(t, b"message %d" % i)
                                 for i, t in enumerate(topics * 3)])
        print("first offsets read:", initial_offsets(
            topics[0], b"usage-guide-" + suffix.encode()))
        message = consume_with_recovery(topics[1])
        print("after recovery:", None if message is None else message.value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
