#!/usr/bin/env bash
# The benchmark suite in one command, on a fresh machine:
#
#   bench/run.sh            # full suite (installs the peers, ~80 minutes on 2 cores)
#   bench/run.sh --quick    # seconds: pykafka_c rows, decode rows, all checks
#   bench/run.sh --latency-only   # end-to-end latency rows alone (~45 min)
#
# 1. system packages the suite needs (a JDK 17+, Maven, kcat, compression
#    headers) through scripts/install-system-deps.sh (apt-get when there);
# 2. pykafka_c's C extension, built in place;
# 3. python3 -m bench "$@": installs the peers from PyPI into their own
#    virtualenv under the cache folder (full mode), starts its own Kafka
#    brokers with pykafka_c.test.kafka_instance, fills the topics, runs every
#    workload, prints the table and writes bench/results/{results.json,
#    results.md,chart.png}.  python3 -m bench --help lists the options.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install-system-deps.sh
PKC_WERROR=1 "$PYTHON" setup.py -q build_ext --inplace
exec "$PYTHON" -m bench "$@"
