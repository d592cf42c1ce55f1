"""Type aliases shared by pykafka_c's modules (private; for annotations).

Nothing here runs at import beyond building the aliases."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .partition import Partition

#: A decoded Kafka request or response: Kafka's field names in snake_case
#: (what ``_core.decode_response`` gives and ``Broker.request`` returns).
Decoded: TypeAlias = dict[str, Any]

#: A producer's ``serializer``: ``f(value, partition_key) -> (value,
#: partition_key)``, both bytes or None on the way out.
Serializer: TypeAlias = Callable[[Any, Any], tuple[Any, Any]]

#: A consumer's ``deserializer``: ``f(value, partition_key) -> (value,
#: partition_key)`` applied to each message consume() returns.
Deserializer: TypeAlias = Callable[[Any, Any], tuple[Any, Any]]

#: A partitioner: ``f(partitions, key) -> one of partitions``.
PartitionerFunc: TypeAlias = Callable[[list["Partition"], Any], "Partition"]

#: Record headers as consumed messages carry them: (name, value) pairs.
Headers: TypeAlias = list[tuple[str, bytes | None]]

#: Headers produce() takes: (name, value) pairs or a dict.
HeadersIn: TypeAlias = (Sequence[tuple[str | bytes, str | bytes | None]]
                        | Mapping[str | bytes, str | bytes | None])

#: pykafka's ``offsets_before``: OffsetType.EARLIEST / LATEST, epoch
#: milliseconds, or a naive UTC datetime.
OffsetsBefore: TypeAlias = int | datetime.datetime

#: A timestamp a message can be given: epoch milliseconds or a datetime.
Timestamp: TypeAlias = int | float | datetime.datetime

#: A bytes-like object.
BytesLike: TypeAlias = bytes | bytearray | memoryview
