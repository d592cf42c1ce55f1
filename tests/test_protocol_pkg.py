"""pykafka_c.protocol as pykafka's package: response classes built from
known-answer responses (tests/proto_kat.py and pykafka 2.8's
test_protocol.py fixtures), request descriptions, Message's legacy
encoding and MessageSet."""

import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from pykafka_c import _core, protocol
from pykafka_c.exceptions import (CorruptRecordError, GroupCoordinatorNotAvailable,
                                  KafkaException, MessageSetDecodeFailure,
                                  ProtocolDecodeError, TopicAlreadyExists,
                                  UnknownTopicOrPartition)
from pykafka_c.membershipprotocol import (ConsumerGroupProtocolMetadata,
                                          MemberAssignment, RangeProtocol)
from pykafka_c.protocol import Message, MessageSet

import proto_kat

pytestmark = pytest.mark.unit


def kat(key, v):
    """(response body bytes, decoded dict) of the known-answer sample."""
    raw, d = proto_kat.build(key, "response", v)
    assert _core.decode_response(key, v, raw) == d
    return raw, d


# ------------------------------------------------------------ Metadata

# pykafka 2.8 tests/pykafka/test_protocol.py TestMetadataAPI.test_response
PYKAFKA_METADATA_V0 = (
    b"\x00\x00\x00\x01"
    b"\x00\x00\x00\x00" b"\x00\x09" b"localhost" b"\x00\x00#\x84"
    b"\x00\x00\x00\x01"
    b"\x00\x00" b"\x00\x04" b"test"
    b"\x00\x00\x00\x02"
    b"\x00\x00" b"\x00\x00\x00\x00" b"\x00\x00\x00\x00"
    b"\x00\x00\x00\x01" b"\x00\x00\x00\x00" b"\x00\x00\x00\x01"
    b"\x00\x00\x00\x00"
    b"\x00\x00" b"\x00\x00\x00\x01" b"\x00\x00\x00\x00"
    b"\x00\x00\x00\x01" b"\x00\x00\x00\x00" b"\x00\x00\x00\x01"
    b"\x00\x00\x00\x00")


def test_metadata_v0_pykafka_bytes():
    cluster = protocol.MetadataResponse(PYKAFKA_METADATA_V0)
    assert cluster.brokers == {0: protocol.BrokerMetadata(0, b"localhost",
                                                          9092)}
    part = cluster.topics[b"test"].partitions[0]
    assert part == protocol.PartitionMetadata(0, 0, [0], [0], 0)
    assert set(cluster.topics[b"test"].partitions) == {0, 1}
    assert cluster.topics[b"test"].err == 0
    assert type(cluster.topics[b"test"]) is protocol.TopicMetadata
    assert cluster.controller_id is None and cluster.cluster_id is None
    # the dict is the decoded response
    assert cluster["brokers"][0]["host"] == "localhost"


@pytest.mark.parametrize("v", [1, 4, 5, 9, 12])
def test_metadata_modern_versions(v):
    raw, d = kat(3, v)
    cls = protocol.MetadataResponse.for_version(v)
    assert cls is (protocol.MetadataResponseV5 if v >= 5 else
                   getattr(protocol, "MetadataResponseV%d" % v))
    for resp in (cls(d, v), cls(raw, v)):
        assert dict(resp) == d
        assert resp.brokers == {
            1: protocol.BrokerMetadataV1(1, b"h1", 9092, None),
            2: protocol.BrokerMetadataV1(2, b"h2", 9093, b"r2")}
        assert resp.controller_id == 2
        assert resp.cluster_id == (b"cid" if v >= 2 else None)
        assert resp.throttle_time_ms == (3 if v >= 3 else 0)
        t0, t1 = resp.topics[b"t0"], resp.topics[b"t1"]
        assert type(t0) is protocol.TopicMetadataV1
        assert (t0.name, t0.is_internal, t0.err) == (b"t0", False, 0)
        assert (t1.is_internal, t1.err, t1.partitions) == (True, 3, {})
        if v >= 5:
            assert t0.partitions == {
                0: protocol.PartitionMetadataV5(0, 1, [1, 2], [1], [2], 0),
                1: protocol.PartitionMetadataV5(1, -1, [], [], [], 9)}
        else:
            assert t0.partitions[1] == protocol.PartitionMetadata(
                1, -1, [], [], 9)


