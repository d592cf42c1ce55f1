"""Group membership protocols: assignment strategies and the consumer
protocol's subscription and assignment encodings.

``RangeProtocol`` and ``RoundRobinProtocol`` carry pykafka's rules for
spreading a topic's partitions over the members of a group (see
:func:`decide_partitions_range` and :func:`decide_partitions_roundrobin`).
``CooperativeStickyProtocol`` is Kafka's ``cooperative-sticky`` (KIP-429,
not in pykafka): members keep their partitions through a rebalance, and
only the partitions that move are revoked (see
:func:`assign_cooperative_sticky`).

The bytes that travel inside JoinGroup (a member's subscription) and
SyncGroup (a member's assignment) are encoded as Kafka's own consumer
encodes them (the ``ConsumerProtocolSubscription`` and
``ConsumerProtocolAssignment`` schemas, versions 0-3), so that Java and
librdkafka consumers using the same assignor name can share a group with
pykafka_c consumers: whichever member the coordinator elects leader
computes every member's assignment, and every member can read it.

Differences from pykafka, each deliberate:

* pykafka wrote subscription version 0 with ``user_data=b"testuserdata"``
  and assignments without the trailing ``UserData`` field (which Java
  members could not parse).  pykafka_c's balanced consumers write
  subscription version 3 (``OwnedPartitions``, ``GenerationId``,
  ``RackId``) and assignment version 3 with ``UserData``, like Kafka's
  consumer.  The classes themselves keep pykafka's defaults and bytes
  (``ConsumerGroupProtocolMetadata()`` is version 0 with pykafka's
  placeholder topic and user data, ``MemberAssignment(parts)`` version 1
  without UserData), and so does ``RangeProtocol.metadata``.
* Decoding accepts every version Kafka's consumer accepts (a newer version
  is read with the newest known layout, ignoring what follows) and
  tolerates later-version fields that are missing; malformed bytes raise
  :class:`pykafka_c.exceptions.ProtocolDecodeError`.
* A partition whose leader is unknown sorts as leader ``-1`` instead of
  raising ``AttributeError``.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from .exceptions import ProtocolDecodeError

if TYPE_CHECKING:
    from .partition import Partition

#: ``decide_partitions(participants, partitions, consumer_id) -> set``
_DecidePartitions = Callable[[Sequence[bytes], Any, bytes], "set[Partition]"]
#: ``[(topic, [partition ids]), ...]``
_TopicPartitions = list[tuple[Any, list[int]]]

__all__ = [
    "GroupMembershipProtocol",
    "ConsumerGroupProtocolMetadata",
    "MemberAssignment",
    "RangeProtocol",
    "RoundRobinProtocol",
    "CooperativeStickyProtocol",
    "decide_partitions_range",
    "decide_partitions_roundrobin",
    "compute_assignments",
    "assign_cooperative_sticky",
    "is_cooperative",
    "CONSUMER_PROTOCOL_TYPE",
    "SUBSCRIPTION_VERSION",
    "ASSIGNMENT_VERSION",
]

log = logging.getLogger(__name__)

#: The protocol type of Kafka's consumer groups.
CONSUMER_PROTOCOL_TYPE = b"consumer"
#: The newest ConsumerProtocolSubscription version (Kafka 3.5+ and 4.x).
SUBSCRIPTION_VERSION = 3
#: The newest ConsumerProtocolAssignment version (same fields since v0).
ASSIGNMENT_VERSION = 3

class GroupMembershipProtocol(NamedTuple):
    """An assignment strategy: the protocol type and name sent in
    JoinGroup, the subscription metadata, and the rule that decides a
    member's partitions."""
    protocol_type: bytes
    protocol_name: bytes
    metadata: ConsumerGroupProtocolMetadata
    decide_partitions: _DecidePartitions


# --- encoding helpers --------------------------------------------------------

def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError("expected str or bytes, not %s" % type(value).__name__)


def _put_string(out: bytearray, value: object) -> None:
    raw = _as_bytes(value)
    if len(raw) > 0x7fff:
        raise ValueError("string of %d bytes is too long for the consumer "
                         "protocol (max 32767)" % len(raw))
    out += struct.pack(">h", len(raw))
    out += raw


