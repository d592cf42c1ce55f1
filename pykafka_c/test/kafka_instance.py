"""Real Apache Kafka clusters for tests and benchmarks.

The counterpart of pykafka's ``pykafka.test.kafka_instance``, for modern
Kafka: brokers run in KRaft mode (each node a combined broker and controller,
static voters, no ZooKeeper) straight from Maven Central jars.  The jars are
resolved once per Kafka version with Maven from the ``pom.xml`` kept in this
package and copied into a cache folder (``$PKC_CACHE_DIR``, else
``~/.cache/pykafka_c``), so later starts need no network and no Maven.

Library use::

    with KafkaInstance(num_instances=3) as kafka:
        kafka.create_topic("t", num_partitions=3, replication_factor=3)
        ... connect a client to kafka.brokers ...

Command line (like pykafka's)::

    python -m pykafka_c.test.kafka_instance N [--kafka-version V]
        [--download-dir D] [--export-hosts FILE]

starts N brokers, prints ``BROKERS=host:port,...`` (and writes it to FILE),
and runs until SIGINT or SIGTERM, then stops the brokers and removes their
data.

Kafka's command line tools (console producer/consumer, consumer groups,
producer/consumer performance) run through :func:`run_kafka_tool`; their
larger classpath is resolved separately, only when first used.
"""

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

from . import _wire

__all__ = [
    "DEFAULT_KAFKA_VERSION", "KAFKA_39_VERSION", "KAFKA_VERSIONS", "HarnessError",
    "KafkaInstance", "run_kafka_tool", "kafka_tool_command", "resolve_classpath",
    "check_java", "cache_dir", "TOOLS",
]

#: Newest 4.x release on Maven Central when this was pinned (its
#: maven-metadata.xml lists 4.4.0 as <release>); the default everywhere.
DEFAULT_KAFKA_VERSION = "4.4.0"
#: Newest 3.9.x release: the last 3.x line, the newest broker pure pykafka
#: can still talk to.
KAFKA_39_VERSION = "3.9.2"
KAFKA_VERSIONS = (DEFAULT_KAFKA_VERSION, KAFKA_39_VERSION)

# log4j2 release each pinned 4.x version ships with (kafka-server's POM); other
# 4.x versions get the same one (the pom pins log4j-api/core/slf4j-impl to it).
_LOG4J2_VERSIONS = {"4.4.0": "2.25.5"}
_LOG4J2_DEFAULT = "2.25.5"

START_TIMEOUT = 90.0          # seconds per broker start (a cluster gets more)
STOP_GRACE = 5.0              # SIGTERM grace period before SIGKILL
MVN_TIMEOUT = 900.0
_HERE = os.path.dirname(os.path.abspath(__file__))

# Command line tools by short name: (class on 4.x, class on 3.9).
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


class HarnessError(RuntimeError):
    """The test cluster could not be set up, started or used (missing tool,
    failed resolve, broker that did not come up, ...)."""


# --------------------------------------------------------------- versions

def _parse_version(kafka_version):
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(kafka_version))
    if not m:
        raise HarnessError("bad Kafka version %r: expected MAJOR.MINOR.PATCH, e.g. %s"
                           % (kafka_version, DEFAULT_KAFKA_VERSION))
    parts = tuple(int(p) for p in m.groups())
    if parts < (3, 3, 0):
        raise HarnessError("Kafka %s is too old for this harness: it runs KRaft combined "
                           "nodes, which need Kafka 3.3 or newer" % (kafka_version,))
    return parts


def _logging_flavour(kafka_version):
    """'log4j2' for Kafka 4.x, 'reload4j' for 3.x."""
    return "log4j2" if _parse_version(kafka_version)[0] >= 4 else "reload4j"


def _log_config_flag(kafka_version, tools):
    if _logging_flavour(kafka_version) == "log4j2":
        name = "log4j2-tools.properties" if tools else "log4j2.properties"
        return "-Dlog4j2.configurationFile=" + os.path.join(_HERE, name)
    name = "log4j-tools.properties" if tools else "log4j.properties"
    return "-Dlog4j.configuration=file:" + os.path.join(_HERE, name)


def tool_class(name, kafka_version=DEFAULT_KAFKA_VERSION):
    """Main class of a tool given by short name (see :data:`TOOLS`) or by class."""
    if name not in TOOLS:
        return name
    new, old = TOOLS[name]
    return new if _parse_version(kafka_version)[0] >= 4 else old


