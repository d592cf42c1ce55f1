"""examples/usage_guide.ipynb runs green in a real Jupyter kernel.

The notebook walks through pykafka's usage guide on pykafka_c.  This test
executes it cell by cell with nbclient in an ipykernel (the kernel imports
this checkout's pykafka_c), the notebook starting its own broker with the
harness (no BROKERS in the kernel's environment) so that its
connection-loss section stops and restarts a real broker.  Then it checks
the HTML tables the cells displayed, and, before the notebook's cleanup
cell, interrupts a blocking ``consume()`` in the kernel: the
KeyboardInterrupt must arrive within a second and the kernel must go on
working.

nbformat, nbclient and ipykernel come with ``pip install -e '.[test]'``;
when one is missing the test fails and says so.
"""

import ast
import asyncio
import os
import signal
import threading
import time

import pytest

from htmltables import column, rows, tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "usage_guide.ipynb")
#: Seconds a cell may take (the first starts a Kafka broker, the
#: connection-loss one restarts it).
CELL_TIMEOUT = 300
#: How soon a blocking consume() must give way to Ctrl-C in the kernel.
INTERRUPT_WITHIN_S = 1.0
#: How long the interrupted cell may take in all (then the test fails
#: rather than wait CELL_TIMEOUT for an interrupt that did not work).
INTERRUPT_CELL_TIMEOUT = 60


def _imports():
    try:
        import ipykernel  # noqa: F401
        import nbclient
        import nbformat
    except ImportError as exc:
        pytest.fail("%s: install the test dependencies with pip install -e "
                    "'.[test]'" % exc, pytrace=False)
    return nbformat, nbclient


def _tag(cell):
    tags = cell.get("metadata", {}).get("tags", [])
    return tags[0] if tags else None


def _outputs(cell, mime):
    """The ``mime`` data of every display of a cell, in order."""
    return [out["data"][mime] for out in cell.outputs
            if out.get("output_type") in ("display_data", "execute_result")
            and mime in out.get("data", {})]


def _text(cell):
    return "".join(out.get("text", "") for out in cell.outputs
                   if out.get("output_type") == "stream")


class _Kernel:
    """Runs code in the notebook's kernel, outside the notebook."""

    def __init__(self, nbformat, client):
        self.nbformat = nbformat
        self.client = client

    def cell(self, source):
        return self.nbformat.v4.new_code_cell(source)

    def execute(self, cell, allow_errors=False):
        # nbclient stores the executed cell back at its index
        self.client.nb.cells.append(cell)
        try:
            self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        except Exception:
            if not allow_errors:
                raise
        return cell

    def run(self, source, allow_errors=False):
        return self.execute(self.cell(source), allow_errors)


def _kill_brokers(pids):
    """Last resort: brokers the kernel started and did not stop."""
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"kafka" not in f.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


def test_usage_guide_notebook(tmp_path, monkeypatch):
    nbformat, nbclient = _imports()
    # the kernel imports this checkout and starts its own broker
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep
                       + os.environ.get("PYTHONPATH", ""))
    for name in list(os.environ):
        if name == "BROKERS" or name.startswith("BROKERS_"):
            monkeypatch.delenv(name)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}})
    cells = {}
    broker_pids = []
    with client.setup_kernel():
        kernel = _Kernel(nbformat, client)
        try:
            cleanup = None
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if _tag(cell) == "cleanup":
                    cleanup = (index, cell)
                    continue
                client.execute_cell(cell, index)
                cells[_tag(cell)] = cell
                if _tag(cell) in ("client", "connection-loss"):
                    # (the connection-loss cell restarts the broker: a new pid)
                    pids = kernel.run("print([b.proc.pid for b in kafka._brokers"
                                      " if b.proc is not None])")
                    broker_pids += ast.literal_eval(_text(pids))
            _check_tables(cells)
            _check_interrupt(kernel, client)
            assert cleanup is not None, "the notebook has no cleanup cell"
            client.execute_cell(cleanup[1], cleanup[0])
            assert "False" in _text(kernel.run(
                "print(any(b.running() for b in kafka._brokers))"))
        finally:
            _kill_brokers(broker_pids)


