"""pykafka's ``pykafka.utils``: the UTF-8 serializer pair, the
``Serializable`` and ``ApiVersionAware`` bases of pykafka's protocol
classes, ``msg_protocol_version`` and ``VERSIONS_CACHE``.

pykafka_c's own protocol code is C and does not use the two base classes;
they are kept so code written against pykafka (custom request classes,
isinstance checks) keeps importing and behaving the same.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Serializable", "ApiVersionAware", "serialize_utf8",
           "deserialize_utf8", "msg_protocol_version", "VERSIONS_CACHE"]


class Serializable(object):
    """Base of pykafka's wire objects: ``len(obj)`` is the encoded size
    and ``pack_into(buff, offset)`` writes the encoding; subclasses
    implement both."""

    __slots__: list[str] = []

    def __len__(self) -> int:
        """Length of the bytes that will be sent to the Kafka server."""
        raise NotImplementedError()

    def pack_into(self, buff: bytearray, offset: int) -> None:
        """Write the encoding into ``buff`` starting at ``offset``."""
        raise NotImplementedError()


def serialize_utf8(value: Any, partition_key: Any
                   ) -> tuple[bytes | None, bytes | None]:
    """serialize_utf8(value, partition_key) -> (bytes, bytes) --

    A producer ``serializer``: encode str value and key as UTF-8."""
    if value is not None and not isinstance(value, bytes):
        value = value.encode("utf-8")
    if partition_key is not None and not isinstance(partition_key, bytes):
        partition_key = partition_key.encode("utf-8")
    return value, partition_key


def deserialize_utf8(value: bytes | None, partition_key: bytes | None
                     ) -> tuple[str | None, str | None]:
    """deserialize_utf8(value, partition_key) -> (str, str) --

    A consumer ``deserializer``: decode bytes value and key as UTF-8."""
    return (None if value is None else value.decode("utf-8"),
            None if partition_key is None else partition_key.decode("utf-8"))


#: ``{class: chosen version class}`` filled by
#: :meth:`ApiVersionAware.get_version_impl`.  As in pykafka it is
#: process-wide: the first broker's answer is kept for every later call.
VERSIONS_CACHE: dict[type, type] = {}


def _broker_max(api_versions: Any, api_key: int) -> int:
    if not api_versions:
        return 0
    spec = api_versions[api_key]
    # pykafka passes ApiVersionsSpec(key, min, max); pykafka_c's
    # Broker.api_versions holds (min, max) tuples.
    top = getattr(spec, "max", None)
    return int(spec[1] if top is None else top)


class ApiVersionAware(object):
    """Mixin for request/response classes that exist in several versions.

    A subclass defines ``API_KEY`` and a classmethod ``get_versions()``
    returning ``{version: implementing class}``."""

    API_KEY: ClassVar[int]

    @classmethod
    def get_version_impl(cls, api_versions: Any) -> type | None:
        """get_version_impl(api_versions) -> class --

        The class of the highest version in ``cls.get_versions()`` that the
        broker supports (``api_versions[cls.API_KEY].max``; no
        ``api_versions`` means version 0 only).  The answer is cached in
        :data:`VERSIONS_CACHE` per class; None when no version fits."""
        if not hasattr(cls, "get_versions") or not hasattr(cls, "API_KEY"):
            raise AttributeError(
                "get_version_impl requires that {} implement both "
                "get_versions() and API_KEY.".format(cls))
        cached = VERSIONS_CACHE.get(cls)
        if cached:
            return cached
        versions: dict[int, type] = getattr(cls, "get_versions")()
        top = _broker_max(api_versions, cls.API_KEY)
        usable = [v for v in versions if v <= top]
        if not usable:
            return None
        impl = versions[max(usable)]
        VERSIONS_CACHE[cls] = impl
        return impl


def _version_tuple(text: object) -> tuple[int, ...]:
    parts = []
    for piece in str(text).split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits) if digits else 0)
        if len(digits) != len(piece):
            break  # "0.10.0rc1": stop at the first non-numeric suffix
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def msg_protocol_version(broker_version: str) -> int:

    """msg_protocol_version(broker_version) -> int --

    The message-set magic pykafka used for a ``broker_version`` string: 1
    from "0.10.0" on, else 0.  (pykafka_c itself always writes RecordBatch
    v2; this is kept for code that calls it.)"""
    return 1 if _version_tuple(broker_version) >= (0, 10) else 0
