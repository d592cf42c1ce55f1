"""Hand-written known answers for the protocol codec tests.

Every message layout below was transcribed by hand from Kafka's message
JSON specs (csrc/gen/message/*.json), version conditions included, and
encodes with ``struct`` - it shares nothing with the generated tables, so a
table or walker bug shows up as a byte difference.

A builder ``fn(w, x)`` writes one message at version ``w.v`` into ``w`` from
the sample values ``x`` (which hold every field of every version; a builder
reads only the ones its version has) and records in ``w.d`` the dict that
``_core`` should encode from / decode to: exactly the fields of that
version, with absent tagged fields at their defaults.
"""

import struct

# ApiKey -> (name, min version, max version, first flexible version or
# None), transcribed from the specs' validVersions / flexibleVersions.
APIS = {
    0: ("Produce", 3, 13, 9),
    1: ("Fetch", 4, 18, 12),
    2: ("ListOffsets", 1, 11, 6),
    3: ("Metadata", 0, 13, 9),
    8: ("OffsetCommit", 2, 10, 8),
    9: ("OffsetFetch", 1, 10, 6),
    10: ("FindCoordinator", 0, 6, 3),
    11: ("JoinGroup", 0, 9, 6),
    12: ("Heartbeat", 0, 4, 4),
    13: ("LeaveGroup", 0, 5, 4),
    14: ("SyncGroup", 0, 5, 4),
    15: ("DescribeGroups", 0, 6, 5),
    16: ("ListGroups", 0, 5, 3),
    17: ("SaslHandshake", 0, 1, None),
    18: ("ApiVersions", 0, 5, 3),
    19: ("CreateTopics", 2, 7, 5),
    20: ("DeleteTopics", 1, 6, 4),
    22: ("InitProducerId", 0, 6, 2),
    24: ("AddPartitionsToTxn", 0, 5, 3),
    25: ("AddOffsetsToTxn", 0, 4, 3),
    26: ("EndTxn", 0, 5, 3),
    28: ("TxnOffsetCommit", 0, 6, 3),
    32: ("DescribeConfigs", 1, 4, 4),
    36: ("SaslAuthenticate", 0, 2, 2),
    68: ("ConsumerGroupHeartbeat", 0, 1, 0),
}

# Highest versions Kafka 3.9 and 4.x both support (3.9 column of the
# version table in kafka-broker.md section 4.3, capped by 4.x).
COMMON_MAX = {
    0: 11, 1: 17, 2: 9, 3: 12, 8: 9, 9: 9, 10: 6, 11: 9, 12: 4, 13: 5,
    14: 5, 15: 5, 16: 5, 17: 1, 18: 4, 19: 7, 20: 6, 22: 5, 24: 5, 25: 4,
    26: 4, 28: 4, 32: 4, 36: 2,
    68: 0,  # 3.9 has v0 (KIP-848's early access)
}


def is_flexible(key, v):
    ff = APIS[key][3]
    return ff is not None and v >= ff


