"""Unit tests of pykafka_c.membershipprotocol: pykafka's assignment rules and
the consumer protocol encodings (byte-exact against Kafka's schemas)."""

import itertools

import pytest

from pykafka_c.exceptions import ProtocolDecodeError
from pykafka_c.membershipprotocol import (
    ConsumerGroupProtocolMetadata, GroupMembershipProtocol, MemberAssignment,
    RangeProtocol, RoundRobinProtocol, compute_assignments,
    decide_partitions_range, decide_partitions_roundrobin)

pytestmark = pytest.mark.unit


class FakeBroker(object):
    def __init__(self, id_):
        self.id = id_


class FakeTopic(object):
    def __init__(self, name, num_partitions, num_leaders=1):
        self.name = name
        self.partitions = {
            k: FakePartition(self, k, FakeBroker(k % num_leaders))
            for k in range(num_partitions)}


class FakePartition(object):
    def __init__(self, topic, id_, leader):
        self.topic = topic
        self.id = id_
        self.leader = leader

    def __repr__(self):
        return "P(%s,%d)" % (self.topic.name, self.id)


# --- assignors ---------------------------------------------------------------


def _check_split(protocol, num_partitions, num_participants):
    """pykafka's property: each participant gets N//M or N//M + 1 partitions
    (the first N % M in sorted order get one more), and every partition is
    owned exactly once."""
    topic = FakeTopic(b"testtopic", num_partitions, num_participants)
    participants = sorted(b"test-debian:%d" % p
                          for p in range(num_participants))
    assigned = []
    for idx, consumer_id in enumerate(participants):
        got = protocol.decide_partitions(participants, topic.partitions,
                                         consumer_id)
        assert isinstance(got, set)
        expected_count = (num_partitions // num_participants
                          + (1 if idx < num_partitions % num_participants
                             else 0))
        assert len(got) == expected_count, (num_partitions, num_participants,
                                            consumer_id)
        assigned.extend(got)
    assert sorted(p.id for p in assigned) == list(range(num_partitions))


@pytest.mark.parametrize("protocol", [RangeProtocol, RoundRobinProtocol],
                         ids=["range", "roundrobin"])
def test_decide_partitions_pykafka_property(protocol):
    # pykafka's own loop: M = 1..100 participants for N = 100..1 partitions.
    for i in range(100):
        _check_split(protocol, 100 - i, i + 1)


def _check_grid(protocol, member_counts):
    for n in range(1, 101):
        topic = FakeTopic(b"grid", n, 7)
        for m in member_counts:
            members = [b"m-%03d" % k for k in range(m)]
            result = compute_assignments(
                protocol.decide_partitions,
                {mid: [b"grid"] for mid in members},
                {b"grid": topic.partitions})
            owned = []
            for idx, mid in enumerate(members):
                ids = [pid for _, pids in result[mid] for pid in pids]
                assert len(ids) == n // m + (1 if idx < n % m else 0)
                owned.extend(ids)
            assert sorted(owned) == list(range(n)), (n, m)


@pytest.mark.parametrize("protocol", [RangeProtocol, RoundRobinProtocol],
                         ids=["range", "roundrobin"])
def test_decide_partitions_grid_sample(protocol):
    # Every N in 1..100 against a spread of M (via compute_assignments, which
    # calls decide_partitions once per member).
    _check_grid(protocol, [1, 2, 3, 7, 16, 50, 99, 101])


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [RangeProtocol, RoundRobinProtocol],
                         ids=["range", "roundrobin"])
def test_decide_partitions_full_grid(protocol):
    # Every N in 1..100 against every M in 1..100 (about 30 s each).
    _check_grid(protocol, range(1, 101))


def test_range_slices_are_contiguous_in_pykafka_order():
    # 7 partitions, leaders 0,1,2,0,1,2,0 -> pykafka sorts by the string
    # "b'tp'-<leader>-<id>", so leader 0's partitions come first.
    topic = FakeTopic(b"tp", 7, 3)
    members = [b"c", b"a", b"b"]  # unsorted on purpose
    order = sorted(topic.partitions.values(),
                   key=lambda p: "b'tp'-%d-%d" % (p.leader.id, p.id))
    assert [p.id for p in order] == [0, 3, 6, 1, 4, 2, 5]
    a = decide_partitions_range(members, topic.partitions, b"a")
    b = decide_partitions_range(members, topic.partitions, b"b")
    c = decide_partitions_range(members, topic.partitions, b"c")
    assert {p.id for p in a} == {0, 3, 6}
    assert {p.id for p in b} == {1, 4}
    assert {p.id for p in c} == {2, 5}


