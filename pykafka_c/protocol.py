"""Kafka protocol objects, as in ``pykafka.protocol``.

:class:`Message` is defined in C (``pykafka_c._core.Message``) so that the
fetch loop can make messages without running Python code; it derives from
:class:`pykafka_c.common.Message`.  Record encoding and decoding live in the
C core: ``_core.decode_records`` and ``_core.encode_record_batch``.
"""

from ._core import Message

__all__ = ["Message"]