def uvar(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def p_str(x, flex):
    if x is None:
        return b"\x00" if flex else struct.pack(">h", -1)
    raw = x.encode("utf-8")
    return (uvar(len(raw) + 1) if flex else struct.pack(">h", len(raw))) + raw


def p_bytes(x, flex):
    if x is None:
        return b"\x00" if flex else struct.pack(">i", -1)
    return (uvar(len(x) + 1) if flex else struct.pack(">i", len(x))) + x


def p_count(n, flex):
    if n is None:
        return b"\x00" if flex else struct.pack(">i", -1)
    return uvar(n + 1) if flex else struct.pack(">i", n)


PRIM = {
    "i8": lambda x, f: struct.pack(">b", x),
    "i16": lambda x, f: struct.pack(">h", x),
    "i32": lambda x, f: struct.pack(">i", x),
    "i64": lambda x, f: struct.pack(">q", x),
    "str": p_str,
}


class W:
    """A hand encoder for one struct; nested structs share the buffer."""

    def __init__(self, v, flex, buf=None):
        self.v = v
        self.flex = flex
        self.buf = bytearray() if buf is None else buf
        self.d = {}
        self.tags = []

    def _put(self, name, raw, value):
        self.buf += raw
        self.d[name] = value
        return self

    def i8(self, n, x):
        return self._put(n, struct.pack(">b", x), x)

    def i16(self, n, x):
        return self._put(n, struct.pack(">h", x), x)

    def i32(self, n, x):
        return self._put(n, struct.pack(">i", x), x)

    def i64(self, n, x):
        return self._put(n, struct.pack(">q", x), x)

    def bool(self, n, x):
        return self._put(n, b"\x01" if x else b"\x00", bool(x))

    def uuid(self, n, x):
        assert len(x) == 16
        return self._put(n, bytes(x), bytes(x))

    def str(self, n, x):
        return self._put(n, p_str(x, self.flex), x)

    def bytes(self, n, x):
        return self._put(n, p_bytes(x, self.flex), x)

    def arr(self, n, items, elem):
        """An array of primitives (elem is a PRIM key) or of structs (elem
        is a builder fn(w, item))."""
        self.buf += p_count(None if items is None else len(items), self.flex)
        if items is None:
            self.d[n] = None
            return self
        out = []
        for it in items:
            if isinstance(elem, str):
                self.buf += PRIM[elem](it, self.flex)
                out.append(it)
            else:
                c = W(self.v, self.flex, self.buf)
                elem(c, it)
                c.end()
                out.append(c.d)
        self.d[n] = out
        return self

    def tag(self, tag, n, x, default, fn):
        """A tagged field: written only if x differs from its default;
        fn(w, n, x) writes the value (flexible encoding)."""
        if x == default:
            self.d[n] = default
            return self
        sub = W(self.v, True)
        fn(sub, n, x)
        self.tags.append((tag, bytes(sub.buf)))
        self.d[n] = sub.d[n]
        return self

    def struct(self, n, x, fn):
        c = W(self.v, self.flex, self.buf)
        fn(c, x)
        c.end()
        self.d[n] = c.d
        return self

    def end(self):
        if self.flex:
            self.buf += uvar(len(self.tags))
            for tag, payload in sorted(self.tags):
                self.buf += uvar(tag) + uvar(len(payload)) + payload
        return self


# ----------------------------------------------------------- ApiVersions


def api_versions_request(w, x):
    v = w.v
    if v >= 3:
        w.str("client_software_name", x["client_software_name"])
        w.str("client_software_version", x["client_software_version"])
    if v >= 5:
        w.str("cluster_id", x["cluster_id"])
        w.i32("node_id", x["node_id"])


def api_versions_response(w, x):
    v = w.v
    w.i16("error_code", x["error_code"])
    w.arr("api_keys", x["api_keys"], lambda c, k: (
        c.i16("api_key", k["api_key"]),
        c.i16("min_version", k["min_version"]),
        c.i16("max_version", k["max_version"])))
    if v >= 1:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    if v >= 3:
        w.tag(0, "supported_features", x["supported_features"], [],
              lambda s, n, val: s.arr(n, val, lambda c, f: (
                  c.str("name", f["name"]),
                  c.i16("min_version", f["min_version"]),
                  c.i16("max_version", f["max_version"]))))
        w.tag(1, "finalized_features_epoch", x["finalized_features_epoch"],
              -1, lambda s, n, val: s.i64(n, val))
        w.tag(2, "finalized_features", x["finalized_features"], [],
              lambda s, n, val: s.arr(n, val, lambda c, f: (
                  c.str("name", f["name"]),
                  c.i16("max_version_level", f["max_version_level"]),
                  c.i16("min_version_level", f["min_version_level"]))))
        w.tag(3, "zk_migration_ready", x["zk_migration_ready"], False,
              lambda s, n, val: s.bool(n, val))


# -------------------------------------------------------------- Metadata


def metadata_request(w, x):
    v = w.v

    def topic(c, t):
        if v >= 10:
            c.uuid("topic_id", t["topic_id"])
        c.str("name", t["name"])

    w.arr("topics", x["topics"], topic)
    if v >= 4:
        w.bool("allow_auto_topic_creation", x["allow_auto_topic_creation"])
    if 8 <= v <= 10:
        w.bool("include_cluster_authorized_operations",
               x["include_cluster_authorized_operations"])
    if v >= 8:
        w.bool("include_topic_authorized_operations",
               x["include_topic_authorized_operations"])


def metadata_response(w, x):
    v = w.v
    if v >= 3:
        w.i32("throttle_time_ms", x["throttle_time_ms"])

    def broker(c, b):
        c.i32("node_id", b["node_id"]).str("host", b["host"])
        c.i32("port", b["port"])
        if v >= 1:
            c.str("rack", b["rack"])

    def partition(c, p):
        c.i16("error_code", p["error_code"])
        c.i32("partition_index", p["partition_index"])
        c.i32("leader_id", p["leader_id"])
        if v >= 7:
            c.i32("leader_epoch", p["leader_epoch"])
        c.arr("replica_nodes", p["replica_nodes"], "i32")
        c.arr("isr_nodes", p["isr_nodes"], "i32")
        if v >= 5:
            c.arr("offline_replicas", p["offline_replicas"], "i32")

    def topic(c, t):
        c.i16("error_code", t["error_code"]).str("name", t["name"])
        if v >= 10:
            c.uuid("topic_id", t["topic_id"])
        if v >= 1:
            c.bool("is_internal", t["is_internal"])
        c.arr("partitions", t["partitions"], partition)
        if v >= 8:
            c.i32("topic_authorized_operations",
                  t["topic_authorized_operations"])

    w.arr("brokers", x["brokers"], broker)
    if v >= 2:
        w.str("cluster_id", x["cluster_id"])
    if v >= 1:
        w.i32("controller_id", x["controller_id"])
    w.arr("topics", x["topics"], topic)
    if 8 <= v <= 10:
        w.i32("cluster_authorized_operations",
              x["cluster_authorized_operations"])
    if v >= 13:
        w.i16("error_code", x["error_code"])


# ----------------------------------------------------------- ListOffsets


def list_offsets_request(w, x):
    v = w.v
    w.i32("replica_id", x["replica_id"])
    if v >= 2:
        w.i8("isolation_level", x["isolation_level"])

    def partition(c, p):
        c.i32("partition_index", p["partition_index"])
        if v >= 4:
            c.i32("current_leader_epoch", p["current_leader_epoch"])
        c.i64("timestamp", p["timestamp"])

    w.arr("topics", x["topics"], lambda c, t: (
        c.str("name", t["name"]), c.arr("partitions", t["partitions"],
                                        partition)))
    if v >= 10:
        w.i32("timeout_ms", x["timeout_ms"])


def list_offsets_response(w, x):
    v = w.v
    if v >= 2:
        w.i32("throttle_time_ms", x["throttle_time_ms"])

    def partition(c, p):
        c.i32("partition_index", p["partition_index"])
        c.i16("error_code", p["error_code"])
        c.i64("timestamp", p["timestamp"]).i64("offset", p["offset"])
        if v >= 4:
            c.i32("leader_epoch", p["leader_epoch"])

    w.arr("topics", x["topics"], lambda c, t: (
        c.str("name", t["name"]), c.arr("partitions", t["partitions"],
                                        partition)))


# ---------------------------------------------------------------- Produce


def produce_request(w, x):
    v = w.v
    w.str("transactional_id", x["transactional_id"])
    w.i16("acks", x["acks"]).i32("timeout_ms", x["timeout_ms"])

    def topic(c, t):
        if v <= 12:
            c.str("name", t["name"])
        else:
            c.uuid("topic_id", t["topic_id"])
        c.arr("partition_data", t["partition_data"], lambda c2, p: (
            c2.i32("index", p["index"]), c2.bytes("records", p["records"])))

    w.arr("topic_data", x["topic_data"], topic)


def leader_and_epoch(s, n, val):
    s.struct(n, val, lambda c, le: (c.i32("leader_id", le["leader_id"]),
                                    c.i32("leader_epoch",
                                          le["leader_epoch"])))


def node_endpoints(s, n, val):
    s.arr(n, val, lambda c, e: (
        c.i32("node_id", e["node_id"]), c.str("host", e["host"]),
        c.i32("port", e["port"]), c.str("rack", e["rack"])))


def produce_response(w, x):
    v = w.v

    def partition(c, p):
        c.i32("index", p["index"]).i16("error_code", p["error_code"])
        c.i64("base_offset", p["base_offset"])
        if v >= 2:
            c.i64("log_append_time_ms", p["log_append_time_ms"])
        if v >= 5:
            c.i64("log_start_offset", p["log_start_offset"])
        if v >= 8:
            c.arr("record_errors", p["record_errors"], lambda c2, e: (
                c2.i32("batch_index", e["batch_index"]),
                c2.str("batch_index_error_message",
                       e["batch_index_error_message"])))
            c.str("error_message", p["error_message"])
        if v >= 10:
            c.tag(0, "current_leader", p["current_leader"],
                  {"leader_id": -1, "leader_epoch": -1}, leader_and_epoch)

    def topic(c, t):
        if v <= 12:
            c.str("name", t["name"])
        else:
            c.uuid("topic_id", t["topic_id"])
        c.arr("partition_responses", t["partition_responses"], partition)

    w.arr("responses", x["responses"], topic)
    w.i32("throttle_time_ms", x["throttle_time_ms"])
    if v >= 10:
        w.tag(0, "node_endpoints", x["node_endpoints"], [], node_endpoints)


# ------------------------------------------------------------------ Fetch


def fetch_request(w, x):
    v = w.v
    if v >= 12:
        w.tag(0, "cluster_id", x["cluster_id"], None,
              lambda s, n, val: s.str(n, val))
    if v <= 14:
        w.i32("replica_id", x["replica_id"])
    if v >= 15:
        w.tag(1, "replica_state", x["replica_state"],
              {"replica_id": -1, "replica_epoch": -1},
              lambda s, n, val: s.struct(n, val, lambda c, r: (
                  c.i32("replica_id", r["replica_id"]),
                  c.i64("replica_epoch", r["replica_epoch"]))))
    w.i32("max_wait_ms", x["max_wait_ms"]).i32("min_bytes", x["min_bytes"])
    w.i32("max_bytes", x["max_bytes"])
    w.i8("isolation_level", x["isolation_level"])
    if v >= 7:
        w.i32("session_id", x["session_id"])
        w.i32("session_epoch", x["session_epoch"])

    def partition(c, p):
        c.i32("partition", p["partition"])
        if v >= 9:
            c.i32("current_leader_epoch", p["current_leader_epoch"])
        c.i64("fetch_offset", p["fetch_offset"])
        if v >= 12:
            c.i32("last_fetched_epoch", p["last_fetched_epoch"])
        if v >= 5:
            c.i64("log_start_offset", p["log_start_offset"])
        c.i32("partition_max_bytes", p["partition_max_bytes"])
        if v >= 17:
            c.tag(0, "replica_directory_id", p["replica_directory_id"],
                  bytes(16), lambda s, n, val: s.uuid(n, val))
        if v >= 18:
            c.tag(1, "high_watermark", p["high_watermark"], 2**63 - 1,
                  lambda s, n, val: s.i64(n, val))

    def topic(c, t):
        if v <= 12:
            c.str("topic", t["topic"])
        else:
            c.uuid("topic_id", t["topic_id"])
        c.arr("partitions", t["partitions"], partition)

    w.arr("topics", x["topics"], topic)
    if v >= 7:
        def forgotten(c, t):
            if v <= 12:
                c.str("topic", t["topic"])
            else:
                c.uuid("topic_id", t["topic_id"])
            c.arr("partitions", t["partitions"], "i32")
        w.arr("forgotten_topics_data", x["forgotten_topics_data"], forgotten)
    if v >= 11:
        w.str("rack_id", x["rack_id"])


def fetch_response(w, x):
    v = w.v
    w.i32("throttle_time_ms", x["throttle_time_ms"])
    if v >= 7:
        w.i16("error_code", x["error_code"])
        w.i32("session_id", x["session_id"])

    def partition(c, p):
        c.i32("partition_index", p["partition_index"])
        c.i16("error_code", p["error_code"])
        c.i64("high_watermark", p["high_watermark"])
        c.i64("last_stable_offset", p["last_stable_offset"])
        if v >= 5:
            c.i64("log_start_offset", p["log_start_offset"])
        if v >= 12:
            c.tag(0, "diverging_epoch", p["diverging_epoch"],
                  {"epoch": -1, "end_offset": -1},
                  lambda s, n, val: s.struct(n, val, lambda c2, e: (
                      c2.i32("epoch", e["epoch"]),
                      c2.i64("end_offset", e["end_offset"]))))
            c.tag(1, "current_leader", p["current_leader"],
                  {"leader_id": -1, "leader_epoch": -1}, leader_and_epoch)
            c.tag(2, "snapshot_id", p["snapshot_id"],
                  {"end_offset": -1, "epoch": -1},
                  lambda s, n, val: s.struct(n, val, lambda c2, e: (
                      c2.i64("end_offset", e["end_offset"]),
                      c2.i32("epoch", e["epoch"]))))
        c.arr("aborted_transactions", p["aborted_transactions"],
              lambda c2, a: (c2.i64("producer_id", a["producer_id"]),
                             c2.i64("first_offset", a["first_offset"])))
        if v >= 11:
            c.i32("preferred_read_replica", p["preferred_read_replica"])
        c.bytes("records", p["records"])

    def topic(c, t):
        if v <= 12:
            c.str("topic", t["topic"])
        else:
            c.uuid("topic_id", t["topic_id"])
        c.arr("partitions", t["partitions"], partition)

    w.arr("responses", x["responses"], topic)
    if v >= 16:
        w.tag(0, "node_endpoints", x["node_endpoints"], [], node_endpoints)


# -------------------------------------------------------- FindCoordinator


def find_coordinator_request(w, x):
    v = w.v
    if v <= 3:
        w.str("key", x["key"])
    if v >= 1:
        w.i8("key_type", x["key_type"])
    if v >= 4:
        w.arr("coordinator_keys", x["coordinator_keys"], "str")


def find_coordinator_response(w, x):
    v = w.v
    if v >= 1:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    if v <= 3:
        w.i16("error_code", x["error_code"])
        if v >= 1:
            w.str("error_message", x["error_message"])
        w.i32("node_id", x["node_id"]).str("host", x["host"])
        w.i32("port", x["port"])
    else:
        w.arr("coordinators", x["coordinators"], lambda c, k: (
            c.str("key", k["key"]), c.i32("node_id", k["node_id"]),
            c.str("host", k["host"]), c.i32("port", k["port"]),
            c.i16("error_code", k["error_code"]),
            c.str("error_message", k["error_message"])))


# ----------------------------------------------------------- OffsetCommit


def offset_commit_request(w, x):
    v = w.v
    w.str("group_id", x["group_id"])
    w.i32("generation_id_or_member_epoch", x["generation_id_or_member_epoch"])
    w.str("member_id", x["member_id"])
    if v >= 7:
        w.str("group_instance_id", x["group_instance_id"])
    if v <= 4:
        w.i64("retention_time_ms", x["retention_time_ms"])

    def partition(c, p):
        c.i32("partition_index", p["partition_index"])
        c.i64("committed_offset", p["committed_offset"])
        if v >= 6:
            c.i32("committed_leader_epoch", p["committed_leader_epoch"])
        c.str("committed_metadata", p["committed_metadata"])

    def topic(c, t):
        if v <= 9:
            c.str("name", t["name"])
        else:
            c.uuid("topic_id", t["topic_id"])
        c.arr("partitions", t["partitions"], partition)

    w.arr("topics", x["topics"], topic)


def offset_commit_response(w, x):
    v = w.v
    if v >= 3:
        w.i32("throttle_time_ms", x["throttle_time_ms"])

    def topic(c, t):
        if v <= 9:
            c.str("name", t["name"])
        else:
            c.uuid("topic_id", t["topic_id"])
        c.arr("partitions", t["partitions"], lambda c2, p: (
            c2.i32("partition_index", p["partition_index"]),
            c2.i16("error_code", p["error_code"])))

    w.arr("topics", x["topics"], topic)


# ------------------------------------------------------------ OffsetFetch


def offset_fetch_request(w, x):
    v = w.v
    if v <= 7:
        w.str("group_id", x["group_id"])
        w.arr("topics", x["topics"], lambda c, t: (
            c.str("name", t["name"]),
            c.arr("partition_indexes", t["partition_indexes"], "i32")))
    else:
        def topic(c, t):
            if v <= 9:
                c.str("name", t["name"])
            else:
                c.uuid("topic_id", t["topic_id"])
            c.arr("partition_indexes", t["partition_indexes"], "i32")

        def group(c, g):
            c.str("group_id", g["group_id"])
            if v >= 9:
                c.str("member_id", g["member_id"])
                c.i32("member_epoch", g["member_epoch"])
            c.arr("topics", g["topics"], topic)

        w.arr("groups", x["groups"], group)
    if v >= 7:
        w.bool("require_stable", x["require_stable"])


def offset_fetch_response(w, x):
    v = w.v
    if v >= 3:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    if v <= 7:
        def partition(c, p):
            c.i32("partition_index", p["partition_index"])
            c.i64("committed_offset", p["committed_offset"])
            if v >= 5:
                c.i32("committed_leader_epoch", p["committed_leader_epoch"])
            c.str("metadata", p["metadata"])
            c.i16("error_code", p["error_code"])

        w.arr("topics", x["topics"], lambda c, t: (
            c.str("name", t["name"]),
            c.arr("partitions", t["partitions"], partition)))
        if v >= 2:
            w.i16("error_code", x["error_code"])
    else:
        def partition8(c, p):
            c.i32("partition_index", p["partition_index"])
            c.i64("committed_offset", p["committed_offset"])
            c.i32("committed_leader_epoch", p["committed_leader_epoch"])
            c.str("metadata", p["metadata"])
            c.i16("error_code", p["error_code"])

        def topic(c, t):
            if v <= 9:
                c.str("name", t["name"])
            else:
                c.uuid("topic_id", t["topic_id"])
            c.arr("partitions", t["partitions"], partition8)

        w.arr("groups", x["groups"], lambda c, g: (
            c.str("group_id", g["group_id"]),
            c.arr("topics", g["topics"], topic),
            c.i16("error_code", g["error_code"])))


# ---------------------------------------------------- group membership


def join_group_request(w, x):
    v = w.v
    w.str("group_id", x["group_id"])
    w.i32("session_timeout_ms", x["session_timeout_ms"])
    if v >= 1:
        w.i32("rebalance_timeout_ms", x["rebalance_timeout_ms"])
    w.str("member_id", x["member_id"])
    if v >= 5:
        w.str("group_instance_id", x["group_instance_id"])
    w.str("protocol_type", x["protocol_type"])
    w.arr("protocols", x["protocols"], lambda c, p: (
        c.str("name", p["name"]), c.bytes("metadata", p["metadata"])))
    if v >= 8:
        w.str("reason", x["reason"])


def join_group_response(w, x):
    v = w.v
    if v >= 2:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])
    w.i32("generation_id", x["generation_id"])
    if v >= 7:
        w.str("protocol_type", x["protocol_type"])
    w.str("protocol_name", x["protocol_name"])
    w.str("leader", x["leader"])
    if v >= 9:
        w.bool("skip_assignment", x["skip_assignment"])
    w.str("member_id", x["member_id"])

    def member(c, m):
        c.str("member_id", m["member_id"])
        if v >= 5:
            c.str("group_instance_id", m["group_instance_id"])
        c.bytes("metadata", m["metadata"])

    w.arr("members", x["members"], member)


