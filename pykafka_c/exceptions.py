"""The pykafka exception tree, extended to every Kafka protocol error code.

The first part mirrors ``pykafka.exceptions`` 2.8 class for class, so code that
catches pykafka's exceptions catches ours.  ``ERROR_CODES`` maps every error
code Kafka defines (up to Kafka 4.x) to a ``ProtocolClientError`` subclass;
pykafka only mapped 21 of them and raised ``KeyError`` for the rest (pykafka
issue #846).  Looking up a code that is not in the table returns
``UnknownError``-derived class made for that code, so no broker error ever
surfaces as a ``KeyError``.

These classes are handed to the C core at import (``_core._set_exceptions``),
which raises them directly.
"""

from . import _constants

__all__ = []  # pykafka.exceptions has no __all__; names are imported explicitly


class KafkaException(Exception):
    """Base of every pykafka exception except :class:`UnicodeException`."""


class NoBrokersAvailableError(KafkaException):
    """Metadata could not be fetched from any broker."""


class LeaderNotFoundError(KafkaException):
    """Metadata names a leader or replica broker that is not known."""


class SocketDisconnectedError(KafkaException):
    """A connection could not be made, or was lost while sending or reading."""


class ProduceFailureError(KafkaException):
    """A message could not be produced (no leader, or no delivery report)."""


class ConsumerStoppedException(KafkaException):
    """A consumer method was called after ``stop()``."""


class NoMessagesConsumedError(KafkaException):
    """Kept for compatibility with pykafka; not raised."""


class MessageSetDecodeFailure(KafkaException):
    """A fetched message set could not be decoded."""


class ProducerQueueFullError(KafkaException):
    """``produce()`` found the queue full and ``block_on_queue_full`` is off."""


class ProducerStoppedException(KafkaException):
    """``produce()`` was called on a stopped producer."""


class OffsetRequestFailedError(KafkaException):
    """``reset_offsets`` ran out of retries for its ListOffsets requests."""


