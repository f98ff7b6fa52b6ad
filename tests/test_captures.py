"""The project's own captures (recorded here by captures/record.py) replay to the facts of
captures/FACTS.md. The facts were read from the logs with grep; pids are found by role, so a new
recording of the same programs passes the same tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CAPTURES, Summary, replay

WORK = "/tmp/dockit-captures"
NAMES = ["pipeline", "forkexec", "pyconfig", "tcp_pair", "killed", "failing"]


def capture_log(name: str, folder: Path = CAPTURES) -> Path:
    logs = sorted(folder.glob(f"{name}.strace.*.log"))
    assert len(logs) == 1, f"expected one committed log for {name}, found {logs}"
    return logs[0]


def root_pid(log: Path) -> int:
    match = re.search(r"\.strace\.(\d+)\.log$", log.name)
    assert match
    return int(match.group(1))


def ini_values(log: Path) -> dict[str, str]:
    values = {}
    for line in log.with_suffix(".ini").read_text().splitlines():
        key, equal, value = line.partition("=")
        if equal and not line.startswith(";"):
            values[key] = value
    return values


@pytest.fixture(scope="module", params=["committed", "recorded-now"])
def summaries(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Summary, int, dict[str, str]]]:
    """The committed captures, and the same programs recorded again now by captures/record.py (the
    live path on this machine): both must yield the facts."""
    out = tmp_path_factory.mktemp("captures")
    folder = CAPTURES
    if request.param == "recorded-now":
        if shutil.which("strace") is None or shutil.which("gcc") is None:
            pytest.skip("recording needs strace and gcc")
        if not Path("/usr/bin/python3.11").exists():
            pytest.skip("the facts name /usr/bin/python3.11 (Debian 12's), absent here")
        folder = out / "recorded"
        result = subprocess.run(
            [sys.executable, str(CAPTURES / "record.py"), "--out", str(folder)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr + result.stdout
    found = {}
    for name in NAMES:
        log = capture_log(name, folder)
        summary, _result = replay(log, out)
        found[name] = (summary, root_pid(log), ini_values(log))
    return found


def only(processes: list, what: str):  # type: ignore[no-untyped-def]
    assert len(processes) == 1, f"expected one {what}, found {processes}"
    return processes[0]


@pytest.mark.parametrize("name", NAMES)
def test_every_capture_replays_cleanly(summaries, name: str) -> None:
    summary, root, ini = summaries[name]
    assert summary.statistics["UnparsedLines"] == "0"
    assert summary.statistics["ResumedWithoutStart"] == "0"
    assert int(ini["TopProcessId"]) == root
    assert root in summary.processes
    assert summary.processes[root].ppid is None
    assert summary.processes[root].cwd == f"{WORK}/{name}"
    assert not summary.dangling_references(), "every pid the summary names is a CIM_Process of it"


@pytest.mark.parametrize("name", NAMES)
def test_capture_is_small(name: str) -> None:
    assert capture_log(name).stat().st_size < 300_000


def test_pipeline(summaries, request: pytest.FixtureRequest) -> None:
    summary, root, ini = summaries["pipeline"]
    assert ini["ExitStatus"] == "0"
    assert len(summary.processes) == 3
    sh = summary.processes[root]
    assert sh.executable == "/usr/bin/sh"
    assert sh.argv == ["sh", "-c", "ls / | wc -l > out.txt"]
    ls = only(summary.by_executable("/usr/bin/ls"), "ls")
    wc = only(summary.by_executable("/usr/bin/wc"), "wc")
    assert (ls.argv, wc.argv) == (["ls", "/"], ["wc", "-l"])
    for process in (sh, ls, wc):
        assert process.exit_status == 0 and process.signal is None
    assert ls.ppid == root and wc.ppid == root
    pipe = only(summary.pipes, "pipe")
    assert pipe["Writers"] == str(ls.pid)
    assert pipe["Readers"] == str(wc.pid)
    assert pipe["CreatedBy"] == str(root)
    listing, lines = 151, 25  # `ls /` on the machine that recorded the committed capture
    if request.node.callspec.params["summaries"] == "recorded-now":
        output = subprocess.run(["ls", "/"], capture_output=True, check=True).stdout
        listing, lines = len(output), output.count(b"\n")
    assert pipe["Bytes"] == str(listing), "what ls wrote into the pipe; each byte counts once"
    out = summary.access(f"{WORK}/pipeline/out.txt", wc.pid)
    assert out.get("Created") == "true"
    assert out["WrittenBytes"] == str(len(f"{lines}\n")) and out["Writes"] == "1"


def test_forkexec(summaries) -> None:
    summary, root, ini = summaries["forkexec"]
    assert ini["ExitStatus"] == "0"
    assert len(summary.processes) == 2, "threads are not processes"
    main = summary.processes[root]
    assert main.executable == f"{WORK}/forkexec/forkexec"
    assert main.argv == ["./forkexec"]
    assert main.exit_status == 0
    assert len(main.threads) == 2
    assert not set(main.threads) & set(summary.processes)
    echo = only(summary.by_executable("/usr/bin/echo"), "echo")
    assert echo.ppid == root
    assert echo.argv == ["echo", "hello from", "the child"]
    assert echo.exit_status == 0
    for name in ("thread-1.txt", "thread-2.txt"):
        accesses = summary.files[f"{WORK}/forkexec/{name}"]
        access = only(accesses, f"access to {name}")
        assert access["Process"] == str(root), "a thread's accesses belong to its process"
        assert access["Created"] == "true" and access["WrittenBytes"] == "20"
    referenced = {a["Process"] for accesses in summary.files.values() for a in accesses}
    assert referenced <= {str(pid) for pid in summary.processes}, "every Process= names a CIM_Process"
    assert summary.access(f"{WORK}/forkexec/stdout.txt", echo.pid)["WrittenBytes"] == "21"


def test_pyconfig(summaries) -> None:
    summary, root, ini = summaries["pyconfig"]
    assert ini["ExitStatus"] == "0"
    assert list(summary.processes) == [root]
    python = summary.processes[root]
    assert python.executable == "/usr/bin/python3.11" and python.exit_status == 0
    app = summary.access(f"{WORK}/pyconfig/app.ini", root)
    assert app["Created"] == "true" and app["Deleted"] == "true"
    assert app["WrittenBytes"] == "38" and app["ReadBytes"] == "38" and app["Opens"] == "2"
    tmp = summary.access(f"{WORK}/pyconfig/settings.json.tmp", root)
    assert tmp["Created"] == "true" and tmp["WrittenBytes"] == "14"
    assert tmp["RenamedTo"] == f"{WORK}/pyconfig/settings.json"
    assert summary.access(f"{WORK}/pyconfig/settings.json", root)["RenamedFrom"] == tmp["RenamedTo"] + ".tmp"
    compiled = "/usr/lib/python3.11/__pycache__/configparser.cpython-311.pyc"
    assert int(summary.access(compiled, root)["ReadBytes"]) > 0
    assert summary.categories[compiled] == "Language modules"
    assert "/usr/lib/python3.11/configparser.py" in summary.files
    assert summary.access(f"{WORK}/pyconfig/stdout.txt", root)["WrittenBytes"] == "10"


def test_tcp_pair(summaries) -> None:
    summary, root, ini = summaries["tcp_pair"]
    assert ini["ExitStatus"] == "0"
    assert len(summary.processes) == 2
    (child,) = [p for p in summary.processes.values() if p.pid != root]
    assert child.ppid == root
    assert child.executable == summary.processes[root].executable == "/usr/bin/python3.11"
    assert child.exit_status == 0 and summary.processes[root].exit_status == 0
    assert len(summary.sockets) == 3
    assert all(s["Family"] == "tcp" for s in summary.sockets)
    listening = only(summary.sockets_with(Listening="true"), "listening socket")
    assert listening["Local"] == "127.0.0.1:47613" and listening["Process"] == str(root)
    client = only(summary.sockets_with(Remote="127.0.0.1:47613"), "client socket")
    assert client["Process"] == str(child.pid)
    assert (client["BytesOut"], client["BytesIn"]) == ("16", "9")
    accepted = only(summary.sockets_with(Accepted="true"), "accepted socket")
    assert accepted["Process"] == str(root)
    assert accepted["Local"] == "127.0.0.1:47613"
    assert accepted["Remote"] == client["Local"]
    assert (accepted["BytesIn"], accepted["BytesOut"]) == ("16", "9")


def test_killed(summaries) -> None:
    summary, root, ini = summaries["killed"]
    assert ini["ExitStatus"] == str(128 + 9)
    assert list(summary.processes) == [root]
    sh = summary.processes[root]
    assert sh.signal == "SIGKILL" and sh.exit_status is None
    before = summary.access(f"{WORK}/killed/before.txt", root)
    assert before["Created"] == "true" and before["WrittenBytes"] == "7"


def test_failing(summaries) -> None:
    summary, root, ini = summaries["failing"]
    assert ini["ExitStatus"] == "3"
    assert summary.processes[root].exit_status == 3
    cat = only(summary.by_executable("/usr/bin/cat"), "cat")
    assert cat.ppid == root and cat.argv == ["cat", "no-such-file"]
    assert cat.exit_status == 1
    assert not [path for path in summary.files if path.endswith("no-such-file")]
    stderr = summary.access(f"{WORK}/failing/stderr.txt", cat.pid)
    assert (stderr["Writes"], stderr["WrittenBytes"]) == ("4", "45")