def sync_group_request(w, x):
    v = w.v
    w.str("group_id", x["group_id"])
    w.i32("generation_id", x["generation_id"])
    w.str("member_id", x["member_id"])
    if v >= 3:
        w.str("group_instance_id", x["group_instance_id"])
    if v >= 5:
        w.str("protocol_type", x["protocol_type"])
        w.str("protocol_name", x["protocol_name"])
    w.arr("assignments", x["assignments"], lambda c, a: (
        c.str("member_id", a["member_id"]),
        c.bytes("assignment", a["assignment"])))


def sync_group_response(w, x):
    v = w.v
    if v >= 1:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])
    if v >= 5:
        w.str("protocol_type", x["protocol_type"])
        w.str("protocol_name", x["protocol_name"])
    w.bytes("assignment", x["assignment"])


def heartbeat_request(w, x):
    w.str("group_id", x["group_id"])
    w.i32("generation_id", x["generation_id"])
    w.str("member_id", x["member_id"])
    if w.v >= 3:
        w.str("group_instance_id", x["group_instance_id"])


def heartbeat_response(w, x):
    if w.v >= 1:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])


def leave_group_request(w, x):
    v = w.v
    w.str("group_id", x["group_id"])
    if v <= 2:
        w.str("member_id", x["member_id"])
    else:
        def member(c, m):
            c.str("member_id", m["member_id"])
            c.str("group_instance_id", m["group_instance_id"])
            if v >= 5:
                c.str("reason", m["reason"])
        w.arr("members", x["members"], member)