class PartitionOwnedError(KafkaException):
    """A partition is owned by another consumer (kept for compatibility)."""

    def __init__(self, partition, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.partition = partition


class UnicodeException(Exception):
    """A topic or group name is not ASCII (deliberately not a KafkaException)."""


# --- pykafka_c additions that are not broker error codes ----------------------

class ProtocolDecodeError(KafkaException):
    """A response from the broker is malformed: truncated, a hostile length or
    count, a bad varint.  The message names the API, version and byte offset."""


class CorruptRecordError(ProtocolDecodeError):
    """A record batch failed its CRC check or is otherwise malformed."""


class CompressionError(KafkaException):
    """Compressed data could not be decompressed, or exceeded the size cap."""


class CodecUnavailableError(CompressionError):
    """The build of pykafka_c lacks this compression codec."""


class UnsupportedApiVersionError(KafkaException):
    """The broker supports no version of an API that pykafka_c can speak."""


class SslError(SocketDisconnectedError):
    """A TLS connection could not be set up: the broker's certificate did not
    verify (unknown CA, expired, or not naming the host), the broker refused
    ours, the port does not speak TLS, or a certificate, key or CA file
    could not be loaded.  The message says which.  Retrying does not help.
    (pykafka raised SocketDisconnectedError here; this is a subclass.)"""


class SslUnavailableError(KafkaException, NotImplementedError):
    """TLS or SCRAM was asked for, but this build of pykafka_c has no OpenSSL
    (its headers were missing when it was built)."""


class RdKafkaException(KafkaException):
    """Kept for compatibility with pykafka's rdkafka extension; not raised."""


class RdKafkaStoppedException(RdKafkaException):
    """Kept for compatibility with pykafka's rdkafka extension; not raised."""


# --- broker error codes -------------------------------------------------------

class ProtocolClientError(KafkaException):
    """Base class for errors the broker reports with an error code."""

    ERROR_CODE = None


def _code_class(name, code, doc, base=ProtocolClientError, retriable=False):
    cls = type(name, (base,), {"ERROR_CODE": code, "__doc__": doc,
                               "RETRIABLE": retriable,
                               "__module__": __name__})
    globals()[name] = cls
    return cls


#: The class of each Kafka error code: only the name is written here.
#: Kafka's names and the retriable flags come from the C core's table
#: (csrc/wire/kafka_errors.def, read through ``_core.kafka_errors()``).
#: Names that pykafka 2.8 defines keep pykafka's spelling.
_CLASS_NAMES = {
    -1: "UnknownError",
    1: "OffsetOutOfRangeError",
    2: "InvalidMessageError",
    3: "UnknownTopicOrPartition",
    4: "InvalidMessageSize",
    5: "LeaderNotAvailable",
    6: "NotLeaderForPartition",
    7: "RequestTimedOut",
    8: "BrokerNotAvailable",
    9: "ReplicaNotAvailable",
    10: "MessageSizeTooLarge",
    11: "StaleControllerEpoch",
    12: "OffsetMetadataTooLarge",
    13: "NetworkException",
    14: "GroupLoadInProgress",
    15: "GroupCoordinatorNotAvailable",
    16: "NotCoordinatorForGroup",
    17: "InvalidTopic",
    18: "RecordListTooLarge",
    19: "NotEnoughReplicas",
    20: "NotEnoughReplicasAfterAppend",
    21: "InvalidRequiredAcks",
    22: "IllegalGeneration",
    23: "InconsistentGroupProtocol",
    24: "InvalidGroupId",
    25: "UnknownMemberId",
    26: "InvalidSessionTimeout",
    27: "RebalanceInProgress",
    28: "InvalidCommitOffsetSize",
    29: "TopicAuthorizationFailed",
    30: "GroupAuthorizationFailed",
    31: "ClusterAuthorizationFailed",
    32: "InvalidTimestamp",
    33: "UnsupportedSaslMechanism",
    34: "IllegalSaslState",
    35: "UnsupportedVersion",
    36: "TopicAlreadyExists",
    37: "InvalidPartitions",
    38: "InvalidReplicationFactor",
    39: "InvalidReplicaAssignment",
    40: "InvalidConfig",
    41: "NotController",
    42: "InvalidRequest",
    43: "UnsupportedForMessageFormat",
    44: "PolicyViolation",
    45: "OutOfOrderSequenceNumber",
    46: "DuplicateSequenceNumber",
    47: "InvalidProducerEpoch",
    48: "InvalidTxnState",
    49: "InvalidProducerIdMapping",
    50: "InvalidTransactionTimeout",
    51: "ConcurrentTransactions",
    52: "TransactionCoordinatorFenced",
    53: "TransactionalIdAuthorizationFailed",
    54: "SecurityDisabled",
    55: "OperationNotAttempted",
    56: "KafkaStorageError",
    57: "LogDirNotFound",
    58: "SaslAuthenticationFailed",
    59: "UnknownProducerId",
    60: "ReassignmentInProgress",
    61: "DelegationTokenAuthDisabled",
    62: "DelegationTokenNotFound",
    63: "DelegationTokenOwnerMismatch",
    64: "DelegationTokenRequestNotAllowed",
    65: "DelegationTokenAuthorizationFailed",
    66: "DelegationTokenExpired",
    67: "InvalidPrincipalType",
    68: "NonEmptyGroup",
    69: "GroupIdNotFound",
    70: "FetchSessionIdNotFound",
    71: "InvalidFetchSessionEpoch",
    72: "ListenerNotFound",
    73: "TopicDeletionDisabled",
    74: "FencedLeaderEpoch",
    75: "UnknownLeaderEpoch",
    76: "UnsupportedCompressionType",
    77: "StaleBrokerEpoch",
    78: "OffsetNotAvailable",
    79: "MemberIdRequired",
    80: "PreferredLeaderNotAvailable",
    81: "GroupMaxSizeReached",
    82: "FencedInstanceId",
    83: "EligibleLeadersNotAvailable",
    84: "ElectionNotNeeded",
    85: "NoReassignmentInProgress",
    86: "GroupSubscribedToTopic",
    87: "InvalidRecord",
    88: "UnstableOffsetCommit",
    89: "ThrottlingQuotaExceeded",
    90: "ProducerFenced",
    91: "ResourceNotFound",
    92: "DuplicateResource",
    93: "UnacceptableCredential",
    94: "InconsistentVoterSet",
    95: "InvalidUpdateVersion",
    96: "FeatureUpdateFailed",
    97: "PrincipalDeserializationFailure",
    98: "SnapshotNotFound",
    99: "PositionOutOfRange",
    100: "UnknownTopicId",
    101: "DuplicateBrokerRegistration",
    102: "BrokerIdNotRegistered",
    103: "InconsistentTopicId",
    104: "InconsistentClusterId",
    105: "TransactionalIdNotFound",
    106: "FetchSessionTopicIdError",
    107: "IneligibleReplica",
    108: "NewLeaderElected",
    109: "OffsetMovedToTieredStorage",
    110: "FencedMemberEpoch",
    111: "UnreleasedInstanceId",
    112: "UnsupportedAssignor",
    113: "StaleMemberEpoch",
    114: "MismatchedEndpointType",
    115: "UnsupportedEndpointType",
    116: "UnknownControllerId",
    117: "UnknownSubscriptionId",
    118: "TelemetryTooLarge",
    119: "InvalidRegistration",
    120: "TransactionAbortable",
    121: "InvalidRecordState",
    122: "ShareSessionNotFound",
    123: "InvalidShareSessionEpoch",
    124: "FencedStateEpoch",
    125: "InvalidVoterKey",
    126: "DuplicateVoter",
    127: "VoterNotFound",
    128: "InvalidRegularExpression",
    129: "RebootstrapRequired",
    130: "StreamsInvalidTopology",
    131: "StreamsInvalidTopologyEpoch",
    132: "StreamsTopologyFenced",
    133: "ShareSessionLimitReached",
}

#: Kafka's own name for each code, e.g. ``KAFKA_ERROR_NAMES[6]`` is
#: ``'NOT_LEADER_OR_FOLLOWER'``.
KAFKA_ERROR_NAMES = dict(_constants.ERROR_NAMES)
del KAFKA_ERROR_NAMES[_constants.KafkaError.NONE]

for _code, _name in _CLASS_NAMES.items():
    _code_class(_name, _code,
                "Kafka error %d, %s." % (_code, KAFKA_ERROR_NAMES[_code]),
                retriable=_code in _constants.RETRIABLE)

#: Modern Kafka names for classes that keep pykafka's older spelling.
NotLeaderOrFollower = NotLeaderForPartition  # noqa: F821
CoordinatorLoadInProgress = GroupLoadInProgress  # noqa: F821
CoordinatorNotAvailable = GroupCoordinatorNotAvailable  # noqa: F821
NotCoordinator = NotCoordinatorForGroup  # noqa: F821
OffsetOutOfRange = OffsetOutOfRangeError  # noqa: F821


class _ErrorCodes(dict):
    """``{code: class}``; a code Kafka may add later maps to a class made on
    first use (a subclass of ``UnknownError``), never to a ``KeyError``."""

    def __missing__(self, code):
        if not isinstance(code, int) or isinstance(code, bool):
            raise KeyError(code)
        cls = type("UnknownKafkaError%d" % code if code >= 0
                   else "UnknownKafkaErrorMinus%d" % -code,
                   (UnknownError,),  # noqa: F821
                   {"ERROR_CODE": code, "RETRIABLE": False,
                    "__module__": __name__,
                    "__doc__": "Kafka error %d, not known to this version "
                               "of pykafka_c." % code})
        self[code] = cls
        KAFKA_ERROR_NAMES.setdefault(code, "UNKNOWN_CODE_%d" % code)
        return cls


ERROR_CODES = _ErrorCodes(
    (cls.ERROR_CODE, cls) for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, ProtocolClientError)
    and cls.ERROR_CODE is not None)


