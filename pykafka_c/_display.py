"""What pykafka_c's objects show of themselves: ``repr()`` and the tables
Jupyter displays (``_repr_html_``).  Private; the classes call in here.

Rules every repr and table keeps:

* It never raises: a failure becomes a short note in its place
  (:func:`safe_repr`, :func:`safe_html`).
* ``repr()`` never talks to a broker; it shows what the object knows.
* A table that needs a broker (offsets, negotiated versions) asks with a
  short deadline (:data:`LOOKUP_TIMEOUT_S` for everything it asks, the
  lookups run in parallel) and shows what it could not get, and why,
  under the table.  A lookup that overruns is left to finish in its
  daemon thread, bounded by the client's socket timeout.
* No secret (SASL password, key password, token) appears: only the
  mechanism and whether TLS is on.
* Everything is HTML-escaped.
"""

from __future__ import annotations

import functools
import html
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._constants import SUPPORTED_VERSIONS, ApiKey
from ._constants import KafkaError as _KafkaError
from .common import OffsetType

if TYPE_CHECKING:
    from ._core import Security
    from .balancedconsumer import BalancedConsumer
    from .broker import Broker
    from .cluster import Cluster
    from .partition import Partition
    from .producer import Producer
    from .simpleconsumer import SimpleConsumer
    from .topic import Topic

#: How long a table waits for the brokers, in all (seconds).
LOOKUP_TIMEOUT_S = 1.5
#: Partitions listed by a repr() before "..." (tables list them all).
REPR_MAX_PARTITIONS = 8

_T = TypeVar("_T")
_Obj = TypeVar("_Obj")

#: What a cell shows for a value it does not have.
MISSING = "\u2014"

_CSS = ("<style>.pykafka-c table{border-collapse:collapse;margin:.3em 0}"
        ".pykafka-c th,.pykafka-c td{padding:.15em .6em;text-align:right}"
        ".pykafka-c td.l,.pykafka-c th.l{text-align:left}"
        ".pykafka-c .note{color:#a33;font-size:90%}</style>")


# ------------------------------------------------------------ never raising

def _kind(obj: object) -> str:
    cls = type(obj)
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _never_raising(fallback: Callable[[object, Exception], str]
                   ) -> Callable[[Callable[[_Obj], str]], Callable[[_Obj], str]]:
    """A decorator for ``__repr__`` / ``_repr_html_``: an exception
    becomes ``fallback(self, exc)``."""
    def decorate(method: Callable[[_Obj], str]) -> Callable[[_Obj], str]:
        @functools.wraps(method)
        def wrapper(self: _Obj) -> str:
            try:
                return method(self)
            except Exception as exc:
                return fallback(self, exc)
        return wrapper
    return decorate


#: Decorate a ``__repr__`` so that it never raises.
safe_repr = _never_raising(lambda self, exc: "<%s (repr failed: %s)>" % (
    _kind(self), type(exc).__name__))

#: Decorate a ``_repr_html_`` so that it never raises.
safe_html = _never_raising(lambda self, exc: (
    '<div class="pykafka-c">%s <span class="note">(table failed: %s: %s)'
    '</span></div>' % (esc(safe_text(self)), type(exc).__name__,
                       esc(str(exc)))))


def safe_text(obj: object) -> str:
    """``repr(obj)``, or its type's name when that fails."""
    try:
        return repr(obj)
    except Exception:
        return "<%s>" % _kind(obj)


def fields(obj: object, pairs: Iterable[tuple[str, object]]) -> str:
    """``<module.Class name=value, ...>`` with each value's repr."""
    return "<%s %s>" % (_kind(obj), ", ".join(
        "%s=%s" % (name, value if isinstance(value, _Raw) else
                   safe_text(value)) for name, value in pairs))


class _Raw(str):
    """Text that :func:`fields` shows as it is (not through repr)."""


def raw(text: str) -> str:
    return _Raw(text)


def id_list(ids: Iterable[int], limit: int = REPR_MAX_PARTITIONS) -> str:
    """``[0, 1, 2]``, or ``[0, 1, ... (12)]`` past ``limit``."""
    ids = sorted(ids)
    if len(ids) <= limit:
        return _Raw(repr(ids))
    return _Raw("[%s, ... (%d)]" % (", ".join(str(i) for i in ids[:limit]),
                                    len(ids)))


