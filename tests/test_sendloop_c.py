"""Build and run the plain-C tests of the producer's send engine
(tests/c/test_sendloop.c: csrc/wire/sendloop.c against a C fake broker
thread), with AddressSanitizer and UndefinedBehaviorSanitizer."""

import pytest

from cbuild import build, run

pytestmark = [pytest.mark.unit, pytest.mark.cprogram]


def test_sendloop_c(tmp_path):
    out = run(build("test_sendloop", tmp_path), timeout=120)
    assert "all checks passed" in out
