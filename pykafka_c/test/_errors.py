"""The harness's one exception class, in its own module so that every
harness module can raise it without importing the others."""


class HarnessError(RuntimeError):
    """The test cluster could not be set up, started or used (missing tool,
    failed resolve, broker that did not come up, ...)."""
