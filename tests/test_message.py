"""pykafka_c.protocol.Message: parity with pykafka 2.8's Message, headers,
and the C type's own duties (GC, subclassing, pickling, len)."""

import datetime
import gc
import inspect
import pickle
import queue
import sys
import time
import weakref

import pytest

from pykafka_c import _core, common
from pykafka_c.protocol import Message

pytestmark = pytest.mark.unit

EPOCH = datetime.datetime(1970, 1, 1)


def test_class_layout():
    assert Message is _core.Message
    assert common.Message is _core.MessageBase
    assert issubclass(Message, common.Message)
    assert (Message.__module__, Message.__name__) == (
        "pykafka_c.protocol", "Message")
    assert (common.Message.__module__, common.Message.__name__) == (
        "pykafka_c.common", "Message")
    assert isinstance(common.Message(), common.Message)
    assert isinstance(Message(b"v"), common.Message)


def test_signature_matches_pykafka():
    params = inspect.signature(Message).parameters
    assert [(p.name, p.default) for p in params.values()] == [
        ("value", inspect.Parameter.empty), ("partition_key", None),
        ("compression_type", 0), ("offset", -1), ("partition_id", -1),
        ("produce_attempt", 0), ("protocol_version", 0), ("timestamp", None),
        ("delivery_report_q", None), ("headers", None)]
    assert params["headers"].kind is inspect.Parameter.KEYWORD_ONLY


def test_constructor_defaults():
    m = Message(b"value")
    assert m.value == b"value"
    assert m.partition_key is None
    assert m.compression_type == 0
    assert m.offset == -1
    assert m.partition_id == -1
    assert m.partition is None
    assert m.produce_attempt == 0
    assert m.delivery_report_q is None
    assert m.protocol_version == 0
    assert m.timestamp is None
    assert m.timestamp_dt is None
    assert m.headers == []
    # each message has its own headers list
    m.headers.append(("a", b"1"))
    assert Message(b"x").headers == []
    assert m.headers == [("a", b"1")]


def test_constructor_all_arguments():
    q = queue.Queue()
    m = Message(b"v", b"k", 1, 5, 3, 2, 1, 1500, q, headers=[("h", None)])
    assert (m.value, m.partition_key, m.compression_type, m.offset,
            m.partition_id, m.produce_attempt, m.protocol_version,
            m.timestamp, m.delivery_report_q, m.headers) == (
        b"v", b"k", 1, 5, 3, 2, 1, 1500, q, [("h", None)])
    with pytest.raises(TypeError):
        Message()
    with pytest.raises(TypeError):
        Message(b"v", None, 0, -1, -1, 0, 0, None, None, [])  # headers kw


def test_protocol_version():
    before = int(time.time() * 1000)
    m = Message(b"v", protocol_version=1)
    after = int(time.time() * 1000)
    assert before - 1 <= m.timestamp <= after + 1
    assert isinstance(m.timestamp, int)
    assert Message(b"v", protocol_version=1, timestamp=5).timestamp == 5
    with pytest.raises(AssertionError):
        Message(b"v", protocol_version=2)


def test_timestamp_dt():
    m = Message(b"v", timestamp=1500)
    assert m.timestamp_dt == datetime.datetime(1970, 1, 1, 0, 0, 1, 500000)
    m.timestamp = 1_577_836_800_123
    assert m.timestamp_dt == datetime.datetime(2020, 1, 1, 0, 0, 0, 123000)
    for ts in (0, -1, None):
        m.timestamp = ts
        assert m.timestamp_dt is None
    m.timestamp = 2.5
    assert m.timestamp_dt == EPOCH + datetime.timedelta(microseconds=2500)
    m.timestamp_dt = datetime.datetime(2021, 6, 1, 12, 0, 0, 250000)
    assert m.timestamp == int(
        1000 * (datetime.datetime(2021, 6, 1, 12, 0, 0, 250000)
                - EPOCH).total_seconds())
    assert m.timestamp_dt == datetime.datetime(2021, 6, 1, 12, 0, 0, 250000)


