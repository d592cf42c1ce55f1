"""Real Apache Kafka clusters for tests and benchmarks.

The counterpart of pykafka's ``pykafka.test.kafka_instance``, for modern
Kafka: brokers run straight from Maven Central jars, for Kafka 3.3 and newer
in KRaft mode (each node a combined broker and controller, static voters, no
ZooKeeper), for the older Kafka 2.1 to 3.2 in ZooKeeper mode (one ZooKeeper
server per cluster, started from the ZooKeeper jar on the broker's
classpath).  The jars are resolved once per Kafka version with Maven from the
``pom.xml`` kept in this package and copied into a cache folder
(``$PKC_CACHE_DIR``, else ``~/.cache/pykafka_c``), so later starts need no
network and no Maven.

ZooKeeper mode and Java 17: ZooKeeper 3.4's client (the one Kafka 2.1-2.3
depend on) cannot connect on Java 14 or newer (ZOOKEEPER-3779: it parses the
changed ``InetSocketAddress.toString()``), so for Kafka older than 2.6 the
classpath gets ZooKeeper 3.5.9 instead (the version Kafka 2.7/2.8 ship);
the ZooKeeper client API Kafka uses is the same.  Checked: 2.1.1 (the test
suite's old broker, tests/test_old_brokers.py), 2.8.2 and 3.2.3 (by hand).

TLS and SASL: a KRaft broker listens, besides PLAINTEXT, on the
:data:`SECURITY_LISTENERS` (SSL, SASL_PLAINTEXT, SASL_SSL, MTLS, EXPIRED,
NOSAN, MISMATCH) with certificates from :class:`CertManager` and the users
of :data:`SASL_USERS`; ZooKeeper-mode clusters are PLAINTEXT only.  See
:class:`KafkaInstance` and :mod:`pykafka_c.test.security`.

Library use::

    with KafkaInstance(num_instances=3) as kafka:
        kafka.create_topic("t", num_partitions=3, replication_factor=3)
        ... connect a client to kafka.brokers ...
        ... or over TLS to kafka.brokers_ssl, trusting kafka.certs.root_cert ...

Command line (like pykafka's)::

    python -m pykafka_c.test.kafka_instance N [--kafka-version V]
        [--download-dir D] [--export-hosts FILE] [--plaintext-only]

starts N brokers, prints ``BROKERS=host:port,...``, one ``BROKERS_<NAME>=``
line per other listener (``BROKERS_SSL`` is pykafka's) and
``PKC_TEST_CERTS=<folder>`` (the certificates and ``credentials.json``; see
:class:`CertManager`), writes the same lines and ``KAFKA_VERSION=`` to FILE,
and runs until SIGINT or SIGTERM, then stops the brokers and removes their
data.

Kafka's command line tools (console producer/consumer, consumer groups,
producer/consumer performance) run through :func:`run_kafka_tool`; their
larger classpath is resolved separately, only when first used.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from . import _wire
from . import security
from ._errors import HarnessError
from .security import (CertManager, SASL_MECHANISMS, SASL_USERS, SaslUser,
                       unsecured_jwt)

__all__ = [
    "DEFAULT_KAFKA_VERSION", "KAFKA_39_VERSION", "KAFKA_OLD_VERSION", "KAFKA_VERSIONS",
    "HarnessError",
    "KafkaInstance", "ClusterAdmin", "run_kafka_tool", "kafka_tool_command", "resolve_classpath",
    "check_java", "cache_dir", "TOOLS", "KafkaConnection",
    "CertManager", "SaslUser", "SASL_MECHANISMS", "SASL_USERS", "SECURITY_LISTENERS",
    "listener_env_name", "unsecured_jwt",
]

#: Newest 4.x release on Maven Central when this was pinned (its
#: maven-metadata.xml lists 4.4.0 as <release>); the default everywhere.
DEFAULT_KAFKA_VERSION = "4.4.0"
#: Newest 3.9.x release: the last 3.x line, the newest broker pure pykafka
#: can still talk to.
KAFKA_39_VERSION = "3.9.2"
KAFKA_VERSIONS = (DEFAULT_KAFKA_VERSION, KAFKA_39_VERSION)
#: The oldest broker pykafka_c is tested against (tests/test_old_brokers.py):
#: Kafka 2.1 speaks only non-flexible request versions (flexible versions came
#: with 2.4) and runs in ZooKeeper mode.
KAFKA_OLD_VERSION = "2.1.1"
#: Oldest version the harness runs (ZooKeeper mode below 3.3).
OLDEST_KAFKA_VERSION = (2, 1, 0)
#: First version with KRaft combined nodes; older ones run on ZooKeeper.
FIRST_KRAFT_VERSION = (3, 3, 0)

# log4j2 release each pinned 4.x version ships with (kafka-server's POM); other
# 4.x versions get the same one (the pom pins log4j-api/core/slf4j-impl to it).
_LOG4J2_VERSIONS = {"4.4.0": "2.25.5"}
_LOG4J2_DEFAULT = "2.25.5"

#: Client listeners every KRaft broker has besides PLAINTEXT (name: security
#: protocol).  SSL and SASL_SSL present broker_cert (SAN DNS:localhost,
#: IP:127.0.0.1); MTLS is SSL with ssl.client.auth=required; EXPIRED, NOSAN
#: and MISMATCH present expired_cert, nosan_cert and mismatch_cert (see
#: security.CertManager).  Both SASL listeners enable SASL_MECHANISMS.
SECURITY_LISTENERS = {
    "SSL": "SSL",
    "SASL_PLAINTEXT": "SASL_PLAINTEXT",
    "SASL_SSL": "SASL_SSL",
    "MTLS": "SSL",
    "EXPIRED": "SSL",
    "NOSAN": "SSL",
    "MISMATCH": "SSL",
}
#: The environment variable that carries a test certificate folder
#: (CertManager.cert_dir) to tests run against an external cluster.
CERTS_ENV = "PKC_TEST_CERTS"

START_TIMEOUT = 90.0          # seconds per broker start (a cluster gets more)
STOP_GRACE = 5.0              # SIGTERM grace period before SIGKILL
MVN_TIMEOUT = 900.0
_HERE = os.path.dirname(os.path.abspath(__file__))

# Command line tools by short name: (class on 4.x, class on 3.x).  Kafka 2.x
# keeps most of them in core under other names: see _TOOLS_2X.
TOOLS = {
    "console-producer": ("org.apache.kafka.tools.ConsoleProducer", "kafka.tools.ConsoleProducer"),
    "console-consumer": ("org.apache.kafka.tools.consumer.ConsoleConsumer",
                         "org.apache.kafka.tools.consumer.ConsoleConsumer"),
    "consumer-groups": ("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"),
    "producer-perf-test": ("org.apache.kafka.tools.ProducerPerformance",
                           "org.apache.kafka.tools.ProducerPerformance"),
    "consumer-perf-test": ("org.apache.kafka.tools.ConsumerPerformance",
                           "org.apache.kafka.tools.ConsumerPerformance"),
    "topics": ("org.apache.kafka.tools.TopicCommand", "org.apache.kafka.tools.TopicCommand"),
    "get-offsets": ("org.apache.kafka.tools.GetOffsetShell", "org.apache.kafka.tools.GetOffsetShell"),
}
_TOOLS_2X = {
    "console-producer": "kafka.tools.ConsoleProducer",
    "console-consumer": "kafka.tools.ConsoleConsumer",
    "consumer-groups": "kafka.admin.ConsumerGroupCommand",
    "producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "consumer-perf-test": "kafka.tools.ConsumerPerformance",
    "topics": "kafka.admin.TopicCommand",
    "get-offsets": "kafka.tools.GetOffsetShell",
}


# --------------------------------------------------------------- versions

def _parse_version(kafka_version):
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(kafka_version))
    if not m:
        raise HarnessError("bad Kafka version %r: expected MAJOR.MINOR.PATCH, e.g. %s"
                           % (kafka_version, DEFAULT_KAFKA_VERSION))
    parts = tuple(int(p) for p in m.groups())
    if parts < OLDEST_KAFKA_VERSION:
        raise HarnessError("Kafka %s is too old for this harness: it runs Kafka 2.1 or "
                           "newer (ZooKeeper mode below 3.3, KRaft from 3.3)" % (kafka_version,))
    return parts


def uses_zookeeper(kafka_version: str) -> bool:
    """True for the versions run in ZooKeeper mode (older than 3.3)."""
    return _parse_version(kafka_version) < FIRST_KRAFT_VERSION


def scala_binary_version(kafka_version: str) -> str:
    """Scala build of the broker artifact: ``kafka_2.13`` exists from 2.4 on,
    older releases are taken as ``kafka_2.12``."""
    return "2.12" if _parse_version(kafka_version) < (2, 4, 0) else "2.13"


def _logging_flavour(kafka_version):
    """'log4j2' for Kafka 4.x, 'reload4j' for 3.x."""
    return "log4j2" if _parse_version(kafka_version)[0] >= 4 else "reload4j"


def _log_config_flag(kafka_version, tools):
    if _logging_flavour(kafka_version) == "log4j2":
        name = "log4j2-tools.properties" if tools else "log4j2.properties"
        return "-Dlog4j2.configurationFile=" + os.path.join(_HERE, name)
    name = "log4j-tools.properties" if tools else "log4j.properties"
    return "-Dlog4j.configuration=file:" + os.path.join(_HERE, name)


def tool_class(name: str, kafka_version: str = DEFAULT_KAFKA_VERSION) -> str:
    """Main class of a tool given by short name (see :data:`TOOLS`) or by class."""
    if name not in TOOLS:
        return name
    new, old = TOOLS[name]
    major = _parse_version(kafka_version)[0]
    if major >= 4:
        return new
    return old if major == 3 else _TOOLS_2X[name]


# ------------------------------------------------------------ environment

def cache_dir(download_dir: str | None = None) -> str:
    """Folder holding the resolved jars: ``download_dir``, else
    ``$PKC_CACHE_DIR``, else ``~/.cache/pykafka_c``."""
    d = download_dir or os.environ.get("PKC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pykafka_c")
    return os.path.abspath(d)


_java_checked: dict[str, int] = {}


def find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def check_java() -> str:
    """Path of a ``java`` of version 17 or newer; :class:`HarnessError` naming
    what is missing otherwise."""
    java = find_java()
    if java is None:
        raise HarnessError(
            "java was not found (neither $JAVA_HOME/bin/java nor java on PATH). Kafka "
            "brokers need a Java runtime 17 or newer: run scripts/install-system-deps.sh "
            "or `apt-get install openjdk-17-jdk-headless`.")
    if java in _java_checked:
        return java
    try:
        out = subprocess.run([java, "-version"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError) as exc:
        raise HarnessError("cannot run %s -version: %s" % (java, exc)) from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        raise HarnessError("cannot tell the Java version from `%s -version`:\n%s" % (java, out))
    major = int(m.group(1))
    if major == 1 and m.group(2):        # "1.8.0_392" style
        major = int(m.group(2))
    if major < 17:
        raise HarnessError(
            "%s is Java %d; Kafka 4.x brokers need Java 17 or newer. Install a JDK 17+ "
            "(`apt-get install openjdk-17-jdk-headless`) or point JAVA_HOME at one." % (java, major))
    _java_checked[java] = major
    return java


def _check_mvn():
    mvn = shutil.which("mvn")
    if mvn is None:
        raise HarnessError(
            "Maven (mvn) was not found on PATH; it is needed once per Kafka version to "
            "fetch the Kafka jars from Maven Central. Run scripts/install-system-deps.sh "
            "or `apt-get install maven`.")
    return mvn


def _profiles(kafka_version, kind):
    if kind == "broker":
        profiles = ["broker"]
    elif kind == "tools":
        # 3.9 keeps ConsoleProducer in core (kafka.tools), so tools include the broker jars.
        profiles = ["broker", "tools"]
    else:
        raise ValueError("kind must be 'broker' or 'tools', not %r" % (kind,))
    if _parse_version(kafka_version) < (2, 6, 0):
        profiles.append("zookeeper35")     # ZOOKEEPER-3779: see the module docstring
    return profiles + [_logging_flavour(kafka_version)]


def resolve_classpath(kafka_version: str = DEFAULT_KAFKA_VERSION, kind: str = "broker",
                      download_dir: str | None = None) -> str:
    """Return a java ``-cp`` value (``<dir>/*``) with the jars for a broker
    (``kind="broker"``) or for Kafka's command line tools (``kind="tools"``).

    The first call per version and kind runs Maven and copies the jars into
    the cache folder; later calls just check the cached list."""
    _parse_version(kafka_version)
    check_java()
    vdir = os.path.join(cache_dir(download_dir), "kafka-" + kafka_version)
    libs = os.path.join(vdir, kind)
    marker = os.path.join(vdir, kind + ".jars")
    if _cache_complete(libs, marker):
        return os.path.join(libs, "*")
    os.makedirs(vdir, exist_ok=True)
    with open(os.path.join(vdir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)       # another process may be resolving too
        if _cache_complete(libs, marker):
            return os.path.join(libs, "*")
        mvn = _check_mvn()
        shutil.copyfile(os.path.join(_HERE, "pom.xml"), os.path.join(vdir, "pom.xml"))
        made = tempfile.mkdtemp(prefix=kind + ".tmp-", dir=vdir)
        tmp: str | None = made
        try:
            # -U: retry artifacts whose earlier download failed (Maven caches
            # "not found" in ~/.m2 otherwise); plain output for error messages.
            cmd = [mvn, "-B", "-q", "-U", "-Dstyle.color=never",
                   "-f", os.path.join(vdir, "pom.xml"),
                   "-P", ",".join(_profiles(kafka_version, kind)),
                   "dependency:copy-dependencies", "-DincludeScope=runtime",
                   "-DoutputDirectory=" + made, "-Dkafka.version=" + kafka_version,
                   "-Dkafka.scala=" + scala_binary_version(kafka_version),
                   "-Dlog4j2.version=" + _LOG4J2_VERSIONS.get(kafka_version, _LOG4J2_DEFAULT)]
            t0 = time.monotonic()
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=MVN_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise HarnessError("Maven did not finish resolving Kafka %s within %d s"
                                   % (kafka_version, MVN_TIMEOUT)) from None
            out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout.decode("utf-8", "replace"))
            jars = sorted(f for f in os.listdir(made) if f.endswith(".jar"))
            needed = "kafka_%s-%s.jar" % (scala_binary_version(kafka_version), kafka_version) \
                if kind == "broker" else "kafka-tools-%s.jar" % kafka_version
            if proc.returncode != 0 or needed not in jars:
                raise HarnessError(
                    "could not resolve the Kafka %s %s jars from Maven Central (mvn exit "
                    "code %d). Command: %s\nMaven output (tail):\n%s"
                    % (kafka_version, kind, proc.returncode, " ".join(cmd), _tail(out, 40)))
            if os.path.isdir(libs):
                shutil.rmtree(libs)
            os.rename(made, libs)
            tmp = None
            with open(marker + ".tmp", "w") as f:
                f.write("\n".join(jars) + "\n")
            os.rename(marker + ".tmp", marker)
            sys.stderr.write("pykafka_c.test: resolved Kafka %s %s classpath (%d jars) in "
                             "%.1f s into %s\n" % (kafka_version, kind, len(jars),
                                                   time.monotonic() - t0, libs))
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(libs, "*")


def _cache_complete(libs, marker):
    try:
        with open(marker) as f:
            jars = [line.strip() for line in f if line.strip()]
    except OSError:
        return False
    return bool(jars) and all(os.path.isfile(os.path.join(libs, j)) for j in jars)


def _tail(text, lines):
    return "\n".join(text.splitlines()[-lines:])


# ------------------------------------------------------------------ tools

def kafka_tool_command(main_class: str, args: Iterable[object] = (),
                       kafka_version: str = DEFAULT_KAFKA_VERSION, heap: str = "256m",
                       download_dir: str | None = None, jvm_opts: Iterable[str] = (),
                       fast_start: bool | None = None) -> list[str]:
    """argv that runs one of Kafka's command line tools (a short name from
    :data:`TOOLS` or a main class) with the tools classpath, for ``Popen``.
    Tool logging goes to stderr at WARN, so stdout carries only the output.

    ``fast_start`` (default: on, except for the performance tools) trades
    peak speed for start-up time (C1 JIT only, serial GC)."""
    java = check_java()
    cp = resolve_classpath(kafka_version, "tools", download_dir)
    cls = tool_class(main_class, kafka_version)
    if fast_start is None:
        fast_start = not cls.endswith("Performance")
    flags = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"] if fast_start else ["-XX:+UseG1GC"]
    return ([java, "-Xmx" + heap] + flags
            + ["-Djava.awt.headless=true", _log_config_flag(kafka_version, tools=True)]
            + list(jvm_opts) + ["-cp", cp, cls] + [str(a) for a in args])


def run_kafka_tool(main_class: str, args: Iterable[object] = (),
                   kafka_version: str = DEFAULT_KAFKA_VERSION,
                   input: str | bytes | None = None, timeout: float = 120.0,
                   check: bool = True, text: bool = True, heap: str = "256m",
                   download_dir: str | None = None, jvm_opts: Iterable[str] = (),
                   fast_start: bool | None = None) -> subprocess.CompletedProcess[Any]:
    """Run a Kafka command line tool to completion and return its
    ``subprocess.CompletedProcess`` (stdout and stderr captured).

    ``check=True`` raises :class:`HarnessError` with the tool's stderr when it
    exits non-zero or overruns ``timeout``."""
    cmd = kafka_tool_command(main_class, args, kafka_version, heap, download_dir, jvm_opts,
                             fast_start)
    if text and isinstance(input, bytes):
        input = input.decode("utf-8")
    err: Any
    try:
        proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              timeout=timeout, text=text)
    except subprocess.TimeoutExpired as exc:
        if check:
            err = exc.stderr or b""
            if isinstance(err, bytes):
                err = err.decode("utf-8", "replace")
            raise HarnessError("Kafka tool %s did not finish within %.0f s; stderr:\n%s"
                               % (main_class, timeout, _tail(err, 30))) from None
        raise
    if check and proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode("utf-8", "replace")
        raise HarnessError("Kafka tool %s exited with code %d; stderr:\n%s"
                           % (main_class, proc.returncode, _tail(err, 30)))
    return proc


# ------------------------------------------------------------------ ports

_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def _port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _free_ports(n: int) -> list[int]:
    """n free loopback ports below the kernel's ephemeral range, so that no
    outgoing connection takes one while a broker is down for a restart."""
    lo, hi = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        hi = min(hi, eph_lo - 1)
    except (OSError, ValueError, IndexError):
        pass
    if hi - lo < 1000:
        lo, hi = 10000, max(hi, 11000)
    rng = random.SystemRandom()
    out: list[int] = []
    with _ports_lock:
        for _ in range(10000):
            if len(out) == n:
                break
            p = rng.randrange(lo, hi)
            if p in _handed_out or p in out or not _port_is_free(p):
                continue
            out.append(p)
        if len(out) != n:
            raise HarnessError("could not find %d free loopback ports" % n)
        _handed_out.update(out)
    return out


def _new_cluster_id():
    """Kafka's Uuid format: URL-safe base64 of 16 random bytes, no padding,
    never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cid.startswith("-"):
            return cid


# ---------------------------------------------------------------- cluster

class _Broker:
    """One broker process.  ``port`` is its PLAINTEXT port, ``ports`` maps
    each client listener's name (PLAINTEXT included) to its port."""
    __slots__ = ("index", "node_id", "port", "ports", "controller_port", "config",
                 "data_dir", "log_path", "proc")

    def __init__(self, index, node_id, ports, controller_port, config, data_dir, log_path):
        self.index = index
        self.node_id = node_id
        self.port = ports["PLAINTEXT"]
        self.ports = ports
        self.controller_port = controller_port
        self.config = config
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class _ZooKeeper:
    """The one standalone ZooKeeper server of a ZooKeeper-mode cluster."""
    __slots__ = ("port", "data_dir", "log_path", "proc")

    def __init__(self, port, data_dir, log_path):
        self.port = port
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None

    @property
    def connect(self):
        return "127.0.0.1:%d" % self.port

    def running(self):
        return self.proc is not None and self.proc.poll() is None


def _stop_processes(procs, grace):
    """SIGTERM all at once, wait up to ``grace`` seconds, then SIGKILL."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait()


def _cleanup(brokers, tmpdir, grace, keep, zookeeper=None):
    """Finaliser shared by terminate() and interpreter exit.  The brokers go
    first: a ZooKeeper-mode broker shuts down cleanly only while its
    ZooKeeper is still up."""
    _stop_processes([b.proc for b in brokers], grace)
    for b in brokers:
        b.proc = None
    if zookeeper is not None:
        _stop_processes([zookeeper.proc], grace)
        zookeeper.proc = None
    if tmpdir and not keep:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _topic_name(name):
    """A topic name as ``str``: pykafka's tests and users pass ``bytes``
    (``create_topic(b'name', 3, 2)``), the wire helpers and the metadata
    they decode use ``str``."""
    if isinstance(name, (bytes, bytearray)):
        return bytes(name).decode("utf-8")
    if not isinstance(name, str):
        raise TypeError("a topic name is str or bytes, not %s" % type(name).__name__)
    return name


def listener_env_name(listener: str) -> str:
    """Environment variable (and ``--export-hosts`` line) of a listener's
    bootstrap string: ``BROKERS`` for PLAINTEXT, else ``BROKERS_<NAME>``
    (``BROKERS_SSL`` is pykafka's)."""
    return "BROKERS" if listener == "PLAINTEXT" else "BROKERS_" + listener


class _Bootstrap:
    """A cluster's attribute giving the bootstrap string of one listener,
    or None when the cluster has none."""

    def __init__(self, listener: str) -> None:
        self.listener = listener
        self.__doc__ = ("Bootstrap string of the %s listener, or None when the "
                        "cluster has none." % listener)

    @overload
    def __get__(self, obj: None, owner: type) -> _Bootstrap: ...
    @overload
    def __get__(self, obj: ClusterAdmin, owner: type) -> str | None: ...

    def __get__(self, obj: ClusterAdmin | None, owner: type) -> _Bootstrap | str | None:
        if obj is None:
            return self
        return obj.listeners.get(self.listener)


class ClusterAdmin:
    """Topic and metadata helpers shared by :class:`KafkaInstance` and
    :class:`pykafka_c.test.utils.ExternalCluster`.  Subclasses provide
    ``brokers``, ``listeners``, ``kafka_version``, ``download_dir``,
    ``_addresses()`` (the (node id, host, port) of every reachable broker)
    and ``_address_of(i)``.

    ``listeners`` maps a listener name (``PLAINTEXT`` and those in
    :data:`SECURITY_LISTENERS`) to its bootstrap string; each has an
    attribute too, ``brokers_<name in lower case>`` (None when absent).
    ``certs`` is the cluster's :class:`CertManager` and ``sasl_users`` its
    SASL users (:data:`SASL_USERS`), both None without such listeners."""

    download_dir: str | None = None
    certs: CertManager | None = None
    sasl_users: dict[str, tuple[SaslUser, ...]] | None = None
    kafka_version: str | None
    zookeeper: str | None

    if TYPE_CHECKING:
        # What the subclasses provide (see the class docstring).
        @property
        def brokers(self) -> str:
            """Bootstrap string of the PLAINTEXT listener."""
        @property
        def listeners(self) -> dict[str, str]:
            """{listener name: bootstrap string}."""
        @property
        def num_instances(self) -> int:
            """The number of brokers."""
        def _addresses(self) -> list[tuple[int, str, int]]: ...
        def _address_of(self, i: int) -> tuple[int, str, int]: ...
        def broker_version(self, i: int = 0) -> str | None: ...
        def log_tails(self, lines: int = 50,
                      which: Iterable[int] | None = None) -> str: ...
        def stop_broker(self, i: int) -> None: ...
        def start_broker(self, i: int, timeout: float | None = None) -> None: ...
        def terminate(self) -> None: ...

    brokers_ssl = _Bootstrap("SSL")                    # pykafka's name
    brokers_sasl_plaintext = _Bootstrap("SASL_PLAINTEXT")
    brokers_sasl_ssl = _Bootstrap("SASL_SSL")
    brokers_mtls = _Bootstrap("MTLS")
    brokers_expired = _Bootstrap("EXPIRED")
    brokers_nosan = _Bootstrap("NOSAN")
    brokers_mismatch = _Bootstrap("MISMATCH")

    def _connect(self, addr: tuple[int, str, int],
                 timeout: float = 30.0) -> _wire.Connection:
        return _wire.Connection(addr[1], addr[2], timeout=timeout)

    def metadata(self, i: int | None = None) -> Any:
        """Cluster metadata (all topics) as seen by broker ``i`` (default: the
        first reachable one): a ``ClusterMetadata`` with ``brokers`` {node id:
        (host, port)}, ``controller_id``, ``cluster_id`` and ``topics`` {name:
        TopicMetadata with ``partitions`` {id: PartitionMetadata with
        ``leader``, ``replicas``, ``isr``}}."""
        addr = self._address_of(i) if i is not None else self._addresses()[0]
        with self._connect(addr) as conn:
            return conn.metadata()

    def api_versions(self, i: int | None = None) -> dict[int, tuple[int, int]]:
        """{api_key: (min, max)} advertised by broker ``i`` (ApiVersions v0)."""
        addr = self._address_of(i) if i is not None else self._addresses()[0]
        with self._connect(addr) as conn:
            return conn.api_versions()

    @property
    def node_ids(self) -> list[int]:
        """The node ids of the brokers."""
        return sorted(self.metadata().brokers)

    def _wait(self, what, check, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                last = check()
                if last is None:
                    return
            except (OSError, _wire.WireError, _wire.KafkaErrorCode) as exc:
                last = str(exc) or exc.__class__.__name__
            if time.monotonic() > deadline:
                raise HarnessError("timed out after %.0f s waiting for %s: %s"
                                   % (timeout, what, last))
            time.sleep(0.2)

    def _each_broker_metadata(self):
        for addr in self._addresses():
            with self._connect(addr, 10.0) as conn:
                yield addr[0], conn.metadata()

    def _to_controller(self, send, attempts=5):
        """Run ``send(conn)`` on a connection to the controller that
        Metadata names (ZooKeeper-mode brokers answer CreateTopics and
        DeleteTopics with NOT_CONTROLLER anywhere else; KRaft brokers
        forward them, so any broker does), retrying NOT_CONTROLLER while the
        controller moves."""
        for attempt in range(attempts):
            addrs = self._addresses()
            with self._connect(addrs[0]) as conn:
                controller = conn.metadata([]).controller_id
            addr = next((a for a in addrs if a[0] == controller), addrs[0])
            try:
                with self._connect(addr) as conn:
                    return send(conn)
            except _wire.KafkaErrorCode as exc:
                if exc.code != _wire.ERR_NOT_CONTROLLER or attempt + 1 == attempts:
                    raise
            time.sleep(0.5)

    def create_topic(self, name: str | bytes, num_partitions: int = 1,
                     replication_factor: int = 1,
                     configs: Mapping[str, str] | None = None,
                     timeout: float = 60.0) -> None:
        """Create a topic (CreateTopics; ``configs`` is a dict of topic
        settings) and wait until every reachable broker's metadata shows a
        leader for each of its partitions and every leader answers
        ListOffsets for them without error.  An existing topic raises
        ``KafkaErrorCode`` with code 36 (TOPIC_ALREADY_EXISTS).  ``name``
        is str or bytes."""
        name = _topic_name(name)
        self._to_controller(lambda conn: conn.create_topic(
            name, num_partitions, replication_factor, configs,
            timeout_ms=int(timeout * 1000)))

        def check() -> str | None:
            for node, md in self._each_broker_metadata():
                t = md.topics.get(name)
                if t is None or t.error != 0:
                    return "broker %d: topic %s" % (node, "absent" if t is None
                                                    else "error %d" % t.error)
                if len(t.partitions) != num_partitions:
                    return "broker %d: %d of %d partitions" % (node, len(t.partitions),
                                                              num_partitions)
                bad = [p.id for p in t.partitions.values() if p.leader < 0]
                if bad:
                    return "broker %d: partitions %s have no leader" % (node, bad)
            # Metadata can name a leader a moment before that broker serves
            # the partition (it answers NOT_LEADER_OR_FOLLOWER meanwhile):
            # ready means every leader answers ListOffsets without error.
            by_leader: dict[int, list[int]] = {}
            for p in t.partitions.values():
                by_leader.setdefault(p.leader, []).append(p.id)
            for leader, pids in sorted(by_leader.items()):
                if leader not in md.brokers:
                    return "leader %d of partitions %s is not listed" % (leader, pids)
                host, port = md.brokers[leader]
                with self._connect((leader, host, port), 10.0) as conn:
                    got = conn.list_offsets(name, sorted(pids))
                errs = {pid: got.get(pid, (None,))[0] for pid in pids}
                errs = {pid: e for pid, e in errs.items() if e != 0}
                if errs:
                    return "leader %d answers ListOffsets with errors %s" % (leader, errs)
            return None

        self._wait("topic %r to have a serving leader for every partition" % name, check,
                   timeout)

    def delete_topic(self, name: str | bytes, timeout: float = 60.0) -> None:
        """Delete a topic (str or bytes name) and wait until no reachable
        broker lists it."""
        name = _topic_name(name)
        self._to_controller(lambda conn: conn.delete_topics(
            [name], timeout_ms=int(timeout * 1000)))

        def check():
            for node, md in self._each_broker_metadata():
                if name in md.topics:
                    return "broker %d still lists it" % node
            return None

        self._wait("topic %r to disappear" % name, check, timeout)

    def list_topics(self, include_internal: bool = False) -> list[str]:
        md = self.metadata()
        return sorted(n for n, t in md.topics.items() if include_internal or not t.internal)

    def wait_in_sync(self, topics: Iterable[str | bytes] | None = None,
                     timeout: float = 60.0) -> None:
        """Wait until every partition of ``topics`` (default: all non-internal
        topics) has a leader and all its replicas in the ISR, as every
        reachable broker sees it."""
        names_given = None if topics is None else [_topic_name(t) for t in topics]

        def check():
            for node, md in self._each_broker_metadata():
                names = names_given if names_given is not None else [
                    n for n, t in md.topics.items() if not t.internal]
                for n in names:
                    t = md.topics.get(n)
                    if t is None:
                        return "broker %d does not list topic %r" % (node, n)
                    for p in t.partitions.values():
                        if p.leader < 0 or set(p.isr) != set(p.replicas):
                            return ("broker %d: %s[%d] leader %d replicas %s isr %s"
                                    % (node, n, p.id, p.leader, p.replicas, p.isr))
            return None

        self._wait("all replicas in sync", check, timeout)

    def produce_messages(self, topic_name: str | bytes,
                         messages: Iterable[str | bytes],
                         timeout: float = 120.0) -> None:
        """Write ``messages`` (str or bytes, one record each, no newlines) to a
        topic with Kafka's console producer (acks=all), like pykafka's helper."""
        topic_name = _topic_name(topic_name)
        lines = []
        for m in messages:
            m = m.decode("utf-8") if isinstance(m, bytes) else str(m)
            if "\n" in m:
                raise ValueError("console producer records cannot contain newlines")
            lines.append(m)
        version = self.kafka_version or DEFAULT_KAFKA_VERSION
        # --bootstrap-server came to the console producer in 2.5 (KIP-499)
        server_flag = "--broker-list" if _parse_version(version) < (2, 5, 0) \
            else "--bootstrap-server"
        run_kafka_tool("console-producer",
                       [server_flag, self.brokers, "--topic", topic_name,
                        "--producer-property", "acks=all"],
                       kafka_version=version,
                       input="\n".join(lines) + "\n", timeout=timeout,
                       download_dir=self.download_dir)


class KafkaInstance(ClusterAdmin):
    """A cluster of ``num_instances`` brokers on free loopback ports, started
    on construction and ready when the constructor returns.

    Kafka 3.3 and newer run as KRaft nodes (each a combined broker and
    controller, static voters).  Kafka 2.1 to 3.2 run in ZooKeeper mode: one
    standalone ZooKeeper server (``zookeeper`` is its ``host:port``, with its
    own data folder and log ``zookeeper.log``) and brokers registered in it;
    :meth:`terminate` stops the brokers, then ZooKeeper.

    Broker ``i`` (0-based) has ``node.id`` (``broker.id``) ``i``.  ``brokers``
    is the bootstrap string ``"127.0.0.1:p0,127.0.0.1:p1,..."``.  Each broker
    has its own data folder and log file under one temporary folder, which
    :meth:`terminate` removes (set ``PKC_KEEP_KAFKA_DATA=1`` to keep it).
    Ready means: every broker answers ApiVersions and its Metadata lists
    every running broker (the same rule in both modes), and every listener
    port accepts connections.

    TLS and SASL (KRaft mode only; ZooKeeper-mode clusters, Kafka 2.1-3.2,
    have PLAINTEXT alone): each broker also listens on the
    :data:`SECURITY_LISTENERS`, all advertised as 127.0.0.1 (the broker
    certificate has IP:127.0.0.1 and DNS:localhost, so clients can verify
    either name).  ``listeners`` maps each listener name to its bootstrap
    string, also as ``brokers_ssl`` (pykafka's name),
    ``brokers_sasl_plaintext``, ``brokers_sasl_ssl``, ``brokers_mtls``,
    ``brokers_expired``, ``brokers_nosan``, ``brokers_mismatch``.  ``certs``
    is the cluster's :class:`CertManager` (a copy, in the cluster's folder,
    of the set this process made once), ``sasl_users`` the users of the SASL
    listeners (:data:`SASL_USERS`: PLAIN in the JAAS config, SCRAM-SHA-256/512
    created when the storage is formatted, OAUTHBEARER through Kafka's
    unsecured validator; tokens from :func:`unsecured_jwt`).  Inter-broker
    and controller traffic stay on PLAINTEXT.  ``secure_listeners=False``
    starts PLAINTEXT alone (the security listeners cost about a second of
    start-up).

    ``server_properties`` adds or overrides broker settings; ``jvm_opts`` adds
    JVM flags (after the defaults).
    """

    num_instances: int
    kafka_version: str

    def __init__(self, num_instances: int = 1,
                 kafka_version: str = DEFAULT_KAFKA_VERSION,
                 download_dir: str | None = None, name: str = "kafka",
                 heap: str = "512m", start_timeout: float | None = None,
                 server_properties: Mapping[str, object] | None = None,
                 jvm_opts: Iterable[str] = (), scala_version: str | None = None,
                 bin_dir: str | None = None, use_gevent: bool = False,
                 secure_listeners: bool = True) -> None:
        # scala_version, bin_dir and use_gevent are pykafka's parameters: one
        # Scala build is used per Kafka version (2.12 before 2.4, else 2.13;
        # None picks it), bin_dir is taken as the download (cache) folder, and
        # use_gevent does not concern the brokers.
        if int(num_instances) < 1:
            raise ValueError("num_instances must be at least 1")
        scala = scala_binary_version(kafka_version)
        if scala_version is not None and str(scala_version) != scala:
            raise HarnessError("this harness runs the Scala %s build of Kafka %s, not %r"
                               % (scala, kafka_version, scala_version))
        download_dir = download_dir or bin_dir
        self.num_instances = int(num_instances)
        self.kafka_version = str(kafka_version)
        self.zookeeper_mode = uses_zookeeper(self.kafka_version)
        self.secure_listeners = bool(secure_listeners) and not self.zookeeper_mode
        self.name = name
        self.heap = heap
        self.download_dir = download_dir
        self.start_timeout = float(start_timeout if start_timeout is not None
                                   else START_TIMEOUT + 30.0 * (self.num_instances - 1))
        self._extra_props = dict(server_properties or {})
        self._jvm_opts = list(jvm_opts)
        self.zookeeper = None          # pykafka's attribute: ZooKeeper's host:port, if any
        self._zk: _ZooKeeper | None = None
        self.certs = None
        self.sasl_users = SASL_USERS if self.secure_listeners else None
        self.cluster_id: str | None = None
        self.tmpdir: str | None = None
        self._brokers: list[_Broker] = []
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.startup_seconds: float | None = None
        # Everything that can fail without side effects happens first.
        self._java = check_java()
        self._classpath = resolve_classpath(self.kafka_version, "broker", download_dir)
        if self.secure_listeners:
            security.shared_certs()
        self._start_cluster()

    # ---------------------------------------------------------- properties

    @property
    def brokers(self) -> str:
        """Bootstrap string of the PLAINTEXT listener."""
        return ",".join("127.0.0.1:%d" % b.port for b in self._brokers)

    @property
    def listeners(self) -> dict[str, str]:
        """{listener name: bootstrap string} of every client listener."""
        names = self._brokers[0].ports if self._brokers else {}
        return {name: ",".join("127.0.0.1:%d" % b.ports[name] for b in self._brokers)
                for name in names}

    @property
    def broker_ports(self) -> list[int]:
        """The PLAINTEXT port of each broker."""
        return [b.port for b in self._brokers]

    @property
    def node_ids(self) -> list[int]:
        """The node id of each broker."""
        return [b.node_id for b in self._brokers]

    def __repr__(self) -> str:
        return "<KafkaInstance %s x%d %s%s>" % (
            self.kafka_version, self.num_instances, self.brokers,
            " zookeeper=%s" % self.zookeeper if self.zookeeper else "")

    def __enter__(self) -> KafkaInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    # ------------------------------------------------------------- startup

    def _common_properties(self, b):
        """Broker settings shared by KRaft and ZooKeeper mode."""
        n = self.num_instances
        return {
            "advertised.listeners": self._listener_list(b.ports),
            "log.dirs": b.data_dir,
            "num.partitions": 1,
            "default.replication.factor": 1,
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            "offsets.topic.replication.factor": min(n, 3),
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": min(n, 3),
            "transaction.state.log.min.isr": min(n, 2),
            "transaction.state.log.num.partitions": 4,
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
            "replica.lag.time.max.ms": 5000,
            "num.network.threads": 2,
            "num.io.threads": 4 if n == 1 else 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
            # Tests write records with fixed, checkable timestamps from the
            # past (2023); with the default 7-day retention the broker's
            # check, every 5 minutes, would delete them mid-test.  Topics
            # that test retention set retention.ms themselves.
            "log.retention.ms": -1,
        }

    @staticmethod
    def _listener_list(ports):
        return ",".join("%s://127.0.0.1:%d" % (name, port) for name, port in ports.items())

    def _security_properties(self):
        """TLS and SASL settings of the SECURITY_LISTENERS: PEM stores
        (KIP-651; no store passwords), per-listener overrides
        (``listener.name.<name>.<key>``), the SASL mechanisms and one JAAS
        config per SASL listener and mechanism."""
        certs = self.certs
        props = {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": certs.keystore,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": certs.truststore,
            "listener.name.mtls.ssl.client.auth": "required",
            "listener.name.expired.ssl.keystore.location": certs.expired_keystore,
            "listener.name.nosan.ssl.keystore.location": certs.nosan_keystore,
            "listener.name.mismatch.ssl.keystore.location": certs.mismatch_keystore,
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        }
        pkg = "org.apache.kafka.common.security."
        jaas = {
            "plain": pkg + "plain.PlainLoginModule required %s;"
                           % security.plain_jaas_users(self.sasl_users),
            "scram-sha-256": pkg + "scram.ScramLoginModule required;",
            "scram-sha-512": pkg + "scram.ScramLoginModule required;",
            "oauthbearer": pkg + "oauthbearer.OAuthBearerLoginModule required;",
        }
        for listener in ("sasl_plaintext", "sasl_ssl"):
            for mech, config in jaas.items():
                props["listener.name.%s.%s.sasl.jaas.config" % (listener, mech)] = config
        return props

    def _properties_text(self, props):
        props.update(self._extra_props)
        return "".join("%s=%s\n" % (k, v) for k, v in props.items())

    def _server_properties(self, b, voters):
        if self.zookeeper_mode:
            return self._zk_server_properties(b)
        n = self.num_instances
        protocols = dict(PLAINTEXT="PLAINTEXT", CONTROLLER="PLAINTEXT")
        if self.secure_listeners:
            protocols.update(SECURITY_LISTENERS)
        props = {
            "process.roles": "broker,controller",
            "node.id": b.node_id,
            "controller.quorum.voters": voters,
            "listeners": self._listener_list(dict(b.ports, CONTROLLER=b.controller_port)),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": ",".join("%s:%s" % kv
                                                       for kv in protocols.items()),
            "share.coordinator.state.topic.replication.factor": min(n, 3),
            "share.coordinator.state.topic.min.isr": min(n, 2),
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 5000,
        }
        props.update(self._common_properties(b))
        props.update(self._consumer_group_protocol_properties())
        if self.secure_listeners:
            props.update(self._security_properties())
        return self._properties_text(props)

    def _consumer_group_protocol_properties(self):
        """KIP-848 groups (``group.protocol=consumer``; on by default in
        Kafka 4.x, where ``group.coordinator.rebalance.protocols`` is
        ``classic,consumer,streams``; left at its default ``classic`` on 3.9,
        which then does not offer ConsumerGroupHeartbeat): the coordinator
        sets their heartbeat interval and session timeout.  Kafka's
        defaults (5 s, 45 s, with minimums as high) would make every test
        that moves partitions wait seconds; these keep it under one.  Set
        only where the protocol is on by default (4.0+): 3.9 keeps its
        stock group settings."""
        if _parse_version(self.kafka_version) < (4, 0):
            return {}
        return {
            "group.consumer.min.heartbeat.interval.ms": 250,
            "group.consumer.heartbeat.interval.ms": 500,
            "group.consumer.min.session.timeout.ms": 1000,
            "group.consumer.session.timeout.ms": 10000,
        }

    def _zk_server_properties(self, b):
        """Broker settings in ZooKeeper mode (Kafka 2.1-3.2): PLAINTEXT only;
        the TLS and SASL listeners exist in KRaft mode alone."""
        props = {
            "broker.id": b.node_id,
            "zookeeper.connect": self._zk.connect,
            "zookeeper.connection.timeout.ms": 30000,
            "zookeeper.session.timeout.ms": 10000,
            "listeners": "PLAINTEXT://127.0.0.1:%d" % b.port,
            "controlled.shutdown.max.retries": 1,
        }
        props.update(self._common_properties(b))
        return self._properties_text(props)

    def _start_cluster(self):
        last = None
        for attempt in range(3):
            try:
                self._start_attempt()
                return
            except _PortClash as exc:
                last = exc
                self._teardown(keep=False)
            except BaseException:
                self._teardown(keep=bool(os.environ.get("PKC_KEEP_KAFKA_DATA")))
                raise
        raise HarnessError("brokers kept failing to bind their ports: %s" % (last,))

    def _start_attempt(self):
        n = self.num_instances
        self.tmpdir = tempfile.mkdtemp(prefix="pkc-%s-%s-" % (self.name, self.kafka_version))
        zk_mode = self.zookeeper_mode
        self.cluster_id = None if zk_mode else _new_cluster_id()
        # KRaft: a port per client listener and a controller port per node;
        # ZooKeeper mode: a broker port per node and one for ZooKeeper.
        names = ["PLAINTEXT"] + (list(SECURITY_LISTENERS) if self.secure_listeners else [])
        per_node = 1 if zk_mode else len(names) + 1
        ports = _free_ports(n * per_node + (1 if zk_mode else 0))
        self._brokers = []
        if self.secure_listeners:
            self.certs = security.shared_certs().copy_to(self.tmpdir)
        for i in range(n):
            bdir = os.path.join(self.tmpdir, "broker-%d" % i)
            os.makedirs(bdir)
            mine = ports[i * per_node:(i + 1) * per_node]
            controller_port = None if zk_mode else mine[-1]
            self._brokers.append(_Broker(i, i, dict(zip(names, mine)), controller_port,
                                         os.path.join(bdir, "server.properties"),
                                         os.path.join(bdir, "data"),
                                         os.path.join(bdir, "kafka.log")))
        self._zk = None
        if zk_mode:
            zdir = os.path.join(self.tmpdir, "zookeeper")
            os.makedirs(os.path.join(zdir, "data"))
            self._zk = _ZooKeeper(ports[n], os.path.join(zdir, "data"),
                                  os.path.join(zdir, "zookeeper.log"))
            self.zookeeper = self._zk.connect
        self._finalizer = weakref.finalize(self, _cleanup, self._brokers, self.tmpdir,
                                           STOP_GRACE, bool(os.environ.get("PKC_KEEP_KAFKA_DATA")),
                                           self._zk)
        voters = None if zk_mode else ",".join(
            "%d@127.0.0.1:%d" % (b.node_id, b.controller_port) for b in self._brokers)
        for b in self._brokers:
            with open(b.config, "w") as f:
                f.write(self._server_properties(b, voters))
        t0 = time.monotonic()
        if zk_mode:
            self._start_zookeeper(t0 + self.start_timeout)
        else:
            self._format_storage()
        for b in self._brokers:
            self._launch(b)
        self._wait_ready(self._brokers, time.monotonic() + self.start_timeout)
        self.startup_seconds = time.monotonic() - t0

    def _jvm_cmd(self, main_class, args, heap, extra=()):
        return ([self._java, "-Xmx" + heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                 "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1", "-XX:CICompilerCount=2",
                 "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true",
                 _log_config_flag(self.kafka_version, tools=False)]
                + list(extra) + self._jvm_opts + ["-cp", self._classpath, main_class]
                + list(args))

    def _start_zookeeper(self, deadline):
        """Start the standalone ZooKeeper server (ZooKeeperServerMain with a
        zoo.cfg, from the broker's classpath) on loopback and wait until it
        answers.  Its JMX log4j beans and admin HTTP server are turned off:
        reload4j has no log4j JMX classes, and the admin server would want
        port 8080."""
        zk = self._zk
        cfg = os.path.join(os.path.dirname(zk.data_dir), "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    "tickTime=2000\nmaxClientCnxns=0\nadmin.enableServer=false\n"
                    "4lw.commands.whitelist=srvr\n" % (zk.data_dir, zk.port))
        cmd = self._jvm_cmd("org.apache.zookeeper.server.ZooKeeperServerMain", [cfg], "256m",
                            ["-Dzookeeper.jmx.log4j.disable=true",
                             "-Dzookeeper.admin.enableServer=false"])
        with open(zk.log_path, "ab") as log:
            zk.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       cwd=os.path.dirname(zk.data_dir))
        while True:
            rc = zk.proc.poll()
            if rc is not None:
                text = self._read_tail(zk.log_path, 40)
                if "Address already in use" in text or "BindException" in text:
                    raise _PortClash("ZooKeeper could not bind port %d" % zk.port)
                raise HarnessError("ZooKeeper (for Kafka %s) exited with code %d while "
                                   "starting. Log tail (%s):\n%s"
                                   % (self.kafka_version, rc, zk.log_path, text))
            try:
                with socket.create_connection(("127.0.0.1", zk.port), timeout=2.0) as s:
                    s.sendall(b"srvr")          # the four-letter word zoo.cfg allows
                    s.settimeout(2.0)
                    if b"Zookeeper version" in s.recv(4096):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HarnessError("ZooKeeper did not answer on port %d within %.0f s. Log "
                                   "tail (%s):\n%s" % (zk.port, self.start_timeout,
                                                       zk.log_path,
                                                       self._read_tail(zk.log_path, 40)))
            time.sleep(0.25)

    @staticmethod
    def _read_tail(path, lines):
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 400 * lines))
                return _tail(f.read().decode("utf-8", "replace"), lines)
        except OSError as exc:
            return "(no log: %s)" % exc

    def _format_storage(self):
        procs = []
        try:
            for b in self._brokers:
                args = ["format", "-t", self.cluster_id, "-c", b.config]
                if self.secure_listeners:
                    args += security.scram_format_args(self.sasl_users)   # KIP-900
                cmd = self._jvm_cmd("kafka.tools.StorageTool", args, "256m")
                procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              start_new_session=True))
            for b, p in zip(self._brokers, procs):
                try:
                    out, _ = p.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, _ = p.communicate()
                    raise HarnessError("formatting the storage of broker %d timed out" % b.index)
                if p.returncode != 0:
                    raise HarnessError(
                        "formatting the storage of broker %d failed (exit %d):\n%s"
                        % (b.index, p.returncode, _tail(out.decode("utf-8", "replace"), 30)))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()

    def _launch(self, b):
        with open(b.log_path, "ab") as log:
            log.write(("=== pykafka_c.test: starting broker %d (node.id %d) at %s ===\n"
                       % (b.index, b.node_id, time.strftime("%Y-%m-%d %H:%M:%S"))).encode())
            log.flush()
            b.proc = subprocess.Popen(self._jvm_cmd("kafka.Kafka", [b.config], self.heap),
                                      stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      cwd=os.path.dirname(b.config))

    def _probe(self, b, expected_ids):
        """None when broker b answers ApiVersions and its Metadata lists every
        node in expected_ids; else a short reason."""
        try:
            with _wire.Connection("127.0.0.1", b.port, timeout=5.0) as conn:
                versions = conn.api_versions()
                if 0 not in versions:
                    return "ApiVersions response lacks Produce"
                md = conn.metadata()
        except (OSError, _wire.WireError, _wire.KafkaErrorCode) as exc:
            return str(exc) or exc.__class__.__name__
        missing = set(expected_ids) - set(md.brokers)
        if missing:
            return "metadata lists brokers %s, still missing %s" % (sorted(md.brokers),
                                                                    sorted(missing))
        for name, port in b.ports.items():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5.0).close()
            except OSError as exc:
                return "listener %s (port %d) refuses connections: %s" % (name, port, exc)
        return None

    def _wait_ready(self, waiting, deadline, also_listed_by=()):
        """Wait until every broker in ``waiting`` is ready (see :meth:`_probe`)
        and every broker in ``also_listed_by`` lists them in its metadata."""
        pending = list(waiting)
        checkers = list(also_listed_by)
        reasons = {}
        while True:
            expected = [b.node_id for b in self._brokers if b.running()]
            for b in list(pending):
                rc = b.proc.poll()
                if rc is not None:
                    log = self.broker_logs(b.index, tail=60)
                    if "Address already in use" in log or "BindException" in log:
                        raise _PortClash("broker %d could not bind port %d or %s"
                                         % (b.index, b.port, b.controller_port))
                    raise HarnessError("Kafka %s broker %d exited with code %d while "
                                       "starting. Log tail (%s):\n%s"
                                       % (self.kafka_version, b.index, rc, b.log_path, log))
                reason = self._probe(b, expected)
                if reason is None:
                    pending.remove(b)
                else:
                    reasons[b.index] = reason
            if not pending:
                wanted = {b.node_id for b in waiting}
                for c in list(checkers):
                    if not c.running():
                        checkers.remove(c)
                        continue
                    reason = self._probe(c, wanted)
                    if reason is None:
                        checkers.remove(c)
                    else:
                        reasons[c.index] = reason
                if not checkers:
                    return
            if time.monotonic() > deadline:
                slow = pending or checkers
                raise HarnessError(
                    "Kafka %s broker(s) %s not ready within %.0f s (ready = answered "
                    "ApiVersions and Metadata lists every running broker). Last problems: "
                    "%s\n%s" % (self.kafka_version, [b.index for b in slow], self.start_timeout,
                                {b.index: reasons.get(b.index) for b in slow},
                                self.log_tails(lines=40, which=[b.index for b in slow])))
            time.sleep(0.25)

    # ----------------------------------------------------------- lifecycle

    def _teardown(self, keep):
        if self._finalizer is not None and self._finalizer.alive:
            self._finalizer.detach()
        _cleanup(self._brokers, self.tmpdir, STOP_GRACE, keep, self._zk)
        self._finalizer = None

    def terminate(self) -> None:
        """Stop every broker (SIGTERM to all at once, a short grace, then
        SIGKILL), then ZooKeeper if there is one, and remove the cluster's
        data and logs.  Idempotent."""
        self._teardown(keep=bool(os.environ.get("PKC_KEEP_KAFKA_DATA")))

    def _broker(self, i):
        if not 0 <= i < len(self._brokers):
            raise IndexError("no broker %r in a cluster of %d" % (i, len(self._brokers)))
        return self._brokers[i]

    def is_running(self, i: int) -> bool:
        return self._broker(i).running()

    def stop_broker(self, i: int) -> None:
        """Kill broker ``i`` with SIGKILL (a crash) and wait until it is gone."""
        b = self._broker(i)
        if b.proc is not None:
            if b.proc.poll() is None:
                b.proc.kill()
            b.proc.wait()
        with open(b.log_path, "ab") as log:
            log.write(("=== pykafka_c.test: broker %d killed (SIGKILL) at %s ===\n"
                       % (i, time.strftime("%Y-%m-%d %H:%M:%S"))).encode())

    def start_broker(self, i: int, timeout: float | None = None) -> None:
        """Restart broker ``i`` on the same ports and data, and wait until it
        is ready and every other running broker lists it again."""
        b = self._broker(i)
        if b.running():
            raise HarnessError("broker %d is already running" % i)
        if b.proc is not None:
            b.proc.wait()
        self._launch(b)
        others = [o for o in self._brokers if o is not b and o.running()]
        budget = float(timeout if timeout is not None else START_TIMEOUT)
        try:
            self._wait_ready([b], time.monotonic() + budget, also_listed_by=others)
        except _PortClash as exc:
            raise HarnessError("broker %d could not get its old ports back: %s" % (i, exc)) \
                from None

    # ------------------------------------------------------------- queries

    def _addresses(self) -> list[tuple[int, str, int]]:
        running = [b for b in self._brokers if b.running()]
        if not running:
            raise HarnessError("no broker of the cluster is running")
        return [(b.node_id, "127.0.0.1", b.port) for b in running]

    def _address_of(self, i: int) -> tuple[int, str, int]:
        b = self._broker(i)
        return b.node_id, "127.0.0.1", b.port

    def broker_version(self, i: int = 0) -> str | None:
        """Kafka version broker ``i`` reported in its log ("Kafka version: X")."""
        # "Kafka version: X" (3.x, 4.x) or "Kafka version : X" (2.x)
        m = re.findall(r"Kafka version ?: (\S+)", self.broker_logs(i))
        return m[-1] if m else None

    # ---------------------------------------------------------------- logs

    def broker_log_path(self, i: int) -> str:
        return self._broker(i).log_path

    def broker_logs(self, i: int | None = None, tail: int | None = None) -> str:
        """Text of broker ``i``'s log (all brokers, each under a header, when
        ``i`` is None); only the last ``tail`` lines when given."""
        if i is None:
            return "\n".join(self._one_log(b, tail, header=True) for b in self._brokers)
        return self._one_log(self._broker(i), tail, header=False)

    def _one_log(self, b, tail, header):
        try:
            with open(b.log_path, "rb") as f:
                if tail is not None:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - 400 * tail))
                text = f.read().decode("utf-8", "replace")
        except OSError as exc:
            text = "(no log: %s)" % exc
        if tail is not None:
            text = _tail(text, tail)
        if header:
            text = "----- broker %d (node.id %d, port %d, %s) log: %s -----\n%s" % (
                b.index, b.node_id, b.port, "running" if b.running() else "stopped",
                b.log_path, text)
        return text

    def log_tails(self, lines: int = 50, which: Iterable[int] | None = None) -> str:
        """Last ``lines`` lines of the logs of the brokers in ``which`` (default
        all), each under a header: what a failing test should print."""
        idx = range(len(self._brokers)) if which is None else which
        text = "\n".join(self._one_log(self._brokers[i], lines, header=True) for i in idx)
        if self._zk is not None and which is None:
            text += "\n----- zookeeper (%s) log: %s -----\n%s" % (
                self.zookeeper, self._zk.log_path, self._read_tail(self._zk.log_path, lines))
        return text


class _PortClash(HarnessError):
    pass


# ------------------------------------------------------------------- CLI

class _Stop(BaseException):
    pass


def _on_signal(signum, frame):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pykafka_c.test.kafka_instance",
        description="Start a local Apache Kafka cluster for tests (KRaft from 3.3, "
                    "ZooKeeper mode for 2.1-3.2); run until SIGINT/SIGTERM, then stop it "
                    "and remove its data.")
    parser.add_argument("num_instances", type=int, nargs="?", default=1,
                        help="number of brokers (default 1)")
    parser.add_argument("--kafka-version", default=DEFAULT_KAFKA_VERSION,
                        help="Apache Kafka version, 2.1.0 or newer (default %s; %s and %s "
                             "are the other tested ones)"
                             % (DEFAULT_KAFKA_VERSION, KAFKA_39_VERSION, KAFKA_OLD_VERSION))
    parser.add_argument("--download-dir", default=None,
                        help="cache folder for the Kafka jars (default $PKC_CACHE_DIR or "
                             "~/.cache/pykafka_c)")
    parser.add_argument("--export-hosts", metavar="FILE", default=None,
                        help="write BROKERS=host:port,..., the other listeners (BROKERS_SSL=... "
                             "and so on), %s=... and KAFKA_VERSION=... to FILE" % CERTS_ENV)
    parser.add_argument("--plaintext-only", action="store_true",
                        help="no TLS or SASL listeners (they are there by default in KRaft "
                             "mode)")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    cluster = None
    try:
        t0 = time.monotonic()
        cluster = KafkaInstance(args.num_instances, kafka_version=args.kafka_version,
                                download_dir=args.download_dir,
                                secure_listeners=not args.plaintext_only)
        lines = ["%s=%s" % (listener_env_name(name), bootstrap)
                 for name, bootstrap in cluster.listeners.items()]
        if cluster.certs is not None:
            lines.append("%s=%s" % (CERTS_ENV, cluster.certs.cert_dir))
        if args.export_hosts:
            tmp = args.export_hosts + ".tmp"
            with open(tmp, "w") as f:
                f.write("%s\nKAFKA_VERSION=%s\n" % ("\n".join(lines), cluster.kafka_version))
                if cluster.zookeeper:
                    f.write("ZOOKEEPER=%s\n" % cluster.zookeeper)
            os.replace(tmp, args.export_hosts)
        print("\n".join(lines), flush=True)
        sys.stderr.write("Kafka %s: %d broker(s) ready in %.1f s; data in %s. "
                         "Ctrl-C or SIGTERM stops them.\n"
                         % (cluster.kafka_version, cluster.num_instances,
                            time.monotonic() - t0, cluster.tmpdir))
        if cluster.certs is not None:
            sys.stderr.write("Test certificates in %s; SASL users and the client key's "
                             "password in %s.\n" % (cluster.certs.cert_dir,
                                                     cluster.certs.credentials_file))
        sys.stderr.flush()
        while True:
            time.sleep(3600)
    except _Stop:
        return 0
    except HarnessError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cluster is not None:
            cluster.terminate()


def __getattr__(name: str) -> Any:
    # pykafka keeps KafkaConnection in this module; here it lives in
    # pykafka_c.test.utils (which imports this module), loaded on first use.
    if name == "KafkaConnection":
        from .utils import KafkaConnection
        return KafkaConnection
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


if __name__ == "__main__":
    sys.exit(main())
