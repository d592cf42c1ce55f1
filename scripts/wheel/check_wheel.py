"""Broker-free check of an installed pykafka_c wheel (cibuildwheel's
test-command): every codec round-trips, and TLS with SCRAM is built in
(a TLS context loads the system's CA store).  Exits non-zero on failure."""

import os

import pykafka_c
from pykafka_c import _core

data = os.urandom(4096) * 16
codecs = _core.available_codecs()
assert codecs == ("none", "gzip", "snappy", "lz4", "zstd"), codecs
for codec in codecs:
    assert _core.decompress(codec, _core.compress(codec, data)) == data, codec
# Raises SslUnavailableError in a build without OpenSSL.
_core.Security(tls=True, cafile=None, sasl_mechanism="SCRAM-SHA-512",
               sasl_username="u", sasl_password="p")
print("pykafka_c %s wheel: codecs %s, TLS and SCRAM: ok (%s)"
      % (pykafka_c.__version__ if hasattr(pykafka_c, "__version__") else "",
         ", ".join(codecs), _core.__file__))