def _put_nullable_string(out: bytearray, value: object) -> None:
    if value is None:
        out += struct.pack(">h", -1)
    else:
        _put_string(out, value)


def _put_nullable_bytes(out: bytearray, value: object) -> None:
    if value is None:
        out += struct.pack(">i", -1)
    else:
        raw = _as_bytes(value)
        out += struct.pack(">i", len(raw))
        out += raw


def _put_topic_partitions(out: bytearray,
                          topic_partitions: Sequence[tuple[Any, Iterable[int]]]
                          ) -> None:
    out += struct.pack(">i", len(topic_partitions))
    for topic, partitions in topic_partitions:
        _put_string(out, topic)
        ids = list(partitions)
        out += struct.pack(">i", len(ids))
        if ids:
            out += struct.pack(">%di" % len(ids), *ids)


class _Reader(object):
    """Bounds-checked reader over consumer-protocol bytes.

    Every count is checked against the bytes left before anything is
    allocated, so hostile input costs at most its own size."""

    __slots__ = ("_buf", "_pos", "_what")

    def __init__(self, buf: object, what: str) -> None:
        self._buf = memoryview(_as_bytes(buf))
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._buf) - self._pos

    def _fail(self, why: str) -> NoReturn:
        raise ProtocolDecodeError("%s: %s at byte %d of %d"
                                  % (self._what, why, self._pos,
                                     len(self._buf)))

    def _take(self, n: int) -> memoryview:
        if n > self.remaining:
            self._fail("truncated (need %d bytes, %d left)"
                       % (n, self.remaining))
        start = self._pos
        self._pos += n
        return self._buf[start:self._pos]

    def int16(self) -> int:
        value: int = struct.unpack(">h", self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack(">i", self._take(4))[0]
        return value

    def string(self) -> bytes:
        n = self.int16()
        if n < 0:
            self._fail("null where a string is required")
        return bytes(self._take(n))

    def nullable_string(self) -> bytes | None:
        n = self.int16()
        if n < 0:
            return None
        return bytes(self._take(n))

    def nullable_bytes(self) -> bytes | None:
        n = self.int32()
        if n < 0:
            return None
        return bytes(self._take(n))

    def count(self, min_item_size: int) -> int:
        n = self.int32()
        if n < 0:
            self._fail("negative array length %d" % n)
        if n * min_item_size > self.remaining:
            self._fail("array of %d items cannot fit in %d bytes"
                       % (n, self.remaining))
        return n

    def int32_array(self) -> list[int]:
        n = self.count(4)
        if n == 0:
            return []
        return list(struct.unpack(">%di" % n, self._take(4 * n)))

    def topic_partitions(self) -> list[tuple[bytes, list[int]]]:
        n = self.count(2 + 4)
        return [(self.string(), self.int32_array()) for _ in range(n)]


#: MemberAssignment's default: no UserData field at all (pykafka's bytes).
_NO_USER_DATA: Any = type("_NoUserData", (),
                          {"__repr__": lambda self: "<none>",
                           "__slots__": ()})()


# --- subscription --------------------------------------------------------------

class ConsumerGroupProtocolMetadata(object):
    """A member's subscription (ConsumerProtocolSubscription).

    Wire layout, big-endian, per Kafka's schema::

        Version        int16
        Topics         [string]
        UserData       nullable bytes
        OwnedPartitions [Topic string, Partitions [int32]]   (v1+)
        GenerationId   int32                                  (v2+)
        RackId         nullable string                        (v3+)

    ``topic_names`` are bytes (str is accepted and encoded as UTF-8);
    ``owned_partitions`` is a list of ``(topic, [partition ids])``.  The
    defaults are pykafka's placeholders (version 0, topic ``dummytopic``,
    user data ``testuserdata``); balanced consumers send their own
    subscription at version 3 with their topic.
    """

    def __init__(self, version: int = 0,
                 topic_names: Iterable[bytes | str] | None = None,
                 user_data: bytes | None = b"testuserdata",
                 owned_partitions: Iterable[tuple[Any, list[int]]] | None
                 = None, generation_id: int = -1,
                 rack_id: bytes | str | None = None) -> None:
        self.version = version
        self.topic_names: list[bytes | str] = (
            list(topic_names) if topic_names is not None
            else [b"dummytopic"])
        self.user_data = user_data
        self.owned_partitions: _TopicPartitions = list(owned_partitions or [])
        self.generation_id = generation_id
        self.rack_id = rack_id

    def __repr__(self) -> str:
        return ("ConsumerGroupProtocolMetadata(version=%r, topic_names=%r, "
                "user_data=%r, owned_partitions=%r, generation_id=%r, "
                "rack_id=%r)" % (self.version, self.topic_names,
                                 self.user_data, self.owned_partitions,
                                 self.generation_id, self.rack_id))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConsumerGroupProtocolMetadata):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]

    def _key(self) -> tuple[Any, ...]:
        return (self.version, [_as_bytes(t) for t in self.topic_names],
                self.user_data,
                [(_as_bytes(t), list(p)) for t, p in self.owned_partitions],
                self.generation_id, self.rack_id)

    def copy(self, **changes: Any) -> ConsumerGroupProtocolMetadata:
        """A new object with the same fields, some replaced by ``changes``."""
        fields: dict[str, Any] = dict(
                      version=self.version, topic_names=self.topic_names,
                      user_data=self.user_data,
                      owned_partitions=self.owned_partitions,
                      generation_id=self.generation_id, rack_id=self.rack_id)
        fields.update(changes)
        return ConsumerGroupProtocolMetadata(**fields)

    def __len__(self) -> int:
        return len(self.get_bytes())

    def get_bytes(self) -> bytes:
        """get_bytes() -> bytes --

        The subscription as Kafka's consumer encodes it."""
        if not 0 <= self.version <= 0x7fff:
            raise ValueError("subscription version %r out of range"
                             % (self.version,))
        out = bytearray(struct.pack(">h", self.version))
        out += struct.pack(">i", len(self.topic_names))
        for name in self.topic_names:
            _put_string(out, name)
        _put_nullable_bytes(out, self.user_data)
        if self.version >= 1:
            _put_topic_partitions(out, self.owned_partitions)
        if self.version >= 2:
            out += struct.pack(">i", self.generation_id)
        if self.version >= 3:
            _put_nullable_string(out, self.rack_id)
        return bytes(out)

    @classmethod
    def from_bytestring(cls, buff: bytes | bytearray | memoryview
                        ) -> ConsumerGroupProtocolMetadata:
        """from_bytestring(buff) -> ConsumerGroupProtocolMetadata --

        Decode a subscription written by any Kafka client.  Empty bytes give
        an empty subscription (as in pykafka)."""
        if len(buff) == 0:
            return cls(version=0, topic_names=[], user_data=None)
        r = _Reader(buff, "ConsumerProtocolSubscription")
        version = r.int16()
        if version < 0:
            r._fail("negative version %d" % version)
        n = r.count(2)
        topics = [r.string() for _ in range(n)]
        user_data = r.nullable_bytes()
        owned: list[tuple[bytes, list[int]]] = []
        generation_id: int = -1
        rack_id: bytes | None = None
        # Later-version fields are "ignorable": a writer may stop early.
        if version >= 1 and r.remaining:
            owned = r.topic_partitions()
        if version >= 2 and r.remaining:
            generation_id = r.int32()
        if version >= 3 and r.remaining:
            rack_id = r.nullable_string()
        return cls(version=version, topic_names=topics, user_data=user_data,
                   owned_partitions=owned, generation_id=generation_id,
                   rack_id=rack_id)