def test_roundrobin_deals_in_pykafka_order():
    topic = FakeTopic(b"tp", 7, 3)
    members = [b"b", b"a"]
    a = decide_partitions_roundrobin(members, topic.partitions, b"a")
    b = decide_partitions_roundrobin(members, topic.partitions, b"b")
    # order 0,3,6,1,4,2,5 dealt to a,b,a,b,...
    assert {p.id for p in a} == {0, 6, 4, 5}
    assert {p.id for p in b} == {3, 1, 2}


def test_sort_is_lexicographic_on_leader_id():
    # pykafka's quirk: leader "10" sorts before leader "2".
    topic = FakeTopic(b"t", 0)
    topic.partitions = {0: FakePartition(topic, 0, FakeBroker(2)),
                        1: FakePartition(topic, 1, FakeBroker(10))}
    first = decide_partitions_range([b"x", b"y"], topic.partitions, b"x")
    assert {p.id for p in first} == {1}


def test_unknown_leader_sorts_as_minus_one():
    topic = FakeTopic(b"t", 0)
    topic.partitions = {0: FakePartition(topic, 0, FakeBroker(0)),
                        1: FakePartition(topic, 1, None)}
    first = decide_partitions_range([b"x", b"y"], topic.partitions, b"x")
    assert {p.id for p in first} == {1}


def test_compute_assignments_multiple_topics_and_subsets():
    t1 = FakeTopic(b"t1", 4)
    t2 = FakeTopic(b"t2", 2)
    subs = {b"a": [b"t1"], b"b": [b"t1", b"t2"], b"c": [b"t2", b"gone"]}
    result = compute_assignments(decide_partitions_range, subs,
                                 {b"t1": t1.partitions, b"t2": t2.partitions})
    assert result == {b"a": [(b"t1", [0, 1])],
                      b"b": [(b"t1", [2, 3]), (b"t2", [0])],
                      b"c": [(b"t2", [1])]}


def test_compute_assignments_more_members_than_partitions():
    t = FakeTopic(b"t", 2)
    subs = {b"m%d" % i: [b"t"] for i in range(5)}
    result = compute_assignments(decide_partitions_roundrobin, subs,
                                 {b"t": t.partitions})
    assert result == {b"m0": [(b"t", [0])], b"m1": [(b"t", [1])],
                      b"m2": [], b"m3": [], b"m4": []}


def test_protocol_objects():
    assert RangeProtocol.protocol_type == b"consumer"
    assert RangeProtocol.protocol_name == b"range"
    assert RangeProtocol.decide_partitions is decide_partitions_range
    assert RoundRobinProtocol.protocol_name == b"roundrobin"
    assert RoundRobinProtocol.decide_partitions is decide_partitions_roundrobin
    assert isinstance(RangeProtocol, GroupMembershipProtocol)
    assert GroupMembershipProtocol._fields == (
        "protocol_type", "protocol_name", "metadata", "decide_partitions")


# --- subscription encoding ----------------------------------------------------


def test_subscription_v3_bytes():
    meta = ConsumerGroupProtocolMetadata(
        version=3, topic_names=[b"ab", "c"], user_data=b"\x01\x02",
        owned_partitions=[(b"ab", [1, 258])], generation_id=7,
        rack_id="r1")
    expected = (
        b"\x00\x03"                      # Version
        b"\x00\x00\x00\x02"              # Topics: 2
        b"\x00\x02ab" b"\x00\x01c"
        b"\x00\x00\x00\x02\x01\x02"      # UserData
        b"\x00\x00\x00\x01"              # OwnedPartitions: 1
        b"\x00\x02ab"
        b"\x00\x00\x00\x02" b"\x00\x00\x00\x01" b"\x00\x00\x01\x02"
        b"\x00\x00\x00\x07"              # GenerationId
        b"\x00\x02r1")                   # RackId
    assert meta.get_bytes() == expected
    assert len(meta) == len(expected)
    back = ConsumerGroupProtocolMetadata.from_bytestring(expected)
    assert back.version == 3
    assert back.topic_names == [b"ab", b"c"]
    assert back.user_data == b"\x01\x02"
    assert back.owned_partitions == [(b"ab", [1, 258])]
    assert back.generation_id == 7
    assert back.rack_id == b"r1"


