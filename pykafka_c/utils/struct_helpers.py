"""pykafka's ``pykafka.utils.struct_helpers``: ``unpack_from``, i.e.
``struct.unpack_from`` with Kafka's variable-length types.

Format letters are :mod:`struct`'s, always big-endian (a leading ``!``,
``>`` or ``<`` is dropped; spaces are ignored), plus:

* ``S`` -- a string: int16 length, then that many bytes (``bytes``);
* ``Y`` -- bytes: int32 length, then that many bytes;
* ``[...]`` -- an array: int32 count, then ``count`` items of the inner
  format, each a tuple (or the bare value when the inner format is one
  letter).  Arrays nest.

A length of -1 for ``S`` or ``Y`` gives ``None``; a negative array count
gives an empty list.  Truncated input raises ``struct.error``.  This is
Python (no hot path uses it; pykafka_c decodes the protocol in C).
"""

from __future__ import annotations

import struct
from typing import Any, Union

from .._typing import BytesLike

__all__ = ["unpack_from"]

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")

#: A parsed format: letters, and ("[", inner tokens, inner format) arrays.
_Token = Union[str, tuple[str, list["_Token"], str]]


def _parse(fmt: str, pos: int = 0, closing: bool = False
           ) -> tuple[list[_Token], int]:
    """Parse ``fmt`` from ``pos`` into a list of tokens: a letter or a
    ("[", tokens, inner_format) triple.  Returns (tokens, next pos)."""
    tokens: list[_Token] = []
    start = pos
    while pos < len(fmt):
        ch = fmt[pos]
        if ch == "[":
            inner, end = _parse(fmt, pos + 1, closing=True)
            tokens.append(("[", inner, fmt[pos + 1:end - 1]))
            pos = end
            continue
        if ch == "]":
            if not closing:
                raise struct.error("unbalanced ']' in format %r" % fmt)
            return tokens, pos + 1
        tokens.append(ch)
        pos += 1
    if closing:
        raise struct.error("unclosed '[' at %d in format %r" % (start - 1, fmt))
    return tokens, pos


def _read_sized(buff: BytesLike, offset: int, size_struct: struct.Struct
                ) -> tuple[bytes | None, int]:
    length: int = size_struct.unpack_from(buff, offset)[0]
    offset += size_struct.size
    if length == -1:
        return None, offset
    if length < 0 or offset + length > len(buff):
        raise struct.error("length %d at offset %d exceeds the buffer (%d "
                           "bytes)" % (length, offset - size_struct.size,
                                       len(buff)))
    return bytes(buff[offset:offset + length]), offset + length


def _walk(tokens: list[_Token], buff: BytesLike, offset: int
          ) -> tuple[tuple[Any, ...], int]:
    items: list[Any] = []
    for tok in tokens:
        if isinstance(tok, tuple):
            _, inner, inner_fmt = tok
            count: int = _I32.unpack_from(buff, offset)[0]
            offset += 4
            elements: list[Any] = []
            for _ in range(max(count, 0)):
                element, offset = _walk(inner, buff, offset)
                elements.append(element)
            if len(inner_fmt) == 1:
                # one letter per element: a flat list of values
                elements = [v for element in elements for v in element]
            items.append(elements)
        elif tok == "S":
            value, offset = _read_sized(buff, offset, _I16)
            items.append(value)
        elif tok == "Y":
            value, offset = _read_sized(buff, offset, _I32)
            items.append(value)
        else:
            code = "!" + tok
            items.extend(struct.unpack_from(code, buff, offset))
            offset += struct.calcsize(code)
    return tuple(items), offset


def unpack_from(fmt: str, buff: BytesLike, offset: int = 0) -> Any:
    """unpack_from(fmt, buff, offset=0) -> tuple --

    Decode ``buff`` from ``offset`` by ``fmt`` (see the module docstring)
    and return a tuple of the values.  A format that is one array
    (``"[...]"``) returns that array's list itself."""
    fmt = fmt.replace(" ", "")
    if fmt[:1] in ("!", ">", "<"):
        fmt = fmt[1:]
    tokens, _ = _parse(fmt)
    output, _ = _walk(tokens, buff, offset)
    if fmt[:1] == "[" and len(output) == 1:
        return output[0]
    return output