def _check_tables(cells):
    every_html = [h for c in cells.values() for h in _outputs(c, "text/html")]
    assert every_html, "no cell displayed a table"
    for text in every_html:
        assert "table failed" not in text, text

    # the client: one broker, connected, with Kafka 4's versions; the topics
    (text,) = _outputs(cells["client"], "text/html")
    assert "<b>KafkaClient</b>" in text and "Not shown" not in text
    (broker,) = rows(tables(text)[0])
    assert broker[1].startswith("127.0.0.1:") and broker[2] == "yes"
    assert "Fetch v12" in broker[4] and "Metadata v" in broker[4]

    # the topic, empty, then with 20 messages over its two partitions
    (text,) = _outputs(cells["topic-empty"], "text/html")
    assert rows(tables(text)[0]) == [
        ["0", broker[0], broker[0], broker[0], "0", "0", "0"],
        ["1", broker[0], broker[0], broker[0], "0", "0", "0"]]
    (text,) = _outputs(cells["topic-full"], "text/html")
    assert sum(map(int, column(tables(text)[0], 5))) == 20
    assert sum(map(int, column(tables(text)[0], 6))) == 20

    # the producer of one topic: 20 produced, all delivered
    (text,) = _outputs(cells["producer"], "text/html")
    assert rows(tables(text)[0])[0][:5] == ["20", "0", "0", "20", "0"]
    assert "idempotent <b>yes" in text

    # LATEST: nothing before producing, then the new message; no lag
    assert "before producing: None" in _text(cells["latest"])
    (message,) = _outputs(cells["latest"], "text/plain")
    assert message.startswith("<pykafka_c.protocol.Message topic=b'orders-")
    assert "value=b'new'" in message
    (text,) = _outputs(cells["consumer-latest"], "text/html")
    table = tables(text)[0]
    assert column(table, 6) == ["0", "0"] and "lag <b>0</b>" in text
    assert sum(map(int, column(table, 5))) == 21

    # committed offsets: nothing left; EARLIEST on start: 5 read of 21
    assert "after the committed offsets: None" in _text(
        cells["consumer-earliest"])
    (text,) = _outputs(cells["consumer-earliest"], "text/html")
    assert sum(map(int, column(tables(text)[0], 6))) == 16
    assert "lag <b>16</b>" in text
    (message,) = _outputs(cells["message"], "text/plain")
    assert "timestamp=20" in message and "headers=0>" in message

    # connection loss: caught, broker restarted, both remedies work
    out = _text(cells["connection-loss"])
    assert "caught NoBrokersAvailableError" in out or \
        "caught SocketDisconnectedError" in out, out
    assert "consumer_3 starts again at offset 0" in out, out
    (text,) = _outputs(cells["connection-loss"], "text/html")
    assert "running <b>yes</b>" in text and "Not shown" not in text

    # headers, zstd, idempotence
    # (the producer's display, then the cell's value: the headers)
    headers = _outputs(cells["additions"], "text/plain")[-1]
    assert headers == "[('trace-id', b'abc123'), ('source', b'notebook')]"
    (text,) = _outputs(cells["additions"], "text/html")
    assert "compression <b>zstd</b>" in text
    # (with its producer id once the brokers gave one: batches that go
    # before it comes go without, so the id may not be there yet)
    assert "idempotent <b>yes" in text


def _check_interrupt(kernel, client):
    """A blocking consume() in the kernel gives way to Ctrl-C (the
    kernel's interrupt: SIGINT to its process group) within a second, and
    the kernel goes on working."""
    # (reset_offset_on_start: a consumer with no group otherwise starts at
    # offset 0, whatever auto_offset_reset says, as in pykafka)
    kernel.run("blocked = orders.get_simple_consumer("
               "auto_offset_reset=OffsetType.LATEST, reset_offset_on_start=True)")
    cell = kernel.cell("print('consuming', flush=True)\nblocked.consume()")
    sent = []

    def interrupt_once_consuming():
        deadline = time.monotonic() + 60
        while "consuming" not in _text(cell) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)         # well inside consume()'s C wait by now
        sent.append(time.monotonic())
        # Jupyter's interrupt (nbclient's kernel manager is the asyncio
        # one: its own event loop in this thread)
        asyncio.run(client.km.interrupt_kernel())

    interrupter = threading.Thread(target=interrupt_once_consuming,
                                   daemon=True)
    interrupter.start()
    client.timeout = INTERRUPT_CELL_TIMEOUT
    try:
        kernel.execute(cell, allow_errors=True)   # returns when interrupted
    finally:
        client.timeout = CELL_TIMEOUT
    done = time.monotonic()
    interrupter.join(5)
    assert "consuming" in _text(cell), cell.outputs
    errors = [o for o in cell.outputs if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["KeyboardInterrupt"], cell.outputs
    assert done - sent[0] < INTERRUPT_WITHIN_S, done - sent[0]

    # the kernel, and pykafka_c in it, still work
    out = _text(kernel.run(
        "blocked.stop()\n"
        "again = orders.get_simple_consumer("
        "auto_offset_reset=OffsetType.EARLIEST, consumer_timeout_ms=5000)\n"
        "print('usable', again.consume().offset, 6 * 7)\n"
        "again.stop()"))
    assert out.startswith("usable ") and out.strip().endswith(" 42"), out
