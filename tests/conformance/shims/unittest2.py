"""unittest2 for pykafka's tests: the standard library's unittest.

unittest2 (a backport of Python 2.7's unittest) does not import on Python
3.11; pykafka's tests only use what unittest itself has.
"""

from unittest import *  # noqa: F401,F403
from unittest import TestCase, main, skip, skipIf  # noqa: F401
