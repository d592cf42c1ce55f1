"""Build and run the plain-C tests of the fetch engine
(tests/c/test_fetchloop.c: its lifecycle under threads) with
AddressSanitizer and UndefinedBehaviorSanitizer.  Its answer decoding is
tested with the Fetch codec (test_fetch_codec_c.py)."""

import pytest

from cbuild import build, run

pytestmark = [pytest.mark.unit, pytest.mark.cprogram]


def test_fetchloop_c(tmp_path):
    out = run(build("test_fetchloop", tmp_path), timeout=120)
    assert " 0 failures" in out, out
