"""testinstances 0.3.0's utils (pykafka's harness imports the module)."""

import subprocess


def Popen(use_gevent=False, *args, **kwargs):
    """subprocess.Popen (no gevent here)."""
    return subprocess.Popen(*args, **kwargs)