def test_set_timestamp():
    m = Message(b"v")
    for ts in (5, 5.5, None):
        m.set_timestamp(ts)
        assert m.timestamp == ts if ts is not None else m.timestamp is None
    m.set_timestamp(datetime.datetime(1970, 1, 2))
    assert m.timestamp == 86_400_000

    class MyDatetime(datetime.datetime):
        pass

    # pykafka checks exact types: bool, str, subclasses are refused
    for bad in (True, "5", b"5", MyDatetime(2020, 1, 1), [5],
                datetime.date(2020, 1, 1)):
        with pytest.raises(RuntimeError):
            m.set_timestamp(bad)
    assert m.timestamp == 86_400_000
    with pytest.raises(RuntimeError):
        Message(b"v", timestamp="now")


def test_attributes_are_slots():
    m = Message(b"v")
    m.value = "deserialized"
    m.partition_key = {"any": "object"}
    m.partition = object()
    m.offset = 2 ** 62
    m.partition_id = 7
    assert m.offset == 2 ** 62 and m.partition_id == 7
    with pytest.raises(AttributeError):
        m.topic = "x"
    with pytest.raises(AttributeError):
        m.__dict__
    with pytest.raises(TypeError):
        m.offset = "x"


def test_len_is_legacy_encoded_size():
    """len() is pykafka's: the magic 0/1 message pack_into writes (crc,
    magic, attributes, [timestamp], key, value); headers are not part of
    that format."""
    cases = [
        (Message(b"v" * 100, timestamp=0), 14 + 100),
        (Message(None, partition_key=b"", timestamp=0), 14),
        (Message(b"x" * 300, partition_key=b"k" * 200, timestamp=0,
                 headers=[("key", b"val"), ("n", None), ("", b"")]),
         14 + 500),
        # magic 1 only with protocol_version 1 and a truthy timestamp
        (Message(b"v", protocol_version=1, timestamp=5), 14 + 8 + 1),
        (Message(b"v", protocol_version=1, timestamp=0), 14 + 1),
        (Message(b"v" * 100), 114),
    ]
    for m, size in cases:
        assert len(m) == size
        buf = bytearray(size)
        m.pack_into(buf, 0)
        assert Message.decode(bytes(buf)).value == m.value


def test_gc_cycle_collected():
    class Holder:
        pass

    h = Holder()
    m = Message(b"v", delivery_report_q=h)
    h.message = m
    m.headers.append(("h", h))
    ref = weakref.ref(h)
    del h, m
    gc.collect()
    assert ref() is None


def _decoded(headers=()):
    data = _core.encode_record_batch([(b"value", b"key", 1000, list(headers))])
    (m,) = _core.decode_records(data, partition_id=1)
    return m


def test_decoded_and_atomic_messages_are_not_gc_tracked():
    # bytes / None / str / int slots cannot form a cycle: the message stays
    # out of the collector's lists (as CPython's tuples of atomic values)
    m = _decoded()
    assert (m.value, m.partition_key) == (b"value", b"key")
    assert not gc.is_tracked(m)
    m = _decoded([("h", b"v"), ("n", None)])
    assert not gc.is_tracked(m)
    m.value, m.partition_key, m.timestamp = "text", 7, 1.5
    m.offset, m.partition_id = 3, 4
    m.set_timestamp(None)
    assert not gc.is_tracked(m)
    assert not gc.is_tracked(Message(b"v", b"k", timestamp=5,
                                     protocol_version=1))
    assert not gc.is_tracked(Message(None, protocol_version=1))
    # subclass instances may have a __dict__: always tracked
    class Sub(Message):
        pass
    assert gc.is_tracked(Sub(b"v"))


def test_freed_messages_are_reused_clean():
    """Freed decoded Messages are kept and handed out again (message.c):
    a reused one shows only its new record, untracked, and the type's
    reference count stays balanced over many rounds."""
    first = _core.encode_record_batch(
        [(b"old-%d" % i, b"k", 1000 + i, [("h", b"x")]) for i in range(50)])
    second = _core.encode_record_batch(
        [(b"new-%d" % i, None, 2000 + i, []) for i in range(50)])
    gc.collect()
    type_refs = sys.getrefcount(Message)
    for _ in range(200):
        old = _core.decode_records(first, partition_id=1)
        old[0].partition = old  # tracked now, and a cycle to collect
        old[1].headers.append(("again", b"y"))
        del old
        gc.collect()
        new = _core.decode_records(second, partition_id=2, fetch_offset=0)
        assert not any(gc.is_tracked(m) for m in new)
        assert [(m.value, m.partition_key, m.timestamp, m.headers,
                 m.partition, m.partition_id, m.offset) for m in new] == \
            [(b"new-%d" % i, None, 2000 + i, [], None, 2, i)
             for i in range(50)]
        del new
    assert sys.getrefcount(Message) == type_refs

    class Sub(Message):
        pass
    subs = [Sub(b"s%d" % i) for i in range(10)]
    del subs  # freed through subtype_dealloc, never kept for reuse
    assert [m.value for m in _core.decode_records(second)][:2] == \
        [b"new-0", b"new-1"]
    del Sub  # the class refers to Message as its base until collected
    gc.collect()
    assert sys.getrefcount(Message) == type_refs