def test_get_version_impl(monkeypatch):
    from pykafka_c import utils
    # pykafka's: the highest class <= the broker's max, cached per class
    monkeypatch.setattr(utils, "VERSIONS_CACHE", {})
    specs = {3: protocol.ApiVersionsSpec(3, 0, 12)}
    assert protocol.MetadataResponse.get_version_impl(specs) is \
        protocol.MetadataResponseV5
    assert protocol.MetadataResponse.get_version_impl({3: (0, 2)}) is \
        protocol.MetadataResponseV5            # cached, as in pykafka
    utils.VERSIONS_CACHE.clear()
    assert protocol.MetadataResponse.get_version_impl({3: (0, 2)}) is \
        protocol.MetadataResponseV2
    utils.VERSIONS_CACHE.clear()
    assert protocol.MetadataResponse.get_version_impl({}) is \
        protocol.MetadataResponse
    assert issubclass(protocol.MetadataRequest, utils.ApiVersionAware)
    assert issubclass(protocol.MessageSet, utils.Serializable)
    assert protocol.FetchResponse.for_version(12) is protocol.FetchResponseV2
    assert protocol.OffsetFetchResponse.for_version(7) is \
        protocol.OffsetFetchResponseV2


# ------------------------------------------------------------ Produce

@pytest.mark.parametrize("v", [3, 8, 9, 12])
def test_produce_response(v):
    raw, d = kat(0, v)
    resp = protocol.ProduceResponse(raw, v)
    assert dict(resp) == d
    assert resp.topics == {b"t": {
        0: protocol.ProducePartitionResponse(0, 100),
        1: protocol.ProducePartitionResponse(6, -1)}}
    assert resp.throttle_time_ms == 10


# pykafka 2.8 TestProduceAPI: the message set of test_request and
# test_request_message_timestamp (offset -1, size, message)
PYKAFKA_MSET_V0 = (
    b"\xff\xff\xff\xff\xff\xff\xff\xff" b"\x00\x00\x00("
    b"\x0e\x8a\x19O" b"\x00" b"\x00" b"\x00\x00\x00\x04" b"asdf"
    b"\x00\x00\x00\x16" b"this is a test message")
PYKAFKA_MSET_V1 = (
    b"\xff\xff\xff\xff\xff\xff\xff\xff" b"\x00\x00\x000"
    b"Z\x92\x80\t" b"\x01" b"\x00" b"\x00\x00\x00\x00Y?\x04\x94"
    b"\x00\x00\x00\x04" b"asdf" b"\x00\x00\x00\x16"
    b"this is a test message")


def test_produce_request_description():
    msgs = [Message(b"one", partition_key=b"k"), Message(b"two"),
            Message(None, partition_key=b"tomb")]
    req = protocol.ProduceRequest(compression_type=1, required_acks=-1,
                                  timeout=1234)
    req.add_message(msgs[0], b"t", 0)
    req.add_message(msgs[1], b"t", 0)
    req.add_message(msgs[2], b"u", 3)
    assert req.message_count() == 3
    assert list(req.messages) == msgs
    assert req.msets[b"t"][0].compression_type == 1
    fields = req._fields(9)
    assert (fields["acks"], fields["timeout_ms"]) == (-1, 1234)
    assert [t["name"] for t in fields["topic_data"]] == ["t", "u"]
    batch = fields["topic_data"][0]["partition_data"][0]["records"]
    assert batch[21:23] == b"\x00\x01"  # gzip attribute of RecordBatch v2
    got = _core.decode_records(batch, 0)
    assert [(m.value, m.partition_key) for m in got] == \
        [(b"one", b"k"), (b"two", None)]
    tomb = _core.decode_records(
        fields["topic_data"][1]["partition_data"][0]["records"], 3)
    assert (tomb[0].value, tomb[0].partition_key) == (None, b"tomb")
    # the whole request encodes at every Produce version Broker may use
    for v in (3, 9, 12):
        assert _core.encode_request(0, v, req._fields(v))


# ------------------------------------------------------------ Fetch

def _fetch_response_bytes(v, records, hw=10, err=0, topic="t", pid=0):
    d = {"throttle_time_ms": 7, "error_code": 0, "session_id": 0,
         "responses": [{"topic": topic, "partitions": [
             {"partition_index": pid, "error_code": err,
              "high_watermark": hw, "last_stable_offset": hw,
              "log_start_offset": 0, "aborted_transactions": [],
              "preferred_read_replica": -1, "records": records}]}]}
    return _core.encode_response(1, v, d)


