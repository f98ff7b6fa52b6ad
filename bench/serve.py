"""What `--serve` costs a replay, and what clients cost it, in one run.

    python bench/serve.py [--runs 3]

The log is `tar cf /dev/null /usr/share` traced with dockit's strace flags (as bench/run.py records it:
one process, tens of thousands of files). Timed, medians of the runs: the replay alone; with `--serve`
and no client; with `--serve` and 10 clients reading the event stream from sequence 0 as fast as they
can. Besides the wall time, the CPU seconds of dockit's own process (the pipeline; the server runs in a
process of its own): they say what clients cost the pipeline whatever else the machine does. Peak RSS
(VmHWM) of the pipeline and of the server's process: with no client, and with one client that connects
to the event stream and never reads (its socket fills; it must cost nothing but its own thread).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from run import DOCKIT, record_tar_log  # noqa: E402 - the same log as the README's replay row

URL = re.compile(rb"serving the run on (http://\S+)")


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of the process `pid` (its threads, not its children); NaN when it is gone already."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_kb(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)


def _server_pid(pid: int) -> int | None:
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"serve_process" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    return None


def replay(log: Path, out: Path, serve: bool, clients: int = 0, stalled: bool = False) -> tuple[float, float, int, int]:
    """Wall seconds of the whole replay, CPU seconds of dockit's own process, and the peak RSS in KB of
    it and of the server's process."""
    command = [*DOCKIT, "-i", str(log), "-l", str(out), "--no-decode"]
    if serve:
        command += ["--serve", "127.0.0.1:0", "--serve-after"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    threads = []
    held = []
    stderr = b""
    ended = None
    cpu = 0.0
    rss = server_rss = 0
    while True:
        line = process.stderr.readline()
        stderr += line
        if not line:
            break
        found = URL.search(line)
        if found:
            url = found.group(1).decode()
            for _ in range(clients):
                thread = threading.Thread(target=read_events, args=(url,), daemon=True)
                thread.start()
                threads.append(thread)
            if stalled:
                host, port = url.split("//")[1].strip("/").split(":")
                sock = socket.create_connection((host, int(port)))
                sock.sendall(b"GET /api/events?from=0 HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
                held.append(sock)
        if b"still serving" in line:
            ended = time.perf_counter()
            cpu, rss = _cpu_seconds(process.pid), _peak_kb(process.pid)
            for thread in threads:
                thread.join(timeout=600)
            server = _server_pid(process.pid)
            server_rss = _peak_kb(server) if server else 0
            process.send_signal(signal.SIGINT)
        elif not serve and b"wrote" in line and b".xml" in line:  # the last output: read before it exits
            cpu, rss = _cpu_seconds(process.pid), _peak_kb(process.pid)
    process.wait()
    if ended is None:
        ended = time.perf_counter()
    for sock in held:
        sock.close()
    return ended - start, cpu, rss, server_rss


def read_events(url: str) -> None:
    """A client that reads the whole stream as it comes, in large reads (not a line at a time: on two
    cores, ten Python clients splitting lines would measure their own cost, not dockit's)."""
    tail = b""
    with urllib.request.urlopen(url + "api/events?from=0", timeout=600) as stream:
        while True:
            chunk = stream.read1(1 << 16)
            if not chunk or b"\nevent: end\n" in tail + chunk:
                return
            tail = chunk[-16:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        log = record_tar_log(work)
        lines = sum(1 for _ in open(log, "rb"))
        rows = {}
        for name, kwargs in (("alone", {"serve": False}), ("--serve, no client", {"serve": True}),
                             ("--serve, 10 clients", {"serve": True, "clients": 10})):  # fmt: skip
            runs = [replay(log, work / "out", **kwargs) for _ in range(args.runs)]
            rows[name] = tuple(statistics.median(r[i] for r in runs) for i in range(4))
        rows["--serve, a client that never reads"] = replay(log, work / "out", serve=True, stalled=True)
    alone, served = rows["alone"], rows["--serve, no client"]
    print(f"replay of {lines} lines (tar cf /dev/null /usr/share), medians of {args.runs} (the stalled client: one run)")
    print("| run | wall seconds | vs alone | vs --serve, no client | dockit's CPU seconds | vs --serve, no client "
          "| peak RSS, dockit | peak RSS, server |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, (seconds, cpu, rss, server_rss) in rows.items():
        print(f"| {name} | {seconds:.2f} | {seconds / alone[0]:.2f}x | {seconds / served[0]:.2f}x | {cpu:.2f} "
              f"| {cpu / served[1]:.2f}x | {rss / 1024:.0f} MB | {server_rss / 1024:.0f} MB |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
