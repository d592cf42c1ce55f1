"""Build and run the plain-C tests of csrc/wire/net.c (tests/c/test_net.c),
with AddressSanitizer and UndefinedBehaviorSanitizer."""

import pytest

from cbuild import build, run

pytestmark = [pytest.mark.unit, pytest.mark.cprogram]


def test_net_c(tmp_path):
    out = run(build("test_net", tmp_path), timeout=60)
    assert "all checks passed" in out
