"""Build and run the plain-C tests of the Fetch codec
(tests/c/test_fetch_codec.c: answers parsed with pkc_fetch_parse, hostile
counts and every prefix of a valid answer) with AddressSanitizer and
UndefinedBehaviorSanitizer."""

import pytest

from cbuild import build, run

pytestmark = [pytest.mark.unit, pytest.mark.cprogram]


def test_fetch_codec_c(tmp_path):
    out = run(build("test_fetch_codec", tmp_path), timeout=120)
    assert " 0 failures" in out, out