def offset_map(offsets: Mapping[int, int],
               limit: int = REPR_MAX_PARTITIONS) -> str:
    """``{0: 41, 1: 17}``, cut past ``limit`` partitions."""
    items = sorted(offsets.items())
    text = ", ".join("%d: %d" % kv for kv in items[:limit])
    if len(items) > limit:
        text += ", ... (%d)" % len(items)
    return _Raw("{%s}" % text)


# ------------------------------------------------------------ broker lookups

class _TimedOut(Exception):
    """A lookup that did not finish within the deadline."""


def bounded(calls: Mapping[Any, Callable[[], _T]],
            timeout_s: float = LOOKUP_TIMEOUT_S
            ) -> dict[Any, _T | BaseException]:
    """Run ``calls`` in parallel daemon threads and wait at most
    ``timeout_s`` in all.  Returns each key's result, or the exception it
    raised, or a ``_TimedOut``."""
    results: dict[Any, _T | BaseException] = {}
    done = threading.Condition()

    def run(key: Any, call: Callable[[], _T]) -> None:
        try:
            value: _T | BaseException = call()
        except BaseException as exc:  # shown in the table, not raised
            value = exc
        with done:
            results[key] = value
            done.notify_all()

    for key, call in calls.items():
        threading.Thread(target=run, args=(key, call), daemon=True,
                         name="pykafka_c display lookup").start()
    deadline = time.monotonic() + timeout_s
    with done:
        while len(results) < len(calls):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done.wait(left)
        out = dict(results)
    for key in calls:
        if key not in out:
            out[key] = _TimedOut("no answer within %.1f s" % timeout_s)
    return out


def why(exc: BaseException) -> str:
    """A short reason for a failed lookup."""
    if isinstance(exc, _TimedOut):
        return str(exc)
    text = str(exc)
    return "%s: %s" % (type(exc).__name__, text) if text \
        else type(exc).__name__


def list_offsets(partitions: Sequence[Partition],
                 timeout_s: float = LOOKUP_TIMEOUT_S
                 ) -> tuple[dict[int, tuple[int | None, int | None]],
                            list[str]]:
    """Earliest and latest offsets of ``partitions`` (one Topic's), asked
    of their leaders in parallel with a deadline.  Returns ``{partition id:
    (earliest, latest)}`` (None where unknown) and notes on what failed."""
    from ._responses import PartitionOffsetRequest
    from .protocol import ListOffsetRequest
    by_leader: dict[Broker, list[Partition]] = {}
    notes = []
    out: dict[int, tuple[int | None, int | None]] = {
        p.id: (None, None) for p in partitions}
    for p in partitions:
        if p.leader is None:
            notes.append("partition %d has no leader now" % p.id)
        else:
            by_leader.setdefault(p.leader, []).append(p)
    timeout_ms = max(1, int(timeout_s * 1000))

    def lookup(leader: Broker, parts: list[Partition]
               ) -> dict[int, list[int | None]]:
        got: dict[int, list[int | None]] = {p.id: [None, None] for p in parts}
        for slot, when in enumerate((OffsetType.EARLIEST, OffsetType.LATEST)):
            req = ListOffsetRequest([PartitionOffsetRequest(
                p.topic.name, p.id, when, 1) for p in parts])
            _, resp = leader._request(ApiKey.LIST_OFFSETS, req._fields,
                                      timeout_ms=timeout_ms)
            for t in (resp or {}).get("topics", []):
                for r in t["partitions"]:
                    if r["error_code"] == 0 and r["offset"] >= 0:
                        got[r["partition_index"]][slot] = r["offset"]
                    elif r["error_code"]:
                        raise _partition_error(r["partition_index"],
                                               r["error_code"])
        return got

    results = bounded({leader: functools.partial(lookup, leader, parts)
                       for leader, parts in by_leader.items()}, timeout_s)
    for leader, result in results.items():
        if isinstance(result, BaseException):
            ids = sorted(p.id for p in by_leader[leader])
            notes.append("offsets of partition%s %s from broker %d: %s"
                         % ("s" if len(ids) > 1 else "",
                            ", ".join(map(str, ids)), leader.id, why(result)))
            continue
        for pid, (earliest, latest) in result.items():
            out[pid] = (earliest, latest)
    return out, notes


def _partition_error(pid: int, code: int) -> Exception:
    name = _KafkaError(code).name if code in _KafkaError._value2member_map_ \
        else str(code)
    return RuntimeError("partition %d: %s" % (pid, name))


