"""Replays of broken, odd or missing logs: one clear line and exit 2 when there is nothing to replay,
otherwise a replay that succeeds and counts what it could not read. Never a traceback."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import pytest

from tests.conftest import CAPTURES, Summary, run_dockit

GOOD_LINES = [
    '4242 1700000000.000001 execve("/usr/bin/cat", ["cat", "in.txt"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n',
    '4242 1700000000.000002 openat(AT_FDCWD, "in.txt", O_RDONLY) = 3</tmp/in.txt> <0.000010>\n',
    '4242 1700000000.000003 read(3</tmp/in.txt>, "hello\\n", 131072) = 6 <0.000010>\n',
    '4242 1700000000.000004 write(1</dev/pts/0<char 136:0>>, "hello\\n", 6) = 6 <0.000010>\n',
    "4242 1700000000.000005 close(3</tmp/in.txt>) = 0 <0.000010>\n",
    "4242 1700000000.000006 +++ exited with 0 +++\n",
]


def assert_one_line_error(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def replay_ok(log: Path, tmp_path: Path) -> tuple[Summary, str]:
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"), timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    return Summary.load(tmp_path / "out.xml"), result.stderr


def cat_facts(summary: Summary) -> None:
    """The facts of GOOD_LINES, whatever surrounds them."""
    process = summary.processes[4242]
    assert process.executable == "/usr/bin/cat" and process.exit_status == 0
    assert summary.access("/tmp/in.txt", 4242)["ReadBytes"] == "6"


def test_good_lines_alone(tmp_path: Path) -> None:
    log = tmp_path / "good.log"
    log.write_text("".join(GOOD_LINES))
    summary, stderr = replay_ok(log, tmp_path)
    cat_facts(summary)
    assert summary.statistics["UnparsedLines"] == "0"
    assert "could not be parsed" not in stderr


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run_dockit("-i", str(tmp_path / "nope.log")), "nope.log")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    assert_one_line_error(run_dockit("-i", str(tmp_path / "empty.log")), "empty")


def test_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_dockit("-i", str(tmp_path)), "directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    log = tmp_path / "secret.log"
    log.write_text("".join(GOOD_LINES))
    log.chmod(0)
    assert_one_line_error(run_dockit("-i", str(log)), "secret.log")


def test_binary_garbage(tmp_path: Path) -> None:
    """Random bytes are no trace, and dockit says so (a line of them now and then reads as a call)."""
    rng = random.Random(1234)
    log = tmp_path / "garbage.log"
    log.write_bytes(bytes(rng.randrange(256) for _ in range(200_000)))
    assert_one_line_error(run_dockit("-i", str(log), "-l", str(tmp_path / "out")), "not a strace or ltrace log")
    assert not list(tmp_path.glob("out.*"))


def test_garbage_between_good_lines(tmp_path: Path) -> None:
    rng = random.Random(99)
    parts = []
    for line in GOOD_LINES:
        parts.append(line.encode())
        parts.append(bytes(rng.randrange(256) for _ in range(300)).replace(b"\n", b"") + b"\n")
    log = tmp_path / "mixed.log"
    log.write_bytes(b"".join(parts))
    summary, stderr = replay_ok(log, tmp_path)
    cat_facts(summary)
    assert summary.statistics["UnparsedLines"] == str(len(GOOD_LINES))
    assert f"{len(GOOD_LINES)} line(s) could not be parsed" in stderr


def test_truncated_last_line(tmp_path: Path) -> None:
    log = tmp_path / "cut.log"
    text = "".join(GOOD_LINES[:-1]) + GOOD_LINES[-1][:20]  # no newline, cut mid-word
    log.write_text(text)
    summary, _ = replay_ok(log, tmp_path)
    assert summary.access("/tmp/in.txt", 4242)["ReadBytes"] == "6"
    assert summary.statistics["UnparsedLines"] == "1"


def test_line_cut_inside_a_string(tmp_path: Path) -> None:
    log = tmp_path / "cutstring.log"
    log.write_text("".join(GOOD_LINES[:3]) + '4242 1700000000.000004 write(1</dev/pts/0>, "hel')
    summary, _ = replay_ok(log, tmp_path)
    assert summary.access("/tmp/in.txt", 4242)["ReadBytes"] == "6"


def test_nul_bytes(tmp_path: Path) -> None:
    log = tmp_path / "nul.log"
    data = "".join(GOOD_LINES).encode()
    log.write_bytes(data[:100] + b"\0\0\0" + data[100:] + b"\0" * 50 + b"\n")
    summary, _ = replay_ok(log, tmp_path)
    assert summary.processes[4242].exit_status == 0


def test_invalid_utf8_in_paths_and_arguments(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, raw in the log (strace escapes them, other tools may not) and escaped:
    the summary is still valid XML and keeps the rest."""
    log = tmp_path / "latin1.log"
    lines = [
        b'4242 1700000000.000001 execve("/usr/bin/cat", ["cat", "caf\xe9", "\\377\\376"], 0x7ffd /* 4 vars */) = 0\n',
        b'4242 1700000000.000002 openat(AT_FDCWD, "caf\xe9.txt", O_RDONLY) = 3</tmp/caf\xe9.txt> <0.000010>\n',
        b'4242 1700000000.000003 openat(AT_FDCWD, "\\303\\251t\\351", O_RDONLY) = 4 <0.000010>\n',
        b"4242 1700000000.000004 +++ exited with 0 +++\n",
    ]
    log.write_bytes(b"".join(lines))
    summary, _ = replay_ok(log, tmp_path)
    process = summary.processes[4242]
    assert process.executable == "/usr/bin/cat" and len(process.argv) == 3
    assert any(path.startswith("/tmp/caf") for path in summary.files)
    assert summary.statistics["UnparsedLines"] == "0"


