"""Build and run the plain-C tests of the Produce codec
(tests/c/test_produce_codec.c: csrc/wire/produce_codec.c's requests and
responses) with AddressSanitizer and UndefinedBehaviorSanitizer."""

import pytest

from cbuild import build, run

pytestmark = [pytest.mark.unit, pytest.mark.cprogram]


def test_produce_codec_c(tmp_path):
    out = run(build("test_produce_codec", tmp_path), timeout=120)
    assert " 0 failures" in out, out
