"""The process watch's cost on a busy machine, beside forkstat (the tool people use for this), in one run.

    python bench/watch.py [--processes 1000] [--runs 5]

A loop of N short processes (`/bin/true`, run by a user made for the benchmark, so that every one of
them matches the watch) is timed alone, under `dockit -u USER`, and under `forkstat -e all`. Printed:
the loop's wall time in each case (median of the runs), its ratio to the loop alone, and the CPU time
the watcher itself used (user + system, from /proc), per process of the loop. Needs root (useradd, the
process connector); forkstat is optional (Debian package `forkstat`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process and its reaped children, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def loop_seconds(user: str, processes: int) -> float:
    script = f"i=0; while [ $i -lt {processes} ]; do /bin/true; i=$((i+1)); done"
    start = time.perf_counter()
    subprocess.run(["runuser", "-u", user, "--", "sh", "-c", script], check=True)
    return time.perf_counter() - start


def watched(command: list[str], user: str, processes: int, ready: str | None) -> tuple[float, float]:
    """The loop's wall time while `command` watches, and the watcher's CPU seconds meanwhile."""
    watcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert watcher.stderr is not None
    if ready:
        line = watcher.stderr.readline()
        assert ready in line, line
    else:
        time.sleep(1.0)
    before = cpu_seconds(watcher.pid)
    seconds = loop_seconds(user, processes)
    time.sleep(0.5)  # the watcher catches up with the last events
    used = cpu_seconds(watcher.pid) - before
    watcher.send_signal(signal.SIGINT)
    watcher.communicate(timeout=120)
    return seconds, used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("bench/watch.py needs root (useradd, the process connector)\n")
        return 2
    user = "dkb" + secrets.token_hex(2)
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", user], check=True)
    out_dir = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = env_path
    dockit = [sys.executable, "-m", "dockit_core.cli", "-u", user, "-l", str(out_dir / "bench")]
    rows: dict[str, list[tuple[float, float]]] = {"alone": [], "dockit": [], "forkstat": []}
    try:
        for _ in range(args.runs):
            rows["alone"].append((loop_seconds(user, args.processes), 0.0))
            rows["dockit"].append(watched(dockit, user, args.processes, "watching processes"))
            if shutil.which("forkstat"):
                rows["forkstat"].append(watched(["forkstat", "-e", "all"], user, args.processes, None))
    finally:
        subprocess.run(["userdel", user], check=False)
        shutil.rmtree(out_dir, ignore_errors=True)
    alone = statistics.median(s for s, _ in rows["alone"])
    print(f"| watcher | loop of {args.processes} processes | ratio to the loop alone | watcher CPU per process |")
    print("|---|---|---|---|")
    print(f"| none | {alone:.2f} s | 1.00x | - |")
    for name in ("dockit", "forkstat"):
        if not rows[name]:
            continue
        seconds = statistics.median(s for s, _ in rows[name])
        cpu = statistics.median(c for _, c in rows[name])
        print(f"| {name} | {seconds:.2f} s | {seconds / alone:.2f}x | {1e6 * cpu / args.processes:.0f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
