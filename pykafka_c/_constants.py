"""Kafka's error codes and API keys by name, and the API versions pykafka_c
implements (private).

Everything here is built at import from the C core's tables, the one place
each of these numbers is written: ``csrc/wire/kafka_errors.def`` (error
codes, Kafka's names, retriable, refresh-metadata), the generated
``csrc/wire/proto_api.h`` (API keys) and ``csrc/wire/api_support.def``
(version ranges).  ``CoordinatorType``, which only the Python layer uses,
is written here.  Python code names codes and keys through this module;
``tests/test_constants.py`` fails on a bare number.
"""

import enum

from . import _core

_ERRORS = _core.kafka_errors()   # (code, name, retriable, refresh_metadata)
_SUPPORT = _core.supported_versions()   # (api_key, name, min, max)

#: Kafka's error codes under Kafka's names:
#: ``KafkaError.NOT_LEADER_OR_FOLLOWER == 6``.
KafkaError = enum.IntEnum(
    "KafkaError", [(name, code) for code, name, _r, _m in _ERRORS],
    module=__name__)

#: Kafka's name of every code: ``ERROR_NAMES[6] == "NOT_LEADER_OR_FOLLOWER"``.
ERROR_NAMES = {code: name for code, name, _r, _m in _ERRORS}

#: Codes whose request may succeed when repeated (Kafka's
#: ``RetriableException`` subclasses).
RETRIABLE = frozenset(code for code, _n, retriable, _m in _ERRORS
                      if retriable)

#: Codes that say the client's metadata is stale (Kafka's
#: ``InvalidMetadataException`` subclasses): refresh it, then retry.  The
#: fetch and send loops test the same flag (pkc_kafka_error_refresh_metadata).
REFRESH_METADATA = frozenset(code for code, _n, _r, refresh in _ERRORS
                             if refresh)


class ApiKey(object):
    """Kafka API keys used by pykafka_c: ``ApiKey.FETCH == 1``, one
    attribute per API, named as in ``csrc/wire/proto_api.h``."""


for _key, _name, _lo, _hi in _SUPPORT:
    setattr(ApiKey, _name, _key)

#: Kafka's name of every API key used: ``API_NAMES[3] == "METADATA"``.
API_NAMES = {key: name for key, name, _lo, _hi in _SUPPORT}

#: ``{api_key: (min_version, max_version)}``: the versions whose semantics
#: pykafka_c implements.
SUPPORTED_VERSIONS = {key: (lo, hi) for key, _name, lo, hi in _SUPPORT}

del _key, _name, _lo, _hi


class CoordinatorType(enum.IntEnum):
    """FindCoordinator's ``KeyType`` (Kafka's ``CoordinatorType``): what the
    key names.  Only the Python layer asks for coordinators, so this table
    is written here rather than in C."""

    GROUP = 0
    TRANSACTION = 1