@pytest.mark.parametrize("v", [4, 11, 12])
def test_fetch_response_decodes_messages(v):
    batch = _core.encode_record_batch(
        [(b"v%d" % i, b"k%d" % i, 1000 + i, []) for i in range(5)])
    batch = struct.pack(">q", 40) + batch[8:]  # baseOffset 40
    raw = _fetch_response_bytes(v, batch, hw=45)
    resp = protocol.FetchResponse.for_version(v)(
        raw, version=v, fetch_offsets={(b"t", 0): 42})
    part = resp.topics[b"t"][0]
    assert type(part) is protocol.FetchPartitionResponse
    assert (part.max_offset, part.err) == (45, 0)
    assert [(m.offset, m.value, m.partition_key, m.timestamp)
            for m in part.messages] == \
        [(40 + i, b"v%d" % i, b"k%d" % i, 1000 + i) for i in (2, 3, 4)]
    assert all(m.partition_id == 0 for m in part.messages)
    assert resp.throttle_time == 7
    # without fetch offsets, every record of the batch
    assert len(protocol.FetchResponse(raw, version=v).topics[b"t"][0].messages) == 5
    # pykafka's signature: the body starts at ``offset`` in the buffer
    assert len(protocol.FetchResponse(b"pad" + raw, 3, "1.0.0", version=v)
               .topics[b"t"][0].messages) == 5


def test_fetch_response_error_and_empty_records():
    raw = _fetch_response_bytes(12, None, hw=-1, err=1)
    part = protocol.FetchResponse(raw, version=12).topics[b"t"][0]
    assert part == protocol.FetchPartitionResponse(-1, [], 1)


def test_fetch_response_corrupt_records_raise():
    batch = bytearray(_core.encode_record_batch([(b"v", None, 1, [])]))
    batch[-1] ^= 0xff
    raw = _fetch_response_bytes(12, bytes(batch))
    with pytest.raises(CorruptRecordError):
        protocol.FetchResponse(raw, version=12)


def test_fetch_request_description():
    preqs = [protocol.PartitionFetchRequest(b"t", 0, 5),
             protocol.PartitionFetchRequest(b"t", 1, 7, 100),
             protocol.PartitionFetchRequest(b"u", 0, 9, 200)]
    req = protocol.FetchRequest(partition_requests=preqs)
    assert (req.timeout, req.min_bytes, req.api_version) == (1000, 1024, 0)
    assert preqs[0].max_bytes == 1024 * 1024
    req.add_request(protocol.PartitionFetchRequest(b"t", 0, 6, 50))
    f = req._fields(12)
    assert f["max_wait_ms"] == 1000 and f["min_bytes"] == 1024
    assert f["topics"] == [
        {"topic": "t", "partitions": [
            {"partition": 0, "fetch_offset": 6, "partition_max_bytes": 50,
             "current_leader_epoch": -1, "log_start_offset": -1},
            {"partition": 1, "fetch_offset": 7, "partition_max_bytes": 100,
             "current_leader_epoch": -1, "log_start_offset": -1}]},
        {"topic": "u", "partitions": [
            {"partition": 0, "fetch_offset": 9, "partition_max_bytes": 200,
             "current_leader_epoch": -1, "log_start_offset": -1}]}]
    assert f["max_bytes"] == 350
    assert req._fetch_offsets() == {(b"t", 0): 6, (b"t", 1): 7,
                                    (b"u", 0): 9}
    for v in (4, 12):
        assert _core.encode_request(1, v, req._fields(v))


# ------------------------------------------------------------ ListOffsets

@pytest.mark.parametrize("v", [1, 5, 6, 10])
def test_list_offset_response(v):
    raw, d = kat(2, v)
    resp = protocol.ListOffsetResponse(raw, v)
    assert resp.topics == {b"t": {0: protocol.OffsetPartitionResponse(
        [123456789012], 0)}}
    v1 = protocol.ListOffsetResponseV1(d, v)
    assert v1.topics[b"t"][0] == protocol.OffsetPartitionResponseV1(
        123456789012, -1, 0)


def test_list_offset_request_description():
    req = protocol.ListOffsetRequest([
        protocol.PartitionOffsetRequest(b"t", 0, -2, 1),
        protocol.PartitionOffsetRequest(b"t", 3, 1700000000000, 1)])
    f = req._fields(6, isolation_level=1)
    assert f == {"replica_id": -1, "isolation_level": 1, "topics": [
        {"name": "t", "partitions": [
            {"partition_index": 0, "timestamp": -2,
             "current_leader_epoch": -1},
            {"partition_index": 3, "timestamp": 1700000000000,
             "current_leader_epoch": -1}]}]}
    assert _core.encode_request(2, 6, f)


# ------------------------------------------------------ offsets, groups

@pytest.mark.parametrize("v", [2, 7, 8, 9])
def test_offset_commit_response(v):
    raw, _ = kat(8, v)
    resp = protocol.OffsetCommitResponse(raw, v)
    assert resp.topics == {b"t": {
        0: protocol.OffsetCommitPartitionResponse(0),
        2: protocol.OffsetCommitPartitionResponse(22)}}