def error_for_code(code, message=""):
    """Return an exception instance for Kafka error ``code`` (never KeyError)."""
    cls = ERROR_CODES[code]
    name = KAFKA_ERROR_NAMES.get(code, "")
    text = "%s (%d)" % (name, code)
    if message:
        text += ": " + message
    return cls(text)


# --- the transactional producer -----------------------------------------------

class TransactionError(KafkaException):
    """Base of the transactional producer's errors (pykafka_c addition)."""


class TransactionStateError(TransactionError):
    """A transactional producer's method was called out of order: before
    ``init_transactions()``, ``begin_transaction()`` twice, ``commit`` or
    ``abort`` without a transaction, or ``produce()`` outside one."""


class TransactionAbortableError(TransactionError):
    """The current transaction failed (a message could not be delivered, a
    partition or the offsets could not be added to it, ...): nothing of it
    will be committed.  Call ``abort_transaction()``, then begin a new one.
    The error that caused it is the exception's ``__cause__``."""


class TransactionFatalError(TransactionError):
    """The transactional producer cannot be used again (for example the
    broker refused its transactional id): stop it and make a new one."""


class ProducerFencedError(TransactionFatalError,
                          ProducerFenced):  # noqa: F821
    """Another producer with the same ``transactional_id`` called
    ``init_transactions()`` after this one (INVALID_PRODUCER_EPOCH or
    PRODUCER_FENCED): this one is a zombie and can never write again.
    Also caught by ``except ProducerFenced``."""


#: Connection failures that retrying does not fix: TLS set-up and SASL
#: authentication (the message says what to change).
_SECURITY_ERRORS = (SslError, SslUnavailableError,
                   SaslAuthenticationFailed,  # noqa: F821
                   UnsupportedSaslMechanism,  # noqa: F821
                   IllegalSaslState)  # noqa: F821

del _code, _name
