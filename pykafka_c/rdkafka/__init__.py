"""pykafka's ``pykafka.rdkafka``: the classes behind ``use_rdkafka=True``.

pykafka built these on librdkafka to get a C fetch and send loop.
pykafka_c's :class:`~pykafka_c.simpleconsumer.SimpleConsumer` and
:class:`~pykafka_c.producer.Producer` already run in C, so here they are
thin subclasses that keep the rdkafka classes' signatures, defaults and
documented behaviour (each difference is listed in the class docstring).
No librdkafka is needed or loaded; ``_rd_kafka`` exists only so that the
usual check ``from pykafka.rdkafka import _rd_kafka`` finds that
``use_rdkafka=True`` works (it has none of librdkafka's handles).
"""

from .producer import RdKafkaProducer
from .simple_consumer import RdKafkaSimpleConsumer

__all__ = ["RdKafkaProducer", "RdKafkaSimpleConsumer"]
