"""Type stubs for pykafka_c._core, the C extension (csrc/py/).

Complete: every name the module defines is here, with the signature of its
docstring's text signature (``inspect.signature`` and these stubs agree;
``tests/test_typing.py`` runs mypy's stubtest on the module).  One section
per C file, in the order module.c registers them.
"""

import datetime
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, final

from typing import Self

from typing_extensions import Buffer as _Buffer, disjoint_base

# ------------------------------------------------------------- module.c

def _set_exceptions(classes: dict[str, type[BaseException]],
                    error_for_code: Callable[..., BaseException], /) -> None:
    """Register pykafka_c.exceptions' classes with the C core (private)."""

# ------------------------------------------------------------ message.c
# pykafka_c.common.Message and pykafka_c.protocol.Message.

class MessageBase:
    """pykafka.common.Message: the empty base class of messages."""

@disjoint_base
class Message(MessageBase):
    """A Kafka message, as pykafka.protocol.Message, plus ``headers``."""

    #: The payload: bytes or None (whatever a deserializer returned).
    value: Any
    #: The key: bytes or None (whatever a deserializer returned).
    partition_key: Any
    #: The Partition it came from (set by consumers), else None.
    partition: Any
    #: The producer's delivery report queue (internal), else None.
    delivery_report_q: Any
    offset: int
    partition_id: int
    compression_type: int
    produce_attempt: int
    protocol_version: int
    def __init__(self, value: Any, partition_key: Any = None,
                 compression_type: int = 0, offset: int = -1,
                 partition_id: int = -1, produce_attempt: int = 0,
                 protocol_version: int = 0,
                 timestamp: int | float | datetime.datetime | None = None,
                 delivery_report_q: Any = None, *,
                 headers: list[tuple[str, bytes | None]] | None = None
                 ) -> None: ...
    @property
    def timestamp(self) -> int | float | None:
        """Milliseconds since the epoch; -1 when the record had none."""
    @timestamp.setter
    def timestamp(self, value: int | float | datetime.datetime | None
                  ) -> None: ...
    @property
    def timestamp_dt(self) -> datetime.datetime | None:
        """The timestamp as a naive UTC datetime if it is > 0, else None."""
    @timestamp_dt.setter
    def timestamp_dt(self, value: datetime.datetime) -> None: ...
    @property
    def headers(self) -> list[tuple[str, bytes | None]]:
        """Record headers: a list of (str, bytes or None) pairs."""
    @headers.setter
    def headers(self, value: list[tuple[str, bytes | None]]) -> None: ...
    def set_timestamp(self, ts: int | float | datetime.datetime | None,
                      /) -> None: ...
    def pack_into(self, buff: _Buffer, offset: int, /) -> None: ...
    @classmethod
    def decode(cls, buff: _Buffer, msg_offset: int = -1,
               partition_id: int = -1) -> Message: ...
    def __len__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __setstate__(self, state: tuple[Any, ...], /) -> None: ...

# -------------------------------------------------------------- proto.c
# Message bodies (no header) as dicts of snake_case field names; arrays are
# lists, nested structs dicts, strings str (str or UTF-8 bytes accepted on
# encode), bytes fields bytes, records fields read-only memoryviews of the
# input when it is bytes (no copy), else bytes (any bytes-like on encode),
# uuids bytes of length 16.  Decoding raises ProtocolDecodeError naming the
# field path and byte offset; an API version outside api_versions_table()
# raises UnsupportedApiVersionError.

def encode_request(api_key: int, api_version: int,
                   fields: dict[str, Any], /) -> bytes: ...
def encode_response(api_key: int, api_version: int,
                    fields: dict[str, Any], /) -> bytes: ...
def decode_response(api_key: int, api_version: int, data: _Buffer,
                    trailing_ok: bool = False, /) -> dict[str, Any]: ...
def decode_request(api_key: int, api_version: int, data: _Buffer,
                   trailing_ok: bool = False, /) -> dict[str, Any]: ...
def api_versions_table() -> dict[int, tuple[str, int, int, int | None]]:
    """{api_key: (name, min_version, max_version, flexible_from)}"""
def kafka_errors() -> tuple[tuple[int, str, bool, bool], ...]:
    """((code, name, retriable, refresh_metadata), ...)"""
def supported_versions() -> tuple[tuple[int, str, int, int], ...]:
    """((api_key, name, min_version, max_version), ...)"""
def request_header_version(api_key: int, api_version: int, /) -> int: ...
def response_header_version(api_key: int, api_version: int, /) -> int: ...

# ----------------------------------------------------------- compress.c
# codec is an id 0-4 or a name ("none", "gzip", "snappy", "lz4", "zstd").

DECOMPRESS_MAX_DEFAULT: Final[int]

def compress(codec: int | str, data: _Buffer, level: int = -1) -> bytes: ...
def decompress(codec: int | str, data: _Buffer,
               max_size: int = 67108864) -> bytes: ...
def snappy_compress_raw(data: _Buffer, /) -> bytes:
    """One raw snappy block (compress() writes xerial framing)."""
