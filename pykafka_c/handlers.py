"""pykafka's ``pykafka.handlers``: thread (or greenlet) factories and a
request queue served by a worker.

pykafka_c's own I/O runs in C threads (csrc/wire/net.c, fetchloop.c,
sendloop.c) and does not go through these classes.  They are kept for code
written against pykafka: ``KafkaClient`` gives its ``Cluster`` a
:class:`ThreadingHandler` (``cluster.handler``), whose ``spawn``, ``Event``,
``Queue`` ... applications and the rdkafka-compatible classes use, and
:class:`RequestHandler` serves any connection object with pykafka's
``request(request)`` / ``response()`` methods from a worker thread.
"""

from __future__ import annotations

import logging
import socket as _pysocket
import sys as _sys
import threading
import time
from collections import namedtuple
from collections.abc import Callable
from typing import Any

from .utils.compat import Empty, Queue, Semaphore

try:
    import gevent
    import gevent.event
    import gevent.lock
    import gevent.queue
    import gevent.socket as _gsocket
except ImportError:
    gevent = None  # type: ignore[assignment, unused-ignore]

__all__ = ["ResponseFuture", "Handler", "ThreadingHandler", "RequestHandler"]
if gevent is not None:
    __all__.append("GEventHandler")

log = logging.getLogger(__name__)


class ResponseFuture(object):
    """A response that a worker fills in later: ``set_response`` or
    ``set_error`` wakes whoever waits in ``get``."""

    def __init__(self, handler: Handler) -> None:
        """ResponseFuture(handler) --

        ``handler`` supplies the ``Event`` type (a :class:`Handler`)."""
        self.handler = handler
        self.error: Any = False
        self._ready = handler.Event()

    def set_response(self, response: Any) -> None:
        """set_response(response) --

        Store the response and wake ``get``."""
        self.response = response
        self._ready.set()

    def set_error(self, error: BaseException | type[BaseException]
                  ) -> None:
        """set_error(error) --

        Store an exception (instance or class) for ``get`` to raise."""
        self.error = error
        self._ready.set()

    def get(self, response_cls: Callable[..., Any] | None = None,
            timeout: float | None = None, **response_kwargs: Any) -> Any:
        """get(response_cls=None, timeout=None, **response_kwargs) --

        Wait (up to ``timeout`` seconds; None: forever) for the result.
        Raises the stored error; returns ``response_cls(response,
        **response_kwargs)`` when a class is given, else the response.  If
        the wait times out before anything was set, ``AttributeError`` is
        raised, as pykafka's missing ``response`` attribute did."""
        self._ready.wait(timeout)
        if self.error:
            raise self.error
        try:
            response = self.response
        except AttributeError:
            raise AttributeError("no response was set within %r seconds"
                                 % (timeout,))
        if response_cls:
            return response_cls(response, **response_kwargs)
        return response


class Handler(object):
    """Base of the handlers: a family of concurrency primitives plus
    ``spawn``."""

    Event: Any
    Queue: Any

    def spawn(self, target: Callable[..., Any], *args: Any,
              **kwargs: Any) -> Any:
        """spawn(target, *args, **kwargs) --

        Start a worker running ``target``."""
        raise NotImplementedError


class ThreadingHandler(Handler):
    """The handler of ordinary threads: ``Queue``, ``Event``, ``Lock``,
    ``RLock``, ``Semaphore``, ``Socket`` (the socket module), ``SockErr``,
    ``GaiError``, ``sleep`` and ``spawn`` (a daemon ``threading.Thread``)."""

    Queue = Queue
    Event = threading.Event
    Lock = threading.Lock
    RLock = staticmethod(threading.RLock)
    Semaphore = Semaphore
    Socket = _pysocket
    SockErr = OSError
    GaiError = _pysocket.gaierror
    _workers_spawned = 0

    def sleep(self, seconds: float = 0) -> None:
        """sleep(seconds=0) --"""
        time.sleep(seconds)

    def spawn(self, target: Callable[..., Any], *args: Any,
              **kwargs: Any) -> threading.Thread:
        """spawn(target, *args, **kwargs) -> threading.Thread --

        Start a daemon thread; the arguments are ``threading.Thread``'s
        (``args=``, ``kwargs=``, ``name=``; a name gets the spawn counter as
        prefix, as in pykafka).  Returns the started thread."""
        if "name" in kwargs:
            kwargs["name"] = "{}: {}".format(
                ThreadingHandler._workers_spawned, kwargs["name"])
        thread = threading.Thread(*args, target=target,
                                  **kwargs)  # type: ignore[misc]
        thread.daemon = True
        thread.start()
        ThreadingHandler._workers_spawned += 1
        return thread


