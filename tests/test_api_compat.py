"""Pin pykafka_c's public surface against pykafka 2.8: the contract's
tables (../shared/reference/pykafka-api.md: names, signatures, defaults)
and, at the end, a comparison with the real pykafka 2.8.0 package (from
its pinned sdist): signatures, defaults, exception tree, ERROR_CODES,
constants."""

import inspect
import json
import os
import subprocess
import sys
import tarfile

import pytest

pytestmark = pytest.mark.unit

# (qualified name, [(parameter, default or REQUIRED), ...]) from the contract.
REQUIRED = object()

SIGNATURES = {
    "pykafka_c.client.KafkaClient": [
        ("hosts", "127.0.0.1:9092"), ("zookeeper_hosts", None),
        ("socket_timeout_ms", 30000),
        ("offsets_channel_socket_timeout_ms", 10000),
        ("use_greenlets", False), ("exclude_internal_topics", True),
        ("source_address", ""), ("ssl_config", None),
        ("broker_version", "0.9.0")],
    "pykafka_c.cluster.Cluster": [
        ("hosts", REQUIRED), ("handler", None),
        ("socket_timeout_ms", 30000),
        ("offsets_channel_socket_timeout_ms", 10000),
        ("exclude_internal_topics", True), ("source_address", ""),
        ("zookeeper_hosts", None), ("ssl_config", None),
        ("broker_version", "0.9.0")],
    "pykafka_c.broker.Broker": [
        ("id_", REQUIRED), ("host", REQUIRED), ("port", REQUIRED),
        ("handler", None), ("socket_timeout_ms", 30000),
        ("offsets_channel_socket_timeout_ms", 10000),
        ("buffer_size", 1048576), ("source_host", ""), ("source_port", 0),
        ("ssl_config", None), ("broker_version", "0.9.0"),
        ("api_versions", None)],
    "pykafka_c.topic.Topic.get_simple_consumer": [
        ("self", REQUIRED), ("consumer_group", None),
        ("use_rdkafka", False)],
    "pykafka_c.topic.Topic.get_balanced_consumer": [
        ("self", REQUIRED), ("consumer_group", REQUIRED),
        ("managed", False)],
    "pykafka_c.topic.Topic.get_producer": [
        ("self", REQUIRED), ("use_rdkafka", False)],
    "pykafka_c.topic.Topic.fetch_offset_limits": [
        ("self", REQUIRED), ("offsets_before", REQUIRED),
        ("max_offsets", 1)],
    "pykafka_c.partition.Partition.fetch_offset_limit": [
        ("self", REQUIRED), ("offsets_before", REQUIRED),
        ("max_offsets", 1)],
    "pykafka_c.simpleconsumer.SimpleConsumer": [
        ("topic", REQUIRED), ("cluster", REQUIRED),
        ("consumer_group", None), ("partitions", None),
        ("fetch_message_max_bytes", 1048576), ("num_consumer_fetchers", 1),
        ("auto_commit_enable", False), ("auto_commit_interval_ms", 60000),
        ("queued_max_messages", 2000), ("fetch_min_bytes", 1),
        ("fetch_error_backoff_ms", 500), ("fetch_wait_max_ms", 100),
        ("offsets_channel_backoff_ms", 1000),
        ("offsets_commit_max_retries", 5), ("auto_offset_reset", -2),
        ("consumer_timeout_ms", -1), ("auto_start", True),
        ("reset_offset_on_start", False), ("compacted_topic", False),
        ("generation_id", -1), ("consumer_id", b""),
        ("deserializer", None), ("reset_offset_on_fetch", True)],
    "pykafka_c.producer.Producer": [
        ("cluster", REQUIRED), ("topic", REQUIRED), ("partitioner", None),
        ("compression", 0), ("max_retries", 3), ("retry_backoff_ms", 100),
        ("required_acks", 1), ("ack_timeout_ms", 10000),
        ("max_queued_messages", 100000), ("min_queued_messages", 70000),
        ("linger_ms", 5000), ("queue_empty_timeout_ms", 0),
        ("block_on_queue_full", True), ("max_request_size", 1000012),
        ("sync", False), ("delivery_reports", False),
        ("pending_timeout_ms", 5000), ("auto_start", True),
        ("serializer", None)],
    "pykafka_c.managedbalancedconsumer.ManagedBalancedConsumer": [
        ("topic", REQUIRED), ("cluster", REQUIRED),
        ("consumer_group", REQUIRED), ("fetch_message_max_bytes", 1048576),
        ("num_consumer_fetchers", 1), ("auto_commit_enable", False),
        ("auto_commit_interval_ms", 60000), ("queued_max_messages", 2000),
        ("fetch_min_bytes", 1), ("fetch_error_backoff_ms", 500),
        ("fetch_wait_max_ms", 100), ("offsets_channel_backoff_ms", 1000),
        ("offsets_commit_max_retries", 5), ("auto_offset_reset", -2),
        ("consumer_timeout_ms", -1), ("rebalance_max_retries", 5),
        ("rebalance_backoff_ms", 2000), ("auto_start", True),
        ("reset_offset_on_start", False), ("post_rebalance_callback", None),
        ("use_rdkafka", False), ("compacted_topic", True),
        ("heartbeat_interval_ms", 3000)],
    "pykafka_c.balancedconsumer.BalancedConsumer": [
        ("topic", REQUIRED), ("cluster", REQUIRED),
        ("consumer_group", REQUIRED), ("fetch_message_max_bytes", 1048576),
        ("num_consumer_fetchers", 1), ("auto_commit_enable", False),
        ("auto_commit_interval_ms", 60000), ("queued_max_messages", 2000),
        ("fetch_min_bytes", 1), ("fetch_error_backoff_ms", 500),
        ("fetch_wait_max_ms", 100), ("offsets_channel_backoff_ms", 1000),
        ("offsets_commit_max_retries", 5), ("auto_offset_reset", -2),
        ("consumer_timeout_ms", -1), ("rebalance_max_retries", 5),
        ("rebalance_backoff_ms", 2000),
        ("zookeeper_connection_timeout_ms", 6000),
        ("zookeeper_connect", None), ("zookeeper_hosts", "127.0.0.1:2181"),
        ("zookeeper", None), ("auto_start", True),
        ("reset_offset_on_start", False), ("post_rebalance_callback", None),
        ("use_rdkafka", False), ("compacted_topic", False)],
    "pykafka_c.partitioners.HashingPartitioner": [("hash_func", None)],
    "pykafka_c.partitioners.GroupHashingPartitioner": [
        ("hash_func", REQUIRED), ("group_size", 1)],
    "pykafka_c.connection.SslConfig": [
        ("cafile", REQUIRED), ("certfile", None), ("keyfile", None),
        ("password", None)],
    # pykafka's utility modules, handlers, rdkafka classes and test helper
    "pykafka_c.utils.compression.encode_gzip": [("buff", REQUIRED)],
    "pykafka_c.utils.compression.decode_gzip": [("buff", REQUIRED)],
    "pykafka_c.utils.compression.encode_snappy": [
        ("buff", REQUIRED), ("xerial_compatible", False),
        ("xerial_blocksize", 32768)],
    "pykafka_c.utils.compression.decode_snappy": [("buff", REQUIRED)],
    "pykafka_c.utils.compression.encode_lz4": [("buff", REQUIRED)],
    "pykafka_c.utils.compression.decode_lz4": [("buff", REQUIRED)],
    "pykafka_c.utils.compression.decode_lz4f": [("buff", REQUIRED)],
    "pykafka_c.utils.compression.encode_lz4_old_kafka": [("buff", REQUIRED)],
    "pykafka_c.utils.compression.decode_lz4_old_kafka": [("buff", REQUIRED)],
    "pykafka_c.utils.error_handlers.handle_partition_responses": [
        ("error_handlers", REQUIRED), ("parts_by_error", None),
        ("success_handler", None), ("response", None),
        ("partitions_by_id", None)],
    "pykafka_c.utils.error_handlers.build_parts_by_error": [
        ("response", REQUIRED), ("partitions_by_id", REQUIRED)],
    "pykafka_c.utils.error_handlers.raise_error": [
        ("error", REQUIRED), ("info", "")],
    "pykafka_c.utils.error_handlers.valid_int": [
        ("param", REQUIRED), ("allow_zero", False),
        ("allow_negative", False)],
    "pykafka_c.utils.socket.recvall_into": [
        ("socket", REQUIRED), ("bytea", REQUIRED), ("size", REQUIRED)],
    "pykafka_c.utils.struct_helpers.unpack_from": [
        ("fmt", REQUIRED), ("buff", REQUIRED), ("offset", 0)],
    "pykafka_c.utils.msg_protocol_version": [("broker_version", REQUIRED)],
    "pykafka_c.utils.ApiVersionAware.get_version_impl": [
        ("api_versions", REQUIRED)],
    "pykafka_c.utils.serialize_utf8": [
        ("value", REQUIRED), ("partition_key", REQUIRED)],
    "pykafka_c.utils.deserialize_utf8": [
        ("value", REQUIRED), ("partition_key", REQUIRED)],
    "pykafka_c.handlers.ResponseFuture": [("handler", REQUIRED)],
    "pykafka_c.handlers.ResponseFuture.get": [
        ("self", REQUIRED), ("response_cls", None), ("timeout", None)],
    "pykafka_c.handlers.ResponseFuture.set_response": [
        ("self", REQUIRED), ("response", REQUIRED)],
    "pykafka_c.handlers.ResponseFuture.set_error": [
        ("self", REQUIRED), ("error", REQUIRED)],
    "pykafka_c.handlers.ThreadingHandler.spawn": [
        ("self", REQUIRED), ("target", REQUIRED)],
    "pykafka_c.handlers.ThreadingHandler.sleep": [
        ("self", REQUIRED), ("seconds", 0)],
    "pykafka_c.handlers.RequestHandler": [
        ("handler", REQUIRED), ("connection", REQUIRED)],
    "pykafka_c.handlers.RequestHandler.request": [
        ("self", REQUIRED), ("request", REQUIRED), ("has_response", True)],
    "pykafka_c.rdkafka.RdKafkaSimpleConsumer": [
        ("topic", REQUIRED), ("cluster", REQUIRED),
        ("consumer_group", None), ("partitions", None),
        ("fetch_message_max_bytes", 1048576), ("num_consumer_fetchers", 1),
        ("auto_commit_enable", False), ("auto_commit_interval_ms", 60000),
        ("queued_max_messages", 100000), ("fetch_min_bytes", 1),
        ("fetch_error_backoff_ms", 500), ("fetch_wait_max_ms", 100),
        ("offsets_channel_backoff_ms", 1000),
        ("offsets_commit_max_retries", 5), ("auto_offset_reset", -2),
        ("consumer_timeout_ms", -1), ("auto_start", True),
        ("reset_offset_on_start", False), ("compacted_topic", False),
        ("generation_id", -1), ("consumer_id", b""),
        ("deserializer", None), ("reset_offset_on_fetch", True)],
    "pykafka_c.rdkafka.RdKafkaProducer": [
        ("cluster", REQUIRED), ("topic", REQUIRED), ("partitioner", None),
        ("compression", 0), ("max_retries", 3), ("retry_backoff_ms", 100),
        ("required_acks", 1), ("ack_timeout_ms", 10000),
        ("max_queued_messages", 100000), ("min_queued_messages", 2000),
        ("linger_ms", 5000), ("max_request_size", 1000012),
        ("sync", False), ("delivery_reports", False), ("auto_start", True),
        ("serializer", None)],
    "pykafka_c.rdkafka.helpers.rdk_ssl_config": [("cluster", REQUIRED)],
    "pykafka_c.test.utils.retry": [
        ("assertion_callable", REQUIRED), ("retry_time", 10),
        ("wait_between_tries", 0.1),
        ("exception_to_retry", AssertionError)],
    "pykafka_c.cli.kafka_tools.fetch_offsets": [
        ("client", REQUIRED), ("topic", REQUIRED), ("offset", REQUIRED)],
    "pykafka_c.cli.kafka_tools.fetch_consumer_lag": [
        ("client", REQUIRED), ("topic", REQUIRED),
        ("consumer_group", REQUIRED)],
}

