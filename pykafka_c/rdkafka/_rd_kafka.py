"""pykafka's name for the C extension behind ``use_rdkafka=True``.

In pykafka, ``pykafka.rdkafka._rd_kafka`` is the librdkafka binding, and
importing it is how pykafka's own code and tests, and applications, check
that ``use_rdkafka=True`` works.  pykafka_c's rdkafka classes
(:class:`~pykafka_c.rdkafka.RdKafkaSimpleConsumer`,
:class:`~pykafka_c.rdkafka.RdKafkaProducer`) run on pykafka_c's own C core
(``pykafka_c._core``) and always work, so this module exists and that
check succeeds.  librdkafka itself is not used: the binding's handle types
(``Consumer``, ``Producer``) and its thread counters (``_thread_cnt``,
``_wait_destroyed``) are not here.
"""

__all__: list[str] = []
