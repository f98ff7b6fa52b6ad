"""What `--serve` costs a replay, and what clients cost it, in one run.

    python bench/serve.py [--runs 3]

The log is `tar cf /dev/null /usr/share` traced with dockit's strace flags (as bench/run.py records it:
one process, tens of thousands of files). Timed, medians of the runs: the replay alone; with `--serve`
and no client; with `--serve` and 10 clients reading the event stream from sequence 0 as fast as they
can. Peak RSS (GNU time): `--serve` with no client, and with one client that connects to the event
stream and never reads (its socket fills; it must cost nothing but its own thread).
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


def replay(log: Path, out: Path, serve: bool, clients: int = 0, stalled: bool = False) -> tuple[float, int]:
    """Wall seconds of the whole replay and peak RSS in KB."""
    command = ["/usr/bin/time", "-f", "%M", *DOCKIT, "-i", str(log), "-l", str(out), "--no-decode"]
    if serve:
        command += ["--serve", "127.0.0.1:0", "--serve-after"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    threads = []
    held = []
    stderr = b""
    ended = None
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
            for thread in threads:
                thread.join(timeout=600)
            # Ctrl-C to dockit itself: GNU time, its parent here, does not pass SIGINT on
            for child in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split():
                os.kill(int(child), signal.SIGINT)
    process.wait()
    if ended is None:
        ended = time.perf_counter()
    for sock in held:
        sock.close()
    rss = int(stderr.strip().splitlines()[-1])
    return ended - start, rss


def read_events(url: str) -> None:
    with urllib.request.urlopen(url + "api/events?from=0", timeout=600) as stream:
        for raw in stream:
            if raw.startswith(b"event: end"):
                return


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
            rows[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        stalled = replay(log, work / "out", serve=True, stalled=True)
    alone = rows["alone"][0]
    print(f"replay of {lines} lines (tar cf /dev/null /usr/share), medians of {args.runs}")
    print("| run | seconds | ratio to the replay alone | peak RSS |")
    print("|---|---|---|---|")
    for name, (seconds, rss) in rows.items():
        print(f"| {name} | {seconds:.2f} | {seconds / alone:.2f}x | {rss / 1024:.0f} MB |")
    print(f"| --serve, a client that never reads | {stalled[0]:.2f} | {stalled[0] / alone:.2f}x | {stalled[1] / 1024:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
