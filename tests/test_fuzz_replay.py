"""Replays of mutated logs that once crashed dockit, each cut down to a few lines.

Found by mutating the captures (lines cut, spliced, numbers and escapes changed). Each replay must
succeed (exit 0, no traceback), write outputs that parse, and keep what the damaged line leaves known."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Summary, run_dockit

START = '4242 1700000000.000001 execve("/usr/bin/cat", ["cat"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
EXIT = "4242 1700000000.000009 +++ exited with 0 +++\n"


def replay(tmp_path: Path, body: str, *extra: str) -> tuple[Summary, str]:
    log = tmp_path / "fuzz.strace.4242.log"
    log.write_text(START + body + EXIT, encoding="utf-8", errors="surrogateescape")
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"), *extra, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    assert summary.processes[4242].exit_status == 0
    return summary, result.stderr


def test_time_beyond_the_last_date(tmp_path: Path) -> None:
    """A -ttt time or a -T duration no date can hold (a digit too many): the call stays, without it."""
    body = (
        '4242 99999999999999.000004 write(1</dev/pts/0<char 136:0>>, "abc", 3) = 3 <0.000010>\n'
        '4242 1700000000.000005 write(1</dev/pts/0<char 136:0>>, "abc", 3) = 3 <99999999999999.000010>\n'
        '4242 1700000000.000006 write(1</dev/pts/0<char 136:0>>, "abc", 3 <unfinished ...>\n'
        "4242 999999999999999999999999.000007 <... write resumed>) = 3 <0.000001>\n"
    )
    replay(tmp_path, body, "-f", "JSON", "--each-call")
    calls = json.loads((tmp_path / "out.json").read_text())
    assert [call["call"] for call in calls].count("write") == 3


def test_escape_broken_inside_a_literal(tmp_path: Path) -> None:
    """`\\x4` followed by more text, `\\xZZ`: the whole escapes are decoded, the broken ones kept."""
    body = (
        "4242 1700000000.000002 pipe2([3<pipe:[99]>, 4<pipe:[99]>], 0) = 0 <0.000010>\n"
        '4242 1700000000.000003 write(4<pipe:[99]>, "ab\\x4\\ncd", 6) = 6 <0.000010>\n'
        '4242 1700000000.000004 read(3<pipe:[99]>, "ab\\xZZcd\\\\", 6) = 6 <0.000010>\n'
    )
    summary, _ = replay(tmp_path, body)
    (pipe,) = summary.pipes
    assert pipe["Bytes"] == "6"


def test_pid_column_of_thousands_of_digits(tmp_path: Path) -> None:
    """A number too long for int() (over 4300 digits) as pid, exit status, fd, port, msg_len: the line
    with such a pid is counted unparsed, the other numbers are unknown."""
    digits = "9" * 5000
    body = (
        f"{digits} 1700000000.000002 close(3) = 0\n"
        f"{digits} 1700000000.000003 foo(3 <unfinished ...>\n"
        f"4242 1700000000.000004 close({digits}</tmp/x>) = 0\n"
        f"4242 1700000000.000005 connect(3, {{sa_family=AF_INET, sin_port=htons({digits}), "
        'sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        f"4242 1700000000.000006 wait4(-1, [{{WIFEXITED(s) && WEXITSTATUS(s) == {digits}}}], 0, NULL) = 4243\n"
        f"4242 1700000000.000007 sendmmsg(3, [{{msg_hdr={{}}, msg_len={digits}}}], 1, 0) = 1\n"
        f"strace: Process {digits} attached\n"
    )
    summary, _ = replay(tmp_path, body)
    assert summary.statistics["UnparsedLines"] == "2"


def test_line_of_a_million_equal_signs(tmp_path: Path) -> None:
    """` = ` a million times with no `)` before: one pass over the line (each ` = ` searched back for
    its `)` made this take minutes)."""
    body = "4242 1700000000.000002 foo(" + " = " * 1_000_000 + "\n"
    body += "4242 1700000000.000003 <... foo resumed>" + " = (" * 1_000_000 + "\n"
    replay(tmp_path, body)


def test_ltrace_char_array_with_odd_octal(tmp_path: Path) -> None:
    """ltrace's `'\\9'` or a non-ASCII digit in a char array is no octal: kept as its characters."""
    log = tmp_path / "fuzz.ltrace.4242.log"
    log.write_text(
        "4242 1795715453.684934 SYS_pipe2([ 3, 4 ], 0)   = 0 <0.000021>\n"
        "4242 1795715453.687297 sh->write(4, [ 'h', '\\9', '\\1', '\\²' ], 4) = 4 <0.000010>\n"
        "4242 1795715453.706192 +++ exited (status 0) +++\n"
    )
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"), timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    (pipe,) = Summary.load(tmp_path / "out.xml").pipes
    assert pipe["Bytes"] == "4"


