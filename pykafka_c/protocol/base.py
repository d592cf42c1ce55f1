"""Base classes of pykafka_c's protocol objects (``pykafka.protocol.base``).

Requests are *descriptions*: they keep pykafka's constructors and
attributes, and the :class:`~pykafka_c.broker.Broker` encodes them with the
C codec at the version negotiated with ApiVersions.  pykafka's
``get_bytes()`` (its own v0 wire format with a v0 header) does not exist
here.

Responses are ``dict`` subclasses: the dict is the response as the C codec
decoded it (Kafka's field names in snake_case, strings as ``str``), and the
attributes are pykafka's (``topics``, ``brokers``, ``error_code`` ...,
names as ``bytes`` as pykafka's decoder gave them).  A response is built
from a decoded dict or, as in pykafka, from the response body bytes, which
are decoded at the class's ``API_VERSION`` (or ``version=``).
"""

from collections import namedtuple

from .. import _core
from .._constants import ApiKey as _ApiKey
from ..exceptions import error_for_code
from ..membershipprotocol import ConsumerGroupProtocolMetadata, MemberAssignment
from ..utils import ApiVersionAware

__all__ = ["Request", "Response", "ApiVersionsSpec", "API_VERSIONS_080",
           "API_VERSIONS_090", "MemberAssignment",
           "ConsumerGroupProtocolMetadata"]

#: One API's version range, as pykafka's ``ApiVersionsSpec``.
ApiVersionsSpec = namedtuple("ApiVersionsSpec", ["key", "min", "max"])

#: pykafka's hard-coded tables for brokers older than 0.10 (kept for
#: compatibility; pykafka_c always negotiates with ApiVersions).
#: Every key 0-16 at max 0 except OffsetCommit and OffsetFetch at max 1;
#: 0.9 adds Fetch at max 1.
API_VERSIONS_080 = {
    i: ApiVersionsSpec(i, 0, 1 if i in (_ApiKey.OFFSET_COMMIT,
                                         _ApiKey.OFFSET_FETCH) else 0)
    for i in range(_ApiKey.LIST_GROUPS + 1)}
API_VERSIONS_090 = dict(API_VERSIONS_080)
API_VERSIONS_090[_ApiKey.FETCH] = ApiVersionsSpec(_ApiKey.FETCH, 0, 1)


def _b(value):
    """``str`` -> UTF-8 ``bytes`` (pykafka's decoded strings); bytes and
    None unchanged."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _s(value):
    """``bytes`` -> ``str`` for the C encoder; str and None unchanged."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return value


class _VersionAware(ApiVersionAware):
    """pykafka's ``ApiVersionAware`` (``get_versions()`` maps versions to
    the classes implementing them; ``get_version_impl`` is pykafka's,
    cached process-wide in ``utils.VERSIONS_CACHE``) plus
    ``for_version``."""

    API_KEY = -1
    API_VERSION = 0

    @classmethod
    def get_versions(cls):
        return {}

    @classmethod
    def for_version(cls, version):
        """The class of the highest implemented version <= ``version``."""
        versions = cls.get_versions()
        best = [v for v in versions if v <= version]
        if not best:
            return cls
        return versions[max(best)]


class Request(_VersionAware):
    """Base class of requests (descriptions the Broker encodes)."""

    HEADER_LEN = 21
    CLIENT_ID = b"pykafka"

    def get_bytes(self):
        """get_bytes() --

        Not available: the Broker encodes requests with the C codec at the
        negotiated version."""
        raise NotImplementedError(
            "pykafka_c requests are encoded by Broker at the version it "
            "negotiated; use Broker methods to send them")


class Response(dict, _VersionAware):
    """Base class of responses: the decoded response dict plus pykafka's
    attributes.

    ``Response(buff, version=None)``: ``buff`` is a decoded response dict
    (what ``Broker.request`` returns) or the response body bytes (no size
    prefix, no header), decoded at ``version`` (default ``API_VERSION``).
    """

    #: Whether a non-zero error code raises from the constructor (pykafka's
    #: GroupCoordinator, CreateTopics and DeleteTopics responses did).
    RAISES = False

    def __init__(self, buff=None, version=None, raise_errors=None):
        if version is None:
            version = self.API_VERSION
        if buff is None:
            decoded = {}
        elif isinstance(buff, dict):
            decoded = buff
        else:
            decoded = _core.decode_response(self.API_KEY, version,
                                            bytes(buff))
        dict.__init__(self, decoded)
        self.api_version = version
        self._populate()
        if self.RAISES if raise_errors is None else raise_errors:
            self._raise_errors()

    def _populate(self):
        pass

    def _raise_errors(self):
        pass

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, dict.__repr__(self))

    # dicts compare by content; responses also by type
    def __eq__(self, other):
        if isinstance(other, Response) and type(other) is not type(self):
            return False
        return dict.__eq__(self, other)

    __hash__ = None

    def __ne__(self, other):
        return not self.__eq__(other)

    def raise_error(self, err_code, response):
        """raise_error(err_code, response) --

        Raise the pykafka exception for Kafka error code ``err_code`` (its
        message names the error, the code and the response)."""
        raise error_for_code(err_code, 'Response Type: "%s"\tResponse: %s'
                             % (type(self).__name__, response))
