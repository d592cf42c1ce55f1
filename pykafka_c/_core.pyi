"""Type stubs for pykafka_c._core (the C extension).  Each area of the core
appends its own section."""

from typing import Any, Dict, Optional, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview]

# ------------------------------------------------------------------ protocol
# Message bodies (no header) as dicts of snake_case field names; arrays are
# lists, nested structs dicts, strings str (str or UTF-8 bytes accepted on
# encode), bytes/records fields bytes (any bytes-like on encode), uuids
# bytes of length 16.  Decoding raises ProtocolDecodeError naming the field
# path and byte offset; an API version outside api_versions_table() raises
# UnsupportedApiVersionError.

def encode_request(api_key: int, api_version: int,
                   fields: Dict[str, Any], /) -> bytes: ...
def encode_response(api_key: int, api_version: int,
                    fields: Dict[str, Any], /) -> bytes: ...
def decode_response(api_key: int, api_version: int,
                    data: Buffer, /) -> Dict[str, Any]: ...
def decode_request(api_key: int, api_version: int,
                   data: Buffer, /) -> Dict[str, Any]: ...
def api_versions_table() -> Dict[int, Tuple[str, int, int, Optional[int]]]:
    """{api_key: (name, min_version, max_version, flexible_from)}"""
    ...
def request_header_version(api_key: int, api_version: int, /) -> int: ...
def response_header_version(api_key: int, api_version: int, /) -> int: ...

# ------------------------------------------------------------------ private
def _set_exceptions(classes: Dict[str, type], error_for_code: Any, /) -> None: ...