def test_subscription_null_fields_and_defaults():
    meta = ConsumerGroupProtocolMetadata(version=3, topic_names=[b"t"],
                                         user_data=None)
    expected = (b"\x00\x03" b"\x00\x00\x00\x01" b"\x00\x01t"
                b"\xff\xff\xff\xff"          # UserData null
                b"\x00\x00\x00\x00"          # OwnedPartitions empty
                b"\xff\xff\xff\xff"          # GenerationId -1
                b"\xff\xff")                 # RackId null
    assert meta.get_bytes() == expected
    back = ConsumerGroupProtocolMetadata.from_bytestring(expected)
    assert back.user_data is None and back.rack_id is None
    assert back.generation_id == -1 and back.owned_partitions == []


@pytest.mark.parametrize("version,tail", [
    (0, b""),
    (1, b"\x00\x00\x00\x00"),
    (2, b"\x00\x00\x00\x00" b"\x00\x00\x00\x05"),
])
def test_subscription_older_versions(version, tail):
    meta = ConsumerGroupProtocolMetadata(version=version, topic_names=[b"t"],
                                         user_data=b"", generation_id=5)
    expected = (struct_h(version) + b"\x00\x00\x00\x01\x00\x01t"
                + b"\x00\x00\x00\x00" + tail)
    assert meta.get_bytes() == expected
    back = ConsumerGroupProtocolMetadata.from_bytestring(expected)
    assert back.version == version and back.topic_names == [b"t"]
    assert back.user_data == b""


def struct_h(v):
    return v.to_bytes(2, "big", signed=True)


def test_subscription_decodes_pykafka_v0():
    # What pykafka 2.8 sent: v0, one topic, user_data b"testuserdata".
    raw = (b"\x00\x00" b"\x00\x00\x00\x01" b"\x00\x05topic"
           b"\x00\x00\x00\x0ctestuserdata")
    back = ConsumerGroupProtocolMetadata.from_bytestring(raw)
    assert back.topic_names == [b"topic"]
    assert back.user_data == b"testuserdata"


def test_subscription_newer_version_read_with_known_layout():
    # A future v4 with an extra trailing field: read as v3, rest ignored.
    v3 = ConsumerGroupProtocolMetadata(version=3, topic_names=[b"t"],
                                       generation_id=9).get_bytes()
    raw = b"\x00\x04" + v3[2:] + b"\xde\xad\xbe\xef"
    back = ConsumerGroupProtocolMetadata.from_bytestring(raw)
    assert back.version == 4
    assert back.topic_names == [b"t"] and back.generation_id == 9


def test_subscription_missing_ignorable_fields():
    # A v3 writer that stopped after UserData (fields are "ignorable").
    raw = b"\x00\x03\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff"
    back = ConsumerGroupProtocolMetadata.from_bytestring(raw)
    assert back.topic_names == [b"t"]
    assert back.owned_partitions == [] and back.generation_id == -1
    assert back.rack_id is None


def test_subscription_copy_does_not_share_state():
    base = RangeProtocol.metadata
    mine = base.copy(topic_names=[b"mine"])
    assert base.topic_names == [b"dummytopic"]      # pykafka's placeholder
    assert mine.topic_names == [b"mine"]
    mine.topic_names.append(b"x")
    assert base.topic_names == [b"dummytopic"]


@pytest.mark.parametrize("raw", [
    b"\x00",                                         # short version
    b"\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff",     # negative version
    b"\x00\x00\x00\x00\x00\x01",                     # truncated count
    b"\x00\x00\x7f\xff\xff\xff",                     # hostile count
    b"\x00\x00\x00\x00\x00\x01\x00\x05ab",           # truncated string
    b"\x00\x00\x00\x00\x00\x01\xff\xff",             # null topic name
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10ab",   # truncated user data
    b"\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff"
    b"\xff\xff\xff\xfe",                             # negative array count
    b"\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff"
    b"\x00\x00\x00\x01\x00\x01t\x10\x00\x00\x00",    # hostile int32 array
])
def test_subscription_malformed(raw):
    with pytest.raises(ProtocolDecodeError):
        ConsumerGroupProtocolMetadata.from_bytestring(raw)


