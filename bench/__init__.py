"""pykafka_c's benchmark suite: ``python -m bench`` (or ``bench/run.sh``).

See bench/README.md.  Modules: :mod:`bench.suite` (plan and runs),
:mod:`bench.worker` (one measured run in its own process),
:mod:`bench.clients` (each client's workload code), :mod:`bench.payloads`
(values and checksums), :mod:`bench.kafkautil` (topics, kcat fill and
read-back), :mod:`bench.env` (the peers' virtualenv, machine facts),
:mod:`bench.report` and :mod:`bench.chart` (outputs),
:mod:`bench.record_fetch` (the decode benchmark's recorded responses).
"""
