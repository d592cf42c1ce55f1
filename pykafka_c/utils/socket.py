"""pykafka's ``pykafka.utils.socket``: ``recvall_into``.

pykafka_c's own connections read in C (csrc/wire/net.c); this is kept for
code that used pykafka's helper with its own sockets."""

from __future__ import annotations

import socket as _socket

from ..exceptions import SocketDisconnectedError

__all__ = ["recvall_into"]


def recvall_into(socket: _socket.socket, bytea: bytearray,
                 size: int) -> bytearray:
    """recvall_into(socket, bytea, size) -> bytearray --

    Read exactly ``size`` bytes from ``socket`` into ``bytea[0:size]``
    (modified in place, with ``socket.recv`` as pykafka does) and return
    ``bytea``.  End of stream, or an ``OSError`` from ``recv``, raises
    ``SocketDisconnectedError``, as in pykafka."""
    got = 0
    while got < size:
        chunk: bytes | None
        try:
            chunk = socket.recv(size - got)
        except OSError:
            chunk = None
        if not chunk:
            raise SocketDisconnectedError(
                "connection closed after %d of %d bytes" % (got, size))
        bytea[got:got + len(chunk)] = chunk
        got += len(chunk)
    return bytea
