"""The command line as documented: every option, output names, formats, and usage errors (one line,
exit 2). Replays use the committed captures; a few options need a live run."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import CAPTURES, Summary, run_dockit


def capture(name: str) -> Path:
    (log,) = sorted(CAPTURES.glob(f"{name}.strace.*.log"))
    return log


def copy_capture(name: str, folder: Path) -> Path:
    """A capture and its .ini in a scratch folder, so outputs written beside it stay out of the repo."""
    log = capture(name)
    shutil.copy(log, folder / log.name)
    shutil.copy(log.with_suffix(".ini"), folder / log.with_suffix(".ini").name)
    return folder / log.name


def test_help_lists_every_option() -> None:
    result = run_dockit("--help")
    assert result.returncode == 0
    for option in (
        "-h, --help",
        "-v, --verbose",
        "-w, --warning",
        "-s CLASS[:filters], --summary",
        "-D, --dockerfile",
        "-p PID, --pid",
        "-f {TXT,CSV,JSON}, --format",
        "-F {TXT,XML,JSON}, --summary-format",
        "--stream",
        "-i LOGFILE [LOGFILE ...], --input",
        "--pcap FILE",
        "--events FILE",
        "--case {process,session,connection}",
        "-l PREFIX, --log",
        "-t {strace,ltrace}, --tracer",
        "--decoder MODULE:CLASS",
        "--decode PORT=NAME",
        "--rows N",
        "--no-decode",
        "--each-call",
        "--version",
    ):
        assert option in result.stdout, option


def test_version() -> None:
    result = run_dockit("--version")
    assert result.returncode == 0 and result.stdout.startswith("dockit ")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-i", "x.log", "ls"],
        ["-p", "1", "ls"],
        ["-i", "x.log", "-p", "1"],
        ["-f", "XML", "-i", "x.log"],
        ["--decode", "notaport", "-i", "x.log"],
    ],
    ids=["nothing", "input-and-command", "pid-and-command", "input-and-pid", "bad-format", "bad-decode"],
)
def test_usage_errors(args: list[str]) -> None:
    result = run_dockit(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


def test_replay_writes_beside_the_log(tmp_path: Path) -> None:
    log = copy_capture("failing", tmp_path)
    stem = str(log)[: -len(".log")]
    result = run_dockit("-i", str(log))
    assert result.returncode == 0, result.stderr
    assert Path(stem + ".xml").exists() and Path(stem + ".txt").exists()
    assert f"wrote {stem}.xml" in result.stderr


def test_replay_with_prefix(tmp_path: Path) -> None:
    result = run_dockit("-i", str(capture("failing")), "-l", str(tmp_path / "p"))
    assert result.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt", "p.xml"]


def test_calls_file_csv_is_valid(tmp_path: Path) -> None:
    result = run_dockit("-i", str(capture("pipeline")), "-l", str(tmp_path / "c"), "-f", "CSV")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "c.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert rows and "pid" in rows[0]
    summary = Summary.load(tmp_path / "c.xml")
    assert {int(row["pid"]) for row in rows} <= set(summary.processes)


def test_calls_file_json_is_valid(tmp_path: Path) -> None:
    result = run_dockit("-i", str(capture("tcp_pair")), "-l", str(tmp_path / "j"), "-f", "json")
    assert result.returncode == 0, result.stderr
    records = json.loads((tmp_path / "j.json").read_text())
    assert isinstance(records, list) and records
    summary = Summary.load(tmp_path / "j.xml")
    assert {record["pid"] for record in records} <= set(summary.processes)


def test_txt_summary_says_what_the_xml_says(tmp_path: Path) -> None:
    log = capture("pipeline")
    assert run_dockit("-i", str(log), "-l", str(tmp_path / "x")).returncode == 0
    assert run_dockit("-i", str(log), "-l", str(tmp_path / "t"), "-F", "TXT").returncode == 0
    text = (tmp_path / "t.summary.txt").read_text()
    summary = Summary.load(tmp_path / "x.xml")
    for pid, process in summary.processes.items():
        assert f"Handle={pid}" in text
        assert f"ExecutablePath: {process.executable}" in text
    for path in summary.files:
        assert f"Name={path}" in text


def test_summary_filter_by_class(tmp_path: Path) -> None:
    result = run_dockit("-i", str(capture("tcp_pair")), "-l", str(tmp_path / "s"), "-s", "Dockit_Socket")
    assert result.returncode == 0, result.stderr
    root = etree.parse(str(tmp_path / "s.xml")).getroot()
    assert {child.tag for child in root} == {"Dockit_Socket", "Dockit_Statistics"}
    assert len(root.findall("Dockit_Socket")) == 3


def test_summary_filter_by_category(tmp_path: Path) -> None:
    result = run_dockit(
        "-i",
        str(capture("pipeline")),
        "-l",
        str(tmp_path / "s"),
        "-s",
        'CIM_DataFile:Category=["Shared libraries","Programs"]',
    )
    assert result.returncode == 0, result.stderr
    summary = Summary.load(tmp_path / "s.xml")
    assert not summary.processes
    assert set(summary.categories.values()) == {"Shared libraries", "Programs"}
    assert "/usr/bin/wc" in summary.files


def test_summary_filter_on_decoded_records(tmp_path: Path) -> None:
    """Decoders' records are filtered as they come (the spool keeps them rendered): `-s` on a record's
    attribute keeps only those, and the table counts still count every query."""
    result = run_dockit(
        "-i", str(capture("mysql_pymysql")), "-l", str(tmp_path / "q"), "-s", "Dockit_SqlQuery:Status=error"
    )
    assert result.returncode == 0, result.stderr
    root = etree.parse(str(tmp_path / "q.xml")).getroot()
    assert {child.tag for child in root} == {"Dockit_SqlQuery", "Dockit_Statistics"}
    (query,) = root.findall("Dockit_SqlQuery")
    assert query.findtext("Text") == "SELECT * FROM missing_table"
    assert query.get("ErrorCode") == "1146"
    result = run_dockit(
        "-i", str(capture("mysql_pymysql")), "-l", str(tmp_path / "t"), "-F", "TXT", "-s", "Dockit_SqlTable"
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "t.summary.txt").read_text()
    assert "Dockit_SqlQuery" not in text
    assert "Name=dockit_capture.customers  Reads=2  Writes=3" in text  # resolved in the login's database


def test_rows_option_keeps_the_first_rows_of_each_result_set(tmp_path: Path) -> None:
    """No row values by default (they may be personal data); `--rows N` keeps the first N, in order."""
    paris = "SELECT id, name, city FROM customers WHERE city = 'Paris' ORDER BY id"

    def rows_of(*extra: str) -> list[str]:
        prefix = tmp_path / f"rows{len(extra)}"
        result = run_dockit("-i", str(capture("mysql_pymysql")), "-l", str(prefix), *extra)
        assert result.returncode == 0, result.stderr
        root = etree.parse(f"{prefix}.xml").getroot()
        (query,) = [q for q in root.iter("Dockit_SqlQuery") if q.findtext("Text") == paris]
        assert query.get("Rows") == "2"
        return [row.text for row in query.iter("Row")]

    assert rows_of() == []
    assert rows_of("--rows", "1") == ["1\tAda\tParis"]
    assert rows_of("--rows", "10") == ["1\tAda\tParis", "2\tBruno\tParis"]
    result = run_dockit("-i", str(capture("mysql_pymysql")), "-l", str(tmp_path / "bad"), "--rows", "many")
    assert result.returncode == 2 and "--rows" in result.stderr and "Traceback" not in result.stderr


def test_summary_filter_is_never_evaluated(tmp_path: Path) -> None:
    """The original passed -s to exec(): here it is data, and code in it is an error."""
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    result = run_dockit("-i", str(capture("failing")), "-l", str(tmp_path / "e"), "-s", payload)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    payload = f"CIM_Process:Handle=[__import__('os').system('touch {marker}')]"
    result = run_dockit("-i", str(capture("failing")), "-l", str(tmp_path / "e"), "-s", payload)
    assert result.returncode == 2 and not marker.exists()


@pytest.mark.live
def test_verbose_prints_the_tracer_command(tmp_path: Path) -> None:
    result = run_dockit("-v", "-l", str(tmp_path / "v"), "true", cwd=tmp_path)
    assert result.returncode == 0
    line = next(line for line in result.stderr.splitlines() if line.startswith("dockit: strace "))
    for flag in ("-f", "-yy", "-T", "-o"):
        assert f" {flag} " in line
    assert "trace=" in line and "file" in line


@pytest.mark.live
def test_ltrace_live(tmp_path: Path) -> None:
    if shutil.which("ltrace") is None:
        pytest.skip("ltrace is not installed")
    result = run_dockit(
        "-t", "ltrace", "-l", str(tmp_path / "lt"), "sh", "-c", "exit 4", cwd=tmp_path, timeout=120
    )
    assert result.returncode == 4, result.stderr
    (log,) = tmp_path.glob("lt.ltrace.*.log")
    assert log.stat().st_size > 0
    summary = Summary.load(str(log)[: -len(".log")] + ".xml")
    roots = [p for p in summary.processes.values() if p.ppid is None]
    assert len(roots) == 1
    assert (roots[0].executable, roots[0].argv) == (shutil.which("sh"), ["sh", "-c", "exit 4"])
    # ltrace never shows the first execve: a replay knows the command from the .ini, as the live run did
    replay = run_dockit("-i", str(log), "-l", str(tmp_path / "replayed"))
    assert replay.returncode == 0, replay.stderr
    replayed = Summary.load(tmp_path / "replayed.xml")
    (root,) = [p for p in replayed.processes.values() if p.ppid is None]
    assert (root.executable, root.argv) == (roots[0].executable, roots[0].argv)


@pytest.mark.live
def test_live_output_names(tmp_path: Path) -> None:
    result = run_dockit(
        "-l", str(tmp_path / "names"), "-f", "JSON", sys.executable, "-c", "pass", cwd=tmp_path
    )
    assert result.returncode == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 4
    pid = names[0].split(".")[2]
    assert names == [f"names.strace.{pid}.{ext}" for ext in ("ini", "json", "log", "xml")]
    assert int(pid) in Summary.load(tmp_path / f"names.strace.{pid}.xml").processes


@pytest.mark.live
def test_ini_lines_are_not_injected_by_arguments(tmp_path: Path) -> None:
    script = "exit 0\nTopProcessId=1\nEnv.INJECTED=yes"
    result = run_dockit("-l", str(tmp_path / "inj"), "sh", "-c", script, cwd=tmp_path)
    assert result.returncode == 0
    (ini,) = tmp_path.glob("inj.strace.*.ini")
    keys = [line.partition("=")[0] for line in ini.read_text().splitlines() if not line.startswith(";")]
    assert "Env.INJECTED" not in keys
    assert keys.count("TopProcessId") == 1


@pytest.mark.live
def test_tracer_missing_names_the_package(tmp_path: Path) -> None:
    result = run_dockit("-l", str(tmp_path / "m"), "/bin/true", env={"PATH": str(tmp_path), "HOME": "/tmp"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "apt-get install strace" in result.stderr and result.stderr.strip().count("\n") == 0
    assert not list(tmp_path.iterdir())


@pytest.mark.live
def test_attach_refused_is_one_clear_line(tmp_path: Path) -> None:
    """A process already under a tracer cannot be attached to (even by root): ptrace says EPERM."""
    import contextlib
    import os
    import signal
    import subprocess
    import time

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    tracer = subprocess.Popen(["strace", "-o", "/dev/null", "sleep", "30"])
    pid = None
    try:
        for _ in range(100):
            children = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()
            if children:
                pid = int(children[0])
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except FileNotFoundError:  # a short-lived child of strace's, gone already
                    pid = None
                    time.sleep(0.05)
                    continue
                # traced, and past its execve: strace's own child before the exec is no `sleep` yet
                if "TracerPid:\t0\n" not in status and "Name:\tsleep\n" in status:
                    break
            time.sleep(0.05)
        assert pid is not None
        result = run_dockit("-p", str(pid), "-l", str(tmp_path / "refused"), timeout=60)
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the sleep, then its tracer
        tracer.kill()
        tracer.wait()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.count("\n") == 0 and str(pid) in line and "not permitted" in line
    assert f"already traced by process {tracer.pid}" in line
    assert not list(tmp_path.iterdir())


def test_the_command_line_loads_no_pipeline_module_before_the_tracer_starts() -> None:
    """A live run starts the tracer first and loads the parser, tracker, decoders and summary while the
    program already runs: importing the command line must not pull them in."""
    import subprocess

    code = (
        "import sys, dockit_core.cli; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('dockit_core', 'decoders', 'protocols')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert "dockit_core.cli" in loaded
    heavy = {
        "dockit_core.cli.session",
        "dockit_core.model.tracker",
        "dockit_core.ingest.strace_parser",
        "dockit_core.outputs.summary.objects",
        "decoders.registry",
        "decoders.api",
    }
    assert not heavy & set(loaded), loaded


def test_a_program_that_writes_before_dockit_has_loaded_loses_no_line(tmp_path: Path) -> None:
    """The tracer writes into the FIFO while dockit loads: the first calls (the execve) are still there."""
    result = run_dockit("-l", str(tmp_path / "early"), "sh", "-c", "exit 4", cwd=tmp_path)
    assert result.returncode == 4, result.stderr
    log = next(tmp_path.glob("early.strace.*.log")).read_text()
    assert log.splitlines()[0].split(None, 2)[2].startswith("execve(")
    summary = Summary.load(next(tmp_path.glob("early.strace.*.xml")))
    (shell,) = [p for p in summary.processes.values() if p.argv == ["sh", "-c", "exit 4"]]
    assert shell.exit_status == 4