def test_subscription_empty_bytes():
    back = ConsumerGroupProtocolMetadata.from_bytestring(b"")
    assert back.topic_names == []


# --- assignment encoding --------------------------------------------------------


def test_assignment_bytes():
    a = MemberAssignment([(b"ab", [0, 2]), ("c", [])], version=3,
                         user_data=b"u")
    expected = (b"\x00\x03"
                b"\x00\x00\x00\x02"
                b"\x00\x02ab" b"\x00\x00\x00\x02"
                b"\x00\x00\x00\x00" b"\x00\x00\x00\x02"
                b"\x00\x01c" b"\x00\x00\x00\x00"
                b"\x00\x00\x00\x01u")
    assert a.get_bytes() == expected
    back = MemberAssignment.from_bytestring(expected)
    assert back.version == 3
    assert back.partition_assignment == [(b"ab", [0, 2]), (b"c", [])]
    assert back.user_data == b"u"
    assert back.partitions_for("ab") == [0, 2]
    assert back == a


def test_assignment_null_user_data_is_written():
    a = MemberAssignment([(b"t", [5])], version=1, user_data=None)
    assert a.get_bytes() == (b"\x00\x01\x00\x00\x00\x01\x00\x01t"
                             b"\x00\x00\x00\x01\x00\x00\x00\x05"
                             b"\xff\xff\xff\xff")
    # without user_data: pykafka's bytes, no UserData field
    assert MemberAssignment([(b"t", [5])]).get_bytes() == (
        b"\x00\x01\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01\x00\x00\x00\x05")


def test_assignment_decodes_pykafka_form_without_user_data():
    raw = b"\x00\x01\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01\x00\x00\x00\x05"
    back = MemberAssignment.from_bytestring(raw)
    assert back.partition_assignment == [(b"t", [5])]
    assert back.user_data is None


def test_assignment_empty_bytes_is_empty():
    assert MemberAssignment.from_bytestring(b"").partition_assignment == []


@pytest.mark.parametrize("raw", [
    b"\x00\x03\x00\x00",
    b"\x00\x03\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x02\x00\x00\x00\x01",
    b"\x00\x03\x7f\xff\xff\xff",
    b"\x80\x00\x00\x00\x00\x00",
    b"\x00\x03\x00\x00\x00\x00\x00\x00\x01\x00",
])
def test_assignment_malformed(raw):
    with pytest.raises(ProtocolDecodeError):
        MemberAssignment.from_bytestring(raw)


def test_round_trip_many():
    for n_topics, n_parts in itertools.product(range(3), range(4)):
        topics = [(b"topic%d" % t, list(range(n_parts)))
                  for t in range(n_topics)]
        a = MemberAssignment(topics, version=3, user_data=None)
        assert MemberAssignment.from_bytestring(a.get_bytes()) == a
        s = ConsumerGroupProtocolMetadata(
            version=3, topic_names=[t for t, _ in topics], user_data=None,
            owned_partitions=topics, generation_id=n_parts)
        assert ConsumerGroupProtocolMetadata.from_bytestring(
            s.get_bytes()) == s


# ------------------------------------------------ cooperative-sticky (KIP-429)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pykafka_c.membershipprotocol import (  # noqa: E402
    CooperativeStickyProtocol, assign_cooperative_sticky, is_cooperative)


def _sub(owned=(), generation=1, topic=b"t"):
    return ConsumerGroupProtocolMetadata(
        version=3, topic_names=[topic], user_data=None,
        owned_partitions=[(topic, sorted(owned))] if owned else [],
        generation_id=generation)


def _ids(plan, member, topic=b"t"):
    return set(dict(plan[member]).get(topic, []))


def test_cooperative_sticky_is_cooperative_and_named_as_kafka_names_it():
    assert CooperativeStickyProtocol.protocol_name == b"cooperative-sticky"
    assert CooperativeStickyProtocol.protocol_type == b"consumer"
    assert is_cooperative(CooperativeStickyProtocol)
    assert not is_cooperative(RangeProtocol)
    assert not is_cooperative(RoundRobinProtocol)


def test_cooperative_sticky_a_new_group_is_balanced():
    plan = assign_cooperative_sticky({b"a": _sub(), b"b": _sub()},
                                     {b"t": FakeTopic(b"t", 5).partitions})
    assert _ids(plan, b"a") | _ids(plan, b"b") == set(range(5))
    assert not _ids(plan, b"a") & _ids(plan, b"b")
    assert sorted(len(_ids(plan, m)) for m in plan) == [2, 3]


