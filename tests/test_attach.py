"""`dockit -p PID` on a real running process: two threads, a file rewritten and a TCP exchange every
50 ms. dockit attaches, is told to stop (SIGINT as Ctrl-C would, or SIGTERM), detaches, and the
process goes on; the outputs show what it did while traced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Summary, run_dockit

pytestmark = pytest.mark.live

TARGET = r"""
import socket, threading, time
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
def serve():
    connection, _ = server.accept()
    while True:
        data = connection.recv(100)
        if not data:
            break
        connection.sendall(data.upper())
threading.Thread(target=serve, name="server", daemon=True).start()
client = socket.create_connection(("127.0.0.1", port))
open("port", "w").write(str(port))
n = 0
while True:
    n += 1
    with open("tick.txt", "w") as out:
        out.write(str(n))
    client.sendall(b"tick")
    assert client.recv(100) == b"TICK"
    time.sleep(0.05)
"""


def wait_for(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def ticks(folder: Path) -> int:
    for _ in range(50):
        text = (folder / "tick.txt").read_text()
        if text:
            return int(text)
        time.sleep(0.01)  # caught between truncate and write
    raise AssertionError("tick.txt stays empty")


@pytest.fixture
def target(tmp_path: Path):  # type: ignore[no-untyped-def]
    process = subprocess.Popen([sys.executable, "-c", TARGET], cwd=tmp_path)
    try:
        wait_for(tmp_path / "port")
        yield process
    finally:
        process.kill()
        process.wait()


def attach_and_stop(folder: Path, pid: int, stop: int, seconds: float = 1.5) -> tuple[int, bytes]:
    """`dockit -p PID` in its own session (a signal to it reaches nobody else), stopped after `seconds`."""
    dockit = subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", "-p", str(pid), "-l", str(folder / "att")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        time.sleep(seconds)
        dockit.send_signal(stop)
        _out, err = dockit.communicate(timeout=30)
    finally:
        if dockit.poll() is None:
            dockit.kill()
    return dockit.returncode, err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_attach_then_detach(tmp_path: Path, target: subprocess.Popen, strace_bin: str, stop: int) -> None:
    pid = target.pid
    port = (tmp_path / "port").read_text()
    status, err = attach_and_stop(tmp_path, pid, stop)
    assert status == 0, err
    assert b"Traceback" not in err

    # The process goes on, untraced.
    assert target.poll() is None
    before = ticks(tmp_path)
    time.sleep(0.3)
    assert ticks(tmp_path) > before
    assert "TracerPid:\t0\n" in Path(f"/proc/{pid}/status").read_text()

    prefix = tmp_path / f"att.strace.{pid}"
    for extension in ("log", "ini", "txt", "xml"):
        assert Path(f"{prefix}.{extension}").stat().st_size > 0, extension
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial") or "pending" in p.name]

    summary = Summary.load(f"{prefix}.xml")
    assert pid in summary.processes
    tick = summary.access(str(tmp_path / "tick.txt"), pid)
    assert int(tick["Writes"]) >= 5  # one each 50 ms while traced
    client = [s for s in summary.sockets if s.get("Remote") == f"127.0.0.1:{port}"]
    server = [s for s in summary.sockets if s.get("Local") == f"127.0.0.1:{port}" and s.get("Remote")]
    assert len(client) == 1 and len(server) == 1, "endpoints known from -yy though connect was never seen"
    assert client[0]["Local"] == server[0]["Remote"]
    sent = int(client[0]["BytesOut"])
    assert sent >= 5 * 4 and sent % 4 == 0
    assert abs(int(server[0]["BytesIn"]) - sent) <= 4  # the trace may stop between send and recv
    calls = Path(f"{prefix}.txt").read_text(errors="replace")
    assert "sendto" in calls and "tick.txt" in calls


def test_attach_knows_the_threads_and_the_program(
    tmp_path: Path, target: subprocess.Popen, strace_bin: str
) -> None:
    pid = target.pid
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    assert len(tids) == 2
    status, err = attach_and_stop(tmp_path, pid, signal.SIGINT)
    assert status == 0, err
    summary = Summary.load(tmp_path / f"att.strace.{pid}.xml")
    assert set(summary.processes) == {pid}, "the server thread is a thread of pid, not a process"
    process = summary.processes[pid]
    assert sorted([pid, *process.threads]) == tids
    assert process.attrs.get("AttachedMidRun") == "true"
    assert process.executable == os.path.realpath(f"/proc/{pid}/exe")
    assert process.argv[1] == "-c"
    referenced = {s["Process"] for s in summary.sockets}
    assert referenced == {str(pid)}
    assert not summary.dangling_references()


def test_replaying_an_attach_log_gives_the_live_summary(
    tmp_path: Path, target: subprocess.Popen, strace_bin: str
) -> None:
    """No clone or execve in an attach log says what the process and its threads are: the .ini keeps
    what the live run read from /proc, and a replay of the log says what the live run said."""
    pid = target.pid
    status, err = attach_and_stop(tmp_path, pid, signal.SIGINT)
    assert status == 0, err
    live = (tmp_path / f"att.strace.{pid}.xml").read_text()
    result = run_dockit("-i", str(tmp_path / f"att.strace.{pid}.log"), "-l", str(tmp_path / "replayed"))
    assert result.returncode == 0, result.stderr
    replayed = (tmp_path / "replayed.xml").read_text()
    summary = Summary.load(tmp_path / "replayed.xml")
    assert set(summary.processes) == {pid}, "threads stay threads"
    assert summary.processes[pid].executable == os.path.realpath(f"/proc/{pid}/exe")

    def body(xml: str) -> list[str]:  # all but the statistics, which count the replay's own lines
        return [line for line in xml.splitlines() if "Dockit_Statistics" not in line]

    assert body(replayed) == body(live)


def test_attach_to_a_missing_pid(tmp_path: Path, strace_bin: str) -> None:
    pid = 4_000_000  # above pid_max's usual 4194304? use one that surely is not running
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    result = run_dockit("-p", str(pid), "-l", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(pid) in result.stderr and result.stderr.strip().count("\n") == 0
    assert not list(tmp_path.iterdir())