def codec_available(codec: int | str, /) -> bool: ...
def available_codecs() -> tuple[str, ...]: ...

# ------------------------------------------------------------ records.c

RECORD_BATCH_OVERHEAD: Final[int]

#: Headers produce() takes: (name, value) pairs or a dict.
_HeadersIn: TypeAlias = (Sequence[tuple[str | bytes, str | bytes | None]]
                         | Mapping[str | bytes, str | bytes | None])

#: What encode_record_batch() takes for one record besides a Message:
#: (value, key, timestamp_ms or None, headers or None).
_RecordTuple: TypeAlias = tuple[_Buffer | None, _Buffer | None, int | None,
                               list[tuple[str | bytes, _Buffer | None]] | None]

def crc32c(data: _Buffer, crc: int = 0) -> int: ...
def decode_records(data: _Buffer, partition_id: int = -1,
                   fetch_offset: int = 0, read_committed: bool = False,
                   aborted_transactions: Iterable[tuple[int, int]] | None
                   = None, max_decompressed: int = 67108864,
                   max_total_decompressed: int = 1073741824
                   ) -> list[Message]: ...
def encode_record_batch(records: Iterable[Message | _RecordTuple],
                        compression: int = 0, *, producer_id: int = -1,
                        producer_epoch: int = -1, base_sequence: int = -1,
                        transactional: bool = False,
                        compression_level: int = -1,
                        max_size: int = 0) -> bytes: ...

# ----------------------------------------------------------- security.c

HAVE_TLS: Final[int]
TLS_LIBRARY: Final[str]

@final
class Security:
    """One client's TLS context and SASL credentials, shared by its
    connections.  Its repr names the settings, never a secret."""

    def __new__(cls, *, tls: bool = False, cafile: str | None = None,
                 capath: str | None = None, certfile: str | None = None,
                 keyfile: str | None = None,
                 key_password: str | bytes | None = None,
                 crlfile: str | None = None, check_hostname: bool = True,
                 sasl_mechanism: str | None = None,
                 sasl_username: str | None = None,
                 sasl_password: str | None = None,
                 scram_max_iterations: int = 0) -> Self: ...
    @property
    def tls(self) -> bool: ...
    @property
    def check_hostname(self) -> bool: ...
    @property
    def sasl_mechanism(self) -> str | None: ...
    @property
    def has_credentials(self) -> bool: ...
    def set_token(self, token: str | bytes, /) -> None: ...

# --------------------------------------------------------- connection.c