# --- assignment ------------------------------------------------------------------

class MemberAssignment(object):
    """One member's assignment (ConsumerProtocolAssignment).

    Wire layout (identical in versions 0-3)::

        Version             int16
        AssignedPartitions  [Topic string, Partitions [int32]]
        UserData            nullable bytes

    ``partition_assignment`` is a list of ``(topic, [partition ids])``
    (pykafka's attribute name); ``member_id`` is kept for the leader's
    bookkeeping and is not encoded.  Without ``user_data`` the bytes are
    pykafka's (version 1 by default, no UserData field, which Java
    consumers cannot read); with it (None for null) they have Kafka's
    UserData field, as balanced consumers send them.
    """

    def __init__(self, partition_assignment: Iterable[tuple[Any,
                                                         Iterable[int]]],
                 version: int = 1, user_data: Any = _NO_USER_DATA,
                 member_id: Any = None) -> None:
        self.version = version
        self.partition_assignment: _TopicPartitions = [(t, list(p))
                                     for t, p in partition_assignment]
        self.user_data = user_data
        self.member_id = member_id

    def __repr__(self) -> str:
        return ("MemberAssignment(%r, version=%r, user_data=%r)"
                % (self.partition_assignment, self.version, self.user_data))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemberAssignment):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]

    def _key(self) -> tuple[Any, ...]:
        return (self.version,
                [(_as_bytes(t), list(p)) for t, p in self.partition_assignment],
                self.user_data)

    def partitions_for(self, topic_name: bytes | str) -> list[int]:
        """The partition ids assigned for ``topic_name`` (all entries)."""
        name = _as_bytes(topic_name)
        ids: list[int] = []
        for t, parts in self.partition_assignment:
            if _as_bytes(t) == name:
                ids.extend(parts)
        return ids

    def __len__(self) -> int:
        return len(self.get_bytes())

    def get_bytes(self) -> bytes:
        """get_bytes() -> bytes --

        The assignment as Kafka's consumer encodes it (with UserData)."""
        if not 0 <= self.version <= 0x7fff:
            raise ValueError("assignment version %r out of range"
                             % (self.version,))
        out = bytearray(struct.pack(">h", self.version))
        _put_topic_partitions(out, self.partition_assignment)
        if self.user_data is not _NO_USER_DATA:
            _put_nullable_bytes(out, self.user_data)
        return bytes(out)

    @classmethod
    def from_bytestring(cls, buff: bytes | bytearray | memoryview
                        ) -> MemberAssignment:
        """from_bytestring(buff) -> MemberAssignment --

        Decode an assignment written by any Kafka client (or by pykafka,
        which left out UserData).  Empty bytes mean no partitions."""
        if len(buff) == 0:
            return cls([], version=0, user_data=None)
        r = _Reader(buff, "ConsumerProtocolAssignment")
        version = r.int16()
        if version < 0:
            r._fail("negative version %d" % version)
        assigned = r.topic_partitions()
        user_data = r.nullable_bytes() if r.remaining else None
        return cls(assigned, version=version, user_data=user_data)