def leave_group_response(w, x):
    v = w.v
    if v >= 1:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])
    if v >= 3:
        w.arr("members", x["members"], lambda c, m: (
            c.str("member_id", m["member_id"]),
            c.str("group_instance_id", m["group_instance_id"]),
            c.i16("error_code", m["error_code"])))


def consumer_group_heartbeat_request(w, x):
    w.str("group_id", x["group_id"])
    w.str("member_id", x["member_id"])
    w.i32("member_epoch", x["member_epoch"])
    w.str("instance_id", x["instance_id"])
    w.str("rack_id", x["rack_id"])
    w.i32("rebalance_timeout_ms", x["rebalance_timeout_ms"])
    w.arr("subscribed_topic_names", x["subscribed_topic_names"], "str")
    if w.v >= 1:
        w.str("subscribed_topic_regex", x["subscribed_topic_regex"])
    w.str("server_assignor", x["server_assignor"])
    w.arr("topic_partitions", x["topic_partitions"], _cgh_topic_partitions)


def _cgh_topic_partitions(c, t):
    c.uuid("topic_id", t["topic_id"])
    c.arr("partitions", t["partitions"], "i32")


def consumer_group_heartbeat_response(w, x):
    w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])
    w.str("error_message", x["error_message"])
    w.str("member_id", x["member_id"])
    w.i32("member_epoch", x["member_epoch"])
    w.i32("heartbeat_interval_ms", x["heartbeat_interval_ms"])
    # a nullable struct: int8 -1 for null, 1 then the struct
    if x["assignment"] is None:
        w.buf += struct.pack(">b", -1)
        w.d["assignment"] = None
        return
    w.buf += struct.pack(">b", 1)
    w.struct("assignment", x["assignment"], lambda c, a: c.arr(
        "topic_partitions", a["topic_partitions"], _cgh_topic_partitions))


def list_groups_request(w, x):
    if w.v >= 4:
        w.arr("states_filter", x["states_filter"], "str")
    if w.v >= 5:
        w.arr("types_filter", x["types_filter"], "str")


def list_groups_response(w, x):
    v = w.v
    if v >= 1:
        w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])

    def group(c, g):
        c.str("group_id", g["group_id"])
        c.str("protocol_type", g["protocol_type"])
        if v >= 4:
            c.str("group_state", g["group_state"])
        if v >= 5:
            c.str("group_type", g["group_type"])

    w.arr("groups", x["groups"], group)


def describe_groups_request(w, x):
    w.arr("groups", x["groups"], "str")
    if w.v >= 3:
        w.bool("include_authorized_operations",
               x["include_authorized_operations"])


def describe_groups_response(w, x):
    v = w.v
    if v >= 1:
        w.i32("throttle_time_ms", x["throttle_time_ms"])

    def member(c, m):
        c.str("member_id", m["member_id"])
        if v >= 4:
            c.str("group_instance_id", m["group_instance_id"])
        c.str("client_id", m["client_id"])
        c.str("client_host", m["client_host"])
        c.bytes("member_metadata", m["member_metadata"])
        c.bytes("member_assignment", m["member_assignment"])

    def group(c, g):
        c.i16("error_code", g["error_code"])
        if v >= 6:
            c.str("error_message", g["error_message"])
        c.str("group_id", g["group_id"]).str("group_state", g["group_state"])
        c.str("protocol_type", g["protocol_type"])
        c.str("protocol_data", g["protocol_data"])
        c.arr("members", g["members"], member)
        if v >= 3:
            c.i32("authorized_operations", g["authorized_operations"])

    w.arr("groups", x["groups"], group)


# ------------------------------------------------------------------ admin


def create_topics_request(w, x):
    def topic(c, t):
        c.str("name", t["name"]).i32("num_partitions", t["num_partitions"])
        c.i16("replication_factor", t["replication_factor"])
        c.arr("assignments", t["assignments"], lambda c2, a: (
            c2.i32("partition_index", a["partition_index"]),
            c2.arr("broker_ids", a["broker_ids"], "i32")))
        c.arr("configs", t["configs"], lambda c2, k: (
            c2.str("name", k["name"]), c2.str("value", k["value"])))

    w.arr("topics", x["topics"], topic)
    w.i32("timeout_ms", x["timeout_ms"])
    w.bool("validate_only", x["validate_only"])