def test_return_value_beyond_a_register(tmp_path: Path) -> None:
    """A result of 400 digits is no number a call returns (no float held it to write `N GB`)."""
    nines = "9" * 400
    body = (
        "4242 1700000000.000002 pipe2([3<pipe:[99]>, 4<pipe:[99]>], 0) = 0 <0.000010>\n"
        f'4242 1700000000.000003 write(4<pipe:[99]>, "x", 100) = {nines}\n'
        f"4242 1700000000.000004 sendfile(4<pipe:[99]>, 3<pipe:[99]>, NULL, 100) = {nines}\n"
    )
    summary, _ = replay(tmp_path, body)  # the calls file (TXT) says each block's bytes
    (pipe,) = summary.pipes
    assert pipe["Bytes"] == "0"


def test_port_no_socket_has(tmp_path: Path) -> None:
    """`:99999…` (4400 digits) or `:²` as a port in a decoration or a sockaddr: no address is known."""
    nines = "9" * 4400
    body = (
        f'4242 1700000000.000002 write(5<TCPv6:[[::1]:80->[::1]:{nines}]>, "x", 1) = 1\n'
        '4242 1700000000.000003 write(6<TCP:[1.2.3.4:\u00b2->5.6.7.8:80]>, "x", 1) = 1\n'
        '4242 1700000000.000004 write(7<TCP:[1.2.3.4:\u00b2]>, "x", 1) = 1\n'
        f"4242 1700000000.000005 connect(8, {{sa_family=AF_INET, sin_port=htons({nines}), "
        'sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        '4242 1700000000.000006 write(8, "x", 1) = 1\n'
    )
    summary, _ = replay(tmp_path, body)
    assert not summary.sockets_with(RemotePort=nines)


def test_nul_inside_a_path(tmp_path: Path) -> None:
    """`"/bin/sh\\0"` as execve's path, `\\0` in a decoration: a path ends at its NUL, as the kernel
    reads it (with -D, open() of the path with its NUL crashed the replay)."""
    body = (
        '4242 1700000000.000002 openat(AT_FDCWD, "/etc/x\\0y", O_RDONLY) = 3</etc/x\\0z>\n'
        '4242 1700000000.000003 execve("/bin/sh\\0", ["sh"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
    )
    summary, _ = replay(tmp_path, body, "-D")
    assert summary.processes[4242].executable == "/bin/sh"
    assert "/etc/x" in summary.files


def test_a_damaged_ini_is_no_traceback(tmp_path: Path) -> None:
    """The .ini beside a log may be damaged too: digits Python's isdigit() takes but int() refuses,
    a date no calendar has. Each value is then unknown, and the replay goes on."""
    log = tmp_path / "run.strace.4242.log"
    log.write_text('4242  10:00:00.000001 openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3 <0.000010>\n'
                   "4242  47:00:00.000002 close(3) = 0 <0.000010>\n")  # fmt: skip
    for ini in ("TopProcessId=\u00b2\nAttachedThreads=4242 \u00b3\nCurrentDate=2026-13-45\n",
                "TopProcessId=" + "9" * 5000 + "\nCurrentDate=9999-12-31\n"):  # fmt: skip
        (tmp_path / "run.strace.4242.ini").write_text(ini)
        result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert "/etc/hostname" in (tmp_path / "out.xml").read_text()
