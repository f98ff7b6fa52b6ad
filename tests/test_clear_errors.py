"""What goes wrong outside the trace says so in one line, leaves nothing half-written, and never passes
in silence (issue 17, "Clear errors, nothing half-written").

Read-only folders and full disks are real: a tmpfs mounted in a mount namespace of the test's own
(`unshare -m`), read-only or a few kilobytes large, which vanishes with the command it ran."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.growth import write_case
from tests.conftest import CAPTURES, REPO, Summary, run_dockit

START = '4242 1700000000.000001 execve("/usr/bin/cat", ["cat"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
EXIT = "4242 1700000000.000009 +++ exited with 0 +++\n"

needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and unshare for a private tmpfs"
)


def one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".partial")]


def dockit_on_tmpfs(
    mount: Path, options: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`dockit ARGS` in a mount namespace where `mount` is a fresh tmpfs mounted with `options`."""
    mount.mkdir(exist_ok=True)
    script = 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"'
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", options, str(mount),
               sys.executable, "-m", "dockit_core.cli", *args]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    return result


def a_capture(tmp_path: Path) -> Path:
    (log,) = sorted(CAPTURES.glob("pipeline.strace.*.log"))
    copy = tmp_path / log.name
    shutil.copy(log, copy)
    return copy


@needs_unshare
def test_read_only_output_folder_is_one_line(tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    result = dockit_on_tmpfs(mount, "ro,size=1m", "-i", str(a_capture(tmp_path)), "-l", str(mount / "out"))
    assert result.returncode == 2
    one_line(result, "cannot write", str(mount / "out"), "Read-only file system")


def test_output_under_proc_is_one_line(tmp_path: Path) -> None:
    result = run_dockit("-i", str(a_capture(tmp_path)), "-l", "/proc/dockit-test/out")
    assert result.returncode == 2
    one_line(result, "cannot write", "/proc/dockit-test/out")


@needs_unshare
def test_full_disk_during_a_replay_is_an_output_error(tmp_path: Path) -> None:
    """The calls file fills the disk while the log is read: "cannot write" the output, not "cannot
    read" the input, and no temporary left behind."""
    log = write_case("files", 3000, tmp_path / "walk.log")
    mount = tmp_path / "small"
    script = 'mount -t tmpfs -o size=48k tmpfs "$1" && "$2" -m dockit_core.cli -i "$3" -l "$1/out" -f JSON --each-call; ' \
             'status=$?; ls -a "$1"; exit $status'  # fmt: skip
    mount.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(mount), sys.executable, str(log)],
                            capture_output=True, text=True, timeout=120, env=env, check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    line = one_line(result, "cannot write", str(mount / "out"), "No space left on device")
    assert "cannot read" not in line
    assert ".partial" not in result.stdout, result.stdout  # what the tmpfs held when dockit had ended


@needs_unshare
def test_full_disk_in_a_live_run_lets_the_program_finish(tmp_path: Path) -> None:
    """The log fills the disk while the program runs: dockit says so in one line, and the program still
    runs to its end as it would have (it writes its own file, outside that disk, last)."""
    mount = tmp_path / "small"
    mark = tmp_path / "finished"
    # about 20 KB of log an `ls`: the 64 KB disk is full by the fourth of the 300, the program goes on
    program = f"i=0; while [ $i -lt 300 ]; do ls / > /dev/null; i=$((i+1)); done; echo done > {mark}"
    result = dockit_on_tmpfs(mount, "size=64k", "-l", str(mount / "p"), "sh", "-c", program, timeout=300)
    assert result.returncode == 2, result.stderr
    one_line(result, "cannot write", "No space left on device")
    assert mark.read_text() == "done\n"


