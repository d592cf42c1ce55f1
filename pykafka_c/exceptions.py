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


# (code, pykafka_c class name, Kafka name, retriable)
# Names that pykafka 2.8 defines keep pykafka's spelling.
_KAFKA_ERRORS = [
    (-1, "UnknownError", "UNKNOWN_SERVER_ERROR", False),
    (1, "OffsetOutOfRangeError", "OFFSET_OUT_OF_RANGE", False),
    (2, "InvalidMessageError", "CORRUPT_MESSAGE", True),
    (3, "UnknownTopicOrPartition", "UNKNOWN_TOPIC_OR_PARTITION", True),
    (4, "InvalidMessageSize", "INVALID_FETCH_SIZE", False),
    (5, "LeaderNotAvailable", "LEADER_NOT_AVAILABLE", True),
    (6, "NotLeaderForPartition", "NOT_LEADER_OR_FOLLOWER", True),
    (7, "RequestTimedOut", "REQUEST_TIMED_OUT", True),
    (8, "BrokerNotAvailable", "BROKER_NOT_AVAILABLE", False),
    (9, "ReplicaNotAvailable", "REPLICA_NOT_AVAILABLE", True),
    (10, "MessageSizeTooLarge", "MESSAGE_TOO_LARGE", False),
    (11, "StaleControllerEpoch", "STALE_CONTROLLER_EPOCH", False),
    (12, "OffsetMetadataTooLarge", "OFFSET_METADATA_TOO_LARGE", False),
    (13, "NetworkException", "NETWORK_EXCEPTION", True),
    (14, "GroupLoadInProgress", "COORDINATOR_LOAD_IN_PROGRESS", True),
    (15, "GroupCoordinatorNotAvailable", "COORDINATOR_NOT_AVAILABLE", True),
    (16, "NotCoordinatorForGroup", "NOT_COORDINATOR", True),
    (17, "InvalidTopic", "INVALID_TOPIC_EXCEPTION", False),
    (18, "RecordListTooLarge", "RECORD_LIST_TOO_LARGE", False),
    (19, "NotEnoughReplicas", "NOT_ENOUGH_REPLICAS", True),
    (20, "NotEnoughReplicasAfterAppend", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", True),
    (21, "InvalidRequiredAcks", "INVALID_REQUIRED_ACKS", False),
    (22, "IllegalGeneration", "ILLEGAL_GENERATION", False),
    (23, "InconsistentGroupProtocol", "INCONSISTENT_GROUP_PROTOCOL", False),
    (24, "InvalidGroupId", "INVALID_GROUP_ID", False),
    (25, "UnknownMemberId", "UNKNOWN_MEMBER_ID", False),
    (26, "InvalidSessionTimeout", "INVALID_SESSION_TIMEOUT", False),
    (27, "RebalanceInProgress", "REBALANCE_IN_PROGRESS", False),
    (28, "InvalidCommitOffsetSize", "INVALID_COMMIT_OFFSET_SIZE", False),
    (29, "TopicAuthorizationFailed", "TOPIC_AUTHORIZATION_FAILED", False),
    (30, "GroupAuthorizationFailed", "GROUP_AUTHORIZATION_FAILED", False),
    (31, "ClusterAuthorizationFailed", "CLUSTER_AUTHORIZATION_FAILED", False),
    (32, "InvalidTimestamp", "INVALID_TIMESTAMP", False),
    (33, "UnsupportedSaslMechanism", "UNSUPPORTED_SASL_MECHANISM", False),
    (34, "IllegalSaslState", "ILLEGAL_SASL_STATE", False),
    (35, "UnsupportedVersion", "UNSUPPORTED_VERSION", False),
    (36, "TopicAlreadyExists", "TOPIC_ALREADY_EXISTS", False),
    (37, "InvalidPartitions", "INVALID_PARTITIONS", False),
    (38, "InvalidReplicationFactor", "INVALID_REPLICATION_FACTOR", False),
    (39, "InvalidReplicaAssignment", "INVALID_REPLICA_ASSIGNMENT", False),
    (40, "InvalidConfig", "INVALID_CONFIG", False),
    (41, "NotController", "NOT_CONTROLLER", True),
    (42, "InvalidRequest", "INVALID_REQUEST", False),
    (43, "UnsupportedForMessageFormat", "UNSUPPORTED_FOR_MESSAGE_FORMAT", False),
    (44, "PolicyViolation", "POLICY_VIOLATION", False),
    (45, "OutOfOrderSequenceNumber", "OUT_OF_ORDER_SEQUENCE_NUMBER", False),
    (46, "DuplicateSequenceNumber", "DUPLICATE_SEQUENCE_NUMBER", False),
    (47, "InvalidProducerEpoch", "INVALID_PRODUCER_EPOCH", False),
    (48, "InvalidTxnState", "INVALID_TXN_STATE", False),
    (49, "InvalidProducerIdMapping", "INVALID_PRODUCER_ID_MAPPING", False),
    (50, "InvalidTransactionTimeout", "INVALID_TRANSACTION_TIMEOUT", False),
    (51, "ConcurrentTransactions", "CONCURRENT_TRANSACTIONS", True),
    (52, "TransactionCoordinatorFenced", "TRANSACTION_COORDINATOR_FENCED", False),
    (53, "TransactionalIdAuthorizationFailed", "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", False),
    (54, "SecurityDisabled", "SECURITY_DISABLED", False),
    (55, "OperationNotAttempted", "OPERATION_NOT_ATTEMPTED", False),
    (56, "KafkaStorageError", "KAFKA_STORAGE_ERROR", True),
    (57, "LogDirNotFound", "LOG_DIR_NOT_FOUND", False),
    (58, "SaslAuthenticationFailed", "SASL_AUTHENTICATION_FAILED", False),
    (59, "UnknownProducerId", "UNKNOWN_PRODUCER_ID", False),
    (60, "ReassignmentInProgress", "REASSIGNMENT_IN_PROGRESS", False),
    (61, "DelegationTokenAuthDisabled", "DELEGATION_TOKEN_AUTH_DISABLED", False),
    (62, "DelegationTokenNotFound", "DELEGATION_TOKEN_NOT_FOUND", False),
    (63, "DelegationTokenOwnerMismatch", "DELEGATION_TOKEN_OWNER_MISMATCH", False),
    (64, "DelegationTokenRequestNotAllowed", "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", False),
    (65, "DelegationTokenAuthorizationFailed", "DELEGATION_TOKEN_AUTHORIZATION_FAILED", False),
    (66, "DelegationTokenExpired", "DELEGATION_TOKEN_EXPIRED", False),
    (67, "InvalidPrincipalType", "INVALID_PRINCIPAL_TYPE", False),
    (68, "NonEmptyGroup", "NON_EMPTY_GROUP", False),
    (69, "GroupIdNotFound", "GROUP_ID_NOT_FOUND", False),
    (70, "FetchSessionIdNotFound", "FETCH_SESSION_ID_NOT_FOUND", True),
    (71, "InvalidFetchSessionEpoch", "INVALID_FETCH_SESSION_EPOCH", True),
    (72, "ListenerNotFound", "LISTENER_NOT_FOUND", True),
    (73, "TopicDeletionDisabled", "TOPIC_DELETION_DISABLED", False),
    (74, "FencedLeaderEpoch", "FENCED_LEADER_EPOCH", True),
    (75, "UnknownLeaderEpoch", "UNKNOWN_LEADER_EPOCH", True),
    (76, "UnsupportedCompressionType", "UNSUPPORTED_COMPRESSION_TYPE", False),
    (77, "StaleBrokerEpoch", "STALE_BROKER_EPOCH", False),
    (78, "OffsetNotAvailable", "OFFSET_NOT_AVAILABLE", True),
    (79, "MemberIdRequired", "MEMBER_ID_REQUIRED", False),
    (80, "PreferredLeaderNotAvailable", "PREFERRED_LEADER_NOT_AVAILABLE", True),
    (81, "GroupMaxSizeReached", "GROUP_MAX_SIZE_REACHED", False),
    (82, "FencedInstanceId", "FENCED_INSTANCE_ID", False),
    (83, "EligibleLeadersNotAvailable", "ELIGIBLE_LEADERS_NOT_AVAILABLE", True),
    (84, "ElectionNotNeeded", "ELECTION_NOT_NEEDED", True),
    (85, "NoReassignmentInProgress", "NO_REASSIGNMENT_IN_PROGRESS", False),
    (86, "GroupSubscribedToTopic", "GROUP_SUBSCRIBED_TO_TOPIC", False),
    (87, "InvalidRecord", "INVALID_RECORD", False),
    (88, "UnstableOffsetCommit", "UNSTABLE_OFFSET_COMMIT", True),
    (89, "ThrottlingQuotaExceeded", "THROTTLING_QUOTA_EXCEEDED", True),
    (90, "ProducerFenced", "PRODUCER_FENCED", False),
    (91, "ResourceNotFound", "RESOURCE_NOT_FOUND", False),
    (92, "DuplicateResource", "DUPLICATE_RESOURCE", False),
    (93, "UnacceptableCredential", "UNACCEPTABLE_CREDENTIAL", False),
    (94, "InconsistentVoterSet", "INCONSISTENT_VOTER_SET", False),
    (95, "InvalidUpdateVersion", "INVALID_UPDATE_VERSION", False),
    (96, "FeatureUpdateFailed", "FEATURE_UPDATE_FAILED", False),
    (97, "PrincipalDeserializationFailure", "PRINCIPAL_DESERIALIZATION_FAILURE", False),
    (98, "SnapshotNotFound", "SNAPSHOT_NOT_FOUND", False),
    (99, "PositionOutOfRange", "POSITION_OUT_OF_RANGE", False),
    (100, "UnknownTopicId", "UNKNOWN_TOPIC_ID", True),
    (101, "DuplicateBrokerRegistration", "DUPLICATE_BROKER_REGISTRATION", False),
    (102, "BrokerIdNotRegistered", "BROKER_ID_NOT_REGISTERED", False),
    (103, "InconsistentTopicId", "INCONSISTENT_TOPIC_ID", True),
    (104, "InconsistentClusterId", "INCONSISTENT_CLUSTER_ID", False),
    (105, "TransactionalIdNotFound", "TRANSACTIONAL_ID_NOT_FOUND", False),
    (106, "FetchSessionTopicIdError", "FETCH_SESSION_TOPIC_ID_ERROR", True),
    (107, "IneligibleReplica", "INELIGIBLE_REPLICA", False),
    (108, "NewLeaderElected", "NEW_LEADER_ELECTED", False),
    (109, "OffsetMovedToTieredStorage", "OFFSET_MOVED_TO_TIERED_STORAGE", False),
    (110, "FencedMemberEpoch", "FENCED_MEMBER_EPOCH", False),
    (111, "UnreleasedInstanceId", "UNRELEASED_INSTANCE_ID", False),
    (112, "UnsupportedAssignor", "UNSUPPORTED_ASSIGNOR", False),
    (113, "StaleMemberEpoch", "STALE_MEMBER_EPOCH", False),
    (114, "MismatchedEndpointType", "MISMATCHED_ENDPOINT_TYPE", False),
    (115, "UnsupportedEndpointType", "UNSUPPORTED_ENDPOINT_TYPE", False),
    (116, "UnknownControllerId", "UNKNOWN_CONTROLLER_ID", False),
    (117, "UnknownSubscriptionId", "UNKNOWN_SUBSCRIPTION_ID", False),
    (118, "TelemetryTooLarge", "TELEMETRY_TOO_LARGE", False),
    (119, "InvalidRegistration", "INVALID_REGISTRATION", False),
    (120, "TransactionAbortable", "TRANSACTION_ABORTABLE", False),
    (121, "InvalidRecordState", "INVALID_RECORD_STATE", False),
    (122, "ShareSessionNotFound", "SHARE_SESSION_NOT_FOUND", True),
    (123, "InvalidShareSessionEpoch", "INVALID_SHARE_SESSION_EPOCH", True),
    (124, "FencedStateEpoch", "FENCED_STATE_EPOCH", False),
    (125, "InvalidVoterKey", "INVALID_VOTER_KEY", False),
    (126, "DuplicateVoter", "DUPLICATE_VOTER", False),
    (127, "VoterNotFound", "VOTER_NOT_FOUND", False),
    (128, "InvalidRegularExpression", "INVALID_REGULAR_EXPRESSION", False),
    (129, "RebootstrapRequired", "REBOOTSTRAP_REQUIRED", False),
]

#: Kafka's own name for each code, e.g. ``KAFKA_ERROR_NAMES[6]`` is
#: ``'NOT_LEADER_OR_FOLLOWER'``.
KAFKA_ERROR_NAMES = {}

for _code, _name, _kname, _retriable in _KAFKA_ERRORS:
    _code_class(_name, _code, "Kafka error %d, %s." % (_code, _kname),
                retriable=_retriable)
    KAFKA_ERROR_NAMES[_code] = _kname

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


del _code, _name, _kname, _retriable