def negotiated_versions(broker: Broker) -> str:
    """The version of every API pykafka_c uses that this broker and
    pykafka_c agree on, from the broker's main connection (made if
    needed), e.g. ``Produce v11 · Fetch v12 · ...``."""
    from .broker import api_name, negotiate
    from .exceptions import UnsupportedApiVersionError
    broker._channel("main")
    ranges = broker.api_versions
    parts = []
    for key in sorted(SUPPORTED_VERSIONS):
        if key not in ranges:
            continue
        try:
            parts.append("%s v%d" % (api_name(key),
                                     negotiate(key, ranges.get(key))))
        except UnsupportedApiVersionError:
            parts.append("%s %s" % (api_name(key), MISSING))
    return " \u00b7 ".join(parts)


# --------------------------------------------------------------- HTML parts

def esc(value: object) -> str:
    return html.escape(value if isinstance(value, str) else str(value))


def cell(value: object) -> str:
    """A cell's text: bytes as text, None as a dash."""
    if value is None:
        return MISSING
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]],
          left: Iterable[int] = (0,)) -> str:
    """An HTML table; columns in ``left`` are left-aligned (text)."""
    lefts = set(left)

    def td(i: int, value: object, tag: str = "td") -> str:
        cls = ' class="l"' if i in lefts else ""
        return "<%s%s>%s</%s>" % (tag, cls, esc(cell(value)), tag)

    head = "".join(td(i, h, "th") for i, h in enumerate(headers))
    body = "".join("<tr>%s</tr>" % "".join(td(i, v) for i, v in enumerate(row))
                   for row in rows)
    return ("<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>"
            % (head, body))


def block(title: str, parts: Iterable[str], notes: Iterable[str] = ()
          ) -> str:
    """The whole display: a title line (HTML), the parts, and the notes on
    what could not be got."""
    out = [_CSS, '<div class="pykafka-c"><div>%s</div>' % title]
    out.extend(parts)
    notes = list(notes)
    if notes:
        out.append('<div class="note">Not shown: %s</div>'
                   % "; ".join(esc(n) for n in notes))
    out.append("</div>")
    return "".join(out)


def kv(pairs: Iterable[tuple[str, object]]) -> str:
    """``name <b>value</b> · ...`` for a title line."""
    return " \u00b7 ".join("%s <b>%s</b>" % (esc(k), esc(cell(v)))
                           for k, v in pairs)


# ------------------------------------------------------------- the displays

def security_summary(security: Security | None) -> tuple[str, str]:
    """(TLS, SASL) as shown: never a secret, only what is on."""
    if security is None:
        return "off", "off"
    tls = ("on" + ("" if security.check_hostname
                   else " (host names not checked)")) if security.tls \
        else "off"
    return tls, security.sasl_mechanism or "off"


def cluster_repr(obj: object, cluster: Cluster) -> str:
    """A client's or cluster's repr: hosts, broker ids, topic count, TLS
    and SASL (no credential)."""
    tls, sasl = security_summary(getattr(cluster, "_security", None))
    return fields(obj, [("hosts", cluster._seed_hosts),
                        ("brokers", id_list(cluster.brokers)),
                        ("topics", len(cluster.topics)),
                        ("tls", raw(tls)), ("sasl", raw(sasl))])


def cluster_html(cluster: Cluster, what: str, hosts: str) -> str:
    """A client's or cluster's display: its brokers (id, address,
    connected, TLS, negotiated versions) and its topics (from the last
    metadata)."""
    tls, sasl = security_summary(getattr(cluster, "_security", None))
    brokers = sorted(cluster.brokers.values(), key=lambda b: b.id)
    versions = bounded({b.id: functools.partial(negotiated_versions, b)
                        for b in brokers})
    notes = []
    rows = []
    for b in brokers:
        found = versions[b.id]
        v: str | None = None
        if isinstance(found, BaseException):
            notes.append("versions of broker %d: %s" % (b.id, why(found)))
        else:
            v = found
        conn = b._connection
        rows.append((b.id, "%s:%d" % (b.host, b.port),
                     "yes" if b.connected else "no",
                     (conn.tls if conn is not None else None) or
                     ("no" if tls == "off" else None), v))
    controller = cluster.controller_broker
    title = "<b>%s</b> %s" % (esc(what), kv([
        ("hosts", hosts), ("cluster id", cluster.cluster_id),
        ("controller", controller.id if controller is not None else None),
        ("TLS", tls), ("SASL", sasl)]))
    parts = ["<div>Brokers</div>", table(
        ["id", "address", "connected", "TLS", "negotiated API versions"],
        rows, left=(1, 2, 3, 4))]
    summary = getattr(cluster, "_topic_summary", None)
    if summary is not None:
        names = cluster.topics
        shown = [t for t in summary if t[0] in names]
        when = time.strftime("%H:%M:%S", time.localtime(
            getattr(cluster, "_metadata_time", time.time())))
        parts.append("<div>Topics (metadata of %s)</div>" % esc(when))
        parts.append(table(["topic", "partitions", "replication factor",
                            "error"],
                           [(name, n, rf, _error_name(err) if err else "")
                            for name, n, rf, err in shown], left=(0, 3)))
    return block(title, parts, notes)


