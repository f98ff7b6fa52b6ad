"""Synthetic logs whose number of distinct objects grows with their length: what a server or a build
traced for days looks like to dockit. Each must replay in flat or bounded memory (bench/run.py
measures the peak), whatever a log names: a crafted log may name millions of anything.

    python bench/growth.py CASE COUNT OUT.log     (CASE: processes, fds, files, pipelined)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

START = 1796240000.0
PARENT = 4242


def _head(pid: int, now: float) -> str:
    return f"{pid}  {now:.6f} "


def exited_processes(out: TextIO, count: int) -> None:
    """A shell starting `count` short programs one after the other, each reading a file of its own
    folder and exiting: `count` processes that end, as a build or a cron traced for days makes them."""
    now = START
    out.write(
        f'{_head(PARENT, now)}execve("/bin/sh", ["sh", "-c", "loop"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
    )
    for i in range(count):
        now += 0.0001
        child = 10_000 + i
        head, child_head = _head(PARENT, now), _head(child, now)
        out.write(f"{head}clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = {child} <0.000050>\n")
        out.write(
            f'{child_head}execve("/usr/bin/prog{i % 7}", ["prog{i % 7}", "--item", "{i}"], 0x7ffd '
            "/* 4 vars */) = 0 <0.000100>\n"
        )
        out.write(
            f'{child_head}openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3</etc/hostname> <0.000010>\n'
        )
        out.write(f'{child_head}read(3</etc/hostname>, "vm\\n", 4096) = 3 <0.000010>\n')
        out.write(f"{child_head}close(3</etc/hostname>) = 0 <0.000010>\n")
        out.write(f"{child_head}exit_group({i % 3}) = ?\n")
        out.write(f"{child_head}+++ exited with {i % 3} +++\n")
        out.write(
            f"{head}wait4(-1, [{{WIFEXITED(s) && WEXITSTATUS(s) == {i % 3}}}], 0, NULL) = {child} <0.000100>\n"
        )
    out.write(f"{_head(PARENT, now)}+++ exited with 0 +++\n")


def open_fds(out: TextIO, count: int) -> None:
    """One process opening a file `count` times and closing none of them: `count` open descriptors."""
    now = START
    out.write(
        f'{_head(PARENT, now)}execve("/usr/bin/holder", ["holder"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
    )
    for i in range(count):
        now += 0.00001
        fd = 3 + i
        out.write(
            f'{_head(PARENT, now)}openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = {fd}</etc/hostname> <0.000010>\n'
        )
    out.write(f"{_head(PARENT, now)}+++ exited with 0 +++\n")


def distinct_files(out: TextIO, count: int) -> None:
    """A directory walk over `count` distinct files, one in ten opened and read: `find | xargs cat`."""
    now = START
    out.write(f'{_head(PARENT, now)}execve("/usr/bin/walk", ["walk"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n')
    for i in range(count):
        now += 0.00001
        head = _head(PARENT, now)
        path = f"/srv/data/d{i // 1000:04d}/file{i:07d}.dat"
        out.write(
            f'{head}newfstatat(AT_FDCWD, "{path}", {{st_mode=S_IFREG|0644, st_size=6, ...}}, 0) = 0 <0.000010>\n'
        )
        if i % 10 == 0:
            out.write(f'{head}openat(AT_FDCWD, "{path}", O_RDONLY) = 3<{path}> <0.000010>\n')
            out.write(f'{head}read(3<{path}>, "hello\\n", 4096) = 6 <0.000010>\n')
            out.write(f"{head}close(3<{path}>) = 0 <0.000010>\n")
    out.write(f"{_head(PARENT, now)}+++ exited with 0 +++\n")


def pipelined_requests(out: TextIO, count: int) -> None:
    """One HTTP client pipelining `count` requests on one connection that never answers."""
    now = START
    socket = "3<TCP:[127.0.0.1:40000->127.0.0.1:8000]>"
    out.write(
        f'{_head(PARENT, now)}execve("/usr/bin/client", ["client"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
    )
    out.write(
        f"{_head(PARENT, now)}socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3<TCP:[77]> <0.000010>\n"
    )
    out.write(
        f"{_head(PARENT, now)}connect(3<TCP:[77]>, {{sa_family=AF_INET, sin_port=htons(8000), "
        'sin_addr=inet_addr("127.0.0.1")}, 16) = 0 <0.000050>\n'
    )
    for i in range(count):
        now += 0.00001
        request = f"GET /item/{i} HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n"
        size = len(request.replace("\\r\\n", "  "))
        out.write(
            f'{_head(PARENT, now)}sendto({socket}, "{request}", {size}, 0, NULL, 0) = {size} <0.000010>\n'
        )
    out.write(f"{_head(PARENT, now)}close({socket}) = 0 <0.000010>\n")
    out.write(f"{_head(PARENT, now)}+++ exited with 0 +++\n")


CASES: dict[str, tuple[Callable[[TextIO, int], None], str]] = {
    "processes": (exited_processes, "exited processes"),
    "fds": (open_fds, "open descriptors"),
    "files": (distinct_files, "distinct files"),
    "pipelined": (pipelined_requests, "unanswered pipelined HTTP requests"),
}


def write_case(case: str, count: int, path: Path) -> Path:
    with open(path, "w", encoding="ascii") as out:
        CASES[case][0](out, count)
    return path


if __name__ == "__main__":
    write_case(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
