"""pykafka's py2/py3 shims, for code that imports them (Python 3 only)."""

from __future__ import annotations

import queue as _queue
from collections.abc import Iterator
from typing import Any, TypeVar
from threading import Semaphore  # noqa: F401

__all__ = ["PY3", "IS_PYPY", "get_bytes", "get_string", "Queue", "Empty",
           "Semaphore", "range", "iteritems", "itervalues", "iterkeys",
           "buffer"]

PY3 = True
IS_PYPY = False
Queue = _queue.Queue
Empty = _queue.Empty
range = range
buffer = memoryview

_K = TypeVar("_K")
_V = TypeVar("_V")


def get_bytes(value: str | bytes) -> bytes:
    """str -> UTF-8 bytes; bytes unchanged."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def get_string(value: str | bytes) -> str:
    """bytes -> str (UTF-8); str unchanged."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def iteritems(d: dict[_K, _V], **kw: Any) -> Iterator[tuple[_K, _V]]:
    return iter(d.items(**kw))


def itervalues(d: dict[_K, _V], **kw: Any) -> Iterator[_V]:
    return iter(d.values(**kw))


def iterkeys(d: dict[_K, _V], **kw: Any) -> Iterator[_K]:
    return iter(d.keys(**kw))