def test_a_failed_live_run_leaves_no_fifo_folder(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = dict(os.environ, TMPDIR=str(temporary))
    result = run_dockit("-l", "/proc/dockit-test/p", "true", env=env)
    assert result.returncode == 2
    one_line(result, "cannot write")
    assert list(temporary.iterdir()) == []


def test_fifo_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = temporary / f"dockit-{dead.pid}-abcd1234"
    stale.mkdir()
    os.mkfifo(stale / "trace")
    alive = temporary / f"dockit-{os.getpid()}-efgh5678"  # this test's own pid: a run still going
    alive.mkdir()
    os.mkfifo(alive / "trace")
    env = dict(os.environ, TMPDIR=str(temporary))
    result = run_dockit("-l", str(tmp_path / "p"), "true", env=env)
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert alive.exists()


def test_sigterm_during_a_replay_leaves_no_partial(tmp_path: Path) -> None:
    log = write_case("processes", 60_000, tmp_path / "long.log")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "dockit_core.cli", "-i", str(log), "-l", str(tmp_path / "out")],
                               stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    deadline = time.monotonic() + 60
    while not partials(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partials(tmp_path), "the replay never started writing"
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in stderr and "SIGTERM" in stderr
    assert partials(tmp_path) == []
    assert not (tmp_path / "out.xml").exists()


def test_partials_of_dead_runs_are_removed(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(START + EXIT)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".out.xml.{dead.pid}.x8f2k1.partial"
    stale.write_text("<Dockit")
    mine = tmp_path / f".out.xml.{os.getpid()}.a1b2c3.partial"  # a run still going: left alone
    mine.write_text("<Dockit")
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and mine.exists()


def test_command_line_of_deep_brackets_in_the_ini(tmp_path: Path) -> None:
    log = tmp_path / "run.strace.4242.log"
    log.write_text(START + EXIT)
    (tmp_path / "run.strace.4242.ini").write_text("CommandLine=" + "[" * 200_000 + "\n")
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert Summary.load(tmp_path / "out.xml").processes[4242].executable == "/usr/bin/cat"


def test_summary_filter_of_deep_brackets_is_one_line(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(START + EXIT)
    result = run_dockit(
        "-i", str(log), "-s", "CIM_Process:Handle=" + "[" * 100_000, "-l", str(tmp_path / "o")
    )
    assert result.returncode == 2
    line = one_line(result, "cannot read the list")
    assert len(line) < 400


def test_unknown_summary_class_is_said(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(START + EXIT)
    result = run_dockit("-i", str(log), "-s", "CIM_process", "-l", str(tmp_path / "o"))
    assert result.returncode == 0
    assert "no object of class CIM_process; did you mean CIM_Process?" in result.stderr
    result = run_dockit("-i", str(log), "-s", "CIM_Process:Handle=1", "-l", str(tmp_path / "o"))
    assert "no CIM_Process has those attribute values" in result.stderr
    result = run_dockit("-i", str(log), "-s", "CIM_Process:Handle=4242", "-l", str(tmp_path / "o"))
    assert "-s" not in result.stderr


def test_an_option_given_twice_is_refused(tmp_path: Path) -> None:
    """`-l a -l b` took b alone without a word. (`-i a -i b` replays both logs as one run.)"""
    log = tmp_path / "a.log"
    log.write_text(START + EXIT)
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "o"), "-l", str(tmp_path / "p"))
    assert result.returncode == 2
    one_line(result, "-l was given twice")
    assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob("p.*"))


def test_double_dash_before_the_command(tmp_path: Path) -> None:
    result = run_dockit("-l", str(tmp_path / "p"), "--", "true")
    assert result.returncode == 0, result.stderr
    (xml,) = tmp_path.glob("p.strace.*.xml")
    assert Summary.load(xml).by_executable("/usr/bin/true")


def test_a_folder_as_prefix_writes_named_outputs_inside_it(tmp_path: Path) -> None:
    log = tmp_path / "run.strace.4242.log"
    log.write_text(START + EXIT)
    out = tmp_path / "out"
    out.mkdir()
    for prefix in (str(out), str(out) + "/"):
        result = run_dockit("-i", str(log), "-l", prefix)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in out.iterdir()) == ["run.strace.4242.txt", "run.strace.4242.xml"]
    live = tmp_path / "live"
    live.mkdir()
    result = run_dockit("-l", str(live) + "/", "true")
    assert result.returncode == 0, result.stderr
    names = [p.name for p in live.iterdir()]
    assert not [n for n in names if n.startswith(".")], names
    assert any(n.startswith("dockit.strace.") and n.endswith(".xml") for n in names), names


def test_a_strace_count_table_is_no_trace(tmp_path: Path) -> None:
    table = tmp_path / "counts.log"
    subprocess.run(["strace", "-c", "-o", str(table), "true"], check=True)
    result = run_dockit("-i", str(table), "-l", str(tmp_path / "o"))
    assert result.returncode == 2
    one_line(result, "table of call counts", "not a trace")
    assert not list(tmp_path.glob("o.*"))


def test_random_bytes_are_no_trace(tmp_path: Path) -> None:
    noise = tmp_path / "noise.log"
    noise.write_bytes(os.urandom(300_000))
    result = run_dockit("-i", str(noise), "-l", str(tmp_path / "o"))
    assert result.returncode == 2
    one_line(result, "not a strace or ltrace log")
    assert not list(tmp_path.glob("o.*"))


def test_calls_csv_with_a_byte_that_is_no_utf8_is_valid_utf8(tmp_path: Path) -> None:
    log = tmp_path / "latin1.log"
    log.write_bytes(
        START.encode()
        + b'4242 1700000000.000002 openat(AT_FDCWD, "caf\\351.txt", O_RDONLY) = 3</tmp/caf\\351.txt> <0.000010>\n'
        + b'4242 1700000000.000003 read(3</tmp/caf\\351.txt>, "hi", 2) = 2 <0.000010>\n'
        + b"4242 1700000000.000004 close(3</tmp/caf\\351.txt>) = 0 <0.000010>\n"
        + EXIT.encode()
    )
    for extra in ([], ["--each-call"]):
        for fmt in ("CSV", "TXT"):
            result = run_dockit("-i", str(log), "-f", fmt, *extra, "-l", str(tmp_path / "o"))
            assert result.returncode == 0, result.stderr
            data = (tmp_path / f"o.{fmt.lower()}").read_bytes()
            text = data.decode("utf-8")  # raises when a byte is not UTF-8
            assert "/tmp/caf\\xe9.txt" in text
            if fmt == "CSV":
                assert list(csv.reader(text.splitlines()))
