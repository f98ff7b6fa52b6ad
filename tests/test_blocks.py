"""The calls file as blocks: real programs traced live, and the survol captures replayed.

Expected values come from outside the aggregator: the raw strace log dockit wrote (every call on a file
is decorated `3</path>` there), the sizes of the files on disk, and what the test program is known to do.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockit_core import cli
from dockit_core.cli.session import Options, OutputPaths, TraceSession
from dockit_core.outputs.calls.blocks import BlockAggregator
from dockit_core.outputs.summary.objects import RunContext

SURVOL = Path(__file__).resolve().parents[1].parent / "shared/captures/survol"
DEBIAN_PYTHON = "/usr/bin/python3"

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


def dockit(*args: str, cwd: Path, stdout=subprocess.DEVNULL) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def one(pattern: str, folder: Path) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def statistics(xml: Path) -> dict[str, int]:
    text = xml.read_text()
    element = re.search(r"<Dockit_Statistics ([^>]*)/>", text)
    assert element is not None
    return {k: int(v) for k, v in re.findall(r'(\w+)="(\d+)"', element.group(1))}


# -- live -----------------------------------------------------------------------------------------------
@pytest.mark.live
@needs_strace
def test_cat_reads_its_file_in_one_block(tmp_path: Path) -> None:
    with open(tmp_path / "out", "w") as out:
        done = dockit(
            "-l", str(tmp_path / "p"), "-f", "JSON", "cat", "/etc/hostname", cwd=tmp_path, stdout=out
        )
    assert (tmp_path / "out").read_bytes() == Path("/etc/hostname").read_bytes()
    log = one("p.strace.*.log", tmp_path).read_text()
    blocks = json.loads(one("p.strace.*.json", tmp_path).read_text())
    mine = [b for b in blocks if b["target"] == "/etc/hostname"]
    assert len(mine) == 1, [b["summary"] for b in blocks]
    block = mine[0]
    # every call on the file shows `</etc/hostname>` in the raw -yy log: its open, stat, read(s) and close
    assert block["calls"] == sum("</etc/hostname>" in line for line in log.splitlines())
    assert block["bytes_in"] == os.path.getsize("/etc/hostname")
    assert block["kind"] == "file" and block["repeat"] == 1
    assert block["call_counts"]["openat"] == 1 and block["call_counts"]["close"] == 1
    assert block["summary"].startswith("read /etc/hostname: ")
    stats = statistics(one("p.strace.*.xml", tmp_path))
    assert sum(b["calls"] for b in blocks) == stats["Calls"]
    assert stats["Blocks"] == len(blocks) < stats["Calls"]
    assert f"{stats['Calls']} calls in, {stats['Blocks']} blocks out" in done.stderr


@pytest.mark.live
@needs_strace
@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no /usr/bin/python3")
def test_a_loop_of_100_writes_is_one_block(tmp_path: Path) -> None:
    program = (
        "import os\n"
        "fd = os.open('lines.txt', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n"
        "for i in range(100):\n"
        "    os.write(fd, b'line %d\\n' % i)\n"
        "os.close(fd)\n"
    )
    dockit("-l", str(tmp_path / "p"), "-f", "CSV", DEBIAN_PYTHON, "-c", program, cwd=tmp_path)
    with one("p.strace.*.csv", tmp_path).open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    target = str(tmp_path / "lines.txt")
    mine = [row for row in rows if row["target"] == target]
    assert len(mine) == 1, [row["summary"] for row in rows]
    row = mine[0]
    assert int(row["calls"]) == 102  # openat, 100 writes, close
    assert "write=100" in row["call_counts"].split()
    assert int(row["bytes_out"]) == (tmp_path / "lines.txt").stat().st_size
    size = (tmp_path / "lines.txt").stat().st_size  # 790 bytes: below 1 KB, so told in bytes
    assert row["summary"] == f"write {target}: 102 calls, {size} B out"
    stats = statistics(one("p.strace.*.xml", tmp_path))
    assert sum(int(r["calls"]) for r in rows) == stats["Calls"]
    assert len(rows) == stats["Blocks"]
    for row in rows:  # every row has a start, and an end not before it
        assert row["start"] and row["end"] >= row["start"]
        assert float(row["duration"]) >= 0


@pytest.mark.live
@needs_strace
def test_pipeline_json_and_txt_and_each_call(tmp_path: Path) -> None:
    command = ["sh", "-c", "ls / | wc -l"]
    dockit("-l", str(tmp_path / "j"), "-f", "JSON", *command, cwd=tmp_path)
    text = one("j.strace.*.json", tmp_path).read_text()
    blocks = json.loads(text)
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    streamed = [json.loads(line.rstrip(",")) for line in lines[1:-1]]  # one object per line
    assert streamed == blocks
    pids = {b["pid"] for b in blocks}
    assert len(pids) >= 3  # sh, ls, wc
    pipes = [b for b in blocks if b["kind"] == "pipe"]
    assert pipes and any(b["bytes_out"] > 0 for b in pipes) and any(b["bytes_in"] > 0 for b in pipes)
    execs = sorted(b["target"] for b in blocks if b["kind"] == "process" and "execve" in b["call_counts"])
    assert any(t.endswith("/ls") for t in execs) and any(t.endswith("/wc") for t in execs)

    dockit("-l", str(tmp_path / "t"), *command, cwd=tmp_path)
    txt = one("t.strace.*.txt", tmp_path).read_text().splitlines()
    assert any("execve" in line and line.rstrip().endswith("/ls = 0") for line in txt)

    dockit("-l", str(tmp_path / "e"), "--each-call", "-f", "JSON", *command, cwd=tmp_path)
    records = json.loads(one("e.strace.*.json", tmp_path).read_text())
    stats = statistics(one("e.strace.*.xml", tmp_path))
    assert len(records) == stats["Calls"] and "Blocks" not in stats


@pytest.mark.live
@needs_strace
def test_http_exchange_is_inside_the_connection_block(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello\n")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path / "www"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = server.stdout.readline()  # type: ignore[union-attr]
        port = int(re.search(r"port (\d+)", banner).group(1))  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/hello.txt"
        dockit("-l", str(tmp_path / "p"), "-f", "JSON", "curl", "-s", "-o", "got.txt", url, cwd=tmp_path)
    finally:
        server.terminate()
        server.wait(10)
    assert (tmp_path / "got.txt").read_text() == "hello\n"
    blocks = json.loads(one("p.strace.*.json", tmp_path).read_text())
    connections = [b for b in blocks if b["kind"] == "socket" and f"127.0.0.1:{port}" in (b["target"] or "")]
    assert len(connections) == 1
    connection = connections[0]
    assert any(d.startswith("http GET /hello.txt") for d in connection["decoded"]), connection
    assert connection["bytes_out"] > 0 and connection["bytes_in"] > len("hello\n")


# -- the survol captures ----------------------------------------------------------------------------------
def survol_logs() -> list[Path]:
    return sorted(SURVOL.glob("*.log")) if SURVOL.is_dir() else []


@pytest.mark.skipif(not SURVOL.is_dir(), reason=f"{SURVOL} is absent")
@pytest.mark.parametrize("log", survol_logs(), ids=lambda p: p.name)
def test_survol_capture_loses_no_call(log: Path, tmp_path: Path) -> None:
    prefix = tmp_path / log.name.removesuffix(".log")
    assert cli.main(["-i", str(log), "-l", str(prefix), "-f", "JSON"]) == 0
    blocks = json.loads(Path(f"{prefix}.json").read_text())
    stats = statistics(Path(f"{prefix}.xml"))
    assert sum(b["calls"] for b in blocks) == stats["Calls"]  # nothing lost, nothing counted twice
    assert len(blocks) == stats["Blocks"] < stats["Calls"]
    for block in blocks:
        assert block["calls"] >= 1 and block["first_line"] <= block["last_line"]
        assert sum(block["call_counts"].values()) == block["calls"]


@pytest.mark.skipif(not SURVOL.is_dir(), reason=f"{SURVOL} is absent")
def test_open_blocks_stay_few_on_a_long_log() -> None:
    """Memory is bounded by what is open at once, not by the log: sample it during a 15,000-call replay."""
    log = SURVOL / "dockit_find_grep.strace.log"
    if not log.exists():
        pytest.skip(f"{log} is absent")
    emitted: list[int] = []
    aggregator = BlockAggregator(lambda block: emitted.append(block.calls))
    most = 0

    def observe(call, process, info, annotations):  # type: ignore[no-untyped-def]
        nonlocal most
        aggregator(call, process, info, annotations)
        if call.index % 50 == 0:
            most = max(most, aggregator.held())

    options = Options(write_calls=False)
    session = TraceSession(
        options, RunContext(), OutputPaths("/nonexistent/x"), default_pid=0, call_observers=[observe]
    )
    with log.open(encoding="utf-8", errors="surrogateescape") as stream:
        session.feed_lines(stream)
    session.tracker.finish()
    aggregator.finish()
    assert sum(emitted) == aggregator.calls_in == session.tracker.calls > 10_000
    assert aggregator.held() == 0
    # per process: its open descriptors, a few pending blocks, the window of a cycle (9), and up to 65
    # ended blocks kept to be compared with a sibling's; per parent, one group of like children (64)
    assert most < 150, most


@pytest.mark.skipif(not SURVOL.is_dir(), reason=f"{SURVOL} is absent")
def test_survol_cp_tells_its_story(tmp_path: Path) -> None:
    """`cp mineit_find_grep.log tutu`: the big read and the big write are one block each."""
    log = SURVOL / "dockit_copy_bigfile.strace.log"
    if not log.exists():
        pytest.skip(f"{log} is absent")
    assert cli.main(["-i", str(log), "-l", str(tmp_path / "cp"), "-f", "CSV"]) == 0
    with (tmp_path / "cp.csv").open(newline="") as stream:
        rows = {row["target"]: row for row in csv.DictReader(stream)}
    source = rows["/home/rchateau/survol/Experimental/RetroBatch/mineit_find_grep.log"]
    copy = rows["/home/rchateau/survol/Experimental/RetroBatch/tutu"]
    raw = log.read_text().splitlines()
    read_bytes = sum(
        int(line.rsplit("= ", 1)[1].split()[0]) for line in raw if "read(3</home/" in line and "= " in line
    )
    written = sum(
        int(line.rsplit("= ", 1)[1].split()[0]) for line in raw if "write(4</home/" in line and "= " in line
    )
    assert int(source["bytes_in"]) == read_bytes > 2_000_000
    assert int(copy["bytes_out"]) == written == read_bytes
    assert int(source["calls"]) == sum(
        "</home/rchateau/survol/Experimental/RetroBatch/mineit_find_grep.log>" in line for line in raw
    )


@pytest.mark.live
@needs_strace
def test_a_shell_loop_folds_its_children_and_its_cycle(tmp_path: Path) -> None:
    """`for i in 1..8: /bin/true`: the eight children did the same thing, the parent looped."""
    command = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do /bin/true; done"]
    dockit("-l", str(tmp_path / "p"), "-f", "JSON", *command, cwd=tmp_path)
    blocks = json.loads(one("p.strace.*.json", tmp_path).read_text())
    log = one("p.strace.*.log", tmp_path).read_text()
    children = {int(m) for m in re.findall(r"^(\d+) +\S+ execve\(\"/bin/true\"", log, re.M)}
    assert len(children) == 8
    execs = [b for b in blocks if b["kind"] == "process" and b["target"] == "/bin/true"]
    assert len(execs) == 1, [b["summary"] for b in blocks]
    assert execs[0]["processes"] == 8 and execs[0]["repeat"] == 8 and execs[0]["pid"] in children
    assert "(in 8 like processes" in execs[0]["summary"]
    parent = [b for b in blocks if b["pid"] not in children]
    forks = [
        b for b in parent if b["kind"] == "process" and set(b["call_counts"]) & {"clone", "fork", "vfork"}
    ]
    assert sum(b["calls"] for b in forks) == 8 and len(forks) == 1  # the loop's 8 forks: one block
    stats = statistics(one("p.strace.*.xml", tmp_path))
    assert sum(b["calls"] for b in blocks) == stats["Calls"]
