"""Partitioners with pykafka's exact rules, so a key lands on the same
partition as it did under pykafka."""

import random
from hashlib import sha1

__all__ = ["BasePartitioner", "RandomPartitioner", "HashingPartitioner",
           "hashing_partitioner", "GroupHashingPartitioner",
           "random_partitioner"]


class BasePartitioner(object):
    """Base class for partitioners: ``__call__(partitions, key=None)``
    returns one of ``partitions``."""

    def __call__(self, partitions, key=None):
        raise NotImplementedError(
            "%s must implement __call__(partitions, key)"
            % type(self).__name__)


class RandomPartitioner(BasePartitioner):
    """pykafka's default: despite the name, round-robin over the list,
    starting at index 1."""

    def __init__(self):
        self.idx = 0

    def __call__(self, partitions, key=None):
        self.idx = (self.idx + 1) % len(partitions)
        return partitions[self.idx]


def random_partitioner(partitions, key=None):
    """The pre-2.7 pykafka function: a truly random partition."""
    return random.choice(partitions)


class HashingPartitioner(BasePartitioner):
    """``sorted(partitions)[abs(hash_func(key)) % len(partitions)]`` with
    the sha1 hash by default; ``key`` None is a ValueError."""

    def __init__(self, hash_func=None):
        self.hash_func = hash_func
        if self.hash_func is None:
            self.hash_func = lambda k: int(sha1(k).hexdigest(), 16)

    def __call__(self, partitions, key):
        if key is None:
            raise ValueError("key cannot be `None` when using hashing "
                             "partitioner")
        partitions = sorted(partitions)
        return partitions[abs(self.hash_func(key)) % len(partitions)]


hashing_partitioner = HashingPartitioner()


class GroupHashingPartitioner(BasePartitioner):
    """Spread a key over ``group_size`` consecutive partitions."""

    def __init__(self, hash_func, group_size=1):
        self.hash_func = hash_func
        self.group_size = group_size
        if self.hash_func is None:
            raise ValueError("hash_func must be specified when using "
                             "GroupHashingPartitioner")
        if self.group_size < 1:
            raise ValueError("group_size cannot be < 1 when using "
                             "GroupHashingPartitioner")

    def __call__(self, partitions, key):
        if key is None:
            raise ValueError("key cannot be `None` when using hashing "
                             "partitioner")
        if self.group_size > len(partitions):
            raise ValueError("group_size cannot be > available partitions")
        partitions = sorted(partitions)
        return partitions[abs(self.hash_func(key) +
                              random.randrange(0, self.group_size))
                          % len(partitions)]