def test_offset_commit_request_description():
    req = protocol.OffsetCommitRequest(b"grp", 3, b"m-1", [
        protocol.PartitionOffsetCommitRequest(b"t", 0, 42, 0, b"meta"),
        protocol.PartitionOffsetCommitRequest(b"t", 2, 7, 0, None)])
    f = req._fields(8)
    assert f["group_id"] == "grp" and f["member_id"] == "m-1"
    assert f["generation_id_or_member_epoch"] == 3
    assert f["topics"][0]["partitions"][0]["committed_metadata"] == "meta"
    assert f["topics"][0]["partitions"][1]["committed_offset"] == 7
    for v in (2, 8, 9):
        assert _core.encode_request(8, v, req._fields(v))


# pykafka 2.8 TestOffsetCommitFetchAPI / V2 test_offset_fetch_response
PYKAFKA_OFFSET_FETCH = (
    b"\x00\x00\x00\x01" b"\x00\x0c" b"emmett.dummy" b"\x00\x00\x00\x01"
    b"\x00\x00\x00\x00" b"\x00\x00\x00\x00\x00\x00\x00\x01" b"\x00\x00"
    b"\x00\x00")


def test_offset_fetch_response_pykafka_bytes():
    resp = protocol.OffsetFetchResponse(PYKAFKA_OFFSET_FETCH)
    assert resp.topics[b"emmett.dummy"][0] == \
        protocol.OffsetFetchPartitionResponse(1, b"", 0)
    assert not hasattr(resp, "err")
    v2 = protocol.OffsetFetchResponseV2(PYKAFKA_OFFSET_FETCH + b"\x00\x00")
    assert v2.topics[b"emmett.dummy"][0].offset == 1
    assert v2.err == 0


@pytest.mark.parametrize("v", [2, 5, 6, 7])
def test_offset_fetch_response_kat(v):
    raw, _ = kat(9, v)
    resp = protocol.OffsetFetchResponse.for_version(v)(raw, v)
    assert resp.topics == {b"t": {
        0: protocol.OffsetFetchPartitionResponse(42, b"", 0),
        1: protocol.OffsetFetchPartitionResponse(-1, None, 0)}}
    assert resp.err == 0


def test_offset_fetch_request_description():
    empty = protocol.OffsetFetchRequestV2(b"test", partition_requests=[])
    assert empty._fields(2)["topics"] is None      # pykafka's null array
    assert empty._fields(1)["topics"] == []
    assert empty._fields(7, all_topics=False)["topics"] == []
    req = protocol.OffsetFetchRequest(b"g", [
        protocol.PartitionOffsetFetchRequest(b"t", 0),
        protocol.PartitionOffsetFetchRequest(b"t", 1)])
    assert req._fields(7)["topics"] == [{"name": "t",
                                         "partition_indexes": [0, 1]}]
    assert _core.encode_request(9, 7, req._fields(7))


# pykafka 2.8 test_consumer_metadata_response
PYKAFKA_COORDINATOR = (b"\x00\x00" b"\x00\x00\x00\x00" b"\x00\r"
                       b"emmett-debian" b"\x00\x00#\x84")


def test_group_coordinator_response():
    resp = protocol.GroupCoordinatorResponse(PYKAFKA_COORDINATOR)
    assert (resp.coordinator_id, resp.coordinator_host,
            resp.coordinator_port) == (0, b"emmett-debian", 9092)
    raw, d = kat(10, 3)           # error 15
    with pytest.raises(GroupCoordinatorNotAvailable):
        protocol.GroupCoordinatorResponse(raw, 3)
    quiet = protocol.GroupCoordinatorResponse(d, 3, raise_errors=False)
    assert quiet.error_code == 15 and quiet.coordinator_host == b"coord"
    assert protocol.GroupCoordinatorRequest(b"grp")._fields(3) == \
        {"key": "grp", "key_type": 0}


def _subscription(topics):
    return ConsumerGroupProtocolMetadata(topic_names=topics).get_bytes()


@pytest.mark.parametrize("v", [0, 5, 6, 9])
def test_join_group_response(v):
    raw, d = kat(11, v)
    resp = protocol.JoinGroupResponse(raw, v)
    assert (resp.error_code, resp.generation_id, resp.group_protocol,
            resp.leader_id, resp.member_id) == (0, 1, b"range", b"m-1",
                                                b"m-1")
    # not the consumer protocol's bytes: kept raw
    assert resp.members[b"m-2"] == b"x"
    d = dict(d, members=[{"member_id": "m-1", "group_instance_id": None,
                          "metadata": _subscription([b"a", b"b"])}])
    resp = protocol.JoinGroupResponse(d, v)
    meta = resp.members[b"m-1"]
    assert isinstance(meta, ConsumerGroupProtocolMetadata)
    assert meta.topic_names == [b"a", b"b"]