def test_headers_list_handed_out_tracks_the_message():
    m = _decoded([("h", b"v")])
    assert not gc.is_tracked(m)
    headers = m.headers  # the list can now be made to hold anything
    assert gc.is_tracked(m)
    m = _decoded()
    assert not gc.is_tracked(m)
    m.headers.append(("h", m))
    assert gc.is_tracked(m)


class _Freed:
    """Counts its own finalisation."""
    freed = 0

    def __del__(self):
        type(self).freed += 1


def _cycle_is_collected(make_cycle):
    """make_cycle(message, holder) links holder -> message -> ... ->
    holder; after dropping both names, gc.collect() must free them."""
    gc.collect()
    before = _Freed.freed
    m, h = _decoded(), _Freed()
    assert not gc.is_tracked(m)
    h.message = m
    make_cycle(m, h)
    assert gc.is_tracked(m)
    ref = weakref.ref(h)
    del m, h
    gc.collect()
    return ref() is None and _Freed.freed == before + 1


@pytest.mark.parametrize("how", [
    "value", "partition_key", "partition", "delivery_report_q", "timestamp",
    "headers", "headers_append", "headers_tuple", "set_timestamp_dt",
    "init", "init_headers", "setstate", "subclass"])
def test_cycle_through_each_slot_is_collected(how):
    def make(m, h):
        if how in ("value", "partition_key", "partition",
                   "delivery_report_q", "timestamp"):
            setattr(m, how, h)
        elif how == "headers":
            m.headers = [("k", h)]
        elif how == "headers_append":
            m.headers.append(("k", h))
        elif how == "headers_tuple":
            m.headers = (("k", h),)
        elif how == "set_timestamp_dt":
            # a datetime is converted to an int (atomic) ...
            m.timestamp_dt = datetime.datetime(2020, 1, 1)
            assert not gc.is_tracked(m)
            m.value = [h]  # ... a list is not
        elif how == "init":
            m.__init__(b"v", h)
        elif how == "init_headers":
            m.__init__(b"v", headers=[("k", h)])
        elif how == "setstate":
            m.__setstate__(([("k", h)],))
        elif how == "subclass":
            class Sub(Message):
                pass
            s = Sub(b"v")
            s.other = h
            m.value = s
    assert _cycle_is_collected(make)


def test_deleting_and_descriptor_writes_keep_the_invariant():
    m = _decoded()
    del m.value
    with pytest.raises(AttributeError):
        m.value
    with pytest.raises(AttributeError):
        del m.value
    m.value = b"again"
    assert not gc.is_tracked(m)
    # no way around the tracking setter
    with pytest.raises(AttributeError):
        Message.value.__set__(m, [m])
    # Refused either way.  Up to 3.12 object.__setattr__ itself refuses a
    # type whose C tp_setattro it would bypass (TypeError, "can't apply this
    # __setattr__"); from 3.13 that check lets the call through and the
    # generic setter refuses the read-only member (AttributeError).
    refused = TypeError if sys.version_info < (3, 13) else AttributeError
    with pytest.raises(refused):
        object.__setattr__(m, "partition", [m])
    assert not gc.is_tracked(m) and m.partition is None
    with pytest.raises(AttributeError):
        m.no_such_attribute = 1


def test_subclass_slots_and_overrides():
    class WithSlot(Message):
        __slots__ = ("extra",)

    class WithProperty(Message):
        @property
        def value(self):
            return "property"

        @value.setter
        def value(self, v):
            self.partition_key = v

    w = WithSlot(b"v")
    w.extra = w
    w.value = b"x"
    assert (w.value, w.extra) == (b"x", w)
    p = WithProperty(b"ignored")
    p.value = b"k"
    assert (p.value, p.partition_key) == ("property", b"k")