def create_topics_response(w, x):
    v = w.v
    w.i32("throttle_time_ms", x["throttle_time_ms"])

    def topic(c, t):
        c.str("name", t["name"])
        if v >= 7:
            c.uuid("topic_id", t["topic_id"])
        c.i16("error_code", t["error_code"])
        c.str("error_message", t["error_message"])
        if v >= 5:
            c.tag(0, "topic_config_error_code", t["topic_config_error_code"],
                  0, lambda s, n, val: s.i16(n, val))
            c.i32("num_partitions", t["num_partitions"])
            c.i16("replication_factor", t["replication_factor"])
            c.arr("configs", t["configs"], lambda c2, k: (
                c2.str("name", k["name"]), c2.str("value", k["value"]),
                c2.bool("read_only", k["read_only"]),
                c2.i8("config_source", k["config_source"]),
                c2.bool("is_sensitive", k["is_sensitive"])))

    w.arr("topics", x["topics"], topic)


def delete_topics_request(w, x):
    v = w.v
    if v >= 6:
        w.arr("topics", x["topics"], lambda c, t: (
            c.str("name", t["name"]), c.uuid("topic_id", t["topic_id"])))
    else:
        w.arr("topic_names", x["topic_names"], "str")
    w.i32("timeout_ms", x["timeout_ms"])


def delete_topics_response(w, x):
    v = w.v
    w.i32("throttle_time_ms", x["throttle_time_ms"])

    def resp(c, r):
        c.str("name", r["name"])
        if v >= 6:
            c.uuid("topic_id", r["topic_id"])
        c.i16("error_code", r["error_code"])
        if v >= 5:
            c.str("error_message", r["error_message"])

    w.arr("responses", x["responses"], resp)


def init_producer_id_request(w, x):
    v = w.v
    w.str("transactional_id", x["transactional_id"])
    w.i32("transaction_timeout_ms", x["transaction_timeout_ms"])
    if v >= 3:
        w.i64("producer_id", x["producer_id"])
        w.i16("producer_epoch", x["producer_epoch"])
    if v >= 6:
        w.bool("enable_2pc", x["enable_2pc"])
        w.bool("keep_prepared_txn", x["keep_prepared_txn"])


def init_producer_id_response(w, x):
    w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])
    w.i64("producer_id", x["producer_id"])
    w.i16("producer_epoch", x["producer_epoch"])
    if w.v >= 6:
        w.i64("ongoing_txn_producer_id", x["ongoing_txn_producer_id"])
        w.i16("ongoing_txn_producer_epoch", x["ongoing_txn_producer_epoch"])


def _txn_topic(c, t):
    c.str("name", t["name"])
    c.arr("partitions", t["partitions"], "i32")


def add_partitions_to_txn_request(w, x):
    if w.v >= 4:
        w.arr("transactions", x["transactions"], lambda c, t: (
            c.str("transactional_id", t["transactional_id"]),
            c.i64("producer_id", t["producer_id"]),
            c.i16("producer_epoch", t["producer_epoch"]),
            c.bool("verify_only", t["verify_only"]),
            c.arr("topics", t["topics"], _txn_topic)))
        return
    w.str("v3_and_below_transactional_id",
          x["v3_and_below_transactional_id"])
    w.i64("v3_and_below_producer_id", x["v3_and_below_producer_id"])
    w.i16("v3_and_below_producer_epoch", x["v3_and_below_producer_epoch"])
    w.arr("v3_and_below_topics", x["v3_and_below_topics"], _txn_topic)


def _txn_topic_result(c, t):
    c.str("name", t["name"])
    c.arr("results_by_partition", t["results_by_partition"], lambda p, r: (
        p.i32("partition_index", r["partition_index"]),
        p.i16("partition_error_code", r["partition_error_code"])))


def add_partitions_to_txn_response(w, x):
    w.i32("throttle_time_ms", x["throttle_time_ms"])
    if w.v >= 4:
        w.i16("error_code", x["error_code"])
        w.arr("results_by_transaction", x["results_by_transaction"],
              lambda c, r: (
                  c.str("transactional_id", r["transactional_id"]),
                  c.arr("topic_results", r["topic_results"],
                        _txn_topic_result)))
        return
    w.arr("results_by_topic_v3_and_below", x["results_by_topic_v3_and_below"],
          _txn_topic_result)


def add_offsets_to_txn_request(w, x):
    w.str("transactional_id", x["transactional_id"])
    w.i64("producer_id", x["producer_id"])
    w.i16("producer_epoch", x["producer_epoch"])
    w.str("group_id", x["group_id"])


def throttle_and_error_response(w, x):
    w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.i16("error_code", x["error_code"])


def end_txn_request(w, x):
    w.str("transactional_id", x["transactional_id"])
    w.i64("producer_id", x["producer_id"])
    w.i16("producer_epoch", x["producer_epoch"])
    w.bool("committed", x["committed"])


def end_txn_response(w, x):
    throttle_and_error_response(w, x)
    if w.v >= 5:
        w.i64("producer_id", x["producer_id"])
        w.i16("producer_epoch", x["producer_epoch"])


def _txn_offset_partition(c, p):
    c.i32("partition_index", p["partition_index"])
    c.i64("committed_offset", p["committed_offset"])
    if c.v >= 2:
        c.i32("committed_leader_epoch", p["committed_leader_epoch"])
    c.str("committed_metadata", p["committed_metadata"])


def _txn_offset_topic(c, t):
    if c.v >= 6:
        c.uuid("topic_id", t["topic_id"])
    else:
        c.str("name", t["name"])
    c.arr("partitions", t["partitions"], _txn_offset_partition)


def txn_offset_commit_request(w, x):
    w.str("transactional_id", x["transactional_id"])
    w.str("group_id", x["group_id"])
    w.i64("producer_id", x["producer_id"])
    w.i16("producer_epoch", x["producer_epoch"])
    if w.v >= 3:
        w.i32("generation_id_or_member_epoch",
              x["generation_id_or_member_epoch"])
        w.str("member_id", x["member_id"])
        w.str("group_instance_id", x["group_instance_id"])
    w.arr("topics", x["topics"], _txn_offset_topic)


def txn_offset_commit_response(w, x):
    w.i32("throttle_time_ms", x["throttle_time_ms"])
    w.arr("topics", x["topics"], lambda c, t: (
        c.uuid("topic_id", t["topic_id"]) if c.v >= 6
        else c.str("name", t["name"]),
        c.arr("partitions", t["partitions"], lambda p, r: (
            p.i32("partition_index", r["partition_index"]),
            p.i16("error_code", r["error_code"])))))


def sasl_handshake_request(w, x):
    w.str("mechanism", x["mechanism"])


def sasl_handshake_response(w, x):
    w.i16("error_code", x["error_code"])
    w.arr("mechanisms", x["mechanisms"], "str")


def sasl_authenticate_request(w, x):
    w.bytes("auth_bytes", x["auth_bytes"])


def sasl_authenticate_response(w, x):
    w.i16("error_code", x["error_code"])
    w.str("error_message", x["error_message"])
    w.bytes("auth_bytes", x["auth_bytes"])
    if w.v >= 1:
        w.i64("session_lifetime_ms", x["session_lifetime_ms"])


