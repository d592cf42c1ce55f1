#!/usr/bin/env bash
# The README's first command: install pykafka_c and run the quickstart.
# Installs missing system packages (JDK 17, Maven, zlib/snappy/lz4/zstd
# headers) with apt-get where available, builds and installs the package,
# then runs `python -m pykafka_c.quickstart`, which starts a local Kafka
# (downloaded from Maven Central on first use), produces and consumes.
# Extra arguments go to the quickstart (e.g. --hosts HOST:PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
python3 -m pip install -q .
cd /tmp  # import the installed package, not the source tree
exec python3 -m pykafka_c.quickstart "$@"