def test_subclass():
    class MyMessage(Message):
        __slots__ = ("extra",)

        def describe(self):
            return (self.value, self.extra)

    m = MyMessage(b"v", offset=3)
    m.extra = 1
    assert m.describe() == (b"v", 1) and m.offset == 3
    assert isinstance(m, common.Message)

    class Free(common.Message):
        pass

    f = Free()
    f.anything = 1
    del m, f
    gc.collect()


def test_pickle_and_copy():
    import copy
    m = Message(b"v", b"k", offset=9, partition_id=2, timestamp=77,
                headers=[("h", b"x")], delivery_report_q=queue.Queue())
    for clone in (pickle.loads(pickle.dumps(m)), copy.copy(m)):
        assert (clone.value, clone.partition_key, clone.offset,
                clone.partition_id, clone.timestamp, clone.headers) == (
            b"v", b"k", 9, 2, 77, [("h", b"x")])
        assert clone.delivery_report_q is None


def test_decoded_messages():
    data = _core.encode_record_batch(
        [(b"value", b"key", 1_600_000_000_000, [("h", b"v")])])
    (m,) = _core.decode_records(data, partition_id=6)
    assert type(m) is Message
    assert (m.value, m.partition_key, m.offset, m.partition_id,
            m.timestamp, m.headers, m.partition, m.delivery_report_q,
            m.compression_type, m.produce_attempt, m.protocol_version) == (
        b"value", b"key", 0, 6, 1_600_000_000_000, [("h", b"v")], None,
        None, 0, 0, 1)
    assert m.timestamp_dt == datetime.datetime(2020, 9, 13, 12, 26, 40)
    m.partition = "p"
    m.timestamp = 5
    assert m.timestamp == 5
    # the lazily made timestamp and headers are stable objects
    (m,) = _core.decode_records(data)
    assert m.headers is m.headers and m.timestamp is m.timestamp


# ----------------------------------------------------------------- repr

def test_repr_shows_where_what_and_when():
    m = _decoded([("h", b"v"), ("n", None)])
    text = repr(m)
    assert text.startswith("<pykafka_c.protocol.Message partition=")
    assert "offset=0" in text and "key=b'key'" in text
    assert "value=b'value'" in text and "headers=2" in text
    m = Message(b"v", partition_key=b"k", offset=42, partition_id=3,
                timestamp=1714564800123, protocol_version=1)
    assert repr(m) == ("<pykafka_c.protocol.Message partition=3, offset=42, "
                       "key=b'k', value=b'v', "
                       "timestamp=2024-05-01T12:00:00.123Z, headers=0>")


def test_repr_previews_long_and_odd_values():
    text = repr(Message(b"x" * 1000, partition_key=b"k" * 100))
    assert "value=b'%s'... (1000 bytes)" % ("x" * 40) in text
    assert "key=b'%s'... (100 bytes)" % ("k" * 24) in text
    assert len(text) < 250
    assert "value='%s'... (50 characters)" % ("é" * 40) in repr(
        Message("é" * 50))
    assert "value=<dict of 2 items>" in repr(Message({"a": 1, "b": 2}))
    assert "value=<list of 1 item>" in repr(Message([1]))
    assert "value=<object>" in repr(Message(object()))
    assert "value=None, timestamp=None" in repr(Message(None))
    # whatever a deserializer or the application stored, repr never fails
    m = Message(b"v")
    m.timestamp = -1
    assert "timestamp=-1" in repr(m)
    m.value = m
    assert "value=<pykafka_c.protocol.Message>" in repr(m)

    class BadRepr:
        def __repr__(self):
            raise RuntimeError("no")
    m.timestamp = BadRepr()
    assert "timestamp=<BadRepr>" in repr(m)

    class BadPartition:
        @property
        def topic(self):
            raise RuntimeError("no")
    m.partition = BadPartition()
    assert repr(m).startswith("<pykafka_c.protocol.Message partition=-1")


def test_repr_names_the_topic_of_consumed_messages():
    class Topic:
        name = b"orders"

    class Partition:
        topic = Topic()
    m = _decoded()
    m.partition = Partition()
    assert repr(m).startswith(
        "<pykafka_c.protocol.Message topic=b'orders', partition=")


def test_repr_keeps_decoded_messages_out_of_the_collector():
    m = _decoded([("h", b"v")])
    repr(m)
    assert not gc.is_tracked(m)
