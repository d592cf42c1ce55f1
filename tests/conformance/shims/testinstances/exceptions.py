"""testinstances 0.3.0's exceptions (pykafka's harness imports them)."""


class ProcessRunningError(Exception):
    pass


class ProcessNotStartingError(Exception):
    pass
