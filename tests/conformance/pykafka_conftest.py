"""conftest.py of pykafka 2.8.0's test suite run on pykafka_c.

tests/test_pykafka_conformance.py writes this file next to the ``tests``
folder it extracted from pykafka's sdist (it is not a conftest of
pykafka_c's own suite).  It makes ``import pykafka`` load pykafka_c, as a
pykafka user would with ``pykafka_c.install_as_pykafka()``, and records
every test's outcome in the JSON file ``$PKC_CONFORMANCE_RESULTS``.
"""

import json
import os
import sys
import threading

import pykafka_c

pykafka_c.install_as_pykafka()

_results = {"collected": [], "collect_errors": {}, "reports": {},
            "exitstatus": None}


def pytest_collectreport(report):
    if report.failed:
        _results["collect_errors"][report.nodeid] = str(report.longrepr)


def pytest_collection_modifyitems(session, config, items):
    _results["collected"] = [item.nodeid for item in items]


def pytest_runtest_logreport(report):
    entry = _results["reports"].setdefault(report.nodeid, {})
    outcome = report.outcome
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    entry[report.when] = outcome
    if report.failed:
        entry["message"] = (report.longreprtext or "").strip().splitlines()[-1:]


def pytest_sessionfinish(session, exitstatus):
    _results["exitstatus"] = int(exitstatus)
    with open(os.environ["PKC_CONFORMANCE_RESULTS"], "w") as f:
        json.dump(_results, f, indent=1, sort_keys=True)


def pytest_unconfigure(config):
    # pykafka's tests leave threads behind that never end by themselves
    # (test_a_rebalance_unblock_event's consumers wait in consume() with no
    # timeout); the results are written, so end the process rather than
    # wait for them.
    left = [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if left:
        sys.stdout.write("conformance conftest: ending the process; threads still "
                         "running: %s\n" % ", ".join(sorted(left)))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_results["exitstatus"] or 0)
