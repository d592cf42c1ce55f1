"""The peers' virtualenv and the facts of the machine a run was made on.

The peers (pykafka 2.8.0, kafka-python, confluent-kafka, aiokafka) and matplotlib
are installed from PyPI, at the versions pinned in
``bench/requirements-peers.txt``, into a virtualenv of their own under the
project's cache folder (``$PKC_CACHE_DIR``, else ``~/.cache/pykafka_c``), so
that nothing the peers bring reaches the interpreter that runs pykafka_c.
The folder's name carries a hash of the pins and the Python version;
changing either makes a new one.
"""

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
REQUIREMENTS = os.path.join(HERE, "requirements-peers.txt")


class SetupError(RuntimeError):
    """The bench virtualenv could not be made."""


def cache_dir():
    d = os.environ.get("PKC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                         "pykafka_c")
    return os.path.abspath(d)


def pinned():
    """{package: version} from the requirements file."""
    out = {}
    with open(REQUIREMENTS) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, ver = line.partition("==")
                out[name.strip()] = ver.strip()
    return out


def venv_dir():
    with open(REQUIREMENTS, "rb") as f:
        h = hashlib.sha256(f.read() + sys.version.encode()).hexdigest()[:10]
    return os.path.join(cache_dir(), "bench-venv-%s" % h)


def venv_python(install=True, log=sys.stderr):
    """Path of the bench virtualenv's python; made (and the pins installed)
    when missing and ``install`` is true, else None when missing."""
    d = venv_dir()
    py = os.path.join(d, "bin", "python")
    marker = os.path.join(d, ".complete")
    if os.path.exists(marker) and os.access(py, os.X_OK):
        return py
    if not install:
        return None
    log.write("bench: installing the peers into %s (pip, from PyPI) ...\n" % d)
    log.flush()
    t0 = time.monotonic()
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "venv", d], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise SetupError("python -m venv %s failed:\n%s" % (d, r.stdout.decode(errors="replace")))
    r = subprocess.run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                        "-r", REQUIREMENTS], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise SetupError(
            "installing the peers from PyPI failed (pip exit %d). They are needed for the "
            "peer rows; `--no-peers` runs pykafka_c alone. pip said:\n%s"
            % (r.returncode, r.stdout.decode(errors="replace")[-3000:]))
    check = subprocess.run([py, "-c", "import pykafka, kafka, confluent_kafka, aiokafka, matplotlib"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check.returncode != 0:
        raise SetupError("the peers were installed but do not import:\n%s"
                         % check.stdout.decode(errors="replace")[-3000:])
    with open(marker, "w") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    log.write("bench: peers installed in %.0f s\n" % (time.monotonic() - t0))
    return py


def venv_versions(py):
    """{distribution: version} installed in the virtualenv."""
    code = ("import json, importlib.metadata as m\n"
            "print(json.dumps({d.metadata['Name'].lower(): d.version "
            "for d in m.distributions()}))")
    r = subprocess.run([py, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return {}
    import json
    return json.loads(r.stdout)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine_facts():
    """Cores, CPU model, memory, kernel, Python, glibc, malloc settings."""
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    flagset = set(flags.group(1).split()) if flags else set()
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    malloc_env = {k: v for k, v in os.environ.items()
                  if k.startswith("MALLOC_") or k in ("PYTHONMALLOC", "GLIBC_TUNABLES",
                                                      "LD_PRELOAD")}
    java = shutil.which("java")
    java_version = None
    if java:
        r = subprocess.run([java, "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        java_version = r.stdout.decode(errors="replace").splitlines()[0] if r.stdout else None
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return {
        "cores": os.cpu_count(),
        "cpu_affinity": affinity,
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "cpu_flags_of_note": sorted(flagset & {"sse4_2", "pclmulqdq", "avx2", "avx512f"}),
        "memory_gib": round(int(mem.group(1)) / 1048576, 1) if mem else None,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "libc": "%s %s" % platform.libc_ver(),
        "malloc": {
            "env": malloc_env or "none set (glibc and pymalloc defaults)",
            "pymalloc": "PYTHONMALLOC=%s" % os.environ.get("PYTHONMALLOC", "(default)"),
            "glibc_defaults": "M_TRIM_THRESHOLD 128 KiB and M_MMAP_THRESHOLD 128 KiB, "
                              "both dynamic, unless set above",
        },
        "java": java_version,
        "pykafka_c_commit": (commit.stdout.decode().strip() or "unknown")
                            + ("+dirty" if dirty.stdout.strip() else ""),
        "loadavg_start": os.getloadavg(),
    }
