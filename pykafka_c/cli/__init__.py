"""Command line tools: :mod:`pykafka_c.cli.kafka_tools` (pykafka's
``kafka-tools``)."""