if gevent is not None:
    class GEventHandler(Handler):
        """The handler of greenlets (only when gevent is importable).
        pykafka_c's clients do not support gevent (their I/O is C
        threads); this is for applications that used the class itself."""

        Queue = gevent.queue.JoinableQueue
        Event = gevent.event.Event
        Lock = gevent.lock.RLock
        RLock = gevent.lock.RLock
        Semaphore = gevent.lock.Semaphore
        Socket = _gsocket
        SockErr = _gsocket.error
        GaiError = _gsocket.gaierror

        def sleep(self, seconds: float = 0) -> None:
            """sleep(seconds=0) --"""
            gevent.sleep(seconds)

        def spawn(self, target: Callable[..., Any], *args: Any,
                  **kwargs: Any) -> Any:
            """spawn(target, *args, **kwargs) -> Greenlet --"""
            kwargs.pop("name", None)  # greenlets have no names
            return gevent.spawn(target, *args, **kwargs)


class RequestHandler(object):
    """Serve requests on one connection from a worker spawned by a
    :class:`Handler`: ``request()`` queues a request and returns a
    :class:`ResponseFuture` (or None when no response is expected); the
    worker sends each with ``connection.request(request)`` and, when a
    response is expected, reads it with ``connection.response()``."""

    Task = namedtuple("Task", ["request", "future"])
    Shared = namedtuple("Shared", ["connection", "requests", "ending"])

    def __init__(self, handler: Handler, connection: Any) -> None:
        """RequestHandler(handler, connection) --"""
        self.handler = handler
        # The worker keeps only this tuple, not self, so dropping the
        # RequestHandler lets __del__ stop the worker.
        self.shared: Any = self.Shared(connection=connection,
                                  requests=handler.Queue(),
                                  ending=handler.Event())
        self.t: Any = None

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:
            pass

    def request(self, request: Any, has_response: bool = True
                ) -> ResponseFuture | None:
        """request(request, has_response=True) -> ResponseFuture or None --

        Queue ``request`` for the worker."""
        future = ResponseFuture(self.handler) if has_response else None
        self.shared.requests.put(self.Task(request, future))
        return future

    def start(self) -> None:
        """start() --

        Spawn the worker."""
        self.t = self._start_thread()

    def stop(self) -> None:
        """stop() --

        Wait until every queued request was served, then end the worker."""
        shared, self.shared = self.shared, None
        if shared is not None:
            shared.requests.join()
            shared.ending.set()

    def _start_thread(self) -> Any:
        shared = self.shared

        def worker() -> None:
            try:
                while not shared.ending.is_set():
                    try:
                        task = shared.requests.get(timeout=1)
                    except Empty:
                        continue
                    try:
                        shared.connection.request(task.request)
                        if task.future is not None:
                            task.future.set_response(
                                shared.connection.response())
                    except Exception as exc:
                        if task.future is not None:
                            task.future.set_error(exc)
                    finally:
                        shared.requests.task_done()
                log.info("RequestHandler worker: exiting cleanly")
            except BaseException:
                if _sys is None:  # interpreter shutdown
                    return
                raise

        conn = shared.connection
        name = "pykafka_c.RequestHandler.worker for {}:{}".format(
            getattr(conn, "host", "?"), getattr(conn, "port", "?"))
        return self.handler.spawn(worker, name=name)