def describe_configs_request(w, x):
    v = w.v
    w.arr("resources", x["resources"], lambda c, r: (
        c.i8("resource_type", r["resource_type"]),
        c.str("resource_name", r["resource_name"]),
        c.arr("configuration_keys", r["configuration_keys"], "str")))
    w.bool("include_synonyms", x["include_synonyms"])
    if v >= 3:
        w.bool("include_documentation", x["include_documentation"])


def describe_configs_response(w, x):
    v = w.v
    w.i32("throttle_time_ms", x["throttle_time_ms"])

    def config(c, k):
        c.str("name", k["name"]).str("value", k["value"])
        c.bool("read_only", k["read_only"])
        c.i8("config_source", k["config_source"])
        c.bool("is_sensitive", k["is_sensitive"])
        c.arr("synonyms", k["synonyms"], lambda c2, s: (
            c2.str("name", s["name"]), c2.str("value", s["value"]),
            c2.i8("source", s["source"])))
        if v >= 3:
            c.i8("config_type", k["config_type"])
            c.str("documentation", k["documentation"])

    w.arr("results", x["results"], lambda c, r: (
        c.i16("error_code", r["error_code"]),
        c.str("error_message", r["error_message"]),
        c.i8("resource_type", r["resource_type"]),
        c.str("resource_name", r["resource_name"]),
        c.arr("configs", r["configs"], config)))


# ------------------------------------------------------------ sample values

U1 = bytes(range(1, 17))
U2 = bytes(range(0xA0, 0xB0))