# ------------------------------------------------------------ environment

def cache_dir(download_dir=None):
    """Folder holding the resolved jars: ``download_dir``, else
    ``$PKC_CACHE_DIR``, else ``~/.cache/pykafka_c``."""
    d = download_dir or os.environ.get("PKC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pykafka_c")
    return os.path.abspath(d)


_java_checked = {}


def find_java():
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def check_java():
    """Path of a ``java`` of version 17 or newer; :class:`HarnessError` naming
    what is missing otherwise."""
    java = find_java()
    if java is None:
        raise HarnessError(
            "java was not found (neither $JAVA_HOME/bin/java nor java on PATH). Kafka "
            "brokers need a Java runtime 17 or newer: run scripts/install-system-deps.sh "
            "or `apt-get install openjdk-17-jre-headless`.")
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
            "(`apt-get install openjdk-17-jre-headless`) or point JAVA_HOME at one." % (java, major))
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
    return profiles + [_logging_flavour(kafka_version)]


def resolve_classpath(kafka_version=DEFAULT_KAFKA_VERSION, kind="broker", download_dir=None):
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
        tmp = tempfile.mkdtemp(prefix=kind + ".tmp-", dir=vdir)
        try:
            # -U: retry artifacts whose earlier download failed (Maven caches
            # "not found" in ~/.m2 otherwise); plain output for error messages.
            cmd = [mvn, "-B", "-q", "-U", "-Dstyle.color=never",
                   "-f", os.path.join(vdir, "pom.xml"),
                   "-P", ",".join(_profiles(kafka_version, kind)),
                   "dependency:copy-dependencies", "-DincludeScope=runtime",
                   "-DoutputDirectory=" + tmp, "-Dkafka.version=" + kafka_version,
                   "-Dlog4j2.version=" + _LOG4J2_VERSIONS.get(kafka_version, _LOG4J2_DEFAULT)]
            t0 = time.monotonic()
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=MVN_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise HarnessError("Maven did not finish resolving Kafka %s within %d s"
                                   % (kafka_version, MVN_TIMEOUT)) from None
            out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout.decode("utf-8", "replace"))
            jars = sorted(f for f in os.listdir(tmp) if f.endswith(".jar"))
            needed = "kafka_2.13-%s.jar" % kafka_version if kind == "broker" else \
                "kafka-tools-%s.jar" % kafka_version
            if proc.returncode != 0 or needed not in jars:
                raise HarnessError(
                    "could not resolve the Kafka %s %s jars from Maven Central (mvn exit "
                    "code %d). Command: %s\nMaven output (tail):\n%s"
                    % (kafka_version, kind, proc.returncode, " ".join(cmd), _tail(out, 40)))
            if os.path.isdir(libs):
                shutil.rmtree(libs)
            os.rename(tmp, libs)
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

def kafka_tool_command(main_class, args=(), kafka_version=DEFAULT_KAFKA_VERSION,
                       heap="256m", download_dir=None, jvm_opts=(), fast_start=None):
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


def run_kafka_tool(main_class, args=(), kafka_version=DEFAULT_KAFKA_VERSION, input=None,
                   timeout=120.0, check=True, text=True, heap="256m", download_dir=None,
                   jvm_opts=(), fast_start=None):
    """Run a Kafka command line tool to completion and return its
    ``subprocess.CompletedProcess`` (stdout and stderr captured).

    ``check=True`` raises :class:`HarnessError` with the tool's stderr when it
    exits non-zero or overruns ``timeout``."""
    cmd = kafka_tool_command(main_class, args, kafka_version, heap, download_dir, jvm_opts,
                             fast_start)
    if text and isinstance(input, bytes):
        input = input.decode("utf-8")
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

_handed_out = set()
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


def _free_ports(n):
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
    out = []
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
    __slots__ = ("index", "node_id", "port", "controller_port", "config", "data_dir",
                 "log_path", "proc")

    def __init__(self, index, node_id, port, controller_port, config, data_dir, log_path):
        self.index = index
        self.node_id = node_id
        self.port = port
        self.controller_port = controller_port
        self.config = config
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None

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


def _cleanup(brokers, tmpdir, grace, keep):
    """Finaliser shared by terminate() and interpreter exit."""
    _stop_processes([b.proc for b in brokers], grace)
    for b in brokers:
        b.proc = None
    if tmpdir and not keep:
        shutil.rmtree(tmpdir, ignore_errors=True)