# Callables whose parameter list is exactly the listed one (pykafka raises
# TypeError for anything else, e.g. the rdkafka producer's missing
# block_on_queue_full).
EXACT = {"pykafka_c.rdkafka.RdKafkaProducer",
         "pykafka_c.rdkafka.RdKafkaSimpleConsumer",
         "pykafka_c.utils.compression.encode_snappy",
         "pykafka_c.utils.struct_helpers.unpack_from",
         "pykafka_c.utils.socket.recvall_into",
         "pykafka_c.test.utils.retry"}

# Parameters pykafka has after the ones listed (order-insensitive tail).
TAILS = {
    "pykafka_c.managedbalancedconsumer.ManagedBalancedConsumer":
        {"membership_protocol", "deserializer", "reset_offset_on_fetch"},
    "pykafka_c.balancedconsumer.BalancedConsumer":
        {"membership_protocol", "deserializer", "reset_offset_on_fetch"},
}


def _resolve(qualname):
    parts = qualname.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            obj = __import__(modname, fromlist=["_"])
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(qualname)


@pytest.mark.parametrize("qualname", sorted(SIGNATURES))
def test_signature_prefix_matches_pykafka(qualname):
    obj = _resolve(qualname)
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())
    expected = SIGNATURES[qualname]
    assert len(params) >= len(expected), (qualname, sig)
    for (name, default), param in zip(expected, params):
        assert param.name == name, (qualname, name, sig)
        if default is REQUIRED:
            assert param.default is inspect.Parameter.empty, (qualname, name)
        else:
            assert param.default == default, (qualname, name, param.default)
    rest = {p.name for p in params[len(expected):]
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    assert TAILS.get(qualname, set()) <= rest, (qualname, rest)
    if qualname in EXACT:
        assert len(params) == len(expected), (qualname, sig)


def test_package_exports():
    import pykafka_c
    for name in ["Broker", "SimpleConsumer", "Cluster", "Partition",
                 "Producer", "Topic", "SslConfig", "KafkaClient",
                 "BalancedConsumer", "ManagedBalancedConsumer",
                 "RangeProtocol", "RoundRobinProtocol"]:
        assert name in pykafka_c.__all__, name
        assert getattr(pykafka_c, name) is not None
    assert isinstance(pykafka_c.__version__, str)


def test_pykafka_error_codes_kept():
    from pykafka_c import exceptions as e
    pykafka_codes = {
        -1: "UnknownError", 1: "OffsetOutOfRangeError",
        2: "InvalidMessageError", 3: "UnknownTopicOrPartition",
        4: "InvalidMessageSize", 5: "LeaderNotAvailable",
        6: "NotLeaderForPartition", 7: "RequestTimedOut",
        10: "MessageSizeTooLarge", 12: "OffsetMetadataTooLarge",
        14: "GroupLoadInProgress", 15: "GroupCoordinatorNotAvailable",
        16: "NotCoordinatorForGroup", 17: "InvalidTopic",
        22: "IllegalGeneration", 23: "InconsistentGroupProtocol",
        25: "UnknownMemberId", 26: "InvalidSessionTimeout",
        27: "RebalanceInProgress", 29: "TopicAuthorizationFailed",
        30: "GroupAuthorizationFailed"}
    for code, name in pykafka_codes.items():
        cls = getattr(e, name)
        assert e.ERROR_CODES[code] is cls
        assert cls.ERROR_CODE == code
        assert issubclass(cls, e.ProtocolClientError)
        assert issubclass(cls, e.KafkaException)
    for name in ["NoBrokersAvailableError", "LeaderNotFoundError",
                 "SocketDisconnectedError", "ProduceFailureError",
                 "ConsumerStoppedException", "NoMessagesConsumedError",
                 "MessageSetDecodeFailure", "ProducerQueueFullError",
                 "ProducerStoppedException", "OffsetRequestFailedError",
                 "PartitionOwnedError", "RdKafkaException",
                 "RdKafkaStoppedException"]:
        assert issubclass(getattr(e, name), e.KafkaException), name
    assert not issubclass(e.UnicodeException, e.KafkaException)


def test_every_error_code_maps_to_a_class():
    from pykafka_c import exceptions as e
    for code in range(-1, 200):
        if code == 0:
            continue
        cls = e.ERROR_CODES[code]
        assert issubclass(cls, e.ProtocolClientError)
        assert cls.ERROR_CODE == code
        exc = e.error_for_code(code, "context")
        assert isinstance(exc, cls)
        assert str(code) in str(exc)


def test_common_constants():
    from pykafka_c.common import CompressionType, OffsetType, EPOCH
    assert (OffsetType.EARLIEST, OffsetType.LATEST) == (-2, -1)
    assert (CompressionType.NONE, CompressionType.GZIP,
            CompressionType.SNAPPY, CompressionType.LZ4,
            CompressionType.ZSTD) == (0, 1, 2, 3, 4)
    assert EPOCH.year == 1970 and EPOCH.tzinfo is None


def test_install_as_pykafka(monkeypatch):
    for name in list(sys.modules):
        if name == "pykafka" or name.startswith("pykafka."):
            monkeypatch.delitem(sys.modules, name)
    import pykafka_c
    pykafka_c.install_as_pykafka()
    try:
        import pykafka
        from pykafka import KafkaClient
        from pykafka.common import OffsetType
        from pykafka.exceptions import (SocketDisconnectedError,
                                        NoBrokersAvailableError)
        import pykafka_c.exceptions as real
        assert pykafka is pykafka_c
        assert KafkaClient is pykafka_c.KafkaClient
        assert OffsetType is pykafka_c.common.OffsetType
        assert SocketDisconnectedError is real.SocketDisconnectedError
        assert NoBrokersAvailableError is real.NoBrokersAvailableError
        import pykafka.simpleconsumer
        assert pykafka.simpleconsumer.SimpleConsumer is \
            pykafka_c.SimpleConsumer
    finally:
        from pykafka_c import _install
        if _install._finder in sys.meta_path:
            sys.meta_path.remove(_install._finder)
        for name in list(sys.modules):
            if name == "pykafka" or name.startswith("pykafka."):
                del sys.modules[name]


# pykafka 2.8's modules and the public names each holds
# (../shared/reference/pykafka-api.md section 1).
MODULE_TABLE = {
    "client": ["KafkaClient"],
    "cluster": ["Cluster", "TopicDict"],
    "broker": ["Broker"],
    "topic": ["Topic", "rdkafka"],
    "partition": ["Partition"],
    "simpleconsumer": ["SimpleConsumer", "OwnedPartition"],
    "balancedconsumer": ["BalancedConsumer"],
    "managedbalancedconsumer": ["ManagedBalancedConsumer"],
    "membershipprotocol": ["GroupMembershipProtocol",
                           "decide_partitions_range",
                           "decide_partitions_roundrobin", "RangeProtocol",
                           "RoundRobinProtocol"],
    "producer": ["Producer"],
    "partitioners": ["BasePartitioner", "RandomPartitioner",
                     "HashingPartitioner", "hashing_partitioner",
                     "GroupHashingPartitioner"],
    "common": ["Message", "CompressionType", "OffsetType", "EPOCH"],
    "exceptions": ["ERROR_CODES", "KafkaException", "ProtocolClientError"],
    "connection": ["SslConfig", "BrokerConnection"],
    "handlers": ["ResponseFuture", "Handler", "ThreadingHandler",
                 "RequestHandler"],
    "protocol": ["Message"],
    "utils": ["Serializable", "ApiVersionAware", "serialize_utf8",
              "deserialize_utf8", "msg_protocol_version", "VERSIONS_CACHE"],
    "utils.compat": ["PY3", "IS_PYPY", "get_bytes", "get_string", "Queue",
                     "Empty", "Semaphore", "range", "iteritems",
                     "itervalues", "iterkeys", "buffer"],
    "utils.compression": ["encode_gzip", "decode_gzip", "encode_snappy",
                          "decode_snappy", "encode_lz4", "decode_lz4",
                          "decode_lz4f", "encode_lz4_old_kafka",
                          "decode_lz4_old_kafka"],
    "utils.error_handlers": ["handle_partition_responses",
                             "build_parts_by_error", "raise_error",
                             "valid_int"],
    "utils.socket": ["recvall_into"],
    "utils.struct_helpers": ["unpack_from"],
    "rdkafka": ["RdKafkaProducer", "RdKafkaSimpleConsumer"],
    "rdkafka.helpers": ["rdk_ssl_config"],
    "cli.kafka_tools": ["main"],
    "test.kafka_instance": ["KafkaInstance", "KafkaConnection", "CertManager"],
    "test.utils": ["get_cluster", "stop_cluster", "retry"],
}


@pytest.fixture
def as_pykafka(monkeypatch):
    for name in list(sys.modules):
        if name == "pykafka" or name.startswith("pykafka."):
            monkeypatch.delitem(sys.modules, name)
    import pykafka_c
    pykafka_c.install_as_pykafka()
    try:
        yield pykafka_c
    finally:
        from pykafka_c import _install
        if _install._finder in sys.meta_path:
            sys.meta_path.remove(_install._finder)
        for name in list(sys.modules):
            if name == "pykafka" or name.startswith("pykafka."):
                del sys.modules[name]


@pytest.mark.parametrize("module", sorted(MODULE_TABLE))
def test_pykafka_module_table_imports_under_install(as_pykafka, module):
    import importlib
    alias = importlib.import_module("pykafka." + module)
    real = importlib.import_module("pykafka_c." + module)
    assert alias is real
    assert real.__name__ == real.__spec__.name == "pykafka_c." + module
    for name in MODULE_TABLE[module]:
        assert hasattr(alias, name), (module, name)
    # "from pykafka.<parent> import <leaf>" gives the same module
    parent, _, leaf = ("pykafka." + module).rpartition(".")
    assert getattr(importlib.import_module(parent), leaf) is real


def test_pykafka_names_resolve_from_import_statements(as_pykafka):
    from pykafka.utils.compression import encode_snappy, decode_snappy
    from pykafka.utils.error_handlers import valid_int
    from pykafka.simpleconsumer import valid_int as old_valid_int
    from pykafka.rdkafka import RdKafkaProducer, RdKafkaSimpleConsumer
    from pykafka.handlers import ThreadingHandler
    from pykafka.topic import rdkafka
    from pykafka.test.utils import retry
    from pykafka.cli import kafka_tools
    import pykafka_c
    assert decode_snappy(encode_snappy(b"x" * 100, True)) == b"x" * 100
    assert valid_int is old_valid_int
    assert issubclass(RdKafkaProducer, pykafka_c.Producer)
    assert issubclass(RdKafkaSimpleConsumer, pykafka_c.SimpleConsumer)
    assert rdkafka is pykafka_c.rdkafka
    assert ThreadingHandler is pykafka_c.handlers.ThreadingHandler
    assert retry is pykafka_c.test.utils.retry
    assert kafka_tools.main is pykafka_c.cli.kafka_tools.main


def test_kafka_tools_parser_has_pykafkas_commands_and_options():
    from pykafka_c.cli import kafka_tools
    parser = kafka_tools._get_arg_parser()
    commands = ["consume_topic", "desc_topic",
                "print_managed_consumer_groups", "print_consumer_lag",
                "print_offsets", "print_topics", "reset_offsets",
                "create_topic", "delete_topic"]
    for cmd, extra in [("consume_topic", ["t", "-l", "3"]),
                       ("desc_topic", ["t"]),
                       ("print_managed_consumer_groups", ["t"]),
                       ("print_consumer_lag", ["t", "g"]),
                       ("print_offsets", ["t", "earliest"]),
                       ("print_topics", []),
                       ("reset_offsets", ["t", "g", "latest"]),
                       ("create_topic", ["t", "-p", "3", "-r", "1", "-c",
                                         '{"retention.ms": "1000"}']),
                       ("delete_topic", ["t", "-t", "100"])]:
        args = parser.parse_args(["-b", "h:1", "-o", "2.0.0", cmd] + extra)
        assert args.command == cmd and args.host == "h:1"
        assert args.broker_version == "2.0.0"
        assert args.func is getattr(kafka_tools, cmd)
        commands.remove(cmd)
    assert commands == []
    args = parser.parse_args(["create_topic", "t"])
    assert (args.topic, args.num_partitions, args.replication_factor,
            args.timeout) == (b"t", 1, 1, 5000)
    assert parser.parse_args(["print_topics"]).host == "localhost:9092"
    args = parser.parse_args(["create_topic", "t", "-a", '{"0": [1]}'])
    assert args.replica_assignment == {"0": [1]}
    with pytest.raises(SystemExit):
        parser.parse_args(["create_topic", "t", "-c", "[1]"])


def test_kafka_tools_refuses_old_broker_version_for_admin():
    from pykafka_c.cli import kafka_tools
    parser = kafka_tools._get_arg_parser()
    for cmd in ("create_topic", "delete_topic"):
        args = parser.parse_args(["-o", "0.10.0", cmd, "t"])
        with pytest.raises(ValueError, match="0.10.1"):
            args.func(None, args)


def test_kafka_tools_table_layout():
    from pykafka_c.cli.kafka_tools import _table
    out = _table([(1, "ab", None), (10, "c", [1, 2])], ["N", "Name", "X"])
    assert out.splitlines() == [
        " N  Name  X",
        "--  ----  ------",
        " 1  ab",
        "10  c     [1, 2]"]


# pykafka 2.8's pykafka.protocol package: every submodule and the names
# each defines (classes, namedtuples, constants).
PROTOCOL_SUBMODULES = {
    "base": ["Request", "Response", "MemberAssignment",
             "ConsumerGroupProtocolMetadata", "ApiVersionsSpec",
             "API_VERSIONS_080", "API_VERSIONS_090"],
    "admin": ["ListGroupsRequest", "GroupListing", "ListGroupsResponse",
              "DescribeGroupsRequest", "GroupMember",
              "DescribeGroupResponse", "DescribeGroupsResponse",
              "CreateTopicRequest", "CreateTopicsRequest",
              "CreateTopicsResponse", "DeleteTopicsRequest",
              "DeleteTopicsResponse", "ApiVersionsRequest",
              "ApiVersionsSpec", "ApiVersionsResponse",
              "ApiVersionsResponseV1"],
    "fetch": ["PartitionFetchRequest", "FetchRequest",
              "FetchPartitionResponse", "FetchResponse", "FetchResponseV1",
              "FetchResponseV2"],
    "group_membership": ["ConsumerGroupProtocolMetadata",
                         "JoinGroupRequest", "JoinGroupResponse",
                         "MemberAssignment", "SyncGroupRequest",
                         "SyncGroupResponse", "HeartbeatRequest",
                         "HeartbeatResponse", "LeaveGroupRequest",
                         "LeaveGroupResponse"],
    "message": ["Message", "MessageSet"],
    "metadata": ["MetadataRequest", "MetadataRequestV1",
                 "MetadataRequestV2", "MetadataRequestV3",
                 "MetadataRequestV4", "MetadataRequestV5", "BrokerMetadata",
                 "BrokerMetadataV1", "TopicMetadata", "TopicMetadataV1",
                 "PartitionMetadata", "PartitionMetadataV5",
                 "MetadataResponse", "MetadataResponseV1",
                 "MetadataResponseV2", "MetadataResponseV3",
                 "MetadataResponseV4", "MetadataResponseV5"],
    "offset": ["PartitionOffsetRequest", "ListOffsetRequest",
               "ListOffsetRequestV1", "OffsetPartitionResponse",
               "OffsetPartitionResponseV1", "ListOffsetResponse",
               "ListOffsetResponseV1"],
    "offset_commit": ["GroupCoordinatorRequest", "GroupCoordinatorResponse",
                      "PartitionOffsetCommitRequest", "OffsetCommitRequest",
                      "OffsetCommitPartitionResponse",
                      "OffsetCommitResponse", "PartitionOffsetFetchRequest",
                      "OffsetFetchRequest", "OffsetFetchRequestV1",
                      "OffsetFetchRequestV2", "OffsetFetchPartitionResponse",
                      "OffsetFetchResponse", "OffsetFetchResponseV1",
                      "OffsetFetchResponseV2"],
    "produce": ["ProduceRequest", "ProducePartitionResponse",
                "ProduceResponse"],
}

# pykafka 2.8's pykafka.protocol.__all__
PROTOCOL_ALL = [
    "MetadataRequest", "MetadataResponse", "ProduceRequest",
    "ProduceResponse", "PartitionFetchRequest", "FetchRequest",
    "FetchPartitionResponse", "FetchResponse", "ListOffsetRequest",
    "ListOffsetResponse", "GroupCoordinatorRequest",
    "GroupCoordinatorResponse", "PartitionOffsetCommitRequest",
    "OffsetCommitRequest", "OffsetCommitPartitionResponse",
    "OffsetCommitResponse", "PartitionOffsetFetchRequest",
    "OffsetFetchRequest", "OffsetFetchPartitionResponse",
    "OffsetFetchResponse", "JoinGroupRequest", "JoinGroupResponse",
    "SyncGroupRequest", "SyncGroupResponse", "HeartbeatRequest",
    "HeartbeatResponse", "LeaveGroupRequest", "LeaveGroupResponse",
    "ListGroupsRequest", "ListGroupsResponse", "DescribeGroupsRequest",
    "DescribeGroupsResponse", "Message", "MessageSet", "ApiVersionsRequest",
    "ApiVersionsResponse", "CreateTopicsRequest", "CreateTopicsResponse",
    "DeleteTopicsRequest", "DeleteTopicsResponse", "PartitionOffsetRequest",
    "API_VERSIONS_080", "API_VERSIONS_090", "ConsumerGroupProtocolMetadata",
    "MemberAssignment", "FetchResponseV1", "FetchResponseV2",
    "MetadataResponseV1", "MetadataRequestV1", "CreateTopicRequest",
    "ProducePartitionResponse", "ListOffsetRequestV1",
    "ListOffsetResponseV1", "OffsetFetchRequestV1", "OffsetFetchResponseV1",
    "OffsetFetchRequestV2", "OffsetFetchResponseV2", "MetadataRequestV2",
    "MetadataResponseV2", "MetadataRequestV3", "MetadataResponseV3",
    "MetadataRequestV4", "MetadataResponseV4", "MetadataRequestV5",
    "MetadataResponseV5"]

# Constructor signatures of the classes user code builds (pykafka 2.8).
PROTOCOL_SIGNATURES = {
    "Message": [("value", REQUIRED), ("partition_key", None),
                ("compression_type", 0), ("offset", -1),
                ("partition_id", -1), ("produce_attempt", 0),
                ("protocol_version", 0), ("timestamp", None),
                ("delivery_report_q", None)],
    "MessageSet": [("compression_type", 0), ("messages", None),
                   ("broker_version", "0.9.0")],
    "ProduceRequest": [("compression_type", 0), ("required_acks", 1),
                       ("timeout", 10000), ("broker_version", "0.9.0")],
    "FetchRequest": [("partition_requests", []), ("timeout", 1000),
                     ("min_bytes", 1024), ("api_version", 0)],
    "ListOffsetRequest": [("partition_requests", REQUIRED)],
    "OffsetCommitRequest": [("consumer_group", REQUIRED),
                            ("consumer_group_generation_id", REQUIRED),
                            ("consumer_id", REQUIRED),
                            ("partition_requests", [])],
    "OffsetFetchRequest": [("consumer_group", REQUIRED),
                           ("partition_requests", [])],
    "GroupCoordinatorRequest": [("consumer_group", REQUIRED)],
    "MetadataRequest": [("topics", None)],
    "MetadataRequestV4": [("topics", None),
                          ("allow_topic_autocreation", True)],
    "JoinGroupRequest": [("group_id", REQUIRED), ("member_id", REQUIRED),
                         ("topic_name", REQUIRED),
                         ("membership_protocol", REQUIRED),
                         ("session_timeout", 30000)],
    "SyncGroupRequest": [("group_id", REQUIRED), ("generation_id", REQUIRED),
                         ("member_id", REQUIRED),
                         ("group_assignment", REQUIRED)],
    "HeartbeatRequest": [("group_id", REQUIRED), ("generation_id", REQUIRED),
                         ("member_id", REQUIRED)],
    "LeaveGroupRequest": [("group_id", REQUIRED), ("member_id", REQUIRED)],
    "DescribeGroupsRequest": [("group_ids", REQUIRED)],
    "CreateTopicsRequest": [("topic_requests", REQUIRED), ("timeout", 0)],
    "CreateTopicRequest": [("topic_name", REQUIRED),
                           ("num_partitions", REQUIRED),
                           ("replication_factor", REQUIRED),
                           ("replica_assignment", REQUIRED),
                           ("config_entries", REQUIRED)],
    "DeleteTopicsRequest": [("topics", REQUIRED), ("timeout", 0)],
}

NAMEDTUPLE_FIELDS = {
    "FetchPartitionResponse": ("max_offset", "messages", "err"),
    "PartitionFetchRequest": ("topic_name", "partition_id", "offset",
                              "max_bytes"),
    "OffsetPartitionResponse": ("offset", "err"),
    "PartitionOffsetRequest": ("topic_name", "partition_id",
                               "offsets_before", "max_offsets"),
    "PartitionOffsetCommitRequest": ("topic_name", "partition_id", "offset",
                                     "timestamp", "metadata"),
    "PartitionOffsetFetchRequest": ("topic_name", "partition_id"),
    "OffsetCommitPartitionResponse": ("err",),
    "OffsetFetchPartitionResponse": ("offset", "metadata", "err"),
    "ProducePartitionResponse": ("err", "offset"),
    "ApiVersionsSpec": ("key", "min", "max"),
    "CreateTopicRequest": ("topic_name", "num_partitions",
                           "replication_factor", "replica_assignment",
                           "config_entries"),
}


@pytest.mark.parametrize("sub", sorted(PROTOCOL_SUBMODULES))
def test_protocol_submodules(sub):
    import importlib
    import pykafka_c.protocol as proto
    mod = importlib.import_module("pykafka_c.protocol." + sub)
    assert getattr(proto, sub) is mod
    for name in PROTOCOL_SUBMODULES[sub]:
        obj = getattr(mod, name)
        if name in PROTOCOL_ALL:
            assert getattr(proto, name) is obj, (sub, name)


def test_protocol_package_all():
    import pykafka_c.protocol as proto
    assert proto.__file__.endswith("__init__.py")
    for name in PROTOCOL_ALL:
        assert name in proto.__all__, name
        assert getattr(proto, name) is not None
    from pykafka_c import _core
    assert proto.Message is _core.Message
    assert proto.Message.__module__ == "pykafka_c.protocol"
    assert proto.Message.__name__ == "Message"
    # pykafka's hard-coded pre-0.10 tables
    assert {k: s.max for k, s in proto.API_VERSIONS_080.items()} == \
        {k: (1 if k in (8, 9) else 0) for k in range(17)}
    assert {k: s.max for k, s in proto.API_VERSIONS_090.items()} == \
        {k: (1 if k in (1, 8, 9) else 0) for k in range(17)}


@pytest.mark.parametrize("name", sorted(PROTOCOL_SIGNATURES))
def test_protocol_signatures(name):
    import pykafka_c.protocol as proto
    obj = getattr(proto, name)
    if isinstance(obj, type) and obj.__init__ is object.__init__:
        sig = inspect.signature(obj.__new__)
        params = list(sig.parameters.values())[1:]
    else:
        sig = inspect.signature(obj)
        params = list(sig.parameters.values())
    expected = PROTOCOL_SIGNATURES[name]
    assert len(params) >= len(expected), (name, sig)
    for (pname, default), param in zip(expected, params):
        assert param.name == pname, (name, pname, sig)
        if default is REQUIRED:
            assert param.default is inspect.Parameter.empty, (name, pname)
        else:
            assert param.default == default, (name, pname, param.default)


@pytest.mark.parametrize("name", sorted(NAMEDTUPLE_FIELDS))
def test_protocol_namedtuple_fields(name):
    import pykafka_c.protocol as proto
    assert getattr(proto, name)._fields == NAMEDTUPLE_FIELDS[name]


def test_protocol_instance_methods():
    import pykafka_c.protocol as proto
    for cls, methods in ((proto.Message, ["pack_into", "decode",
                                          "set_timestamp", "__len__"]),
                         (proto.MessageSet, ["pack_into", "decode",
                                             "__len__", "messages"]),
                         (proto.ProduceRequest, ["add_message",
                                                 "message_count",
                                                 "messages"]),
                         (proto.FetchRequest, ["add_request"])):
        for m in methods:
            assert hasattr(cls, m), (cls, m)
    assert isinstance(inspect.getattr_static(proto.Message, "decode"),
                      classmethod) or \
        type(inspect.getattr_static(proto.Message, "decode")).__name__ == \
        "classmethod_descriptor"
    assert isinstance(inspect.getattr_static(proto.MessageSet, "decode"),
                      classmethod)
    from pykafka_c.broker import Broker
    assert [(p.name, p.default) for p in inspect.signature(
        Broker.fetch_messages).parameters.values()] == \
        [("self", inspect.Parameter.empty),
         ("partition_requests", inspect.Parameter.empty),
         ("timeout", 30000), ("min_bytes", 1)]
    assert list(inspect.signature(Broker.produce_messages).parameters) == \
        ["self", "produce_request"]


# -- compared with the real pykafka 2.8.0 ----------------------------------------
# tests/conformance/surface.py describes a package's public surface (every
# public class and function of pykafka's modules with its signature, its
# public methods and properties; the exception tree; ERROR_CODES; the
# constants).  It runs on the real pykafka 2.8.0, from the pinned sdist the
# conformance job uses, in a subprocess, and on pykafka_c here.  pykafka_c
# may add (parameters with defaults after pykafka's, methods, names), but
# not remove, rename, reorder or change a default.

#: pykafka names whose surface pykafka_c does not have, on purpose (README,
#: "Where pykafka_c differs from pykafka").
SURFACE_EXCLUDED = {
    "connection.BrokerConnection": "pykafka's Python socket connection; pykafka_c's "
                                   "BrokerConnection is its C connection type",
    "producer.OwnedBroker": "pykafka's per-broker queue of its Python send loop; "
                            "importable, not constructible (the send loop is C)",
}

CONFORMANCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance")
_REQUIRED = "<required>"


def _surface_module():
    if CONFORMANCE_DIR not in sys.path:
        sys.path.insert(0, CONFORMANCE_DIR)
    import surface
    return surface


@pytest.fixture(scope="module")
def pykafka_28_surface(tmp_path_factory):
    from test_pykafka_conformance import sdist_path
    src = str(tmp_path_factory.mktemp("pykafka-2.8.0"))
    with tarfile.open(sdist_path()) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.startswith("pykafka-2.8.0/pykafka/")]
        for m in members:
            m.name = m.name[len("pykafka-2.8.0/"):]
        tar.extractall(src, members=members, filter="data")
    env = dict(os.environ, PYTHONPATH=os.path.join(CONFORMANCE_DIR, "shims"))
    proc = subprocess.run([sys.executable, os.path.join(CONFORMANCE_DIR, "surface.py"), src],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, cwd=src, timeout=300)
    if proc.returncode != 0:
        pytest.fail("could not describe the real pykafka 2.8.0 (it needs six and kazoo, "
                    "from pip install -e '.[test]'):\n" + proc.stderr[-3000:], pytrace=False)
    return json.loads(proc.stdout)