SAMPLES = {
    (18, "request"): {
        "client_software_name": "pykafka-c", "client_software_version": "0.1.0",
        "cluster_id": "cl-1", "node_id": 7,
    },
    (18, "response"): {
        "error_code": 0,
        "api_keys": [{"api_key": 0, "min_version": 3, "max_version": 13},
                     {"api_key": 18, "min_version": 0, "max_version": 5}],
        "throttle_time_ms": 12,
        "supported_features": [{"name": "metadata.version", "min_version": 1,
                                "max_version": 27}],
        "finalized_features_epoch": 42,
        "finalized_features": [],
        "zk_migration_ready": False,
    },
    (3, "request"): {
        "topics": [{"topic_id": U1, "name": "alpha"},
                   {"topic_id": U2, "name": "b\u00e9ta"}],
        "allow_auto_topic_creation": False,
        "include_cluster_authorized_operations": True,
        "include_topic_authorized_operations": True,
    },
    (3, "response"): {
        "throttle_time_ms": 3,
        "brokers": [{"node_id": 1, "host": "h1", "port": 9092, "rack": None},
                    {"node_id": 2, "host": "h2", "port": 9093,
                     "rack": "r2"}],
        "cluster_id": "cid", "controller_id": 2,
        "topics": [
            {"error_code": 0, "name": "t0", "topic_id": U1,
             "is_internal": False,
             "partitions": [
                 {"error_code": 0, "partition_index": 0, "leader_id": 1,
                  "leader_epoch": 5, "replica_nodes": [1, 2],
                  "isr_nodes": [1], "offline_replicas": [2]},
                 {"error_code": 9, "partition_index": 1, "leader_id": -1,
                  "leader_epoch": -1, "replica_nodes": [], "isr_nodes": [],
                  "offline_replicas": []}],
             "topic_authorized_operations": 0x0F0F},
            {"error_code": 3, "name": "t1", "topic_id": U2,
             "is_internal": True, "partitions": [],
             "topic_authorized_operations": -2147483648}],
        "cluster_authorized_operations": 77, "error_code": 0,
    },
    (2, "request"): {
        "replica_id": -1, "isolation_level": 1,
        "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "current_leader_epoch": 4,
             "timestamp": -2},
            {"partition_index": 3, "current_leader_epoch": -1,
             "timestamp": 1700000000000}]}],
        "timeout_ms": 1500,
    },
    (2, "response"): {
        "throttle_time_ms": 0,
        "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "error_code": 0, "timestamp": -1,
             "offset": 123456789012, "leader_epoch": 4}]}],
    },
    (0, "request"): {
        "transactional_id": None, "acks": -1, "timeout_ms": 30000,
        "topic_data": [{"name": "t", "topic_id": U1, "partition_data": [
            {"index": 0, "records": b"\x00batch-bytes\xff"},
            {"index": 1, "records": None}]}],
    },
    (0, "response"): {
        "responses": [{"name": "t", "topic_id": U1, "partition_responses": [
            {"index": 0, "error_code": 0, "base_offset": 100,
             "log_append_time_ms": -1, "log_start_offset": 0,
             "record_errors": [{"batch_index": 2,
                                "batch_index_error_message": None}],
             "error_message": None,
             "current_leader": {"leader_id": 3, "leader_epoch": 9}},
            {"index": 1, "error_code": 6, "base_offset": -1,
             "log_append_time_ms": 5, "log_start_offset": -1,
             "record_errors": [], "error_message": "not leader",
             "current_leader": {"leader_id": -1, "leader_epoch": -1}}]}],
        "throttle_time_ms": 10,
        "node_endpoints": [{"node_id": 3, "host": "n3", "port": 9094,
                            "rack": None}],
    },
    (1, "request"): {
        "cluster_id": "cid", "replica_id": -1,
        "replica_state": {"replica_id": -1, "replica_epoch": -1},
        "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52428800,
        "isolation_level": 1, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": "t", "topic_id": U1, "partitions": [
            {"partition": 0, "current_leader_epoch": 2, "fetch_offset": 77,
             "last_fetched_epoch": -1, "log_start_offset": -1,
             "partition_max_bytes": 1048576,
             "replica_directory_id": bytes(16),
             "high_watermark": 2**63 - 1},
            {"partition": 1, "current_leader_epoch": -1, "fetch_offset": 0,
             "last_fetched_epoch": 3, "log_start_offset": 10,
             "partition_max_bytes": 65536, "replica_directory_id": U2,
             "high_watermark": 500}]}],
        "forgotten_topics_data": [{"topic": "old", "topic_id": U2,
                                   "partitions": [4, 5]}],
        "rack_id": "rack-a",
    },
    (1, "response"): {
        "throttle_time_ms": 0, "error_code": 0, "session_id": 99,
        "responses": [{"topic": "t", "topic_id": U1, "partitions": [
            {"partition_index": 0, "error_code": 0, "high_watermark": 80,
             "last_stable_offset": 78, "log_start_offset": 0,
             "diverging_epoch": {"epoch": -1, "end_offset": -1},
             "current_leader": {"leader_id": 1, "leader_epoch": 2},
             "snapshot_id": {"end_offset": -1, "epoch": -1},
             "aborted_transactions": [{"producer_id": 5,
                                       "first_offset": 70}],
             "preferred_read_replica": -1,
             "records": b"\x00\x00\x00\x00\x00\x00\x00\x4erecords"},
            {"partition_index": 1, "error_code": 1, "high_watermark": -1,
             "last_stable_offset": -1, "log_start_offset": -1,
             "diverging_epoch": {"epoch": 4, "end_offset": 1000},
             "current_leader": {"leader_id": -1, "leader_epoch": -1},
             "snapshot_id": {"end_offset": 900, "epoch": 3},
             "aborted_transactions": None,
             "preferred_read_replica": 2, "records": None}]}],
        "node_endpoints": [],
    },
    (10, "request"): {
        "key": "grp", "key_type": 0, "coordinator_keys": ["grp", "grp2"],
    },
    (10, "response"): {
        "throttle_time_ms": 1, "error_code": 15, "error_message": None,
        "node_id": 2, "host": "coord", "port": 9092,
        "coordinators": [
            {"key": "grp", "node_id": 2, "host": "coord", "port": 9092,
             "error_code": 0, "error_message": None},
            {"key": "grp2", "node_id": -1, "host": "", "port": -1,
             "error_code": 15, "error_message": "not available"}],
    },
    (8, "request"): {
        "group_id": "grp", "generation_id_or_member_epoch": 3,
        "member_id": "m-1", "group_instance_id": None,
        "retention_time_ms": -1,
        "topics": [{"name": "t", "topic_id": U1, "partitions": [
            {"partition_index": 0, "committed_offset": 42,
             "committed_leader_epoch": -1, "committed_metadata": ""},
            {"partition_index": 2, "committed_offset": 7,
             "committed_leader_epoch": 1, "committed_metadata": None}]}],
    },
    (8, "response"): {
        "throttle_time_ms": 0,
        "topics": [{"name": "t", "topic_id": U1, "partitions": [
            {"partition_index": 0, "error_code": 0},
            {"partition_index": 2, "error_code": 22}]}],
    },
    (9, "request"): {
        "group_id": "grp",
        "topics": [{"name": "t", "partition_indexes": [0, 1, 2]}],
        "groups": [{"group_id": "grp", "member_id": None,
                    "member_epoch": -1,
                    "topics": [{"name": "t", "topic_id": U1,
                                "partition_indexes": [0, 1]}]},
                   {"group_id": "g2", "member_id": "m", "member_epoch": 4,
                    "topics": None}],
        "require_stable": True,
    },
    (9, "response"): {
        "throttle_time_ms": 0,
        "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "committed_offset": 42,
             "committed_leader_epoch": -1, "metadata": "",
             "error_code": 0},
            {"partition_index": 1, "committed_offset": -1,
             "committed_leader_epoch": -1, "metadata": None,
             "error_code": 0}]}],
        "error_code": 0,
        "groups": [{"group_id": "grp", "topics": [
            {"name": "t", "topic_id": U1, "partitions": [
                {"partition_index": 0, "committed_offset": 42,
                 "committed_leader_epoch": 3, "metadata": "m",
                 "error_code": 0}]}], "error_code": 0}],
    },
    (11, "request"): {
        "group_id": "grp", "session_timeout_ms": 10000,
        "rebalance_timeout_ms": 30000, "member_id": "",
        "group_instance_id": None, "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"\x00\x01meta"},
                      {"name": "roundrobin", "metadata": b""}],
        "reason": None,
    },
    (11, "response"): {
        "throttle_time_ms": 0, "error_code": 0, "generation_id": 1,
        "protocol_type": "consumer", "protocol_name": "range",
        "leader": "m-1", "skip_assignment": False, "member_id": "m-1",
        "members": [{"member_id": "m-1", "group_instance_id": None,
                     "metadata": b"\x00\x00"},
                    {"member_id": "m-2", "group_instance_id": "static-2",
                     "metadata": b"x"}],
    },
    (14, "request"): {
        "group_id": "grp", "generation_id": 1, "member_id": "m-1",
        "group_instance_id": None, "protocol_type": "consumer",
        "protocol_name": "range",
        "assignments": [{"member_id": "m-1", "assignment": b"\x00\x01a"}],
    },
    (14, "response"): {
        "throttle_time_ms": 0, "error_code": 0, "protocol_type": None,
        "protocol_name": "range", "assignment": b"\x00\x01assign",
    },
    (12, "request"): {
        "group_id": "grp", "generation_id": 5, "member_id": "m-1",
        "group_instance_id": "inst",
    },
    (12, "response"): {"throttle_time_ms": 0, "error_code": 27},
    (13, "request"): {
        "group_id": "grp", "member_id": "m-1",
        "members": [{"member_id": "m-1", "group_instance_id": None,
                     "reason": "bye"}],
    },
    (13, "response"): {
        "throttle_time_ms": 0, "error_code": 0,
        "members": [{"member_id": "m-1", "group_instance_id": None,
                     "error_code": 0}],
    },
    (16, "request"): {"states_filter": ["Stable"], "types_filter": []},
    (16, "response"): {
        "throttle_time_ms": 0, "error_code": 0,
        "groups": [{"group_id": "grp", "protocol_type": "consumer",
                    "group_state": "Stable", "group_type": "classic"}],
    },
    (15, "request"): {"groups": ["grp", "other"],
                      "include_authorized_operations": True},
    (15, "response"): {
        "throttle_time_ms": 0,
        "groups": [{"error_code": 0, "error_message": None,
                    "group_id": "grp", "group_state": "Stable",
                    "protocol_type": "consumer", "protocol_data": "range",
                    "members": [{"member_id": "m-1",
                                 "group_instance_id": None,
                                 "client_id": "pykafka", "client_host":
                                 "/127.0.0.1", "member_metadata": b"md",
                                 "member_assignment": b""}],
                    "authorized_operations": 0x500}],
    },
    (19, "request"): {
        "topics": [{"name": "new", "num_partitions": 3,
                    "replication_factor": 1, "assignments": [],
                    "configs": [{"name": "retention.ms", "value": "1000"},
                                {"name": "x", "value": None}]},
                   {"name": "manual", "num_partitions": -1,
                    "replication_factor": -1,
                    "assignments": [{"partition_index": 0,
                                     "broker_ids": [1, 2]}],
                    "configs": []}],
        "timeout_ms": 5000, "validate_only": False,
    },
    (19, "response"): {
        "throttle_time_ms": 0,
        "topics": [{"name": "new", "topic_id": U1, "error_code": 0,
                    "error_message": None, "topic_config_error_code": 0,
                    "num_partitions": 3, "replication_factor": 1,
                    "configs": [{"name": "retention.ms", "value": "1000",
                                 "read_only": False, "config_source": 1,
                                 "is_sensitive": False}]},
                   {"name": "bad", "topic_id": bytes(16), "error_code": 36,
                    "error_message": "exists",
                    "topic_config_error_code": 29,
                    "num_partitions": -1, "replication_factor": -1,
                    "configs": None}],
    },
    (20, "request"): {
        "topics": [{"name": "t", "topic_id": bytes(16)},
                   {"name": None, "topic_id": U2}],
        "topic_names": ["t", "u"], "timeout_ms": 3000,
    },
    (20, "response"): {
        "throttle_time_ms": 0,
        "responses": [{"name": "t", "topic_id": U1, "error_code": 0,
                       "error_message": None},
                      {"name": "u", "topic_id": bytes(16), "error_code": 3,
                       "error_message": "unknown"}],
    },
    (22, "request"): {
        "transactional_id": None, "transaction_timeout_ms": 60000,
        "producer_id": -1, "producer_epoch": -1, "enable_2pc": False,
        "keep_prepared_txn": True,
    },
    (22, "response"): {
        "throttle_time_ms": 0, "error_code": 0, "producer_id": 4000,
        "producer_epoch": 0, "ongoing_txn_producer_id": -1,
        "ongoing_txn_producer_epoch": -1,
    },
    (24, "request"): {
        "transactions": [{
            "transactional_id": "txn-a", "producer_id": 4000,
            "producer_epoch": 2, "verify_only": True,
            "topics": [{"name": "t", "partitions": [0, 3]}]}],
        "v3_and_below_transactional_id": "txn-a",
        "v3_and_below_producer_id": 4000, "v3_and_below_producer_epoch": 2,
        "v3_and_below_topics": [{"name": "t", "partitions": [0, 3]},
                                {"name": "u", "partitions": []}],
    },
    (24, "response"): {
        "throttle_time_ms": 0, "error_code": 0,
        "results_by_transaction": [{
            "transactional_id": "txn-a",
            "topic_results": [{"name": "t", "results_by_partition": [
                {"partition_index": 0, "partition_error_code": 0}]}]}],
        "results_by_topic_v3_and_below": [{
            "name": "t", "results_by_partition": [
                {"partition_index": 0, "partition_error_code": 0},
                {"partition_index": 3, "partition_error_code": 51}]}],
    },
    (25, "request"): {"transactional_id": "txn-a", "producer_id": 4000,
                      "producer_epoch": 2, "group_id": "g"},
    (25, "response"): {"throttle_time_ms": 5, "error_code": 51},
    (26, "request"): {"transactional_id": "txn-a", "producer_id": 4000,
                      "producer_epoch": 2, "committed": True},
    (26, "response"): {"throttle_time_ms": 0, "error_code": 0,
                       "producer_id": 4000, "producer_epoch": 3},
    (28, "request"): {
        "transactional_id": "txn-a", "group_id": "g", "producer_id": 4000,
        "producer_epoch": 2, "generation_id_or_member_epoch": 7,
        "member_id": "m-1", "group_instance_id": None,
        "topics": [{"name": "t", "topic_id": bytes(range(16)),
                    "partitions": [{
                        "partition_index": 1, "committed_offset": 42,
                        "committed_leader_epoch": -1,
                        "committed_metadata": None}]}],
    },
    (28, "response"): {
        "throttle_time_ms": 0,
        "topics": [{"name": "t", "topic_id": bytes(range(16)),
                    "partitions": [{"partition_index": 1,
                                    "error_code": 0}]}],
    },
    (17, "request"): {"mechanism": "PLAIN"},
    (17, "response"): {"error_code": 0,
                       "mechanisms": ["PLAIN", "SCRAM-SHA-256"]},
    (36, "request"): {"auth_bytes": b"\x00user\x00pass"},
    (36, "response"): {"error_code": 0, "error_message": None,
                       "auth_bytes": b"", "session_lifetime_ms": 3600000},
    (68, "request"): {
        "group_id": "g", "member_id": "m-1", "member_epoch": 3,
        "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 60000,
        "subscribed_topic_names": ["t"], "subscribed_topic_regex": None,
        "server_assignor": "uniform",
        "topic_partitions": [{"topic_id": bytes(range(16)),
                              "partitions": [0, 2]}],
    },
    (68, "response"): {
        "throttle_time_ms": 0, "error_code": 0, "error_message": None,
        "member_id": "m-1", "member_epoch": 4, "heartbeat_interval_ms": 500,
        "assignment": {"topic_partitions": [
            {"topic_id": bytes(range(16)), "partitions": [1]}]},
    },
    (32, "request"): {
        "resources": [{"resource_type": 2, "resource_name": "t",
                       "configuration_keys": None},
                      {"resource_type": 4, "resource_name": "1",
                       "configuration_keys": ["log.dirs"]}],
        "include_synonyms": True, "include_documentation": False,
    },
    (32, "response"): {
        "throttle_time_ms": 0,
        "results": [{"error_code": 0, "error_message": None,
                     "resource_type": 2, "resource_name": "t",
                     "configs": [{"name": "cleanup.policy",
                                  "value": "delete", "read_only": False,
                                  "config_source": 5, "is_sensitive": False,
                                  "synonyms": [{"name": "log.cleanup.policy",
                                                "value": "delete",
                                                "source": 5}],
                                  "config_type": 2,
                                  "documentation": None}]}],
    },
}

