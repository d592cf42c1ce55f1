"""The transactional producer's error model (pykafka_c/_txn.py), without a
broker: which Kafka errors make a transaction abortable and which make the
producer unusable, and how each state opens or closes produce() in the C
core.  The same rules against real brokers: tests/test_txn_producer.py."""

import pytest

from pykafka_c import _txn
from pykafka_c._constants import KafkaError
from pykafka_c.exceptions import (ERROR_CODES, ProducerFenced,
                                  ProducerFencedError,
                                  TransactionAbortableError,
                                  TransactionFatalError,
                                  TransactionStateError)

pytestmark = pytest.mark.unit


class _Core(object):
    """Stands in for _core.ProducerCore: remembers the produce check."""
    check = None

    def set_produce_check(self, check):
        self.check = check


def _transactions():
    core = _Core()
    txn = _txn.Transactions(None, core, "tid", 60000, lambda: 0)
    return txn, core


def _kafka_error(code):
    return ERROR_CODES[code]("the broker said %d" % code)


@pytest.mark.parametrize("code, expected, state", [
    (KafkaError.PRODUCER_FENCED, ProducerFencedError, _txn.FATAL),
    (KafkaError.INVALID_PRODUCER_EPOCH, ProducerFencedError, _txn.FATAL),
    (KafkaError.INVALID_TXN_STATE, TransactionFatalError, _txn.FATAL),
    (KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, TransactionFatalError,
     _txn.FATAL),
    (KafkaError.INVALID_TRANSACTION_TIMEOUT, TransactionFatalError,
     _txn.FATAL),
    (KafkaError.NOT_ENOUGH_REPLICAS, TransactionAbortableError,
     _txn.ABORTABLE),
    (KafkaError.TOPIC_AUTHORIZATION_FAILED, TransactionAbortableError,
     _txn.ABORTABLE),
])
def test_errors_classified(code, expected, state):
    txn, core = _transactions()
    txn.state = _txn.IN_TRANSACTION
    assert core.check is None             # produce() open in a transaction
    cause = _kafka_error(code)
    err = txn._fail(cause, "commit_transaction()")
    assert type(err) is expected
    assert err.__cause__ is cause
    assert "commit_transaction()" in str(err)
    assert txn.state == state
    # produce() is closed again, and raises what the state says
    assert core.check is not None
    with pytest.raises(TransactionFatalError if state == _txn.FATAL
                       else TransactionAbortableError):
        core.check()


def test_fenced_is_also_the_kafka_error_class():
    txn, _ = _transactions()
    err = txn._fail(_kafka_error(KafkaError.PRODUCER_FENCED), "send")
    assert isinstance(err, ProducerFenced)
    assert isinstance(err, TransactionFatalError)


def test_produce_check_follows_the_state():
    txn, core = _transactions()
    with pytest.raises(TransactionStateError, match="UNINITIALIZED|not allowed"):
        core.check()
    txn.state = _txn.READY
    with pytest.raises(TransactionStateError):
        core.check()
    txn.state = _txn.IN_TRANSACTION
    assert core.check is None
    txn.state = _txn.COMMITTING
    with pytest.raises(TransactionStateError):
        core.check()