# --- assignment strategies --------------------------------------------------------

def _partition_sort_key(p: Partition) -> str:
    """pykafka's ordering key: the string "{topic}-{leader id}-{partition}".

    ``str`` of a bytes topic name gives ``"b'name'"`` on Python 3, exactly as
    in pykafka; the comparison is lexicographic (leader 10 sorts before 2)."""
    leader = p.leader
    leader_id = leader.id if leader is not None else -1
    return '-'.join([str(p.topic.name), str(leader_id), str(p.id)])


def _partition_values(partitions: Any) -> list[Partition]:
    if hasattr(partitions, "values"):
        return list(partitions.values())
    return list(partitions)


def decide_partitions_range(participants: Iterable[bytes], partitions: Any,
                            consumer_id: bytes) -> set[Partition]:
    """decide_partitions_range(participants, partitions, consumer_id) -> set --

    pykafka's range rule: the partitions (sorted by "topic-leader-id"
    strings) are cut into contiguous slices, one per participant in sorted
    order; with N partitions and M participants, participant i gets
    ``N // M`` partitions plus one more if ``i < N % M``, starting at
    ``(N // M) * i + min(i, N % M)``.

    ``participants`` are member ids (bytes), ``partitions`` a dict
    ``{id: Partition}`` (or an iterable of Partitions), ``consumer_id`` the
    member to decide for.  Returns a set of Partitions.
    """
    all_parts = sorted(_partition_values(partitions), key=_partition_sort_key)
    members = sorted(participants)
    idx = members.index(consumer_id)
    parts_per_consumer = len(all_parts) // len(members)
    remainder_ppc = len(all_parts) % len(members)

    start = parts_per_consumer * idx + min(idx, remainder_ppc)
    num_parts = parts_per_consumer + (0 if (idx + 1 > remainder_ppc) else 1)

    new_partitions = set(itertools.islice(all_parts, start,
                                          start + num_parts))
    log.debug('%s: range over %i participants and %i partitions: owning %i',
              consumer_id, len(members), len(all_parts),
              len(new_partitions))
    return new_partitions