def test_join_group_request_description():
    req = protocol.JoinGroupRequest(b"grp", b"", b"t", RangeProtocol,
                                    session_timeout=10000)
    assert req.group_protocols == [(RangeProtocol.protocol_name,
                                    RangeProtocol.metadata.get_bytes())]
    f = req._fields(9, rebalance_timeout_ms=30000)
    assert (f["group_id"], f["session_timeout_ms"],
            f["rebalance_timeout_ms"], f["protocol_type"]) == \
        ("grp", 10000, 30000, "consumer")
    assert _core.encode_request(11, 9, f)


@pytest.mark.parametrize("v", [0, 3, 4, 5])
def test_sync_heartbeat_leave_responses(v):
    raw, d = kat(14, v)
    sync = protocol.SyncGroupResponse(raw, v)
    assert sync.error_code == 0 and sync.member_assignment == \
        b"\x00\x01assign"
    good = MemberAssignment([(b"t", [0, 2])], version=1)
    sync = protocol.SyncGroupResponse(dict(d, assignment=good.get_bytes()), v)
    assert sync.member_assignment.partition_assignment == [(b"t", [0, 2])]
    hv = min(v, 4)
    assert protocol.HeartbeatResponse(kat(12, hv)[0], hv).error_code == 27
    leave = protocol.LeaveGroupResponse(kat(13, v)[0], v)
    assert leave.error_code == 0
    assert protocol.LeaveGroupResponse(
        {"error_code": 0, "members": [{"member_id": "m", "error_code": 25}]},
        3).error_code == 25


def test_sync_heartbeat_leave_request_descriptions():
    sync = protocol.SyncGroupRequest(b"grp", 1, b"m-1", [
        (b"m-1", MemberAssignment([(b"t", [0])], version=1))])
    f = sync._fields(5, protocol_name="range")
    assert f["assignments"][0]["member_id"] == "m-1"
    assert MemberAssignment.from_bytestring(
        f["assignments"][0]["assignment"]).partition_assignment == \
        [(b"t", [0])]
    assert _core.encode_request(14, 5, f)
    hb = protocol.HeartbeatRequest(b"grp", 5, b"m-1")._fields(4)
    assert hb["generation_id"] == 5 and _core.encode_request(12, 4, hb)
    leave = protocol.LeaveGroupRequest(b"grp", b"m-1")
    assert leave._fields(2) == {"group_id": "grp", "member_id": "m-1"}
    assert leave._fields(5)["members"][0]["member_id"] == "m-1"
    assert _core.encode_request(13, 5, leave._fields(5))
    # a static member names its instance id from v3 (KIP-345); v0-2 leave
    # by member id alone
    static = leave._fields(3, group_instance_id="static-1")
    assert static["members"] == [{"member_id": "m-1",
                                  "group_instance_id": "static-1",
                                  "reason": None}]
    assert _core.decode_request(13, 3, _core.encode_request(13, 3, static))[
        "members"][0]["group_instance_id"] == "static-1"
    assert leave._fields(2, group_instance_id="static-1") == \
        {"group_id": "grp", "member_id": "m-1"}


@pytest.mark.parametrize("v", [0, 3, 4])
def test_list_groups_response(v):
    raw, _ = kat(16, v)
    resp = protocol.ListGroupsResponse(raw, v)
    assert resp.error == 0
    assert resp.groups == {b"grp": protocol.GroupListing(b"grp",
                                                         b"consumer")}
    enc = _core.encode_request(16, v, protocol.ListGroupsRequest()._fields(v))
    assert _core.decode_request(16, v, enc).get("states_filter", []) == []


@pytest.mark.parametrize("v", [0, 4, 5])
def test_describe_groups_response(v):
    raw, d = kat(15, v)
    resp = protocol.DescribeGroupsResponse(raw, v)
    g = resp.groups[b"grp"]
    assert type(g) is protocol.DescribeGroupResponse
    assert (g.error_code, g.group_id, g.state, g.protocol_type,
            g.protocol) == (0, b"grp", b"Stable", b"consumer", b"range")
    m = g.members[b"m-1"]
    assert (m.member_id, m.client_id, m.client_host) == \
        (b"m-1", b"pykafka", b"/127.0.0.1")
    assert m.member_metadata == b"md"        # undecodable: raw
    assert isinstance(m.member_assignment, MemberAssignment)  # empty
    member = dict(d["groups"][0]["members"][0],
                  member_metadata=_subscription([b"t"]),
                  member_assignment=MemberAssignment(
                      [(b"t", [1])], version=1).get_bytes())
    d2 = dict(d, groups=[dict(d["groups"][0], members=[member])])
    m2 = protocol.DescribeGroupsResponse(d2, v).groups[b"grp"].members[
        b"m-1"]
    assert m2.member_metadata.topic_names == [b"t"]
    assert m2.member_assignment.partition_assignment == [(b"t", [1])]
    f = protocol.DescribeGroupsRequest([b"grp", "x"])._fields(v)
    assert f["groups"] == ["grp", "x"] and _core.encode_request(15, v, f)