def _error_name(code: int) -> str:
    return _KafkaError(code).name if code in _KafkaError._value2member_map_ \
        else str(code)


def partitions_rows(partitions: Sequence[Partition],
                    offsets: Mapping[int, tuple[int | None, int | None]]
                    ) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for p in sorted(partitions, key=lambda p: p.id):
        earliest, latest = offsets.get(p.id, (None, None))
        rows.append((p.id, p.leader.id if p.leader is not None else None,
                     ", ".join(str(r.id) for r in p.replicas),
                     ", ".join(str(r.id) for r in p.isr), earliest, latest,
                     latest - earliest if latest is not None
                     and earliest is not None else None))
    return rows


def topic_html(topic: Topic, partitions: Sequence[Partition] | None = None
               ) -> str:
    """A topic's display (or one partition's): leader, replicas, in-sync
    replicas, earliest and latest offsets of each partition."""
    parts = list(topic.partitions.values()) if partitions is None \
        else list(partitions)
    offsets, notes = list_offsets(parts)
    what = "Topic" if partitions is None else "Partition %s of topic" % (
        ", ".join(str(p.id) for p in parts))
    title = "<b>%s</b> %s %s" % (esc(what), esc(cell(topic.name)), kv([
        ("partitions", len(topic.partitions))]))
    return block(title, [table(
        ["partition", "leader", "replicas", "in-sync replicas",
         "earliest offset", "latest offset", "messages"],
        partitions_rows(parts, offsets), left=(2, 3))], notes)


class ConsumerView:
    """What a SimpleConsumer's table shows: one row per partition (state,
    leader, held offset = last consumed, next offset to fetch, latest
    offset, lag, queued messages), the notes on what is missing, and the
    total lag (None when a partition's is unknown) and queued count."""

    def __init__(self, rows: list[tuple[object, ...]], notes: list[str],
                 lag: int | None, queued: int) -> None:
        self.rows = rows
        self.notes = notes
        self.lag = lag
        self.queued = queued


def consumer_rows(consumer: SimpleConsumer,
                  timeout_s: float = LOOKUP_TIMEOUT_S) -> ConsumerView:
    """The rows of ``consumer``'s table, asking the leaders for the latest
    offsets (the fetch's high watermark when they do not answer)."""
    fetcher = consumer._fetcher
    parts = sorted(consumer.partitions.values(), key=lambda p: p.id)
    offsets, notes = list_offsets(parts, timeout_s) if parts else ({}, [])
    rows: list[tuple[object, ...]] = []
    total: int | None = 0
    queued = 0
    for p in parts:
        info = fetcher.partition_info(p.id)
        last, nxt = info["last_consumed"], info["fetch_offset"]
        latest = offsets.get(p.id, (None, None))[1]
        if latest is None and info["high_watermark"] >= 0:
            latest = info["high_watermark"]
            notes.append("latest offset of partition %d is the high "
                         "watermark of the last fetch" % p.id)
        lag = max(0, latest - (last + 1)) if latest is not None else None
        if lag is None or total is None:
            total = None
        else:
            total += lag
        queued += info["queued"]
        rows.append((p.id, info["state"].replace("_", " "),
                     info["leader"] if info["leader"] >= 0 else None,
                     last if last >= 0 else None, nxt, latest, lag,
                     info["queued"]))
    return ConsumerView(rows, notes, total, queued)


