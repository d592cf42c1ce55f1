"""Partitioners with pykafka's exact rules, so a key lands on the same
partition as it did under pykafka."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from hashlib import sha1
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .partition import Partition

__all__ = ["BasePartitioner", "RandomPartitioner", "HashingPartitioner",
           "hashing_partitioner", "GroupHashingPartitioner",
           "random_partitioner"]


class BasePartitioner(object):
    """Base class for partitioners: ``__call__(partitions, key=None)``
    returns one of ``partitions``."""

    def __call__(self, partitions: Sequence[Partition],
                 key: Any = None) -> Partition:
        raise NotImplementedError(
            "%s must implement __call__(partitions, key)"
            % type(self).__name__)


class RandomPartitioner(BasePartitioner):
    """pykafka's default: despite the name, round-robin over the list,
    starting at index 1."""

    def __init__(self) -> None:
        self.idx = 0

    def __call__(self, partitions: Sequence[Partition],
                 key: Any = None) -> Partition:
        self.idx = (self.idx + 1) % len(partitions)
        return partitions[self.idx]


def random_partitioner(partitions: Sequence[Partition],
                       key: Any = None) -> Partition:
    """The pre-2.7 pykafka function: a truly random partition."""
    return random.choice(partitions)


class HashingPartitioner(BasePartitioner):
    """``sorted(partitions)[abs(hash_func(key)) % len(partitions)]`` with
    the sha1 hash by default; ``key`` None is a ValueError."""

    def __init__(self, hash_func: Callable[[Any], int] | None = None
                 ) -> None:
        self.hash_func: Callable[[Any], int] = (
            hash_func if hash_func is not None
            else lambda k: int(sha1(k).hexdigest(), 16))

    # pykafka's signature: the key is required here (no default)
    def __call__(self, partitions: Sequence[Partition],  # type: ignore[override]
                 key: Any) -> Partition:
        if key is None:
            raise ValueError("key cannot be `None` when using hashing "
                             "partitioner")
        ordered = sorted(partitions)
        return ordered[abs(self.hash_func(key)) % len(ordered)]


hashing_partitioner = HashingPartitioner()


class GroupHashingPartitioner(BasePartitioner):
    """Spread a key over ``group_size`` consecutive partitions."""

    def __init__(self, hash_func: Callable[[Any], int],
                 group_size: int = 1) -> None:
        self.hash_func = hash_func
        self.group_size = group_size
        if self.hash_func is None:
            raise ValueError("hash_func must be specified when using "
                             "GroupHashingPartitioner")
        if self.group_size < 1:
            raise ValueError("group_size cannot be < 1 when using "
                             "GroupHashingPartitioner")

    # pykafka's signature: the key is required here (no default)
    def __call__(self, partitions: Sequence[Partition],  # type: ignore[override]
                 key: Any) -> Partition:
        if key is None:
            raise ValueError("key cannot be `None` when using hashing "
                             "partitioner")
        if self.group_size > len(partitions):
            raise ValueError("group_size cannot be > available partitions")
        ordered = sorted(partitions)
        return ordered[abs(self.hash_func(key) +
                           random.randrange(0, self.group_size))
                       % len(ordered)]