def test_ten_megabyte_line(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    huge = "\\x41" * (10 * 1024 * 1024 // 4)
    with log.open("w") as out:
        out.write(GOOD_LINES[0] + GOOD_LINES[1])
        out.write(f'4242 1700000000.000003 read(3</tmp/in.txt>, "{huge}", 10485760) = 2621440 <0.1>\n')
        out.write(GOOD_LINES[4] + GOOD_LINES[5])
    summary, _ = replay_ok(log, tmp_path)
    assert summary.access("/tmp/in.txt", 4242)["ReadBytes"] == "2621440"
    assert summary.statistics["UnparsedLines"] == "0"


def test_ten_megabyte_garbage_line(tmp_path: Path) -> None:
    log = tmp_path / "longgarbage.log"
    log.write_bytes("".join(GOOD_LINES[:3]).encode() + b"x(" * (5 * 1024 * 1024) + b"\n")
    summary, _ = replay_ok(log, tmp_path)
    assert summary.access("/tmp/in.txt", 4242)["ReadBytes"] == "6"


def test_gzip_log_read_as_is(tmp_path: Path) -> None:
    log = tmp_path / "zipped.log.gz"
    log.write_bytes(gzip.compress("".join(GOOD_LINES).encode()))
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "z"))
    assert result.returncode == 0, result.stderr
    cat_facts(Summary.load(tmp_path / "z.xml"))


def test_gzip_of_a_real_capture_with_its_ini(tmp_path: Path) -> None:
    """A committed capture, gzipped under a name without .log: same facts as the plain replay."""
    (plain,) = sorted(CAPTURES.glob("pipeline.strace.*.log"))
    zipped = tmp_path / (plain.name + ".gz")
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    result = run_dockit("-i", str(zipped), "-l", str(tmp_path / "zp"))
    assert result.returncode == 0, result.stderr
    zsummary = Summary.load(tmp_path / "zp.xml")
    result = run_dockit("-i", str(plain), "-l", str(tmp_path / "pp"))
    psummary = Summary.load(tmp_path / "pp.xml")
    assert zsummary.processes.keys() == psummary.processes.keys()
    assert zsummary.files == psummary.files
    assert zsummary.pipes == psummary.pipes


def test_broken_gzip(tmp_path: Path) -> None:
    log = tmp_path / "broken.log.gz"
    log.write_bytes(gzip.compress("".join(GOOD_LINES).encode() * 100)[:200])
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "b"))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "b.xml").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_log_without_ini(tmp_path: Path) -> None:
    """The original refused to replay without the .ini: here the pid comes from the lines."""
    (plain,) = sorted(CAPTURES.glob("failing.strace.*.log"))
    alone = tmp_path / "renamed.log"
    alone.write_bytes(plain.read_bytes())
    summary, _ = replay_ok(alone, tmp_path)
    (sh,) = summary.by_executable("/usr/bin/sh")
    (cat,) = summary.by_executable("/usr/bin/cat")
    assert sh.exit_status == 3 and cat.exit_status == 1 and cat.ppid == sh.pid


def test_log_with_crlf_line_ends(tmp_path: Path) -> None:
    log = tmp_path / "crlf.log"
    log.write_bytes("".join(GOOD_LINES).replace("\n", "\r\n").encode())
    summary, _ = replay_ok(log, tmp_path)
    cat_facts(summary)
    assert summary.statistics["UnparsedLines"] == "0"


def test_unparsed_lines_listed_with_w(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text(GOOD_LINES[0] + "this is not strace\n" + GOOD_LINES[5])
    result = run_dockit("-w", "-i", str(log), "-l", str(tmp_path / "w"))
    assert result.returncode == 0
    assert "unparsed line 2: this is not strace" in result.stderr
