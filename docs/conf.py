"""Sphinx configuration: pykafka_c's API reference (from the docstrings,
with autodoc) and its usage page.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` from the
repository root, with the extension built in place and the checkout on
``PYTHONPATH`` (tests/test_docs.py does exactly this, warnings as errors).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pykafka_c  # noqa: E402  (the C extension must be built)

project = "pykafka_c"
release = version = pykafka_c.__version__
copyright = "pykafka_c's authors; the API is pykafka's (Parse.ly)"

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
# Types from the annotations, in the description rather than the
# signature (pykafka's signatures have many keywords).
autodoc_typehints = "description"
exclude_patterns = ["_build"]
html_theme = "alabaster"