def test_cooperative_sticky_a_joining_member_waits_for_the_revocations():
    """Round 1: the owners keep what the balance allows; the partitions
    that move are withheld from everyone.  Round 2 (after the owners gave
    them up): the new member gets them; nobody else's assignment moved."""
    parts = {b"t": FakeTopic(b"t", 6).partitions}
    round1 = assign_cooperative_sticky(
        {b"a": _sub({0, 1, 2}), b"b": _sub({3, 4, 5}), b"c": _sub()}, parts)
    kept_a, kept_b = _ids(round1, b"a"), _ids(round1, b"b")
    assert kept_a < {0, 1, 2} and len(kept_a) == 2
    assert kept_b < {3, 4, 5} and len(kept_b) == 2
    assert _ids(round1, b"c") == set()
    round2 = assign_cooperative_sticky(
        {b"a": _sub(kept_a, 2), b"b": _sub(kept_b, 2), b"c": _sub((), 2)},
        parts)
    assert _ids(round2, b"a") == kept_a and _ids(round2, b"b") == kept_b
    assert _ids(round2, b"c") == set(range(6)) - kept_a - kept_b


def test_cooperative_sticky_a_leaving_member_frees_its_partitions_at_once():
    parts = {b"t": FakeTopic(b"t", 6).partitions}
    plan = assign_cooperative_sticky({b"a": _sub({0, 1}), b"b": _sub({2, 3})},
                                     parts)
    assert _ids(plan, b"a") >= {0, 1} and _ids(plan, b"b") >= {2, 3}
    assert _ids(plan, b"a") | _ids(plan, b"b") == set(range(6))


def test_cooperative_sticky_a_partition_claimed_twice_goes_by_generation():
    parts = {b"t": FakeTopic(b"t", 2).partitions}
    plan = assign_cooperative_sticky(
        {b"a": _sub({0, 1}, generation=7), b"b": _sub({1}, generation=5)},
        parts)
    # a's claim on 1 is newer: a keeps one of its two, b gets nothing it
    # does not own, and partition 1 is never given to b while a holds it
    assert _ids(plan, b"a") <= {0, 1} and len(_ids(plan, b"a")) == 1
    assert 1 not in _ids(plan, b"b") or 1 not in _ids(plan, b"a")
    tie = assign_cooperative_sticky(
        {b"a": _sub({1}, generation=5), b"b": _sub({1}, generation=5)}, parts)
    assert not _ids(tie, b"a") & _ids(tie, b"b")


def test_cooperative_sticky_ignores_partitions_that_no_longer_exist():
    plan = assign_cooperative_sticky({b"a": _sub({0, 7, 9})},
                                     {b"t": FakeTopic(b"t", 3).partitions})
    assert _ids(plan, b"a") == {0, 1, 2}


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), st.lists(st.sets(st.integers(0, 14)), min_size=1,
                                    max_size=6))
def test_cooperative_sticky_rounds_keep_one_owner_and_converge(n_parts,
                                                               claims):
    """Whatever the members say they own (overlaps included), applying the
    assignments round after round as members do (give up what is missing,
    take what is new, rejoin) never gives a partition two owners, keeps a
    member's partitions as long as the balance allows, and is balanced
    and complete after the round that follows the revocations."""
    parts = {b"t": FakeTopic(b"t", n_parts).partitions}
    members = [b"m%d" % i for i in range(len(claims))]
    plan = assign_cooperative_sticky(
        {m: _sub(c) for m, c in zip(members, claims)}, parts)
    owned = {m: _ids(plan, m) for m in members}
    for generation in range(2, 5):
        all_owned = [p for m in members for p in owned[m]]
        assert len(all_owned) == len(set(all_owned)), owned
        plan = assign_cooperative_sticky(
            {m: _sub(owned[m], generation) for m in members}, parts)
        new = {m: _ids(plan, m) for m in members}
        for m in members:
            others = set().union(*(owned[o] for o in members if o != m))
            assert not new[m] & others, (m, new, owned)
        owned = new
    counts = sorted(len(owned[m]) for m in members)
    assert counts[-1] - counts[0] <= 1
    assert set().union(*owned.values()) == set(range(n_parts))
