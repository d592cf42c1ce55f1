"""pykafka's ``kafka-tools`` command line, on pykafka_c.

Run it as ``pykafka-c-tools`` (the console script; pykafka installs the
name ``kafka-tools`` itself) or ``python -m pykafka_c.cli.kafka_tools``::

    pykafka-c-tools [-b HOST:PORT] [-o BROKER_VERSION] COMMAND ...

Commands (as pykafka's): ``consume_topic``, ``desc_topic``,
``print_managed_consumer_groups``, ``print_consumer_lag``,
``print_offsets``, ``print_topics``, ``reset_offsets``, ``create_topic``,
``delete_topic``.  Tables are printed in the layout of tabulate's "simple"
format (without needing tabulate).

Differences from pykafka, each deliberate:

* ``-o/--broker_version`` is accepted, but pykafka_c negotiates every API
  version with the broker, so by default nothing depends on it.  Only an
  explicitly given version below 0.10.1 makes ``create_topic`` and
  ``delete_topic`` refuse, as pykafka did (pykafka's default "0.9.0" made
  them refuse unless ``-o`` was given).
* ``reset_offsets`` commits as a standalone committer (generation -1, empty
  member id, metadata "kafka-tools"): current brokers refuse pykafka's
  generation 1 / member "kafka-tools" for a group that has no such member.
  A per-partition commit error is raised instead of being ignored (after
  retrying while the group coordinator is loading or moving).
* ``print_managed_consumer_groups`` also lists groups that have no live
  member but committed offsets for the topic (pykafka showed only groups
  with a member subscribed to it).
* ``print_topics`` prints the replication factor (pykafka printed the
  replica count minus one).
* ``create_topic``'s ``-a`` (``{"partition": [broker ids]}``) and ``-c``
  (``{"name": "value"}``) JSON objects are parsed and sent (pykafka passed
  the raw strings on and the request could not be encoded).
* create/delete fail with the broker's error (e.g. TopicAlreadyExists)
  instead of returning silently.
* Errors print ``kafka-tools: error: ...`` and exit with status 1 instead
  of a traceback.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .._constants import KafkaError as _KafkaError

if TYPE_CHECKING:
    from .._responses import OffsetPartitionResponse
    from ..broker import Broker
    from ..client import KafkaClient
    from ..topic import Topic

#: A row of _table's input.
_Row = Sequence[Any]

__all__ = ["main", "fetch_offsets", "fetch_consumer_lag"]


def _table(rows: Sequence[_Row], headers: Sequence[str]) -> str:
    """Rows as text in tabulate's "simple" layout (numbers right-aligned)."""
    cells = [[str(h) for h in headers]]
    cells += [["" if v is None else str(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows)
               for i in range(len(headers))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        out = []
        for i, text in enumerate(row):
            out.append(text.rjust(widths[i]) if numeric[i]
                       else text.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [line(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in cells[1:]]
    return "\n".join(lines)


def _topic_str(name: bytes | str) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def _version_tuple(text: str) -> tuple[int, ...]:
    from ..utils import _version_tuple as parse
    return parse(text)


def _require_topic(client: KafkaClient, args: argparse.Namespace) -> Topic:
    # Never auto-create a topic by looking it up.
    if args.topic not in client.topics:
        raise ValueError("Topic {} does not exist.".format(
            _topic_str(args.topic)))
    return client.topics[args.topic]


def _raise_for(code: int, context: str) -> None:
    if code:
        from ..exceptions import error_for_code
        raise error_for_code(code, context)


# ------------------------------------------------------------------ helpers

def fetch_offsets(client: KafkaClient | None, topic: Topic,
                  offset: str) -> dict[int, OffsetPartitionResponse]:
    """fetch_offsets(client, topic, offset) -> dict --

    ``{partition_id: OffsetPartitionResponse}`` for ``offset``: "earliest",
    "latest" (any case) or a UTC time "YYYY-MM-DDTHH:MM:SS"."""
    if offset.lower() == "earliest":
        return topic.earliest_available_offsets()
    if offset.lower() == "latest":
        return topic.latest_available_offsets()
    when = dt.datetime.strptime(offset, "%Y-%m-%dT%H:%M:%S")
    return topic.fetch_offset_limits(
        int(calendar.timegm(when.utctimetuple()) * 1000))


def fetch_consumer_lag(client: KafkaClient | None, topic: Topic,
                       consumer_group: bytes | str
                       ) -> dict[int, tuple[int, int, Any, Any]]:
    """fetch_consumer_lag(client, topic, consumer_group) -> dict --

    ``{partition_id: (latest_offset, committed_offset, consumer_id,
    hostname)}``; the last two come from the commit metadata JSON pykafka
    consumers write (None otherwise)."""
    latest = fetch_offsets(client, topic, "latest")
    consumer = topic.get_simple_consumer(consumer_group=consumer_group,
                                         auto_start=False,
                                         reset_offset_on_fetch=False)
    try:
        committed = consumer.fetch_offsets()
    finally:
        consumer.stop()
    out: dict[int, tuple[int, int, Any, Any]] = {}
    for pid, res in committed:
        consumer_id: Any = None
        hostname: Any = None
        if res.metadata:
            try:
                info = json.loads(res.metadata.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                info = None
            if isinstance(info, dict):
                consumer_id = info.get("consumer_id")
                hostname = info.get("hostname")
        out[pid] = (latest[pid].offset[0], res.offset, consumer_id, hostname)
    return out


def _output_file(path: str) -> TextIO:
    """``--outfile``: opened for writing while the arguments are parsed, as
    pykafka's ``argparse.FileType("w")`` did ("-" is stdout).  FileType
    itself is deprecated from Python 3.14 (a PendingDeprecationWarning)."""
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w")
    except OSError as e:
        raise argparse.ArgumentTypeError(f"can't open '{path}': {e}") from None


# ----------------------------------------------------------------- commands

def consume_topic(client: KafkaClient, args: argparse.Namespace) -> None:
    """Print ``--limit`` new messages of a topic (one per line)."""
    from ..common import OffsetType
    topic = _require_topic(client, args)
    consumer = topic.get_simple_consumer(
        b"pykafka_cli", consumer_timeout_ms=100,
        auto_offset_reset=OffsetType.LATEST, reset_offset_on_start=True,
        auto_commit_enable=True, auto_commit_interval_ms=3000)
    try:
        done = 0
        while done < args.limit:
            msg = consumer.consume()
            if not msg or not msg.value:
                continue
            args.outfile.write(msg.value.decode("utf-8", "replace") + "\n")
            args.outfile.flush()
            done += 1
    finally:
        consumer.stop()
        if args.outfile is not sys.stdout:
            args.outfile.close()


def desc_topic(client: KafkaClient, args: argparse.Namespace) -> None:
    """Partitions, leaders, replicas and in-sync replicas of a topic."""
    topic = _require_topic(client, args)
    parts = [topic.partitions[k] for k in sorted(topic.partitions)]
    print("Topic: {}".format(_topic_str(topic.name)))
    print("Partitions: {}".format(len(parts)))
    print("Replicas: {}".format(len(parts[0].replicas) if parts else 0))
    print(_table([(p.id, p.leader.id if p.leader is not None else -1,
                   [r.id for r in p.replicas],
                   [r.id for r in p.isr]) for p in parts],
                 ["Partition", "Leader", "Replicas", "ISR"]))


def _groups_for_topic(client: KafkaClient, topic_name: bytes | str
                      ) -> dict[str, Any]:
    from ..membershipprotocol import ConsumerGroupProtocolMetadata
    wanted = _topic_str(topic_name)
    found: dict[str, Any] = {}
    for broker in list(client.brokers.values()):
        listed = [g["group_id"] for g in broker.list_groups()["groups"]]
        if not listed:
            continue
        for desc in broker.describe_groups(listed)["groups"]:
            if desc.get("error_code"):
                continue
            subscribed = False
            for member in desc.get("members") or []:
                try:
                    meta = ConsumerGroupProtocolMetadata.from_bytestring(
                        member.get("member_metadata") or b"")
                except Exception:
                    continue  # not the consumer protocol's metadata
                names = [_topic_str(t) for t in meta.topic_names]
                if wanted in names:
                    subscribed = True
            if subscribed or (not desc.get("members")
                              and _has_commits(broker, desc["group_id"],
                                               wanted)):
                found[desc["group_id"]] = desc
    return found


def _has_commits(coordinator: Broker, group_id: str, topic_name: str) -> bool:
    resp = coordinator.fetch_consumer_group_offsets(group_id, None)
    for group in resp.get("groups") or [resp]:
        for topic in group.get("topics") or []:
            if topic["name"] != topic_name:
                continue
            for part in topic["partitions"]:
                if not part.get("error_code") and \
                        part.get("committed_offset", -1) >= 0:
                    return True
    return False


def print_managed_consumer_groups(client: KafkaClient, args: argparse.Namespace) -> None:
    """Consumer groups (coordinated by Kafka) that use a topic."""
    _require_topic(client, args)
    groups = _groups_for_topic(client, args.topic)
    print("Topic: {}".format(_topic_str(args.topic)))
    print(_table([(gid, d.get("group_state"), d.get("protocol_data"),
                   d.get("protocol_type"))
                  for gid, d in sorted(groups.items())],
                 ["GroupId", "State", "Protocol", "ProtocolType"]))


def print_consumer_lag(client: KafkaClient, args: argparse.Namespace) -> None:
    """Lag of a consumer group on every partition of a topic."""
    topic = _require_topic(client, args)
    lag = fetch_consumer_lag(client, topic, args.consumer_group)
    rows: list[_Row] = []
    total = 0
    for pid in sorted(lag):
        latest, current, consumer_id, hostname = lag[pid]
        behind = latest - current if current >= 0 else latest
        total += behind
        rows.append((pid, "{:,}".format(behind), latest, current,
                     consumer_id, hostname))
    print(_table(rows, ["Partition", "Lag", "Latest Offset",
                        "Current Offset", "Consumer_ID", "Client_ID"]))
    print("\n Total lag: {:,} messages.".format(total))


def print_offsets(client: KafkaClient, args: argparse.Namespace) -> None:
    """Offsets of a topic's partitions: earliest, latest or at a time."""
    topic = _require_topic(client, args)
    offsets = fetch_offsets(client, topic, args.offset)
    print(_table([(pid, offsets[pid].offset[0] if offsets[pid].offset
                   else None) for pid in sorted(offsets)],
                 ["Partition", "Offset"]))


def print_topics(client: KafkaClient, args: argparse.Namespace) -> None:
    """Every topic with its partition count and replication factor."""
    rows: list[tuple[str, int, int]] = []
    for topic in client.topics.values():
        parts = list(topic.partitions.values())
        rows.append((_topic_str(topic.name), len(parts),
                     len(parts[0].replicas) if parts else 0))
    print(_table(sorted(rows), ["Topic", "Partitions", "Replication"]))


def reset_offsets(client: KafkaClient, args: argparse.Namespace) -> None:
    """Commit a group's offsets of a topic to earliest, latest or a time."""
    from .._responses import PartitionOffsetCommitRequest
    topic = _require_topic(client, args)
    offsets = fetch_offsets(client, topic, args.offset)
    now = int(time.time() * 1000)
    reqs = [PartitionOffsetCommitRequest(topic.name, pid, res.offset[0], now,
                                         b"kafka-tools")
            for pid, res in sorted(offsets.items())
            if res.offset and res.offset[0] >= 0]
    if not reqs:
        raise ValueError("no offset found for {} at {}".format(
            _topic_str(args.topic), args.offset))
    for attempt in range(_COMMIT_ATTEMPTS):
        broker = client.cluster.get_group_coordinator(args.consumer_group)
        resp = broker.commit_consumer_group_offsets(
            args.consumer_group, -1, b"", reqs)
        errors = [(t["name"], part["partition_index"], part["error_code"])
                  for t in resp.get("topics") or []
                  for part in t["partitions"] if part["error_code"]]
        if not errors:
            return
        retriable = all(code in _COORDINATOR_RETRY for _, _, code in errors)
        if not retriable or attempt == _COMMIT_ATTEMPTS - 1:
            name, pid, code = errors[0]
            _raise_for(code, "OffsetCommit of %s[%d]" % (name, pid))
        time.sleep(0.5)


#: The coordinator is loading, not available or moved: try again.
_COORDINATOR_RETRY = frozenset([_KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                _KafkaError.COORDINATOR_NOT_AVAILABLE,
                                _KafkaError.NOT_COORDINATOR])
_COMMIT_ATTEMPTS = 20


def _check_admin_version(args: argparse.Namespace, what: str) -> None:
    if args.broker_version is not None and \
            _version_tuple(args.broker_version) < (0, 10, 1):
        raise ValueError("The topic {} API is not usable on brokers older "
                         "than 0.10.1. Use --broker_version to specify the "
                         "version".format(what))


def _controller(client: KafkaClient) -> Broker:
    return client.cluster.controller_broker or \
        next(iter(client.brokers.values()))


def create_topic(client: KafkaClient, args: argparse.Namespace) -> None:
    """Create a topic (CreateTopics at the controller)."""
    _check_admin_version(args, "creation")
    req = {"name": args.topic, "num_partitions": args.num_partitions,
           "replication_factor": args.replication_factor,
           "replica_assignment": args.replica_assignment or {},
           "configs": args.config_entries or {}}
    resp = _controller(client).create_topics([req], args.timeout)
    for t in resp["topics"]:
        _raise_for(t["error_code"], "CreateTopics %s: %s" % (
            t["name"], t.get("error_message") or ""))


def delete_topic(client: KafkaClient, args: argparse.Namespace) -> None:
    """Delete a topic (DeleteTopics at the controller)."""
    _check_admin_version(args, "deletion")
    resp = _controller(client).delete_topics([args.topic], args.timeout)
    for t in resp["responses"]:
        _raise_for(t["error_code"], "DeleteTopics %s: %s" % (
            t["name"], t.get("error_message") or ""))


# ------------------------------------------------------------------ parser

def _encode_utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("not JSON: %s" % exc)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object is expected")
    return value


def _get_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kafka-tools",
                                     description="Tools for Kafka.")
    parser.add_argument("-b", "--broker", default="localhost:9092",
                        dest="host", help="host:port of any Kafka broker. "
                        "[default: localhost:9092]")
    parser.add_argument("-o", "--broker_version", default=None,
                        dest="broker_version",
                        help="The version string of the broker (accepted; "
                        "API versions are negotiated)")
    sub = parser.add_subparsers(help="Commands", dest="command")

    def topic(p: argparse.ArgumentParser) -> None:
        p.add_argument("topic", metavar="TOPIC", help="Topic name.",
                       type=_encode_utf8)

    def group(p: argparse.ArgumentParser) -> None:
        p.add_argument("consumer_group", metavar="CONSUMER_GROUP",
                       help="Consumer group name.", type=_encode_utf8)

    def offset(p: argparse.ArgumentParser) -> None:
        p.add_argument("offset", metavar="OFFSET", type=str,
                       help="Offset to fetch. Can be EARLIEST, LATEST, or a "
                       "datetime in the format YYYY-MM-DDTHH:MM:SS.")

    def timeout(p: argparse.ArgumentParser) -> None:
        p.add_argument("-t", "--timeout", type=int, default=5000,
                       help="Time in ms to wait for the operation to "
                       "complete (default: %(default)s)")

    p = sub.add_parser("consume_topic",
                       help="Dump messages for a topic to a file or stdout.")
    p.set_defaults(func=consume_topic)
    topic(p)
    p.add_argument("-l", "--limit", type=int, default=10,
                   help="Number of messages to consume (default: "
                   "%(default)s)")
    p.add_argument("-o", "--outfile", type=_output_file,
                   default=sys.stdout,
                   help="output file (defaults to stdout)")

    p = sub.add_parser("desc_topic", help="Print detailed info for a topic.")
    p.set_defaults(func=desc_topic)
    topic(p)

    p = sub.add_parser("print_managed_consumer_groups",
                       help="Get consumer groups for a topic")
    p.set_defaults(func=print_managed_consumer_groups)
    topic(p)

    p = sub.add_parser("print_consumer_lag",
                       help="Get consumer lag for a topic.")
    p.set_defaults(func=print_consumer_lag)
    topic(p)
    group(p)

    p = sub.add_parser("print_offsets",
                       help="Fetch broker offsets for a topic")
    p.set_defaults(func=print_offsets)
    topic(p)
    offset(p)

    p = sub.add_parser("print_topics", help="Print information about all "
                       "topics in the cluster.")
    p.set_defaults(func=print_topics)

    p = sub.add_parser("reset_offsets",
                       help="Reset offsets for a topic/consumer group")
    p.set_defaults(func=reset_offsets)
    topic(p)
    group(p)
    offset(p)

    p = sub.add_parser("create_topic", help="Create a topic")
    p.set_defaults(func=create_topic)
    topic(p)
    timeout(p)
    p.add_argument("-p", "--num_partitions", type=int, default=1,
                   help="Number of partitions to be created. -1 indicates "
                   "unset. (default: %(default)s)")
    p.add_argument("-r", "--replication_factor", type=int, default=1,
                   help="Replication factor for the topic. -1 indicates "
                   "unset. (default: %(default)s)")
    p.add_argument("-a", "--replica_assignment", type=_json_object,
                   help="Replica assignment as a JSON object of partition "
                   "ids to lists of broker ids; then num_partitions and "
                   "replication_factor must be -1")
    p.add_argument("-c", "--config_entries", type=_json_object,
                   help="Topic configuration as a JSON object")

    p = sub.add_parser("delete_topic", help="Delete a topic")
    p.set_defaults(func=delete_topic)
    topic(p)
    timeout(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """main(argv=None) -> int --

    Run the command line (``argv`` defaults to ``sys.argv[1:]``); returns
    the exit status."""
    parser = _get_arg_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    from ..client import KafkaClient
    from ..exceptions import KafkaException
    client: KafkaClient | None = None
    try:
        client = KafkaClient(hosts=args.host,
                             broker_version=args.broker_version or "0.9.0")
        args.func(client, args)
    except (KafkaException, ValueError, OSError) as exc:
        sys.stdout.flush()
        print("kafka-tools: error: %s" % (exc,), file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.cluster.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