class KafkaInstance:
    """A cluster of ``num_instances`` KRaft nodes (each a combined broker and
    controller, static voters) on free loopback ports, started on
    construction and ready when the constructor returns.

    Broker ``i`` (0-based) has ``node.id`` ``i``.  ``brokers`` is the
    bootstrap string ``"127.0.0.1:p0,127.0.0.1:p1,..."``.  Each broker has
    its own data folder and log file under one temporary folder, which
    :meth:`terminate` removes (set ``PKC_KEEP_KAFKA_DATA=1`` to keep it).

    ``server_properties`` adds or overrides broker settings; ``jvm_opts`` adds
    JVM flags (after the defaults).
    """

    def __init__(self, num_instances=1, kafka_version=DEFAULT_KAFKA_VERSION,
                 download_dir=None, name="kafka", heap="512m", start_timeout=None,
                 server_properties=None, jvm_opts=()):
        if int(num_instances) < 1:
            raise ValueError("num_instances must be at least 1")
        self.num_instances = int(num_instances)
        self.kafka_version = str(kafka_version)
        self.name = name
        self.heap = heap
        self.download_dir = download_dir
        self.start_timeout = float(start_timeout if start_timeout is not None
                                   else START_TIMEOUT + 30.0 * (self.num_instances - 1))
        self._extra_props = dict(server_properties or {})
        self._jvm_opts = list(jvm_opts)
        self.zookeeper = None          # pykafka compatibility: there is no ZooKeeper
        self.brokers_ssl = None
        self.cluster_id = None
        self.tmpdir = None
        self._brokers = []
        self._finalizer = None
        self.startup_seconds = None
        # Everything that can fail without side effects happens first.
        self._java = check_java()
        self._classpath = resolve_classpath(self.kafka_version, "broker", download_dir)
        self._start_cluster()

    # ---------------------------------------------------------- properties

    @property
    def brokers(self):
        return ",".join("127.0.0.1:%d" % b.port for b in self._brokers)

    @property
    def broker_ports(self):
        return [b.port for b in self._brokers]

    @property
    def node_ids(self):
        return [b.node_id for b in self._brokers]

    def __repr__(self):
        return "<KafkaInstance %s x%d %s>" % (self.kafka_version, self.num_instances,
                                              self.brokers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.terminate()

    # ------------------------------------------------------------- startup

    def _server_properties(self, b, voters):
        n = self.num_instances
        props = {
            "process.roles": "broker,controller",
            "node.id": b.node_id,
            "controller.quorum.voters": voters,
            "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d"
                         % (b.port, b.controller_port),
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % b.port,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
            "share.coordinator.state.topic.replication.factor": min(n, 3),
            "share.coordinator.state.topic.min.isr": min(n, 2),
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 5000,
            "replica.lag.time.max.ms": 5000,
            "num.network.threads": 2,
            "num.io.threads": 4 if n == 1 else 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
        }
        props.update(self._extra_props)
        return "".join("%s=%s\n" % (k, v) for k, v in props.items())

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
        self.cluster_id = _new_cluster_id()
        ports = _free_ports(2 * n)
        self._brokers = []
        for i in range(n):
            bdir = os.path.join(self.tmpdir, "broker-%d" % i)
            os.makedirs(bdir)
            self._brokers.append(_Broker(i, i, ports[2 * i], ports[2 * i + 1],
                                         os.path.join(bdir, "server.properties"),
                                         os.path.join(bdir, "data"),
                                         os.path.join(bdir, "kafka.log")))
        self._finalizer = weakref.finalize(self, _cleanup, self._brokers, self.tmpdir,
                                           STOP_GRACE, bool(os.environ.get("PKC_KEEP_KAFKA_DATA")))
        voters = ",".join("%d@127.0.0.1:%d" % (b.node_id, b.controller_port)
                          for b in self._brokers)
        for b in self._brokers:
            with open(b.config, "w") as f:
                f.write(self._server_properties(b, voters))
        self._format_storage()
        t0 = time.monotonic()
        for b in self._brokers:
            self._launch(b)
        self._wait_ready(self._brokers, time.monotonic() + self.start_timeout)
        self.startup_seconds = time.monotonic() - t0

    def _jvm_cmd(self, main_class, args, heap):
        return ([self._java, "-Xmx" + heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                 "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1", "-XX:CICompilerCount=2",
                 "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true",
                 _log_config_flag(self.kafka_version, tools=False)]
                + self._jvm_opts + ["-cp", self._classpath, main_class] + list(args))

    def _format_storage(self):
        procs = []
        try:
            for b in self._brokers:
                cmd = self._jvm_cmd("kafka.tools.StorageTool",
                                    ["format", "-t", self.cluster_id, "-c", b.config], "256m")
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
                        raise _PortClash("broker %d could not bind port %d or %d"
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
        _cleanup(self._brokers, self.tmpdir, STOP_GRACE, keep)
        self._finalizer = None

    def terminate(self):
        """Stop every broker (SIGTERM to all at once, a short grace, then
        SIGKILL) and remove the cluster's data and logs.  Idempotent."""
        self._teardown(keep=bool(os.environ.get("PKC_KEEP_KAFKA_DATA")))

    def _broker(self, i):
        if not 0 <= i < len(self._brokers):
            raise IndexError("no broker %r in a cluster of %d" % (i, len(self._brokers)))
        return self._brokers[i]

    def is_running(self, i):
        return self._broker(i).running()

    def stop_broker(self, i):
        """Kill broker ``i`` with SIGKILL (a crash) and wait until it is gone."""
        b = self._broker(i)
        if b.proc is not None:
            if b.proc.poll() is None:
                b.proc.kill()
            b.proc.wait()
        with open(b.log_path, "ab") as log:
            log.write(("=== pykafka_c.test: broker %d killed (SIGKILL) at %s ===\n"
                       % (i, time.strftime("%Y-%m-%d %H:%M:%S"))).encode())

    def start_broker(self, i, timeout=None):
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

    def _running_brokers(self):
        running = [b for b in self._brokers if b.running()]
        if not running:
            raise HarnessError("no broker of the cluster is running")
        return running

    def _connect(self, b, timeout=30.0):
        return _wire.Connection("127.0.0.1", b.port, timeout=timeout)

    def metadata(self, i=None):
        """Cluster metadata (all topics) as seen by broker ``i`` (default: the
        first running one): a ``ClusterMetadata`` with ``brokers`` {node id:
        (host, port)}, ``controller_id`` and ``topics`` {name: TopicMetadata}."""
        b = self._broker(i) if i is not None else self._running_brokers()[0]
        with self._connect(b) as conn:
            return conn.metadata()

    def api_versions(self, i=0):
        """{api_key: (min, max)} advertised by broker ``i`` (ApiVersions v0)."""
        with self._connect(self._broker(i)) as conn:
            return conn.api_versions()

    def broker_version(self, i=0):
        """Kafka version broker ``i`` reported in its log ("Kafka version: X")."""
        m = re.findall(r"Kafka version: (\S+)", self.broker_logs(i))
        return m[-1] if m else None

    def _wait(self, what, check, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = check()
                if last is None:
                    return
            except (OSError, _wire.WireError, _wire.KafkaErrorCode) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise HarnessError("timed out after %.0f s waiting for %s: %s"
                                   % (timeout, what, last))
            time.sleep(0.2)

    def create_topic(self, name, num_partitions=1, replication_factor=1, configs=None,
                     timeout=60.0):
        """Create a topic and wait until every running broker's metadata shows
        a leader for each of its partitions."""
        with self._connect(self._running_brokers()[0]) as conn:
            conn.create_topic(name, num_partitions, replication_factor, configs,
                              timeout_ms=int(timeout * 1000))

        def check():
            for b in self._running_brokers():
                with self._connect(b, 10.0) as conn:
                    t = conn.metadata().topics.get(name)
                if t is None or t.error != 0:
                    return "broker %d: topic %s" % (b.index, "absent" if t is None
                                                     else "error %d" % t.error)
                if len(t.partitions) != num_partitions:
                    return "broker %d: %d of %d partitions" % (b.index, len(t.partitions),
                                                              num_partitions)
                bad = [p.id for p in t.partitions.values() if p.leader < 0]
                if bad:
                    return "broker %d: partitions %s have no leader" % (b.index, bad)
            return None

        self._wait("topic %r to have a leader for every partition" % name, check, timeout)

    def delete_topic(self, name, timeout=60.0):
        """Delete a topic and wait until no running broker lists it."""
        with self._connect(self._running_brokers()[0]) as conn:
            conn.delete_topics([name], timeout_ms=int(timeout * 1000))

        def check():
            for b in self._running_brokers():
                with self._connect(b, 10.0) as conn:
                    if name in conn.metadata().topics:
                        return "broker %d still lists it" % b.index
            return None

        self._wait("topic %r to disappear" % name, check, timeout)

    def list_topics(self, include_internal=False):
        md = self.metadata()
        return sorted(n for n, t in md.topics.items() if include_internal or not t.internal)

    def wait_in_sync(self, topics=None, timeout=60.0):
        """Wait until every partition of ``topics`` (default: all non-internal
        topics) has all its replicas in the ISR, as every running broker sees it."""

        def check():
            for b in self._running_brokers():
                with self._connect(b, 10.0) as conn:
                    md = conn.metadata()
                names = topics if topics is not None else [
                    n for n, t in md.topics.items() if not t.internal]
                for n in names:
                    t = md.topics.get(n)
                    if t is None:
                        return "broker %d does not list topic %r" % (b.index, n)
                    for p in t.partitions.values():
                        if p.leader < 0 or set(p.isr) != set(p.replicas):
                            return ("broker %d: %s[%d] leader %d replicas %s isr %s"
                                    % (b.index, n, p.id, p.leader, p.replicas, p.isr))
            return None

        self._wait("all replicas in sync", check, timeout)

    def produce_messages(self, topic_name, messages, timeout=120.0):
        """Write ``messages`` (str or bytes, one record each, no newlines) to a
        topic with Kafka's console producer (acks=all), like pykafka's helper."""
        lines = []
        for m in messages:
            m = m.decode("utf-8") if isinstance(m, bytes) else str(m)
            if "\n" in m:
                raise ValueError("console producer records cannot contain newlines")
            lines.append(m)
        run_kafka_tool("console-producer",
                       ["--bootstrap-server", self.brokers, "--topic", topic_name,
                        "--producer-property", "acks=all"],
                       kafka_version=self.kafka_version, input="\n".join(lines) + "\n",
                       timeout=timeout, download_dir=self.download_dir)

    # ---------------------------------------------------------------- logs

    def broker_log_path(self, i):
        return self._broker(i).log_path

    def broker_logs(self, i=None, tail=None):
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

    def log_tails(self, lines=50, which=None):
        """Last ``lines`` lines of the logs of the brokers in ``which`` (default
        all), each under a header: what a failing test should print."""
        idx = range(len(self._brokers)) if which is None else which
        return "\n".join(self._one_log(self._brokers[i], lines, header=True) for i in idx)


class _PortClash(HarnessError):
    pass


# ------------------------------------------------------------------- CLI

class _Stop(BaseException):
    pass


def _on_signal(signum, frame):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop(signum)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m pykafka_c.test.kafka_instance",
        description="Start a local Apache Kafka cluster (KRaft) for tests; run until "
                    "SIGINT/SIGTERM, then stop it and remove its data.")
    parser.add_argument("num_instances", type=int, nargs="?", default=1,
                        help="number of brokers (default 1)")
    parser.add_argument("--kafka-version", default=DEFAULT_KAFKA_VERSION,
                        help="Apache Kafka version (default %s; %s is the other tested one)"
                             % (DEFAULT_KAFKA_VERSION, KAFKA_39_VERSION))
    parser.add_argument("--download-dir", default=None,
                        help="cache folder for the Kafka jars (default $PKC_CACHE_DIR or "
                             "~/.cache/pykafka_c)")
    parser.add_argument("--export-hosts", metavar="FILE", default=None,
                        help="write BROKERS=host:port,... (and KAFKA_VERSION=...) to FILE")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    cluster = None
    try:
        t0 = time.monotonic()
        cluster = KafkaInstance(args.num_instances, kafka_version=args.kafka_version,
                                download_dir=args.download_dir)
        line = "BROKERS=%s" % cluster.brokers
        if args.export_hosts:
            tmp = args.export_hosts + ".tmp"
            with open(tmp, "w") as f:
                f.write("%s\nKAFKA_VERSION=%s\n" % (line, cluster.kafka_version))
            os.replace(tmp, args.export_hosts)
        print(line, flush=True)
        sys.stderr.write("Kafka %s: %d broker(s) ready in %.1f s; data in %s. "
                         "Ctrl-C or SIGTERM stops them.\n"
                         % (cluster.kafka_version, cluster.num_instances,
                            time.monotonic() - t0, cluster.tmpdir))
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


if __name__ == "__main__":
    sys.exit(main())
