"""Utilities kept from pykafka: the UTF-8 serializer pair."""

__all__ = ["serialize_utf8", "deserialize_utf8"]


def serialize_utf8(value, partition_key):
    """A producer ``serializer``: encode str value and key as UTF-8."""
    if value is not None and not isinstance(value, bytes):
        value = value.encode("utf-8")
    if partition_key is not None and not isinstance(partition_key, bytes):
        partition_key = partition_key.encode("utf-8")
    return value, partition_key


def deserialize_utf8(value, partition_key):
    """A consumer ``deserializer``: decode bytes value and key as UTF-8."""
    if value is not None:
        value = value.decode("utf-8")
    if partition_key is not None:
        partition_key = partition_key.decode("utf-8")
    return value, partition_key