def decide_partitions_roundrobin(participants: Iterable[bytes],
                                 partitions: Any,
                                 consumer_id: bytes) -> set[Partition]:
    """decide_partitions_roundrobin(participants, partitions, consumer_id) -> set --

    pykafka's round-robin rule: sorted partition k (by "topic-leader-id"
    strings) goes to sorted participant ``k mod M``.  Arguments and result
    as for :func:`decide_partitions_range`.
    """
    all_parts = sorted(_partition_values(partitions), key=_partition_sort_key)
    members = sorted(participants)
    idx = members.index(consumer_id)
    new_partitions = set(all_parts[idx::len(members)])
    log.debug('%s: round-robin over %i participants and %i partitions: '
              'owning %i', consumer_id, len(members), len(all_parts),
              len(new_partitions))
    return new_partitions


RangeProtocol = GroupMembershipProtocol(CONSUMER_PROTOCOL_TYPE,
                                        b"range",
                                        ConsumerGroupProtocolMetadata(),
                                        decide_partitions_range)

RoundRobinProtocol = GroupMembershipProtocol(CONSUMER_PROTOCOL_TYPE,
                                             b"roundrobin",
                                             ConsumerGroupProtocolMetadata(),
                                             decide_partitions_roundrobin)


def compute_assignments(decide_partitions: _DecidePartitions,
                        subscriptions: Mapping[bytes, Iterable[Any]],
                        topic_partitions: Mapping[bytes, Any]
                        ) -> dict[bytes, list[tuple[bytes, list[int]]]]:
    """compute_assignments(decide_partitions, subscriptions, topic_partitions) -> dict --

    The group leader's job: for every topic some member subscribes to, the
    members subscribed to it share its partitions by ``decide_partitions``
    (pykafka's signature).  ``subscriptions`` maps member id (bytes) to an
    iterable of topic names (bytes); ``topic_partitions`` maps topic name
    (bytes) to ``{partition id: Partition}``; a subscribed topic missing
    from it (unknown to the cluster) is assigned to nobody.

    Returns ``{member_id: [(topic, sorted partition ids), ...]}`` with an
    entry (maybe empty) for every member.
    """
    result: dict[bytes, list[tuple[bytes, list[int]]]] = {
        m: [] for m in subscriptions}
    by_topic: dict[bytes, list[bytes]] = {}
    for member, topics in subscriptions.items():
        for t in set(_as_bytes(t) for t in topics):
            by_topic.setdefault(t, []).append(member)
    for topic in sorted(by_topic):
        parts = topic_partitions.get(topic)
        if not parts:
            continue
        members = sorted(by_topic[topic])
        for member in members:
            chosen = decide_partitions(members, parts, member)
            ids = sorted(p.id for p in chosen)
            if ids:
                result[member].append((topic, ids))
    return result


# --- cooperative-sticky (KIP-429) ----------------------------------------------

#: The assignor name Kafka's Java consumer and librdkafka use.
COOPERATIVE_STICKY = b"cooperative-sticky"

CooperativeStickyProtocol = GroupMembershipProtocol(
    CONSUMER_PROTOCOL_TYPE, COOPERATIVE_STICKY,
    ConsumerGroupProtocolMetadata(),
    # pykafka's per-member rule, for code that calls it directly; the
    # balanced consumers assign with assign_cooperative_sticky instead.
    decide_partitions_range)


def is_cooperative(protocol: GroupMembershipProtocol) -> bool:
    """True for a protocol whose members keep their partitions through a
    rebalance and give up only those the leader moves (KIP-429)."""
    return _as_bytes(protocol.protocol_name) == COOPERATIVE_STICKY