@final
class Connection:
    """A connection to one Kafka broker (pykafka_c.connection's
    BrokerConnection), set up by the constructor."""

    def __new__(cls, host: str, port: int, *,
                 timeout_ms: int | None = 30000, client_id: str = 'pykafka',
                 max_frame_bytes: int = 104857600, source_host: str = '',
                 source_port: int = 0, security: Security | None = None,
                 negotiate: bool = False, api_versions_version: int = 3,
                 software_version: str = '0') -> Self: ...
    @property
    def api_versions(self) -> dict[int, tuple[int, int]]: ...
    @property
    def api_versions_version(self) -> int: ...
    @property
    def api_versions_response(self) -> bytes | None: ...
    @property
    def tls(self) -> str | None: ...
    @property
    def session_lifetime_ms(self) -> int: ...
    @property
    def _authentications(self) -> int: ...
    @property
    def connected(self) -> bool: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def _recv_buffer_peak(self) -> int: ...
    def send(self, api_key: int, api_version: int, body: _Buffer, *,
             flexible: bool = False, expect_response: bool = True) -> int: ...
    def recv(self, timeout_ms: int | None = None) -> tuple[int, bytes]: ...
    def request(self, api_key: int, api_version: int, body: _Buffer, *,
                flexible: bool = False,
                timeout_ms: int | None = None) -> bytes: ...
    def close(self) -> None: ...
    def disconnect(self) -> None: ...
    def fileno(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...

# ------------------------------------------------------------ fetcher.c
# The consumer's C fetch loop (csrc/wire/fetchloop.h).  Events are
# (partition_id, kind, code, offset, node_id, exception) tuples, kind one
# of the FETCH_EV_* constants.

FETCH_EV_KAFKA: Final[int]
FETCH_EV_DECODE: Final[int]
FETCH_EV_CONN: Final[int]
FETCH_EV_SETUP: Final[int]
FETCH_EV_NO_LEADER: Final[int]

_FetchEvent: TypeAlias = tuple[int, int, int, int, int, BaseException | None]

@final
class Fetcher:
    """The C fetch loop of one topic and the consume side of it."""

    @property
    def running(self) -> bool: ...
    consumer_timeout_ms: int
    on_events: Callable[[], object] | None
    deserializer: Callable[[Any, Any], tuple[Any, Any]] | None
    def __new__(cls, topic: _Buffer, *, client_id: str = 'pykafka_c',
                 fetch_wait_max_ms: int = 100, fetch_min_bytes: int = 1,
                 fetch_max_bytes: int = 52428800,
                 partition_max_bytes: int = 1048576,
                 queued_max_messages: int = 2000,
                 socket_timeout_ms: int = 30000, backoff_ms: int = 500,
                 isolation_level: int = 0, check_crcs: bool = True,
                 consumer_timeout_ms: int = -1, source_host: str = '',
                 source_port: int = 0, max_version: int = 12,
                 max_frame: int = 0, max_decompressed: int = 0,
                 security: Security | None = None,
                 software_version: str | None = None) -> Self: ...
    def add_partition(self, partition_id: int, partition: Any = None,
                      /) -> None: ...
    def set_leader(self, partition_id: int, node_id: int,
                   host: str | None = None, port: int = 0,
                   leader_epoch: int = -1, /) -> None: ...
    def seek(self, partition_id: int, next_offset: int, /) -> None: ...
    def resume(self, partition_id: int, delay_ms: int = 0, /) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def consume(self, block: bool = True,
                unblock_event: threading.Event | None = None
                ) -> Message | None: ...
    def consume_batch(self, max_messages: int = 1000,
                      timeout_ms: int = 0) -> list[Message]: ...
    def consume_partition(self, partition_id: int, /) -> Message | None: ...
    def take_events(self) -> list[_FetchEvent]: ...
    def post_event(self, partition_id: int, kind: int, code: int,
                   offset: int = -1, node_id: int = -1, message: str = '',
                   /) -> None: ...
    def set_error(self, exc: BaseException | None, /) -> None: ...
    def partition_info(self, partition_id: int, /) -> dict[str, Any]:
        """partition, state ('active', 'wait_leader', 'paused'), leader,
        leader_epoch, fetch_offset, last_consumed, high_watermark,
        last_stable_offset, log_start_offset, queued, event_pending."""
    def position(self, partition_id: int, /) -> tuple[int, int, int]:
        """(last_consumed, fetch_offset, queued)"""
    def positions(self) -> dict[int, tuple[int, int, int]]: ...
    def stats(self) -> dict[str, int]: ...
    def __iter__(self) -> Iterator[Message]: ...
    def __next__(self) -> Message: ...

# ----------------------------------------------------------- producer.c
# The C half of pykafka_c.producer.Producer (private; see producer.c).

PRODUCER_EV_DONE: Final[int]
PRODUCER_EV_METADATA: Final[int]
PRODUCER_EV_STOPPED: Final[int]
PRODUCER_EV_PRODUCER_ID: Final[int]

@final
class ProducerCore:
    """The C send engine of one pykafka_c.Producer (private)."""

    @property
    def running(self) -> bool: ...
    @property
    def pending(self) -> int: ...
    @property
    def rr_index(self) -> int: ...
    def __new__(cls, topic: str, /, *, thread_local: threading.local,
                 queue_factory: Callable[[], queue.SimpleQueue[Any]],
                 exceptions: dict[str, type[BaseException]],
                 partitioner: Callable[[list[Any], Any], Any] | None = None,
                 serializer: Callable[[Any, Any], tuple[Any, Any]] | None
                 = None, compression: int = 0, required_acks: int = 1,
                 ack_timeout_ms: int = 10000, max_retries: int = 3,
                 retry_backoff_ms: int = 100, delivery_timeout_ms: int = 0,
                 max_queued_messages: int = 100000,
                 min_queued_messages: int = 70000, linger_ms: int = 5000,
                 max_request_size: int = 1000012,
                 delivery_reports: bool = False,
                 block_on_queue_full: bool = True, round_robin: bool = False,
                 connect_timeout_ms: int = 10000,
                 request_timeout_ms: int = 30000,
                 leader_wait_ms: int = 10000, max_in_flight: int = 5,
                 idempotent: bool = False, source_host: str | None = None,
                 source_port: int = 0, security: Security | None = None,
                 software_version: str | None = None,
                 transactional_id: str | None = None) -> Self: ...
    def produce(self, message: Any, partition_key: Any = None,
                timestamp: int | float | datetime.datetime | None = None,
                headers: _HeadersIn | None = None) -> Message: ...
    def set_partitions(self, partitions: list[Any], /) -> None: ...
    def set_leaders(self, leaders: list[tuple[int, int]], /) -> None: ...
    def set_brokers(self, brokers: list[tuple[int, str, int]], /) -> None: ...
    def start(self) -> None: ...
    def stop(self, timeout_ms: int | None = -1, /) -> int: ...
    def flush(self, timeout_ms: int | None = -1, /) -> int: ...
    def wait_event(self, timeout_ms: int, /) -> int: ...
    def set_producer_id(self, producer_id: int, producer_epoch: int,
                        /) -> None: ...
    def producer_id_failed(self, error_code: int, message: str,
                           /) -> None: ...
    def dispatch(self) -> list[tuple[int, BaseException]]: ...
    def report_queue(self) -> queue.SimpleQueue[
        tuple[Message, BaseException | None]]: ...
    def stats(self) -> dict[str, int]: ...
    def set_txn_hook(self, hook: Callable[[int], object] | None, /
                     ) -> None: ...
    def set_produce_check(self, check: Callable[[], object] | None, /
                          ) -> None: ...
    def txn_reset(self) -> None: ...
    def produce_version(self, node_id: int, /) -> int: ...
