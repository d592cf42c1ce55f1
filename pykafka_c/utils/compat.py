"""pykafka's py2/py3 shims, for code that imports them (Python 3 only)."""

import queue as _queue
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


def get_bytes(value):
    """str -> UTF-8 bytes; bytes unchanged."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def get_string(value):
    """bytes -> str (UTF-8); str unchanged."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def iteritems(d, **kw):
    return iter(d.items(**kw))


def itervalues(d, **kw):
    return iter(d.values(**kw))


def iterkeys(d, **kw):
    return iter(d.keys(**kw))
