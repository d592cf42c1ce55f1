"""lz4f (from lz4tools) for pykafka's tests, on the lz4 package.

lz4tools 1.3.1.2 builds on Python 3.11 but its compressFrame() raises
SystemError (it parses arguments without PY_SSIZE_T_CLEAN).  pykafka's
test only needs an LZ4 frame to decode, which lz4.frame makes.
"""

import lz4.frame


def compressFrame(data):
    """An LZ4 frame of ``data`` (lz4tools' name)."""
    return lz4.frame.compress(data)
