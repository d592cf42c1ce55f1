"""testinstances (pykafka's test-harness dependency) for pykafka's tests.

PyPI's testinstances 0.3.0 requires pymongo<=2.8.1, which does not build on
Python 3.11.  pykafka's test_connection.py only imports
``testinstances.managed_instance.ManagedInstance`` to check whether the test
cluster is one: pykafka_c's harness cluster is not, so those two tests skip
by pykafka's own rule ("Only test on ManagedInstance"), as they did in
pykafka's CI, which ran on an already-running cluster.  ``exceptions`` and
``utils`` are here for pykafka's own harness module, which the public
surface comparison (tests/test_api_compat.py) imports.
"""
