"""Writes the fuzzing corpus (tests/test_fuzz.py's seeds) from the captures this project recorded and
the original dockit's (../shared/captures/survol, when present), plus the crafted inputs of issue 17.

    python tests/fuzz_corpus/make.py

- `lines.txt`: trace lines, a few of each kind (calls of every handler, resumed, unfinished, exits,
  signals, ltrace's forms), from every capture, and the crafted ones.
- `ini/*.ini`: the captures' .ini files, and damaged ones.
- `filters.txt`: `-s` arguments.
- `decoder-NAME-N.bin`: what each built-in decoder was fed on one channel of a capture, as records of
  a direction byte (0 out, 1 in), a 4-byte little-endian length and the bytes (at most 16 chunks, 4 KB
  each).

Seeds are small by construction (the whole corpus stays under 300 KB); run this again when the
captures change, and commit what it writes.
"""

from __future__ import annotations

import re
import shutil
import struct
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from decoders.api import Chunk, Direction  # noqa: E402
from decoders.registry import BUILTIN_DECODERS, Registry, load_reference  # noqa: E402

SURVOL = REPO.parent / "shared/captures/survol"
MAX_LINES_PER_KIND = 4
MAX_LINE = 600
MAX_CHUNKS = 16
MAX_CHUNK = 4096
MAX_CHANNELS_PER_DECODER = 6

CRAFTED_LINES = [
    '100 1.1 read(4</etc/shadow->, "x", 1) = 1',
    '4242 1700000000.000002 read(3</opt/../../../../../../etc/hostname>, "x", 1) = 1',
    '4242 1700000000.000003 openat(AT_FDCWD, "//etc/gshadow", O_RDONLY) = 3<//etc/gshadow>',
    "4242 1700000000.000004 +++ exited with 0 +++",
    "4242 1700000000.000005 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>",
    "4242 1700000000.000006 <... clone resumed>) = 200",
    '200 1700000000.000007 execve("/usr/bin/prog1", ["prog1"], 0x7ffd /* 4 vars */) = 0',
    "200 1700000000.000008 +++ killed by SIGKILL (core dumped) +++",
    '4242 1700000000.000009 execve("/bin/sh", ["sh", "-c", "MYSQL_PWD=x mariadb -pY"], 0x1 /* 1 vars */) = 0',
    '4242 1700000000.000010 sendto(3<TCP:[127.0.0.1:4000->127.0.0.1:80]>, "GET / HTTP/1.1\\r\\n\\r\\n", 18, 0, NULL, 0) = 18',
    "% time     seconds  usecs/call     calls    errors syscall",
    "------ ----------- ----------- --------- --------- ----------------",
    "9" * 200 + " 1.0 close(3) = 0",
    "4242 1700000000.000011 foo(" + " = " * 50,
]
FILTERS = [
    "CIM_Process",
    'CIM_DataFile:Category=["Others","Shared libraries"]',
    "CIM_DataFile:Category=['System config files']",
    "Dockit_SqlQuery:Status=error,Protocol=mysql",
    "Dockit_Socket:Family=(tcp,udp)",
    "CIM_Process:Handle=4242",
    "Bogus",
    "CIM_Process:Handle=" + "[" * 40,
    "__import__('os').system('x'):A=1",
]
DAMAGED_INI = {
    "crlf.ini": "CurrentDate=2026-01-01\rRUN touch /x\nCurrentHostname=vm\r\nTopProcessId=4242\n",
    "deep.ini": "CommandLine=" + "[" * 500 + "\nTopProcessId=\u00b2\n",
    "quoted.ini": 'CurrentDirectory="/srv/a\\nb"\nEnv.X="\\r\\u0000"\nAttachedThreads=1 2 x 99999999999\n',
}


def line_kind(line: str) -> str:
    """A coarse kind, so that the corpus has some of each and not thousands of one."""
    if "resumed>" in line:
        return "resumed"
    if "<unfinished" in line:
        return "unfinished"
    if "+++" in line or "---" in line:
        return line.split("+++")[-1][:12] if "+++" in line else "signal"
    match = re.search(r"([A-Za-z_][\w@.]*(?:->[\w@.]+)?)\(", line)
    return match.group(1) if match else "other"


def logs() -> list[Path]:
    found = sorted((REPO / "captures").glob("*.log"))
    if SURVOL.is_dir():
        found += sorted(SURVOL.glob("*.log"))
    return found


def write_lines() -> None:
    chosen: dict[str, list[str]] = defaultdict(list)
    for log in logs():
        for line in log.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
            if len(line) > MAX_LINE:
                continue
            kind = line_kind(line)
            if len(chosen[kind]) < MAX_LINES_PER_KIND and line not in chosen[kind]:
                chosen[kind].append(line)
    lines = [line for kind in sorted(chosen) for line in chosen[kind]] + CRAFTED_LINES
    text = "\n".join(lines) + "\n"
    (HERE / "lines.txt").write_bytes(text.encode("utf-8", "surrogateescape"))


def write_ini() -> None:
    folder = HERE / "ini"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for log in logs():
        ini = log.with_suffix(".ini")
        if ini.exists() and ini.stat().st_size < 4096:
            shutil.copy(ini, folder / f"{log.parent.name}-{ini.name}")
    for name, text in DAMAGED_INI.items():
        (folder / name).write_text(text)


def write_filters() -> None:
    (HERE / "filters.txt").write_text("\n".join(FILTERS) + "\n")


def write_decoder_seeds() -> None:
    """Replay the captures with each built-in decoder wrapped to record what it is fed."""
    from dockit_core.cli.options import Options, OutputPaths
    from dockit_core.cli.session import TraceSession
    from dockit_core.outputs.summary.objects import RunContext

    fed: dict[str, dict[str, list[Chunk]]] = defaultdict(dict)

    def recording(cls):  # type: ignore[no-untyped-def]
        def feed(self, chunk):  # type: ignore[no-untyped-def]
            channel = fed[cls.name].setdefault(self.channel.channel_id + str(id(self)), [])
            if len(channel) < MAX_CHUNKS:
                channel.append(chunk)
            return cls.feed(self, chunk)

        return type(f"Recording{cls.__name__}", (cls,), {"feed": feed})

    classes = [recording(load_reference(reference)) for reference in BUILTIN_DECODERS]
    scratch = HERE / ".scratch"
    scratch.mkdir(exist_ok=True)
    try:
        for log in logs():
            registry = Registry(classes)
            session = TraceSession(Options(write_calls=False), RunContext(), OutputPaths(str(scratch / "x")),
                                   registry=registry)  # fmt: skip
            with open(log, encoding="utf-8", errors="surrogateescape", newline="\n") as stream:
                session.feed_lines(stream)
            session.finish()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for old in HERE.glob("decoder-*.bin"):
        old.unlink()
    for name, channels in sorted(fed.items()):
        for number, chunks in enumerate(list(channels.values())[:MAX_CHANNELS_PER_DECODER]):
            records = b"".join(
                struct.pack("<BI", 0 if c.direction is Direction.OUT else 1, len(c.data[:MAX_CHUNK]))
                + c.data[:MAX_CHUNK]
                for c in chunks
                if c.data
            )
            if records:
                (HERE / f"decoder-{name}-{number}.bin").write_bytes(records)


if __name__ == "__main__":
    write_lines()
    write_ini()
    write_filters()
    write_decoder_seeds()
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"corpus: {size} bytes in {HERE}")
