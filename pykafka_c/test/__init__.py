"""Test support for pykafka_c: real Apache Kafka clusters.

* :mod:`pykafka_c.test.kafka_instance` -- ``KafkaInstance`` (brokers from
  Maven Central jars: KRaft for Kafka 3.3+, ZooKeeper mode for 2.1-3.2), ``run_kafka_tool`` and the command line
  ``python -m pykafka_c.test.kafka_instance N --export-hosts FILE``.
* :mod:`pykafka_c.test.utils` -- ``get_cluster``, ``stop_cluster``, ``retry``.
* :mod:`pykafka_c.test.security` -- ``CertManager`` (the test certificates),
  ``SASL_USERS`` and ``unsecured_jwt`` for the brokers' TLS and SASL
  listeners (KRaft clusters).

The harness talks to Kafka with its own small protocol code
(``_wire``), never with pykafka_c's client, which is what the tests test.
"""