def consumer_repr(consumer: SimpleConsumer) -> str:
    """A SimpleConsumer's repr: what it holds, from the fetch thread's
    state (no broker is asked): held offsets (pykafka's held_offsets), the
    lag to the last fetch's high watermarks, queued messages."""
    fetcher = consumer._fetcher
    lag: int | None = 0
    queued = 0
    for pid in consumer._partitions_by_id:
        info = fetcher.partition_info(pid)
        queued += info["queued"]
        hw = info["high_watermark"]
        if hw < 0 or lag is None:
            lag = None
        else:
            lag += max(0, hw - (info["last_consumed"] + 1))
    pairs: list[tuple[str, object]] = [
        ("topic", consumer._topic.name),
        ("consumer_group", consumer._consumer_group),
        ("partitions", id_list(consumer._partitions_by_id)),
        ("running", consumer._running),
        ("held_offsets", offset_map(consumer.held_offsets)),
        ("queued", queued)]
    if lag is not None and consumer._partitions_by_id:
        pairs.append(("lag", lag))
    return fields(consumer, pairs)


_CONSUMER_HEADERS = ["partition", "state", "leader", "held offset",
                     "next fetch", "latest offset", "lag", "queued"]


def consumer_html(consumer: SimpleConsumer) -> str:
    """A SimpleConsumer's display: its partitions with held and latest
    offsets, lag and queued messages."""
    view = consumer_rows(consumer)
    title = "<b>%s</b> %s" % (esc(type(consumer).__name__), kv([
        ("topic", consumer.topic.name),
        ("consumer group", consumer._consumer_group),
        ("running", "yes" if consumer._running else "no"),
        ("partitions", len(view.rows)), ("lag", view.lag),
        ("queued", view.queued)]))
    return block(title, [table(_CONSUMER_HEADERS, view.rows, left=(1,))],
                 view.notes)


def balanced_html(consumer: BalancedConsumer) -> str:
    """A balanced consumer's display: its group membership, then its
    partitions as a SimpleConsumer's."""
    internal = consumer._consumer
    view = ConsumerView([], ["partitions: no assignment yet"], None, 0) \
        if internal is None else consumer_rows(internal)
    title = "<b>%s</b> %s" % (esc(type(consumer).__name__), kv([
        ("topic", consumer.topic.name),
        ("consumer group", consumer._consumer_group),
        ("member id", consumer._consumer_id or None),
        ("generation", consumer._generation_id
         if consumer._generation_id >= 0 else None),
        ("leader", "yes" if consumer._is_leader else "no"),
        ("running", "yes" if consumer._running else "no"),
        ("partitions", len(view.rows)), ("lag", view.lag),
        ("queued", view.queued)]))
    return block(title, [table(_CONSUMER_HEADERS, view.rows, left=(1,))],
                 view.notes)


_CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def producer_counts(producer: Producer) -> dict[str, int]:
    """produced, queued (not yet acknowledged nor failed), unsent,
    delivered, failed, retries, requests, bytes_sent."""
    s = producer._core.stats()
    return {"produced": s["appended"], "queued": s["pending"],
            "unsent": s["unsent"],
            "delivered": s["completed"] - s["failed"], "failed": s["failed"],
            "retries": s["retries"], "requests": s["requests"],
            "bytes_sent": s["bytes_sent"]}


def producer_html(producer: Producer) -> str:
    """A producer's display: its counts and the settings behind them."""
    counts = producer_counts(producer)
    s = producer._core.stats()
    title = "<b>%s</b> %s" % (esc(type(producer).__name__), kv([
        ("topic", producer._topic.name),
        ("running", "yes" if producer._running else "no"),
        ("compression", _CODEC_NAMES.get(producer._compression,
                                         producer._compression)),
        ("required acks", producer._required_acks),
        ("linger", "%d ms" % producer._linger_ms),
        ("idempotent", "yes (producer id %d)" % s["producer_id"]
         if producer._idempotent and s["producer_id"] >= 0
         else "yes" if producer._idempotent else "no"),
        ("sync", "yes" if producer._synchronous else "no")]))
    return block(title, [table(
        ["produced", "queued", "of which not sent yet", "delivered",
         "failed", "retries", "requests", "bytes sent"],
        [(counts["produced"], counts["queued"], counts["unsent"],
          counts["delivered"], counts["failed"], counts["retries"],
          counts["requests"], counts["bytes_sent"])], left=())])
