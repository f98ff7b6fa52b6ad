"""dockit's benchmarks, measured in one run on this machine, printed as the README's table.

    python bench/run.py [--quick] [--only NAME ...]

- replay:  replay of a strace log of `tar cf /dev/null /usr/share` recorded with dockit's flags,
           against a bare Python loop reading the same file line by line (ratio; the target is <= 3);
           with the C line splitter and without it (DOCKIT_PURE_PYTHON=1).
- startup: `dockit --version` and the replay of a 10-line log, against `python3 -c pass` (target: 150 ms).
- memory:  peak RSS replaying synthetic logs of ~100 MB and ~1 GB, of 10,000 and 100,000 HTTP
           connections, and of the growth cases of bench/growth.py (100,000 exited processes,
           1,000,000 open descriptors, 1,000,000 distinct files, 200,000 unanswered pipelined HTTP
           requests, each at a tenth of that too): it must stay flat, or bounded.
- live:    `dockit COMMAND` against the same strace command writing to a file (target: <= 1.10).
- decode:  replay of a capture with 20,000 MySQL queries, decoders on vs `--no-decode` (target: <= 1.5); and
           of 20,000 PostgreSQL queries (psycopg 3, extended then simple protocol), whose decoding cost a
           query is compared with MySQL's (target: no more).
- digest:  replay of the same 20,000 MySQL queries with the query digest (the default) vs `--no-digest`
           (target: <= 1.10), wall clock and CPU time, the runs of each interleaved; and peak RSS with
           100,000 distinct statements (the digest keeps 1,000 fingerprints: it must stay flat).
- redis:   replay of a capture with 20,000 Redis commands (redis-py: SET, GET, INCR, HGET), decoders on
           vs `--no-decode`, the cost a command compared with MySQL's a query measured in the same run
           (target: no more), and each decoder alone on its log's socket buffers.
- bridges: peak RSS replaying a ~1 GB synthetic log (file calls and HTTP connections) with each bridge
           output: `--pcap`, `--events` OCEL 2.0 JSON and `--events` CSV (streaming: it must stay flat).
- brokers: replay of an MQTT connection publishing at QoS 1, each message to a topic of its own:
           decoders on vs `--no-decode`, and peak RSS for 10,000 and 100,000 topics (it must stay flat).

Every number is a median of several runs, wall clock (with and without the C line splitter: run in
turns); the ratios are what the README shows. Where
valgrind is installed, the rows that compare two ways of running dockit also give the ratio of the
instructions each executes (callgrind, on a shorter input as it runs ~50 times slower): the same on a
busy machine as on a quiet one, where wall time swings with the other processes' load.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dockit_core.ingest.tracers import STRACE_CLASSES, STRING_LIMIT  # noqa: E402

STRACE_FLAGS = ["-f", "-q", "-ttt", "-T", "-yy", "-s", str(STRING_LIMIT), "-e", f"trace={STRACE_CLASSES}"]
DOCKIT = [sys.executable, "-m", "dockit_core.cli"]
PACKAGES = ("dockit_core", "decoders", "protocols")
PURE = {"DOCKIT_PURE_PYTHON": "1"}  # refuses the C line splitter (dockit_core/ingest/accelerator.py)


def instruction_count(command: list[str], env: dict[str, str] | None = None) -> int | None:
    """Instructions a command executes, counted by callgrind; None without valgrind. Counted, not
    timed: the number does not move with the machine's load."""
    if shutil.which("valgrind") is None:
        return None
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                            env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, check=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    return int(found.group(1)) if found else None


def counted(a: int | None, b: int | None) -> str:
    """`a` vs `b` instructions, as a ratio; empty without valgrind."""
    if a is None or b is None:
        return ""
    return f"; instructions {a / 1e9:.2f} G vs {b / 1e9:.2f} G: **{a / b:.2f}x**"


def accelerated() -> bool:
    from dockit_core.ingest import accelerator

    return accelerator.MODULE is not None


def timed(command: list[str], **kwargs: object) -> tuple[float, int]:
    """Wall seconds and peak RSS (KB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(after, before)


def peak_rss(command: list[str]) -> int:
    """Peak RSS in KB of a command, from GNU time (ru_maxrss of children is a running maximum)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, check=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    return int(result.stderr.strip().splitlines()[-1])


def median_time(command: list[str], runs: int, **kwargs: object) -> float:
    return statistics.median(timed(command, **kwargs)[0] for _ in range(runs))


def paired_medians(first: list[str], second: list[str], runs: int, second_env: dict[str, str]) -> tuple[float, float]:
    """Median wall seconds of two commands run in turns (first, second, first...), so that a change in
    the machine's load weighs on both alike."""
    env = dict(os.environ, **second_env)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        times[0].append(timed(first)[0])
        times[1].append(timed(second, env=env)[0])
    return statistics.median(times[0]), statistics.median(times[1])


def bare_loop_seconds(path: Path, runs: int) -> float:
    def once() -> float:
        start = time.perf_counter()
        with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as stream:
            for _line in stream:
                pass
        return time.perf_counter() - start

    return statistics.median(once() for _ in range(runs))