def _signature_differences(where, theirs, ours):
    if theirs is None:
        return []
    if ours is None:
        return ["%s: no signature" % where]
    out = []
    for i, (name, kind, default) in enumerate(theirs):
        if kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            return out          # pykafka's wrapper takes anything: nothing more to compare
        if i >= len(ours):
            return out + ["%s: parameter %s missing" % (where, name)]
        our_name, our_kind, our_default = ours[i]
        if our_kind in ("VAR_POSITIONAL", "VAR_KEYWORD", "KEYWORD_ONLY") and \
                kind != our_kind:
            return out + ["%s: parameter %s is %s here" % (where, name, our_kind)]
        if our_name != name:
            return out + ["%s: parameter %d is %s, pykafka's %s" % (where, i, our_name, name)]
        if default != _REQUIRED and our_default != default:
            out.append("%s: %s defaults to %r, pykafka's %r"
                       % (where, name, our_default, default))
    for name, kind, default in ours[len(theirs):]:
        if default == _REQUIRED and kind not in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            out.append("%s: extra parameter %s has no default" % (where, name))
    return out


def surface_differences(real, mine, excluded=SURFACE_EXCLUDED):
    """Lines naming every way ``mine`` (pykafka_c's surface) differs from
    ``real`` (pykafka 2.8.0's), as surface.describe() gives them."""
    out = ["module %s" % m for m in real["missing_modules"]]
    out += ["pykafka_c module %s" % m for m in mine["missing_modules"]]
    for key, theirs in sorted(real["names"].items()):
        if key in excluded:
            continue
        ours = mine["names"].get(key)
        if ours is None:
            out.append("%s: missing" % key)
            continue
        if theirs["kind"] == "other":
            if ours.get("value") != theirs["value"]:
                out.append("%s = %r, pykafka's %r" % (key, ours.get("value"), theirs["value"]))
            continue
        out += _signature_differences(key, theirs.get("signature"), ours.get("signature"))
        for meth, sig in sorted(theirs.get("methods", {}).items()):
            if meth not in ours.get("methods", {}):
                out.append("%s.%s: method missing" % (key, meth))
            else:
                out += _signature_differences("%s.%s" % (key, meth), sig,
                                              ours["methods"][meth])
        for prop in theirs.get("properties", []):
            if prop not in ours.get("properties", []) and prop not in ours.get("methods", {}):
                out.append("%s.%s: property missing" % (key, prop))
    for name, theirs in sorted(real["exceptions"].items()):
        if mine["exceptions"].get(name) != theirs:
            out.append("exception %s: %r, pykafka's %r"
                       % (name, mine["exceptions"].get(name), theirs))
    for code, name in sorted(real["error_codes"].items(), key=lambda kv: int(kv[0])):
        if mine["error_codes"].get(code) != name:
            out.append("ERROR_CODES[%s] is %r, pykafka's %r"
                       % (code, mine["error_codes"].get(code), name))
    for name, theirs in sorted(real["constants"].items()):
        ours = mine["constants"].get(name)
        if isinstance(theirs, dict) and isinstance(ours, dict):
            ours = {k: v for k, v in ours.items() if k in theirs}   # additions allowed
        elif name == "__all__" and ours is not None:
            ours = [n for n in ours if n in theirs]
        if ours != theirs:
            out.append("constant %s: %r, pykafka's %r" % (name, ours, theirs))
    return out


