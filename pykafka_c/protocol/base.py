"""Base classes of pykafka_c's protocol objects (``pykafka.protocol.base``).

Requests are *descriptions*: they keep pykafka's constructors and
attributes, and the :class:`~pykafka_c.broker.Broker` encodes them with the
C codec at the version negotiated with ApiVersions.  ``get_bytes()`` gives
pykafka's bytes (size, v1 header with correlation id 0 and client id
``pykafka``, body at the class's ``API_VERSION``) for every version the
codec knows, which are the versions Kafka 4 still has; the versions Kafka 4
removed (Produce v0-v2, Fetch v0-v3, ListOffsets v0, OffsetCommit v0-v1,
OffsetFetch v0, CreateTopics v0-v1, DeleteTopics v0) raise
NotImplementedError.

Responses are ``dict`` subclasses: the dict is the response as the C codec
decoded it (Kafka's field names in snake_case, strings as ``str``), and the
attributes are pykafka's (``topics``, ``brokers``, ``error_code`` ...,
names as ``bytes`` as pykafka's decoder gave them).  A response is built
from a decoded dict or, as in pykafka, from the response body bytes, which
are decoded at the class's ``API_VERSION`` (or ``version=``).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, cast

from .. import _core
from .._constants import ApiKey as _ApiKey
from ..exceptions import error_for_code
from ..membershipprotocol import ConsumerGroupProtocolMetadata, MemberAssignment
from .._responses import ApiVersionsSpec
from .._typing import Decoded
from ..utils import ApiVersionAware

if TYPE_CHECKING:  # typing.Self is 3.11+; annotations here are strings
    from typing import Self

__all__ = ["Request", "Response", "ApiVersionsSpec", "API_VERSIONS_080",
           "API_VERSIONS_090", "MemberAssignment",
           "ConsumerGroupProtocolMetadata"]

#: pykafka's hard-coded tables for brokers older than 0.10 (kept for
#: compatibility; pykafka_c always negotiates with ApiVersions).
#: Every key 0-16 at max 0 except OffsetCommit and OffsetFetch at max 1;
#: 0.9 adds Fetch at max 1.
API_VERSIONS_080: dict[int, ApiVersionsSpec] = {
    i: ApiVersionsSpec(i, 0, 1 if i in (_ApiKey.OFFSET_COMMIT,
                                         _ApiKey.OFFSET_FETCH) else 0)
    for i in range(_ApiKey.LIST_GROUPS + 1)}
API_VERSIONS_090 = dict(API_VERSIONS_080)
API_VERSIONS_090[_ApiKey.FETCH] = ApiVersionsSpec(_ApiKey.FETCH, 0, 1)


def _b(value: Any) -> Any:
    """``str`` -> UTF-8 ``bytes`` (pykafka's decoded strings); bytes and
    None unchanged."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _s(value: Any) -> Any:
    """``bytes`` -> ``str`` for the C encoder; str and None unchanged."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return value


class _VersionAware(ApiVersionAware):
    """pykafka's ``ApiVersionAware`` (``get_versions()`` maps versions to
    the classes implementing them; ``get_version_impl`` is pykafka's,
    cached process-wide in ``utils.VERSIONS_CACHE``) plus
    ``for_version``."""

    API_KEY: ClassVar[int] = -1
    API_VERSION: ClassVar[int] = 0

    @classmethod
    def get_versions(cls) -> dict[int, type]:
        return {}

    @classmethod
    def for_version(cls, version: int) -> type[Self]:
        """The class of the highest implemented version <= ``version``."""
        versions = cls.get_versions()
        best = [v for v in versions if v <= version]
        if not best:
            return cls
        return cast("type[Self]", versions[max(best)])


class Request(_VersionAware):
    """Base class of requests (descriptions the Broker encodes)."""

    HEADER_LEN = 21
    CLIENT_ID = b"pykafka"

    def get_bytes(self) -> bytearray:
        """get_bytes() -> bytearray --

        The request as pykafka wrote it: the size, a request header (API
        key, the class's ``API_VERSION``, correlation id 0, client id
        ``pykafka``) and the body, encoded by the C codec.  Versions the
        codec does not have (those Kafka 4 removed) raise
        NotImplementedError.  The Broker does not use this: it encodes at
        the version it negotiated."""
        version = self.API_VERSION
        name, low, high, flexible_from = _core.api_versions_table().get(
            self.API_KEY, (type(self).__name__, 0, -1, None))
        if not low <= version <= high:
            raise NotImplementedError(
                "%s v%d is a version Kafka 4 removed; pykafka_c encodes "
                "%s v%d-v%d only" % (name, version, name, low, high))
        body = _core.encode_request(self.API_KEY, version,
                                    self._fields(version))
        header = struct.pack("!hhih", self.API_KEY, version, 0,
                             len(self.CLIENT_ID)) + self.CLIENT_ID
        if flexible_from is not None and flexible_from <= version:
            header += b"\x00"  # header v2: no tagged fields
        size = len(header) + len(body)
        return bytearray(struct.pack("!i", size) + header + body)

    def __len__(self) -> int:
        """Size of :meth:`get_bytes`."""
        return len(self.get_bytes())

    def pack_into(self, buff: bytearray, offset: int) -> None:
        """pack_into(buff, offset) --

        Write :meth:`get_bytes` into ``buff`` at ``offset``."""
        raw = self.get_bytes()
        buff[offset:offset + len(raw)] = raw

    def _fields(self, version: int, **kwargs: Any) -> Decoded:
        """The request body as the dict the C codec encodes at
        ``version``."""
        raise NotImplementedError(
            "%s has no body description" % type(self).__name__)


class Response(dict[str, Any], _VersionAware):
    """Base class of responses: the decoded response dict plus pykafka's
    attributes.

    ``Response(buff, version=None)``: ``buff`` is a decoded response dict
    (what ``Broker.request`` returns) or the response body bytes (no size
    prefix, no header), decoded at ``version`` (default ``API_VERSION``);
    bytes after the body are ignored, as pykafka's decoders did.
    """

    #: Whether a non-zero error code raises from the constructor (pykafka's
    #: GroupCoordinator, CreateTopics and DeleteTopics responses did).
    RAISES: ClassVar[bool] = False

    def __init__(self, buff: Any = None, version: int | None = None,
                 raise_errors: bool | None = None) -> None:
        if version is None:
            version = self.API_VERSION
        if buff is None:
            decoded: Decoded = {}
        elif isinstance(buff, dict):
            decoded = buff
        else:
            # As pykafka's decoders, ignore bytes after the response.
            decoded = _core.decode_response(self.API_KEY, version,
                                            bytes(buff), True)
        dict.__init__(self, decoded)
        self.api_version = version
        self._populate()
        if self.RAISES if raise_errors is None else raise_errors:
            self._raise_errors()

    def _populate(self) -> None:
        pass

    def _raise_errors(self) -> None:
        pass

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__, dict.__repr__(self))

    # dicts compare by content; responses also by type
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Response) and type(other) is not type(self):
            return False
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def raise_error(self, err_code: int, response: Any) -> NoReturn:
        """raise_error(err_code, response) --

        Raise the pykafka exception for Kafka error code ``err_code`` (its
        message names the error, the code and the response)."""
        raise error_for_code(err_code, 'Response Type: "%s"\tResponse: %s'
                             % (type(self).__name__, response))