def regex_loop_seconds(path: Path, runs: int) -> float:
    """The bare loop plus the one regex match the parser starts each line with, and nothing else: the
    least any Python parser of these lines costs."""
    from dockit_core.ingest.strace_parser import _COMPLETE_CALL

    match = _COMPLETE_CALL.match

    def once() -> float:
        start = time.perf_counter()
        with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as stream:
            for line in stream:
                match(line, 0, len(line) - 1)
        return time.perf_counter() - start

    return statistics.median(once() for _ in range(runs))


def record_tar_log(work: Path) -> Path:
    log = work / "tar.strace.log"
    subprocess.run(["strace", *STRACE_FLAGS, "-o", str(log), "tar", "cf", "/dev/null", "/usr/share"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return log


def bench_replay(work: Path, runs: int) -> list[tuple[str, str, str]]:
    log = record_tar_log(work)
    lines = sum(1 for _ in open(log, encoding="utf-8", errors="surrogateescape"))
    bare = bare_loop_seconds(log, runs)
    replay_command = DOCKIT + ["-i", str(log), "-l", str(work / "tar-out"), "--no-decode"]
    pure_command = DOCKIT + ["-i", str(log), "-l", str(work / "tar-pure"), "--no-decode"]
    if accelerated():
        replay, pure = paired_medians(replay_command, pure_command, runs, PURE)
    else:
        replay = median_time(replay_command, runs)
    regex = regex_loop_seconds(log, runs)
    startup = median_time([sys.executable, "-c", "import dockit_core.cli, dockit_core.cli.session"], runs, cwd=ROOT)
    rows = [
        ("replay, tar cf /dev/null /usr/share", f"{lines} lines, {log.stat().st_size / 1e6:.0f} MB",
         f"{replay:.2f} s vs bare loop {bare:.3f} s: **{replay / bare:.0f}x** (target 3x)"),
    ]
    if accelerated():
        head = work / "tar-head.log"  # callgrind's input: the log's first 20,000 lines
        with open(log, "rb") as source, open(head, "wb") as out:
            out.writelines(itertools.islice(source, 20_000))
        command = DOCKIT + ["-i", str(head), "-l", str(work / "tar-head"), "--no-decode"]
        rows.append(("same, in pure Python vs with the C line splitter", "same log (instructions: its first 20,000 lines)",
                     f"{pure:.2f} s vs {replay:.2f} s: **{pure / replay:.2f}x**"
                     + counted(instruction_count(command, PURE), instruction_count(command))))
    else:
        rows.append(("same, with the C line splitter", "not built here", "not measured"))
    return rows + [
        ("floor: the bare loop and one regex match a line", "same log, no event built",
         f"{regex:.3f} s: **{regex / bare:.0f}x** the bare loop"),
        ("floor: starting Python and importing dockit's pipeline", "no log read",
         f"{startup:.3f} s: **{startup / bare:.1f}x** the bare loop"),
    ]


def bench_startup(work: Path, runs: int) -> list[tuple[str, str, str]]:
    """What a user waits for before dockit does anything: Python's own start, then dockit's imports."""
    log = work / "ten.strace.log"
    with open(ROOT / "captures/pipeline.strace.24957.log", "rb") as source, open(log, "wb") as out:
        out.writelines(itertools.islice(source, 10))
    runs = max(runs * 2, 3)  # short runs: more of them
    bare_command = [sys.executable, "-c", "pass"]
    version_command = DOCKIT + ["--version"]
    replay_command = DOCKIT + ["-i", str(log), "-l", str(work / "ten-out")]
    bare = median_time(bare_command, runs)
    version = median_time(version_command, runs)
    replay = median_time(replay_command, runs)
    bare_count = instruction_count(bare_command)
    return [
        ("start-up: `dockit --version`", "vs `python3 -c pass` (the same interpreter)",
         f"{version * 1000:.0f} ms vs {bare * 1000:.0f} ms (target 150 ms)"
         + counted(instruction_count(version_command), bare_count)),
        ("start-up: replay of a 10-line log", "vs `python3 -c pass`",
         f"{replay * 1000:.0f} ms vs {bare * 1000:.0f} ms (target 150 ms)"
         + counted(instruction_count(replay_command), bare_count)),
    ]


def synthetic_log(path: Path, megabytes: int, seed_log: Path) -> Path:
    """A long log made of one real process's calls repeated: same fds, same files, new times."""
    seed = [line for line in open(seed_log, encoding="utf-8", errors="surrogateescape")
            if "exited with" not in line and "execve(" not in line]
    block = "".join(seed).encode("utf-8", "surrogateescape")
    target = megabytes * 1024 * 1024
    with open(path, "wb") as out:
        written = 0
        while written < target:
            out.write(block)
            written += len(block)
    return path


def bench_memory(work: Path, sizes: list[int]) -> list[tuple[str, str, str]]:
    seed = work / "seed.strace.log"
    script = "import socket,os\nfor i in range(200):\n    open('/etc/hostname').read()\n    os.stat('/tmp')\n"
    subprocess.run(["strace", *STRACE_FLAGS, "-o", str(seed), sys.executable, "-c", script], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    for megabytes in sizes:
        log = synthetic_log(work / f"synthetic-{megabytes}.log", megabytes, seed)
        rss = peak_rss(DOCKIT + ["-i", str(log), "-l", str(work / f"synthetic-{megabytes}-out")])
        rows.append((f"peak memory, replay of a {megabytes} MB synthetic log", f"{log.stat().st_size / 1e6:.0f} MB",
                     f"{rss / 1024:.0f} MB peak RSS"))
        log.unlink()
    return rows


def connections_log(path: Path, connections: int) -> Path:
    """A client making `connections` HTTP requests, each on a connection of its own (new addresses,
    new inodes), as a server traced for a long time sees them."""
    with open(path, "w", encoding="ascii") as out:
        now = 1796240000.0
        for i in range(connections):
            now += 0.0001
            inode = 100000 + i
            local = f"127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:{40000 + i % 20000}"
            socket = f"3<TCP:[{local}->127.0.0.1:8000]>"
            request = f"GET /item/{i} HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n"
            size = len(request.replace("\\r\\n", "  "))
            head = f"4242  {now:.6f} "
            out.write(f"{head}socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3<TCP:[{inode}]> <0.000010>\n")
            out.write(f'{head}connect(3<TCP:[{inode}]>, {{sa_family=AF_INET, sin_port=htons(8000), '
                      f'sin_addr=inet_addr("127.0.0.1")}}, 16) = 0 <0.000050>\n')
            out.write(f'{head}sendto({socket}, "{request}", {size}, 0, NULL, 0) = {size} <0.000010>\n')
            out.write(f'{head}recvfrom({socket}, "HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok", 8192, 0, '
                      f"NULL, NULL) = 40 <0.000010>\n")
            out.write(f"{head}close({socket}) = 0 <0.000010>\n")
        out.write(f"4242  {now:.6f} +++ exited with 0 +++\n")
    return path


def bench_connections(work: Path, sizes: list[int]) -> list[tuple[str, str, str]]:
    rows = []
    for connections in sizes:
        log = connections_log(work / f"connections-{connections}.log", connections)
        rss = peak_rss(DOCKIT + ["-i", str(log), "-l", str(work / f"connections-{connections}-out")])
        rows.append((f"peak memory, replay of {connections} HTTP connections", f"{log.stat().st_size / 1e6:.0f} MB",
                     f"{rss / 1024:.0f} MB peak RSS"))
        log.unlink()
    return rows


CONNECTIONS_PER_BLOCK = 50


def bridges_log(path: Path, megabytes: int, seed_log: Path) -> Path:
    """The synthetic log of bench_memory with, after each copy of the seed, 50 HTTP connections of
    their own (new addresses, new inodes): every output has channels to write and events to log."""
    seed = [line for line in open(seed_log, encoding="utf-8", errors="surrogateescape")
            if "exited with" not in line and "execve(" not in line]
    block = "".join(seed)
    pid = seed[0].split()[0]
    target = megabytes * 1024 * 1024
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
        written, number = 0, 0
        while written < target:
            out.write(block)
            written += len(block)
            for _ in range(CONNECTIONS_PER_BLOCK):
                number += 1
                local = f"127.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}:{40000 + number % 20000}"
                fd = f"77<TCP:[{local}->127.0.0.1:8000]>"
                request = f"GET /item/{number} HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n"
                size = len(request.replace("\\r\\n", "  "))
                head = f"{pid}  1796240000.{number % 1000000:06d} "
                lines = (f"{head}socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 77<TCP:[{900000 + number}]>\n"
                         f"{head}connect(77<TCP:[{900000 + number}]>, {{sa_family=AF_INET, sin_port=htons(8000), "
                         f'sin_addr=inet_addr("127.0.0.1")}}, 16) = 0\n'
                         f'{head}sendto({fd}, "{request}", {size}, 0, NULL, 0) = {size}\n'
                         f'{head}recvfrom({fd}, "HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok", 8192, 0, '
                         f"NULL, NULL) = 40\n{head}close({fd}) = 0\n")
                out.write(lines)
                written += len(lines)
    return path


def bench_bridges(work: Path, megabytes: int) -> list[tuple[str, str, str]]:
    seed = work / "seed-bridges.strace.log"
    script = "import os\nfor i in range(200):\n    open('/etc/hostname').read()\n    os.stat('/tmp')\n"
    subprocess.run(["strace", *STRACE_FLAGS, "-o", str(seed), sys.executable, "-c", script], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = bridges_log(work / f"bridges-{megabytes}.log", megabytes, seed)
    size = f"{log.stat().st_size / 1e6:.0f} MB"
    rows = []
    plain = peak_rss(DOCKIT + ["-i", str(log), "-l", str(work / "bridges-plain")])
    rows.append((f"peak memory, replay of a {megabytes} MB log with connections, no bridge", size,
                 f"{plain / 1024:.0f} MB peak RSS"))
    for name, extra in (("--pcap", ["--pcap", str(work / "b.pcapng")]),
                        ("--events OCEL 2.0 JSON", ["--events", str(work / "b.json")]),
                        ("--events CSV", ["--events", str(work / "b.csv"), "--case", "connection"])):
        rss = peak_rss(DOCKIT + ["-i", str(log), "-l", str(work / "bridges-out"), *extra])
        output = work / extra[1]
        rows.append((f"peak memory, same log with {name}", f"{size}, wrote {output.stat().st_size / 1e6:.1f} MB",
                     f"{rss / 1024:.0f} MB peak RSS"))
        output.unlink()
    log.unlink()
    return rows


def bench_growth(work: Path, quick: bool) -> list[tuple[str, str, str]]:
    """Peak memory replaying logs that name ever more distinct objects (bench/growth.py), at a tenth of
    the size and at the size itself: flat or bounded, whatever a log names."""
    from bench.growth import CASES, write_case

    sizes = {"processes": 100_000, "fds": 1_000_000, "files": 1_000_000, "pipelined": 200_000}
    rows = []
    for case, full in sizes.items():
        if quick:
            full //= 10
        peaks = []
        for count in (full // 10, full):
            log = write_case(case, count, work / f"growth-{case}-{count}.log")
            megabytes = log.stat().st_size / 1e6
            peaks.append((count, megabytes, peak_rss(DOCKIT + ["-i", str(log), "-l", str(work / f"growth-{case}-out")])))
            log.unlink()
        (small, small_mb, small_rss), (large, large_mb, large_rss) = peaks
        rows.append((f"peak memory, {large:,} {CASES[case][1]}", f"{large_mb:.0f} MB (and {small:,}: {small_mb:.0f} MB)",
                     f"{large_rss / 1024:.0f} MB peak RSS ({small_rss / 1024:.0f} MB for {small:,})"))
    return rows


def bench_live(work: Path, runs: int) -> list[tuple[str, str, str]]:
    """strace alone, as is and pinned to one CPU: ptrace stops cost far less when the tracer and the
    program share a core, which they do under dockit because dockit keeps the other core busy."""
    command = ["tar", "cf", "/dev/null", "/usr/share/doc"]
    strace = ["strace", "--seccomp-bpf", *STRACE_FLAGS, "-o", str(work / "alone.log"), *command]
    strace_alone = median_time(strace, runs)
    strace_pinned = median_time(["taskset", "-c", "0", *strace], runs) if shutil.which("taskset") else None
    live_command = DOCKIT + ["-l", str(work / "live"), *command]
    if accelerated():
        dockit, pure = paired_medians(live_command, DOCKIT + ["-l", str(work / "live-pure"), *command], runs, PURE)
    else:
        dockit = median_time(live_command, runs)
    rows = [("live run, tar cf /dev/null /usr/share/doc", "vs the same strace command writing to a file",
             f"{dockit:.2f} s vs {strace_alone:.2f} s: **{dockit / strace_alone:.2f}x** (target 1.10x)")]
    if strace_pinned:
        rows.append(("live run, same", "vs that strace command pinned to one CPU (its fastest)",
                     f"{dockit:.2f} s vs {strace_pinned:.2f} s: **{dockit / strace_pinned:.2f}x**"))
    if accelerated():
        rows.append(("live run, same", "in pure Python vs with the C line splitter",
                     f"{pure:.2f} s vs {dockit:.2f} s: **{pure / dockit:.2f}x**"))
    return rows


def mysql_capture(work: Path, queries: int) -> Path | None:
    script = f"""
import pymysql
connection = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
with connection.cursor() as cursor:
    for i in range({queries}):
        cursor.execute("SELECT %s + 1", (i,))
        cursor.fetchall()
connection.close()
"""
    try:
        subprocess.run([sys.executable, "-c", "import pymysql; pymysql.connect(host='127.0.0.1', user='root')"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        return None
    subprocess.run(DOCKIT + ["-l", str(work / "mysql"), sys.executable, "-c", script], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return next(work.glob("mysql.strace.*.log"))


def postgres_capture(work: Path, queries: int, simple: bool) -> Path | None:
    """psycopg 3 sending `queries` statements to the machine's PostgreSQL: with its defaults (the
    extended protocol: Parse, Bind, Describe, Execute, Sync, and a prepared statement from the fifth
    execution on), or, `simple`, as Query messages with the values inlined (as PyMySQL does above)."""
    script = f"""
import psycopg
with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", sslmode="disable", autocommit=True) as conn:
    cursor = psycopg.ClientCursor(conn) if {simple} else conn.cursor()
    for i in range({queries}):
        cursor.execute("SELECT %s + 1", (i,))
        cursor.fetchall()
"""
    probe = "import psycopg; psycopg.connect(host='127.0.0.1', user='postgres', dbname='postgres', sslmode='disable')"
    try:
        subprocess.run([sys.executable, "-c", probe], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        return None
    name = "pg-simple" if simple else "pg-extended"
    subprocess.run(DOCKIT + ["-l", str(work / name), sys.executable, "-c", script], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return next(work.glob(f"{name}.strace.*.log"))


def decode_cost(work: Path, log: Path, runs: int, tag: str) -> tuple[float, float]:
    """(seconds with decoders, seconds with --no-decode) replaying `log`."""
    plain = median_time(DOCKIT + ["-i", str(log), "-l", str(work / f"{tag}-plain"), "--no-decode"], runs)
    decoded = median_time(DOCKIT + ["-i", str(log), "-l", str(work / f"{tag}-decoded")], runs)
    return decoded, plain


_DATA_CALL = re.compile(r'^\d+\s+([\d.]+) (sendto|recvfrom)\(\d+<.*?\]>, "((?:[^"\\]|\\.)*)"')


def decoder_alone(log: Path, reference: str, runs: int) -> float:
    """CPU seconds a decoder class takes on the socket buffers of `log` (read once, before timing,
    C escapes undone by Python's codec): the decoder without the rest of the pipeline."""
    import codecs
    import importlib

    from decoders.api import ChannelInfo, Chunk, Direction
    from decoders.records import Record, as_cim

    module_name, _, class_name = reference.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    chunks = []
    with open(log, errors="surrogateescape") as lines:
        for index, line in enumerate(lines):
            match = _DATA_CALL.match(line)
            if match:
                data = codecs.escape_decode(match.group(3).encode("latin-1", "surrogateescape"))[0]
                direction = Direction.OUT if match.group(2) == "sendto" else Direction.IN
                chunks.append(Chunk(data=data, direction=direction, time=float(match.group(1)), pid=1,
                                    size=len(data), call_index=index))
    channel = ChannelInfo(channel_id="bench", kind="tcp", remote="127.0.0.1:1", remote_port=1, pid=1)
    best = float("inf")
    for _ in range(runs):
        decoder = cls(channel)
        start = time.process_time()
        for chunk in chunks:
            for output in decoder.feed(chunk):
                if isinstance(output, Record):
                    as_cim(output)
        decoder.close(None)
        best = min(best, time.process_time() - start)
    return best


def bench_decode(work: Path, runs: int, queries: int) -> list[tuple[str, str, str]]:
    log = mysql_capture(work, queries)
    if log is None:
        return [("decoding overhead", "MariaDB not reachable", "not measured")]
    decoded, plain = decode_cost(work, log, runs, "m")
    mysql_per_query = (decoded - plain) / queries * 1e6
    # The same ratio in instructions, on a tenth of the queries (a capture of its own: a cut log would
    # cut a connection).
    small_folder = work / "m-small"
    small_folder.mkdir(exist_ok=True)
    small = mysql_capture(small_folder, queries // 10)
    small_counts = ""
    if small is not None:
        small_counts = counted(instruction_count(DOCKIT + ["-i", str(small), "-l", str(small_folder / "d")]),
                               instruction_count(DOCKIT + ["-i", str(small), "-l", str(small_folder / "p"), "--no-decode"]))
    # The floor: a decoder that claims every channel and does nothing (bench/null_decoder.py).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]))
    null = median_time(DOCKIT + ["-i", str(log), "-l", str(work / "m-null"), "--decoder", "null_decoder:NullDecoder"],
                       runs, env=env)
    rows = [(f"decoding, replay of {queries} MySQL queries", "decoders on vs --no-decode",
             f"{decoded:.2f} s vs {plain:.2f} s: **{decoded / plain:.2f}x** (target 2x), "
             f"{mysql_per_query:.0f} µs a query" + small_counts.replace("instructions", f"{queries // 10} queries' instructions")),
            ("same log, a decoder that does nothing", "vs --no-decode (the cost of handing bytes over)",
             f"{null:.2f} s vs {plain:.2f} s: **{null / plain:.2f}x**")]
    mysql_alone = decoder_alone(log, "decoders.mysql:MySqlDecoder", runs) / queries * 1e6
    rows.append(("the MySQL decoder alone, fed the log's socket buffers", "CPU time, best of the runs",
                 f"{mysql_alone:.0f} µs a query"))
    for simple, how in ((False, "psycopg 3, extended protocol"), (True, "psycopg 3, simple Query messages")):
        pg_log = postgres_capture(work, queries, simple)
        if pg_log is None:
            rows.append((f"decoding, replay of {queries} PostgreSQL queries", "PostgreSQL not reachable", "not measured"))
            continue
        pg_decoded, pg_plain = decode_cost(work, pg_log, runs, "pg-simple" if simple else "pg-extended")
        per_query = (pg_decoded - pg_plain) / queries * 1e6
        rows.append((f"decoding, replay of {queries} PostgreSQL queries ({how})", "decoders on vs --no-decode",
                     f"{pg_decoded:.2f} s vs {pg_plain:.2f} s: **{pg_decoded / pg_plain:.2f}x**, "
                     f"{per_query:.0f} µs a query: **{per_query / mysql_per_query:.2f}x** MySQL's"))
        alone = decoder_alone(pg_log, "decoders.postgres:PostgresDecoder", runs) / queries * 1e6
        rows.append((f"the PostgreSQL decoder alone, same log ({how})", "CPU time, best of the runs",
                     f"{alone:.0f} µs a query: **{alone / mysql_alone:.2f}x** the MySQL decoder's"))
    return rows


def cpu_and_wall(command: list[str]) -> tuple[float, float]:
    """(CPU seconds, user and system, of the child; wall seconds): CPU time is what other work on
    the machine disturbs least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def instructions(command: list[str]) -> int:
    """Instructions a command executes, counted by callgrind."""
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(re.findall(r"Collected : (\d+)", result.stderr)[-1])


def distinct_statements_log(path: Path, statements: int) -> Path:
    """One MySQL connection sending `statements` queries each on a table of its own (as many
    fingerprints), answered OK: the digest's growth case."""
    with path.open("w") as out:
        out.write("100 1700000000.000000 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3<TCP:[1]>\n")
        out.write('100 1700000000.000001 connect(3<TCP:[1]>, {sa_family=AF_INET, sin_port=htons(3306), '
                  'sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n')
        peer = "3<TCP:[127.0.0.1:40000->127.0.0.1:3306]>"
        greeting = b"\x0a10.11.0-MariaDB\x00" + b"\x01\x00\x00\x00" + b"abcdefgh\x00" + b"\xff\xf7\x21\x02\x00\xff\x81\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00mysql_native_password\x00"
        packet = len(greeting).to_bytes(3, "little") + b"\x00" + greeting
        out.write(f'100 1700000000.000002 recvfrom({peer}, "{escaped(packet)}", 16384, 0, NULL, NULL) = {len(packet)}\n')
        login = b"\x8d\xa6\x0f\x00\x00\x00\x00\x01\x21" + b"\x00" * 23 + b"root\x00\x00"
        packet = len(login).to_bytes(3, "little") + b"\x01" + login
        out.write(f'100 1700000000.000003 sendto({peer}, "{escaped(packet)}", {len(packet)}, 0, NULL, 0) = {len(packet)}\n')
        ok = b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00"
        out.write(f'100 1700000000.000004 recvfrom({peer}, "{escaped(ok)}", 16384, 0, NULL, NULL) = {len(ok)}\n')
        for i in range(statements):
            text = f"update table_{i} set hits = hits + 1 where id = {i}".encode()
            packet = (len(text) + 1).to_bytes(3, "little") + b"\x00\x03" + text
            t = 1700000001 + i * 0.001
            out.write(f'100 {t:.6f} sendto({peer}, "{escaped(packet)}", {len(packet)}, 0, NULL, 0) = {len(packet)}\n')
            reply = b"\x07\x00\x00\x01\x00\x01\x00\x02\x00\x00\x00"
            out.write(f'100 {t + 0.0002:.6f} recvfrom({peer}, "{escaped(reply)}", 16384, 0, NULL, NULL) = {len(reply)}\n')
    return path


def bench_digest(work: Path, runs: int, queries: int, sizes: list[int]) -> list[tuple[str, str, str]]:
    rows = []
    log = next(work.glob("mysql.strace.*.log"), None) or mysql_capture(work, queries)
    if log is None:
        rows.append(("digest overhead", "MariaDB not reachable", "not measured"))
    else:
        on: list[tuple[float, float]] = []
        off: list[tuple[float, float]] = []
        for _ in range(runs):  # interleaved: the machine's drift touches both alike
            off.append(cpu_and_wall(DOCKIT + ["-i", str(log), "-l", str(work / "d-off"), "--no-digest"]))
            on.append(cpu_and_wall(DOCKIT + ["-i", str(log), "-l", str(work / "d-on")]))
        cpu_on, cpu_off = (statistics.median(c for c, _ in runs_) for runs_ in (on, off))
        wall_on, wall_off = (statistics.median(w for _, w in runs_) for runs_ in (on, off))
        rows.append((f"query digest, replay of {queries} MySQL queries", "digest on vs --no-digest, CPU time",
                     f"{cpu_on:.2f} s vs {cpu_off:.2f} s: **{cpu_on / cpu_off:.3f}x** (target 1.10x), "
                     f"{(cpu_on - cpu_off) / queries * 1e6:.0f} µs a query"))
        rows.append(("same, wall clock", "digest on vs --no-digest",
                     f"{wall_on:.2f} s vs {wall_off:.2f} s: **{wall_on / wall_off:.3f}x**"))
        if shutil.which("valgrind"):  # instructions executed: what the machine's load does not change
            counts = [instructions(DOCKIT + ["-i", str(log), "-l", str(work / f"d-cg-{mode}"), *extra])
                      for mode, extra in (("on", []), ("off", ["--no-digest"]))]
            rows.append(("same, instructions (valgrind --tool=callgrind, one run each)", "digest on vs --no-digest",
                         f"{counts[0] / 1e9:.2f} G vs {counts[1] / 1e9:.2f} G: **{counts[0] / counts[1]:.3f}x**"))
    for statements in sizes:
        distinct = distinct_statements_log(work / f"distinct-{statements}.log", statements)
        rss_on = peak_rss(DOCKIT + ["-i", str(distinct), "-l", str(work / "dd-on")])
        rss_off = peak_rss(DOCKIT + ["-i", str(distinct), "-l", str(work / "dd-off"), "--no-digest"])
        rows.append((f"peak memory, replay of {statements} distinct statements",
                     f"{distinct.stat().st_size / 1e6:.0f} MB, digest on vs --no-digest",
                     f"{rss_on // 1024} MB vs {rss_off // 1024} MB peak RSS"))
    return rows


def redis_capture(work: Path, commands: int) -> Path | None:
    """redis-py sending `commands` commands, one at a time, on one connection to the machine's Redis:
    SET, GET, INCR and HGET in turn (the keys under `dockit:bench:`, deleted afterwards)."""
    script = f"""
import redis
r = redis.Redis(host="127.0.0.1", port=6379, protocol=2, single_connection_client=True)
for i in range({commands} // 4):
    r.set(f"dockit:bench:{{i % 100}}", i)
    r.get(f"dockit:bench:{{i % 100}}")
    r.incr("dockit:bench:n")
    r.hget("dockit:bench:h", "f")
"""
    probe = "import redis; redis.Redis(host='127.0.0.1', port=6379).ping()"
    try:
        subprocess.run([sys.executable, "-c", probe], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        return None
    subprocess.run(DOCKIT + ["-l", str(work / "redis"), sys.executable, "-c", script], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cleanup = "import redis; r = redis.Redis(); [r.delete(k) for k in r.scan_iter(match='dockit:bench:*')]"
    subprocess.run([sys.executable, "-c", cleanup], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return next(work.glob("redis.strace.*.log"))


def bench_redis(work: Path, runs: int, commands: int) -> list[tuple[str, str, str]]:
    """Replaying 20,000 Redis commands, decoders on vs --no-decode, per command against the MySQL
    decoder's cost per query measured in the same run (and each decoder alone on its log's buffers)."""
    mysql_log = mysql_capture(work, commands)
    log = redis_capture(work, commands)
    if mysql_log is None or log is None:
        return [(f"decoding, replay of {commands} Redis commands", "MariaDB or Redis not reachable", "not measured")]
    mysql_decoded, mysql_plain = decode_cost(work, mysql_log, runs, "rm")
    mysql_per_query = (mysql_decoded - mysql_plain) / commands * 1e6
    decoded, plain = decode_cost(work, log, runs, "redis")
    per_command = (decoded - plain) / commands * 1e6
    mysql_alone = decoder_alone(mysql_log, "decoders.mysql:MySqlDecoder", runs) / commands * 1e6
    alone = decoder_alone(log, "decoders.redis:RedisDecoder", runs) / commands * 1e6
    return [
        (f"decoding, replay of {commands} Redis commands (redis-py: SET, GET, INCR, HGET)",
         "decoders on vs --no-decode, a command vs a MySQL query (same run)",
         f"{decoded:.2f} s vs {plain:.2f} s: **{decoded / plain:.2f}x**; {per_command:.0f} µs a command vs "
         f"MySQL's {mysql_per_query:.0f} a query: **{per_command / mysql_per_query:.2f}x**"),
        ("the Redis decoder alone, fed the log's socket buffers", "CPU time, best of the runs",
         f"{alone:.0f} µs a command vs the MySQL decoder's {mysql_alone:.0f} a query: "
         f"**{alone / mysql_alone:.2f}x**"),
    ]  # fmt: skip

def bench_pipe(work: Path, runs: int) -> list[tuple[str, str, str]]:
    """Bytes no decoder claims: `tar cf - ... | cat`, a pipe of tar's output. Once detection gives the
    channel up, its bytes are counted and not unescaped (ChannelManager.ignores)."""
    log = work / "pipe.strace.log"
    sources = sorted(str(path) for path in Path("/usr/share/doc").glob("[a-d]*"))
    subprocess.run(["strace", *STRACE_FLAGS, "-o", str(log), "sh", "-c", 'tar cf - "$@" | cat > /dev/null', "sh",
                    *sources], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    decoded = [*DOCKIT, "-i", str(log), "-l", str(work / "pipe-decoded")]
    plain = [*DOCKIT, "-i", str(log), "-l", str(work / "pipe-plain"), "--no-decode"]
    decoded_time, plain_time = median_time(decoded, runs), median_time(plain, runs)
    return [("decoding, replay of a pipe no decoder claims (`tar cf - /usr/share/doc/[a-d]*` piped to `cat`)",
             f"{log.stat().st_size / 1e6:.0f} MB; decoders on vs --no-decode",
             f"{decoded_time:.2f} s vs {plain_time:.2f} s: **{decoded_time / plain_time:.2f}x**"
             + counted(instruction_count(decoded), instruction_count(plain)))]


def escaped(data: bytes) -> str:
    """Bytes as strace -x writes a buffer."""
    return "".join(f"\\x{byte:02x}" for byte in data)


def mqtt_log(path: Path, messages: int) -> Path:
    """One MQTT 3.1.1 client: CONNECT, then `messages` QoS 1 PUBLISHes to `sensors/<i>`, each acked."""
    socket = "3<TCP:[127.0.0.1:40000->127.0.0.1:1883]>"
    connect = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04bnch"
    with open(path, "w", encoding="ascii") as out:
        now = 1796240000.0
        head = "4242  {:.6f} "
        out.write(head.format(now) + "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3<TCP:[100000]> <0.000010>\n")
        out.write(head.format(now) + 'connect(3<TCP:[100000]>, {sa_family=AF_INET, sin_port=htons(1883), '
                  'sin_addr=inet_addr("127.0.0.1")}, 16) = 0 <0.000050>\n')
        out.write(head.format(now) + f'sendto({socket}, "{escaped(connect)}", {len(connect)}, 0, NULL, 0) = {len(connect)} <0.000010>\n')
        out.write(head.format(now) + f'recvfrom({socket}, "\\x20\\x02\\x00\\x00", 8192, 0, NULL, NULL) = 4 <0.000010>\n')
        for i in range(messages):
            now += 0.0001
            topic = f"sensors/{i}".encode()
            packet_id = (i % 65535 + 1).to_bytes(2, "big")
            body = len(topic).to_bytes(2, "big") + topic + packet_id + b"21.5 C"
            publish = bytes([0x32, len(body)]) + body
            puback = b"\x40\x02" + packet_id
            out.write(head.format(now) + f'sendto({socket}, "{escaped(publish)}", {len(publish)}, 0, NULL, 0) = {len(publish)} <0.000010>\n')
            out.write(head.format(now) + f'recvfrom({socket}, "{escaped(puback)}", 8192, 0, NULL, NULL) = 4 <0.000010>\n')
        out.write(head.format(now) + f"close({socket}) = 0 <0.000010>\n")
        out.write(head.format(now) + "+++ exited with 0 +++\n")
    return path


def bench_brokers(work: Path, runs: int, sizes: list[int]) -> list[tuple[str, str, str]]:
    rows = []
    log = mqtt_log(work / "mqtt-decode.log", sizes[0])
    plain = median_time(DOCKIT + ["-i", str(log), "-l", str(work / "q-plain"), "--no-decode"], runs)
    decoded = median_time(DOCKIT + ["-i", str(log), "-l", str(work / "q-decoded")], runs)
    rows.append((f"decoding, replay of {sizes[0]} MQTT QoS 1 publishes", "decoders on vs --no-decode",
                 f"{decoded:.2f} s vs {plain:.2f} s: **{decoded / plain:.2f}x** ({(decoded - plain) / sizes[0] * 1e6:.0f} µs a message)"))
    for messages in sizes:
        log = mqtt_log(work / f"mqtt-{messages}.log", messages)
        rss = peak_rss(DOCKIT + ["-i", str(log), "-l", str(work / f"mqtt-{messages}-out")])
        rows.append((f"peak memory, replay of {messages} MQTT messages to as many topics",
                     f"{log.stat().st_size / 1e6:.0f} MB", f"{rss / 1024:.0f} MB peak RSS"))
        log.unlink()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller logs")
    parser.add_argument("--only", nargs="*",
                        choices=["replay", "startup", "memory", "live", "decode", "digest", "bridges", "brokers", "redis"])
    args = parser.parse_args()
    if shutil.which("strace") is None:
        print("bench: strace is not installed (apt-get install strace)", file=sys.stderr)
        return 2
    runs = 1 if args.quick else 5  # this machine's speed drifts by a third from run to run
    # Timed as pip installs it: byte-compiled (with PYTHONDONTWRITEBYTECODE set, each run would
    # compile every module again and the startup would count several times over).
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(ROOT / name) for name in PACKAGES)], check=True)
    chosen = set(args.only or ["replay", "startup", "memory", "live", "decode", "digest", "bridges", "brokers", "redis"])
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="dockit-bench-") as folder:
        work = Path(folder)
        os.chdir(work)
        if "replay" in chosen:
            rows += bench_replay(work, runs)
        if "startup" in chosen:
            rows += bench_startup(work, runs)
        if "memory" in chosen:
            rows += bench_memory(work, [20, 100] if args.quick else [100, 1024])
            rows += bench_connections(work, [1000, 10000] if args.quick else [10000, 100000])
            rows += bench_growth(work, args.quick)
        if "live" in chosen:
            rows += bench_live(work, runs)
        if "decode" in chosen:
            rows += bench_decode(work, runs, 2000 if args.quick else 20000)
            rows += bench_pipe(work, runs)
        if "digest" in chosen:
            rows += bench_digest(work, runs, 2000 if args.quick else 20000, [10000, 100000])
        if "redis" in chosen:
            rows += bench_redis(work, runs, 2000 if args.quick else 20000)
        if "bridges" in chosen:
            for megabytes in [20, 100] if args.quick else [100, 1024]:
                rows += bench_bridges(work, megabytes)
        if "brokers" in chosen:
            rows += bench_brokers(work, runs, [2000, 10000] if args.quick else [10000, 100000])
    print("| benchmark | input | result |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