@pytest.mark.parametrize("v", [2, 5, 7])
def test_create_delete_topics_responses(v):
    raw, d = kat(19, v)
    with pytest.raises(TopicAlreadyExists):
        protocol.CreateTopicsResponse(raw, v)
    ok = dict(d, topics=d["topics"][:1])
    assert protocol.CreateTopicsResponse(ok, v)["topics"][0]["name"] == "new"
    assert protocol.CreateTopicsResponse(d, v, raise_errors=False) == d
    dv = min(v, 6)
    raw, d = kat(20, dv)
    with pytest.raises(UnknownTopicOrPartition):
        protocol.DeleteTopicsResponse(raw, dv)
    assert protocol.DeleteTopicsResponse(
        dict(d, responses=d["responses"][:1]), dv)


def test_create_topics_request_description():
    req = protocol.CreateTopicsRequest([
        protocol.CreateTopicRequest(b"new", 3, 1, [], [(b"retention.ms",
                                                        b"1000")]),
        protocol.CreateTopicRequest(b"manual", 4, 2, [(0, [1, 2])], []),
        {"name": "d", "num_partitions": 1, "replication_factor": 1},
        {"name": "ra", "num_partitions": -1, "replication_factor": -1,
         "replica_assignment": {0: [1], 1: [1]}}],
        timeout=5000)
    f = req._fields(7)
    assert f["timeout_ms"] == 5000
    new, manual, dd, ra = f["topics"]
    assert ra["assignments"] == [{"partition_index": 0, "broker_ids": [1]},
                                 {"partition_index": 1, "broker_ids": [1]}]
    assert new == {"name": "new", "num_partitions": 3,
                   "replication_factor": 1, "assignments": [],
                   "configs": [{"name": "retention.ms", "value": "1000"}]}
    assert (manual["num_partitions"], manual["replication_factor"]) == \
        (-1, -1)
    assert manual["assignments"] == [{"partition_index": 0,
                                      "broker_ids": [1, 2]}]
    assert dd["name"] == "d"
    assert _core.encode_request(19, 7, f)
    dreq = protocol.DeleteTopicsRequest([b"t", "u"], timeout=3000)
    assert dreq._fields(5) == {"topic_names": ["t", "u"],
                               "timeout_ms": 3000}


@pytest.mark.parametrize("v", [0, 1, 3])
def test_api_versions_response(v):
    raw, _ = kat(18, v)
    resp = protocol.ApiVersionsResponse.for_version(v)(raw, v)
    assert resp.api_versions == {
        0: protocol.ApiVersionsSpec(0, 3, 13),
        18: protocol.ApiVersionsSpec(18, 0, 5)}
    if v >= 1:
        assert type(resp) is protocol.admin.ApiVersionsResponseV1
        assert resp.throttle_time == 12


def test_metadata_request_description():
    assert protocol.MetadataRequest()._fields(0) == {"topics": []}
    assert protocol.MetadataRequestV1()._fields(1) == {"topics": None}
    f = protocol.MetadataRequestV4([b"a", "b"])._fields(12)
    assert f == {"topics": [{"name": "a"}, {"name": "b"}],
                 "allow_auto_topic_creation": True}
    assert _core.encode_request(3, 12, f)
    # pykafka's bytes: size, v1 header (correlation id 0, client id
    # "pykafka"), body at the class's version
    assert protocol.MetadataRequest().get_bytes() == bytearray(
        b"\x00\x00\x00\x15\x00\x03\x00\x00\x00\x00\x00\x00\x00\x07pykafka"
        b"\x00\x00\x00\x00")
    # a version Kafka 4 removed (Produce v0) has no bytes
    with pytest.raises(NotImplementedError, match="Produce v0"):
        protocol.ProduceRequest().get_bytes()


def test_response_base_behaviour():
    raw, d = kat(12, 0)
    hb = protocol.HeartbeatResponse(raw)
    assert hb == d and hb.api_version == 0
    assert "HeartbeatResponse" in repr(hb)
    assert hb != protocol.LeaveGroupResponse(d)
    with pytest.raises(ProtocolDecodeError):
        protocol.MetadataResponse(PYKAFKA_METADATA_V0[:-3])


# ------------------------------------------------------------ Message

def test_message_pack_into_pykafka_known_answers():
    m0 = Message(b"this is a test message", partition_key=b"asdf")
    m1 = Message(b"this is a test message", partition_key=b"asdf",
                 timestamp=1497302164, protocol_version=1)
    for m, expected in ((m0, PYKAFKA_MSET_V0[12:]),
                        (m1, PYKAFKA_MSET_V1[12:])):
        assert len(m) == len(expected)
        buf = bytearray(b"\xaa" * (len(m) + 5))
        m.pack_into(buf, 3)
        assert bytes(buf[3:3 + len(m)]) == expected
        assert buf[:3] == b"\xaa" * 3 and buf[-2:] == b"\xaa\xaa"


