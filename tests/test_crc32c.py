"""CRC-32C (Castagnoli): check values, chaining, and agreement with a
bit-by-bit reference written here from the definition."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykafka_c import _core

pytestmark = pytest.mark.unit


def crc32c_bitwise(data, crc=0):
    """Reference: reflected polynomial 0x82F63B78, init/xorout 0xFFFFFFFF."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize("data,expected", [
    (b"123456789", 0xE3069283),          # the standard check value
    (b"", 0),
    (b"\x00" * 32, 0x8A9136AA),          # RFC 3720 B.4
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
])
def test_check_values(data, expected):
    assert _core.crc32c(data) == expected
    assert crc32c_bitwise(data) == expected


def test_chaining_and_buffer_types():
    assert _core.crc32c(b"56789", _core.crc32c(b"1234")) == 0xE3069283
    assert _core.crc32c(data=bytearray(b"123456789"), crc=0) == 0xE3069283
    assert _core.crc32c(memoryview(b"xx123456789")[2:]) == 0xE3069283


def test_bad_arguments():
    with pytest.raises(TypeError):
        _core.crc32c("123456789")
    with pytest.raises((ValueError, OverflowError)):
        _core.crc32c(b"", 1 << 32)
    with pytest.raises((ValueError, OverflowError)):
        _core.crc32c(b"", -1)


def test_large_input_releases_gil_path():
    # over the 64 KiB threshold at which the GIL is released
    data = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(70000))
    assert _core.crc32c(data) == crc32c_bitwise(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 0xFFFFFFFF))
def test_matches_reference(data, seed):
    assert _core.crc32c(data) == crc32c_bitwise(data)
    assert _core.crc32c(data, seed) == crc32c_bitwise(data, seed)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_chaining_property(a, b):
    assert _core.crc32c(b, _core.crc32c(a)) == _core.crc32c(a + b)
