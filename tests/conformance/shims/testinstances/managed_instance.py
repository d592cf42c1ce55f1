"""``ManagedInstance``: the base class of pykafka's own KafkaInstance."""


class ManagedInstance(object):
    """A test process pykafka's harness started itself (testinstances
    0.3.0's base class).  No pykafka_c cluster is one."""