def test_message_magic_rules():
    # magic 1 only with protocol_version 1 and a truthy timestamp
    for kwargs, magic in (({"protocol_version": 0, "timestamp": 5}, 0),
                          ({"protocol_version": 1, "timestamp": 5}, 1),
                          ({"protocol_version": 1, "timestamp": 0}, 0),
                          ({"protocol_version": 1}, 1)):  # now
        m = Message(b"v", **kwargs)
        buf = bytearray(len(m))
        m.pack_into(buf, 0)
        assert buf[4] == magic
        assert struct.unpack(">I", buf[:4])[0] == zlib.crc32(bytes(buf[4:]))


def test_message_decode():
    m = Message.decode(PYKAFKA_MSET_V1[12:], msg_offset=17, partition_id=4)
    assert type(m) is Message
    assert (m.value, m.partition_key, m.offset, m.partition_id,
            m.timestamp, m.protocol_version, m.compression_type) == \
        (b"this is a test message", b"asdf", 17, 4, 1497302164, 1, 0)
    m = Message.decode(PYKAFKA_MSET_V0[12:])
    assert (m.offset, m.partition_id, m.timestamp, m.protocol_version) == \
        (-1, -1, 0, 0)
    # null key and value, attributes keep only the codec bits
    buf = bytearray(14)
    Message(None, compression_type=2).pack_into(buf, 0)
    m = Message.decode(buf)
    assert (m.value, m.partition_key, m.compression_type) == (None, None, 2)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=300)),
       st.one_of(st.none(), st.binary(max_size=50)),
       st.integers(0, 1), st.integers(0, 2**62), st.integers(0, 4))
def test_message_round_trip(value, key, version, ts, codec):
    m = Message(value, partition_key=key, protocol_version=version,
                timestamp=ts, compression_type=codec)
    buf = bytearray(len(m))
    m.pack_into(buf, 0)
    d = Message.decode(bytes(buf), 3, 2)
    magic = 1 if version == 1 and ts else 0
    assert (d.value, d.partition_key, d.compression_type, d.offset,
            d.partition_id, d.protocol_version) == \
        (value, key, codec, 3, 2, magic)
    assert d.timestamp == (ts if magic else 0)
    again = bytearray(len(d))
    d.pack_into(again, 0)
    assert again == buf


def test_message_pack_into_errors():
    m = Message(b"value")
    with pytest.raises(ValueError):
        m.pack_into(bytearray(len(m) - 1), 0)
    with pytest.raises(ValueError):
        m.pack_into(bytearray(100), 90)
    with pytest.raises(ValueError):
        m.pack_into(bytearray(100), -1)
    with pytest.raises(TypeError):
        m.pack_into(b"read-only" * 10, 0)
    with pytest.raises(TypeError):
        Message("text").pack_into(bytearray(100), 0)
    with pytest.raises(TypeError):
        m.pack_into(bytearray(100))


def test_message_decode_hostile():
    good = PYKAFKA_MSET_V1[12:]
    for cut in range(len(good)):
        with pytest.raises(ProtocolDecodeError):
            Message.decode(good[:cut])
    with pytest.raises(ProtocolDecodeError):
        Message.decode(good + b"\x00")
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        Message.decode(bytes(bad_crc))
    magic2 = bytearray(good)
    magic2[4] = 2
    with pytest.raises(ProtocolDecodeError):
        Message.decode(bytes(magic2))
    huge = bytearray(good)
    huge[14:18] = b"\x7f\xff\xff\xf0"      # key length
    with pytest.raises(ProtocolDecodeError):
        Message.decode(bytes(huge))
    negative = bytearray(good)
    negative[14:18] = b"\xff\xff\xff\xfe"  # key length -2
    with pytest.raises(ProtocolDecodeError):
        Message.decode(bytes(negative))
    with pytest.raises(TypeError):
        Message.decode("text")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_message_decode_random_bytes(data):
    try:
        Message.decode(data)
    except ProtocolDecodeError:
        pass


# ------------------------------------------------------------ MessageSet

def test_message_set_pack_into_pykafka_known_answer():
    mset = MessageSet(messages=[Message(b"this is a test message",
                                        partition_key=b"asdf")])
    assert len(mset) == len(PYKAFKA_MSET_V0)
    buf = bytearray(len(mset))
    mset.pack_into(buf, 0)
    assert bytes(buf) == PYKAFKA_MSET_V0
    two = MessageSet(messages=[Message(b"x"), Message(b"y", timestamp=9,
                                                      protocol_version=1)])
    buf = bytearray(len(two))
    two.pack_into(buf, 0)
    assert len(buf) == 12 + 15 + 12 + 23