def _our_surface():
    return json.loads(json.dumps(_surface_module().describe("pykafka_c")))


def test_public_surface_matches_pykafka_28(pykafka_28_surface):
    real = pykafka_28_surface
    assert len(real["names"]) > 150 and len(real["error_codes"]) >= 21
    assert real["names"]["managedbalancedconsumer.ManagedBalancedConsumer"]["kind"] == "class"
    assert surface_differences(real, _our_surface()) == []


def test_surface_comparison_sees_a_changed_default(pykafka_28_surface):
    # The difference the issue named last: pykafka 2.8.0's
    # ManagedBalancedConsumer(compacted_topic=True).
    mine = _our_surface()
    entry = mine["names"]["managedbalancedconsumer.ManagedBalancedConsumer"]
    for param in entry["signature"]:
        if param[0] == "compacted_topic":
            param[2] = False
    mine["error_codes"]["17"] = "Other"
    mine["exceptions"]["SocketDisconnectedError"]["bases"] = ["Exception"]
    diffs = surface_differences(pykafka_28_surface, mine)
    assert "managedbalancedconsumer.ManagedBalancedConsumer: compacted_topic defaults " \
        "to False, pykafka's True" in diffs
    assert any(d.startswith("ERROR_CODES[17]") for d in diffs)
    assert any(d.startswith("exception SocketDisconnectedError") for d in diffs)