def _valid_claims(subscriptions: Mapping[bytes, ConsumerGroupProtocolMetadata],
                  topic: bytes, members: Sequence[bytes], ids: set[int]
                  ) -> dict[bytes, set[int]]:
    """Which existing partitions of ``topic`` each member says it owns.  A
    partition two members claim (a member that missed a rebalance) stays
    with the claim of the newest generation, and with neither on a tie."""
    best: dict[int, tuple[int, bytes | None]] = {}
    for member in members:
        sub = subscriptions[member]
        for name, parts in sub.owned_partitions:
            if _as_bytes(name) != topic:
                continue
            for pid in set(parts) & ids:
                claim = (sub.generation_id, member)
                held = best.get(pid)
                if held is None or claim[0] > held[0]:
                    best[pid] = claim
                elif claim[0] == held[0]:
                    best[pid] = (held[0], None)
    claims: dict[bytes, set[int]] = {m: set() for m in members}
    for pid, (_gen, holder) in best.items():
        if holder is not None:
            claims[holder].add(pid)
    return claims


def _sticky_targets(members: Sequence[bytes], ids: Sequence[int],
                    claims: Mapping[bytes, set[int]]
                    ) -> dict[bytes, set[int]]:
    """A balanced assignment of ``ids`` (member counts differ by one at
    most) that leaves every member as many of its claimed partitions as
    the balance allows."""
    base, extra = divmod(len(ids), len(members))
    # The members holding the most keep the larger shares.
    by_claims = sorted(members, key=lambda m: (-len(claims[m]), m))
    quota = {m: base + (1 if i < extra else 0)
             for i, m in enumerate(by_claims)}
    targets = {m: set(sorted(claims[m])[:quota[m]]) for m in members}
    taken = set().union(*targets.values())
    for pid in (p for p in ids if p not in taken):
        # the free partitions go to the members furthest below their quota
        member = min((m for m in members if len(targets[m]) < quota[m]),
                     key=lambda m: (len(targets[m]) - quota[m], m))
        targets[member].add(pid)
    return targets


def assign_cooperative_sticky(
        subscriptions: Mapping[bytes, ConsumerGroupProtocolMetadata],
        topic_partitions: Mapping[bytes, Any]
        ) -> dict[bytes, list[tuple[bytes, list[int]]]]:
    """assign_cooperative_sticky(subscriptions, topic_partitions) -> dict --

    The group leader's job under ``cooperative-sticky``: for every topic,
    the members subscribed to it share its partitions evenly, each keeping
    as many of the partitions it owns (its subscription's
    ``owned_partitions``) as the balance allows.  A partition that moves
    from one member to another is left out of both assignments this
    round: its owner revokes it and rejoins, and the next round gives it
    to its new member, so no partition ever has two owners.

    ``subscriptions`` maps member id (bytes) to its decoded subscription;
    ``topic_partitions`` maps topic name (bytes) to ``{partition id:
    Partition}``.  Returns ``{member_id: [(topic, sorted partition ids)]}``
    with an entry (maybe empty) for every member.
    """
    result: dict[bytes, list[tuple[bytes, list[int]]]] = {
        m: [] for m in subscriptions}
    by_topic: dict[bytes, list[bytes]] = {}
    for member, sub in subscriptions.items():
        for t in set(_as_bytes(t) for t in sub.topic_names):
            by_topic.setdefault(t, []).append(member)
    for topic in sorted(by_topic):
        ids: list[int] = sorted(
            p.id for p in _partition_values(topic_partitions.get(topic) or {}))
        if not ids:
            continue
        members = sorted(by_topic[topic])
        claims = _valid_claims(subscriptions, topic, members, set(ids))
        targets = _sticky_targets(members, ids, claims)
        owner = {pid: m for m, owned in claims.items() for pid in owned}
        for member in members:
            moving_in = {pid for pid in targets[member]
                         if owner.get(pid, member) != member}
            assigned = sorted(targets[member] - moving_in)
            if assigned:
                result[member].append((topic, assigned))
    return result