def _kafka_set(messages, base):
    """A legacy set as a broker stores it: offsets base, base+1, ..."""
    out = bytearray()
    for i, m in enumerate(messages):
        body = bytearray(len(m))
        m.pack_into(body, 0)
        out += struct.pack(">qi", base + i, len(body)) + body
    return bytes(out)


def test_message_set_decode():
    msgs = [Message(b"a", partition_key=b"1"),
            Message(b"b", protocol_version=1, timestamp=1234),
            Message(None)]
    raw = _kafka_set(msgs, 100)
    got = MessageSet.decode(raw, partition_id=7).messages
    assert [(m.offset, m.value, m.partition_key, m.timestamp,
             m.partition_id) for m in got] == \
        [(100, b"a", b"1", 0, 7), (101, b"b", None, 1234, 7),
         (102, None, None, 0, 7)]
    # a truncated trailing entry is ignored, at every cut
    first = 12 + len(msgs[0])
    for cut in range(first, len(raw)):
        n = len(MessageSet.decode(raw[:cut]).messages)
        assert n == (1 if cut < first + 12 + len(msgs[1]) else 2)
    for cut in range(12, first):
        with pytest.raises(MessageSetDecodeFailure):
            MessageSet.decode(raw[:cut])
    assert MessageSet.decode(raw[:11]).messages == []
    assert MessageSet.decode(b"").messages == []
    # the same bytes through the C legacy decoder
    assert [m.value for m in _core.decode_records(raw, 7)] == \
        [b"a", b"b", None]


def test_message_set_decode_hostile():
    raw = bytearray(_kafka_set([Message(b"a"), Message(b"b")], 0))
    raw[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        MessageSet.decode(bytes(raw))
    neg = bytearray(_kafka_set([Message(b"a")], 0))
    neg[8:12] = b"\xff\xff\xff\xff"          # size -1
    with pytest.raises(MessageSetDecodeFailure):
        MessageSet.decode(bytes(neg))
    short = bytearray(_kafka_set([Message(b"abc")], 0))
    short[8:12] = struct.pack(">i", 5)       # size cuts into the message
    with pytest.raises(ProtocolDecodeError):
        MessageSet.decode(bytes(short) + b"\x00" * 64)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_message_set_decode_random_bytes(data):
    try:
        MessageSet.decode(data)
    except (ProtocolDecodeError, MessageSetDecodeFailure):
        pass


@pytest.mark.parametrize("codec", [1, 2, 3])
def test_compressed_message_set(codec):
    msgs = [Message(b"value %d" % i, partition_key=b"k%d" % i)
            for i in range(20)]
    mset = MessageSet(compression_type=codec, messages=list(msgs))
    buf = bytearray(len(mset))
    mset.pack_into(buf, 0)
    # one wrapper message: codec in its attributes, value compressed
    wrapper = MessageSet.decode(bytes(buf)).messages
    assert len(wrapper) == 1 and wrapper[0].compression_type == codec
    inner = MessageSet.decode(_core.decompress(codec, wrapper[0].value))
    assert [m.value for m in inner.messages] == [m.value for m in msgs]
    # the C legacy decoder decompresses the wrapper (a producer's set has
    # offsets -1, below the default fetch offset 0)
    assert _core.decode_records(bytes(buf), 0) == []
    got = _core.decode_records(bytes(buf), 0, -1)
    assert [(m.value, m.partition_key) for m in got] == \
        [(m.value, m.partition_key) for m in msgs]
    # accessing .messages forgets the cached wrapper
    mset.messages.append(Message(b"late"))
    assert len(_core.decode_records(_pack(mset), 0, -1)) == 21


def _pack(mset):
    buf = bytearray(len(mset))
    mset.pack_into(buf, 0)
    return bytes(buf)


def test_compressed_message_set_magic1_relative_offsets():
    """A broker's magic-1 compressed set: inner offsets 0..n-1, the
    wrapper at the absolute offset of the last one."""
    inner = [Message(b"m%d" % i, protocol_version=1, timestamp=500 + i)
             for i in range(4)]
    value = _core.compress(1, _kafka_set(inner, 0))
    wrapper = Message(value, compression_type=1, protocol_version=1,
                      timestamp=600)
    raw = _kafka_set([wrapper], 53)
    got = _core.decode_records(raw, 0)
    assert [(m.offset, m.value, m.timestamp) for m in got] == \
        [(50 + i, b"m%d" % i, 500 + i) for i in range(4)]


def test_message_set_of_compressed_garbage_raises_typed():
    wrapper = Message(b"not gzip at all", compression_type=1)
    with pytest.raises(KafkaException):
        _core.decode_records(_kafka_set([wrapper], 0), 0)