BUILDERS = {
    (0, "request"): produce_request, (0, "response"): produce_response,
    (1, "request"): fetch_request, (1, "response"): fetch_response,
    (2, "request"): list_offsets_request,
    (2, "response"): list_offsets_response,
    (3, "request"): metadata_request, (3, "response"): metadata_response,
    (8, "request"): offset_commit_request,
    (8, "response"): offset_commit_response,
    (9, "request"): offset_fetch_request,
    (9, "response"): offset_fetch_response,
    (10, "request"): find_coordinator_request,
    (10, "response"): find_coordinator_response,
    (11, "request"): join_group_request,
    (11, "response"): join_group_response,
    (12, "request"): heartbeat_request, (12, "response"): heartbeat_response,
    (13, "request"): leave_group_request,
    (13, "response"): leave_group_response,
    (14, "request"): sync_group_request,
    (14, "response"): sync_group_response,
    (15, "request"): describe_groups_request,
    (15, "response"): describe_groups_response,
    (16, "request"): list_groups_request,
    (16, "response"): list_groups_response,
    (17, "request"): sasl_handshake_request,
    (17, "response"): sasl_handshake_response,
    (18, "request"): api_versions_request,
    (18, "response"): api_versions_response,
    (19, "request"): create_topics_request,
    (19, "response"): create_topics_response,
    (20, "request"): delete_topics_request,
    (20, "response"): delete_topics_response,
    (22, "request"): init_producer_id_request,
    (22, "response"): init_producer_id_response,
    (24, "request"): add_partitions_to_txn_request,
    (24, "response"): add_partitions_to_txn_response,
    (25, "request"): add_offsets_to_txn_request,
    (25, "response"): throttle_and_error_response,
    (26, "request"): end_txn_request,
    (26, "response"): end_txn_response,
    (28, "request"): txn_offset_commit_request,
    (28, "response"): txn_offset_commit_response,
    (32, "request"): describe_configs_request,
    (32, "response"): describe_configs_response,
    (36, "request"): sasl_authenticate_request,
    (36, "response"): sasl_authenticate_response,
    (68, "request"): consumer_group_heartbeat_request,
    (68, "response"): consumer_group_heartbeat_response,
}


def build(key, kind, v, values=None):
    """(expected bytes, expected dict) of message `kind` of `key` at v."""
    w = W(v, is_flexible(key, v))
    BUILDERS[(key, kind)](w, SAMPLES[(key, kind)] if values is None
                          else values)
    w.end()
    return bytes(w.buf), w.d


def all_versions():
    """Every (key, kind, version) the specs define."""
    out = []
    for key, (_name, lo, hi, _ff) in sorted(APIS.items()):
        for kind in ("request", "response"):
            for v in range(lo, hi + 1):
                out.append((key, kind, v))
    return out


def key_versions():
    """The versions that matter per API: the 4.x minimum, the highest
    version 3.9 and 4.x share, the 4.x maximum, the first flexible version
    and the last non-flexible one."""
    out = []
    for key, (_name, lo, hi, ff) in sorted(APIS.items()):
        vs = {lo, COMMON_MAX[key], hi}
        if ff is not None:
            vs.add(ff)
            if ff - 1 >= lo:
                vs.add(ff - 1)
        out.append((key, sorted(vs)))
    return out
