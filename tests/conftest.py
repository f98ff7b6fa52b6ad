"""Shared fixtures for the core's tests: run dockit as a user does (a subprocess), read its summary XML.

Every test here goes through `python -m dockit_core.cli`, so what is proven is the command a user runs,
not an internal function. `Summary` turns the XML into plain dicts so assertions read like the facts in
captures/FACTS.md.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
SURVOL = REPO.parent / "shared/captures/survol"


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server answers on host:port (the tests that need one skip if not)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def mariadb_listening() -> bool:
    """Whether a MariaDB/MySQL server answers on 127.0.0.1:3306."""
    return listening(3306)


def load_capture_module(name: str) -> ModuleType:
    """captures/ is no package: its scripts (the recorders, the clients) are loaded from their files."""
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(CAPTURES))  # record_brokers imports record
    try:
        spec = importlib.util.spec_from_file_location(name, CAPTURES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(CAPTURES))
    return module


# HTTP tests trace curl against servers they start themselves.
needs_strace_and_curl = pytest.mark.skipif(
    shutil.which("strace") is None or shutil.which("curl") is None, reason="needs strace and curl installed"
)


def run_dockit(
    *args: str,
    cwd: str | Path | None = None,
    timeout: float = 120,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`dockit ARGS...` in a subprocess; stdout and stderr as text (undecodable bytes replaced)."""
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


@dataclass
class Process:
    pid: int
    ppid: int | None
    executable: str | None
    argv: list[str]
    exit_status: int | None
    signal: str | None
    threads: list[int]
    cwd: str | None
    attrs: dict[str, str]


@dataclass
class Summary:
    """The summary XML as dicts: processes by pid, files by path, sockets, pipes, statistics."""

    root: etree._Element
    processes: dict[int, Process] = field(default_factory=dict)
    files: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    sockets: list[dict[str, str]] = field(default_factory=list)
    pipes: list[dict[str, str]] = field(default_factory=list)
    statistics: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def load(path: str | Path) -> Summary:
        root = etree.parse(str(path)).getroot()
        assert root.tag == "Dockit"
        summary = Summary(root)
        for element in root.iter("CIM_Process"):

            def text(tag: str, element: etree._Element = element) -> str | None:
                child = element.find(tag)
                return child.text if child is not None else None

            ppid, status = text("ParentProcessId"), text("ExitStatus")
            pid = int(element.get("Handle"))
            summary.processes[pid] = Process(
                pid=pid,
                ppid=int(ppid) if ppid is not None else None,
                executable=text("ExecutablePath"),
                argv=[arg.text or "" for arg in element.iter("Argument")],
                exit_status=int(status) if status is not None else None,
                signal=text("TerminatingSignal"),
                threads=[int(t.get("Handle")) for t in element.iter("Thread")],
                cwd=text("CurrentDirectory"),
                attrs=dict(element.attrib),
            )
        for element in root.iter("CIM_DataFile"):
            name = element.get("Name")
            summary.files[name] = [dict(access.attrib) for access in element.iter("Access")]
            summary.categories[name] = element.get("Category")
        summary.sockets = [dict(e.attrib) for e in root.iter("Dockit_Socket")]
        summary.pipes = [dict(e.attrib) for e in root.iter("Dockit_Pipe")]
        statistics = root.find("Dockit_Statistics")
        summary.statistics = dict(statistics.attrib) if statistics is not None else {}
        return summary

    # -- questions the tests ask -------------------------------------------------------------------
    def by_executable(self, executable: str) -> list[Process]:
        return [p for p in self.processes.values() if p.executable == executable]

    def access(self, path: str, pid: int | None = None) -> dict[str, str]:
        """The access of `pid` to `path` (or the only access when pid is None)."""
        accesses = self.files.get(path)
        assert accesses, f"{path} not in the summary"
        if pid is None:
            assert len(accesses) == 1, accesses
            return accesses[0]
        found = [a for a in accesses if a["Process"] == str(pid)]
        assert found, f"no access of {pid} to {path}: {accesses}"
        return found[0]

    def dangling_references(self) -> set[tuple[str, str]]:
        """Pids named by a file access, socket, pipe or parent link that are no CIM_Process here."""
        pids = {str(pid) for pid in self.processes}
        named = [("access", a["Process"]) for accesses in self.files.values() for a in accesses]
        named += [("socket", pid) for s in self.sockets for pid in (s.get("Process") or "").split()]
        named += [
            (f"pipe {key}", pid)
            for p in self.pipes
            for key in ("Writers", "Readers", "Processes", "CreatedBy")
            for pid in (p.get(key) or "").split()
        ]
        named += [("parent", str(p.ppid)) for p in self.processes.values() if p.ppid is not None]
        return {(what, pid) for what, pid in named if pid not in pids}

    def sockets_with(self, **attributes: str) -> list[dict[str, str]]:
        return [s for s in self.sockets if all(s.get(k) == v for k, v in attributes.items())]


def replay(log: str | Path, out_dir: Path, *extra: str) -> tuple[Summary, subprocess.CompletedProcess[str]]:
    """Replay `log` into out_dir; it must succeed without a traceback."""
    prefix = out_dir / Path(str(log)).name.removesuffix(".gz").removesuffix(".log")
    result = run_dockit("-i", str(log), "-l", str(prefix), *extra)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    return Summary.load(f"{prefix}.xml"), result


@pytest.fixture
def survol() -> Path:
    """The original tool's captures, read in place (never copied into the repository)."""
    if not SURVOL.is_dir():
        pytest.skip(f"{SURVOL} is absent: the survol captures are not on this machine")
    return SURVOL


@pytest.fixture
def strace_bin() -> str:
    path = shutil.which("strace")
    if path is None:
        pytest.skip("strace is not installed")
    return path
