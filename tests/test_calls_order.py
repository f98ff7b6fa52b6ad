"""The calls file in order of start, and searches folded: real programs traced live and captures replayed.

Expected values come from the raw log dockit wrote (the failed opens of one file name, folder by folder,
counted by a regex here), never from the aggregator itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockit_core.cli.session import Options, OutputPaths, TraceSession
from dockit_core.outputs.calls.blocks import BlockAggregator
from dockit_core.outputs.calls.start_order import StartOrder
from dockit_core.outputs.summary.objects import RunContext
from tests.conftest import mariadb_listening

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
SURVOL = REPO.parent / "shared/captures/survol"
# A failed open in a log: strace's `openat(AT_FDCWD, "/x/libfoo.so", ...) = -1 ENOENT`, or ltrace -S's
# `SYS_openat(-100, "/x/libfoo.so", ...) = -2`.
FAILED_OPEN = re.compile(r'(?:SYS_)?openat\([^,]+, "([^"]+)", [^)]*\) = (?:-1 ENOENT|-2 )')


def dockit(tmp_path: Path, *args: str) -> tuple[list[dict], Path]:
    """`dockit -f JSON -l PREFIX ARGS...`: the calls file's blocks and the raw log."""
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-f", "JSON", "-l", str(tmp_path / "run"), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [calls] = [p for p in tmp_path.glob("run*.json")]
    logs = list(tmp_path.glob("run*.log"))
    return json.loads(calls.read_text()), (logs[0] if logs else Path())


def probed_folders(log: Path, name: str) -> list[str]:
    """The folders where the log shows a failed open of `name`, in order."""
    text = log.read_text(errors="replace")
    return [os.path.dirname(path) for path in FAILED_OPEN.findall(text) if os.path.basename(path) == name]


def starts_in_order(blocks: list[dict]) -> bool:
    starts = [b["start"] for b in blocks]
    return starts == sorted(starts)


def test_mariadb_capture_search_and_order(tmp_path) -> None:
    """The committed `mariadb` ltrace capture: 442 calls in 35 blocks (106 before searches were
    folded); libnss_db.so.2 is looked for in 44 folders, one block of 88 calls (an openat and a
    newfstatat per folder), and the blocks come in the order they started."""
    log = CAPTURES / "mariadb_select.ltrace.11344.log"
    blocks, _ = dockit(tmp_path, "-i", str(log))
    folders = probed_folders(log, "libnss_db.so.2")
    assert len(folders) == 44 and len(set(folders)) == 36  # the loader tries some folders twice
    [search] = [b for b in blocks if b["kind"] == "search"]
    assert (search["target"], search["calls"], search["call_counts"]) == (
        "libnss_db.so.2",
        2 * len(folders),
        {"openat": 44, "newfstatat": 44},
    )
    assert search["summary"].startswith(
        f"search libnss_db.so.2, 44 tries in {folders[0]} ... {folders[-1]}: 88 calls"
    )
    assert sum(b["calls"] for b in blocks) == 442
    assert len(blocks) == 35
    assert starts_in_order(blocks)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_ld_library_path_search_live(tmp_path) -> None:
    """`ls` with LD_LIBRARY_PATH naming three folders (two exist, empty): the loader looks for each of
    its libraries in them (and their hwcaps and tls subfolders) before ld.so.cache finds it; each
    library's search is one block, whose folders are those the log shows, and the library's file
    block follows it."""
    empty = [tmp_path / "lib1", tmp_path / "lib2"]
    for folder in empty:
        folder.mkdir()
    env_path = ":".join(str(p) for p in [*empty, tmp_path / "absent"])
    os.environ["LD_LIBRARY_PATH"] = env_path
    try:
        blocks, log = dockit(tmp_path, "/usr/bin/ls", str(tmp_path))
    finally:
        del os.environ["LD_LIBRARY_PATH"]
    searches = [b for b in blocks if b["kind"] == "search" and b["pid"] == blocks[0]["pid"]]
    assert searches, [b["summary"] for b in blocks]
    for search in searches:
        folders = probed_folders(log, search["target"])
        assert search["call_counts"]["openat"] == len(folders) > 1
        assert search["summary"].startswith(
            f"search {search['target']}, {len(folders)} tries in {folders[0]} "
        )
        assert all(f.startswith(str(tmp_path)) for f in folders)
        # then the library, found through ld.so.cache (read first, when the search was the first)
        after = [b["target"] for b in blocks[blocks.index(search) + 1 : blocks.index(search) + 3]]
        assert any(os.path.basename(t or "").startswith(search["target"]) for t in after), after
    assert {s["target"] for s in searches} >= {"libselinux.so.1", "libc.so.6"}
    assert starts_in_order(blocks)


@pytest.mark.skipif(
    shutil.which("mariadb") is None or not mariadb_listening(), reason="needs mariadb and its server"
)
@pytest.mark.parametrize("tracer", ["strace", "ltrace"])
def test_mariadb_live(tmp_path, tracer: str) -> None:
    """`mariadb -e 'select 1'` traced live: the nsswitch lookup's search for libnss_db.so.2 is one
    block (76 folders on this machine, 2 calls each), and the whole run is about 35 blocks where it was
    about 150 before (the count depends on the machine; the search's folders are the log's)."""
    if tracer == "ltrace" and shutil.which("ltrace") is None:
        pytest.skip("ltrace is not installed")
    blocks, log = dockit(
        tmp_path, "-t", tracer, "mariadb", "-h", "127.0.0.1", "-u", "root", "-e", "select 1", "test"
    )
    folders = probed_folders(log, "libnss_db.so.2")
    [search] = [b for b in blocks if b["kind"] == "search" and b["target"] == "libnss_db.so.2"]
    assert search["call_counts"]["openat"] == len(folders) > 10
    assert len(blocks) < 60
    assert starts_in_order(blocks)


@pytest.mark.skipif(
    not (SURVOL / "dockit_find_grep.strace.log").exists(), reason="the survol captures are absent"
)
def test_start_order_window_bounds_memory() -> None:
    """The reorder window holds at most its size: replaying the 15,000-call `find | grep` capture
    through a window of 8, the output has every block, held never passes 8, and the blocks that ended
    more than 8 blocks after they started are the only ones out of order (`late`)."""
    log = SURVOL / "dockit_find_grep.strace.log"
    out: list[tuple[float, int]] = []
    order = StartOrder(lambda block: out.append((block.start or 0.0, block.first_line)), window=8)
    aggregator = BlockAggregator(order.push)
    most = 0

    def observe(call, process, info, annotations):  # type: ignore[no-untyped-def]
        nonlocal most
        aggregator(call, process, info, annotations)
        most = max(most, order.held())

    session = TraceSession(
        Options(write_calls=False),
        RunContext(),
        OutputPaths("/nonexistent/x"),
        default_pid=0,
        call_observers=[observe],
    )
    with log.open(encoding="utf-8", errors="surrogateescape") as stream:
        session.feed_lines(stream)
    session.tracker.finish()
    aggregator.finish()
    order.flush()
    assert len(out) == aggregator.blocks_out > 100
    assert most <= 8
    disorder = sum(1 for a, b in zip(out, out[1:], strict=False) if b < a)
    assert 0 < order.late and disorder <= order.late
    # the same replay with the default window: in order
    ordered: list[tuple[float, int]] = []
    order = StartOrder(lambda block: ordered.append((block.start or 0.0, block.first_line)))
    aggregator = BlockAggregator(order.push)
    session = TraceSession(
        Options(write_calls=False),
        RunContext(),
        OutputPaths("/nonexistent/x"),
        default_pid=0,
        call_observers=[lambda c, p, i, a: aggregator(c, p, i, a)],
    )
    with log.open(encoding="utf-8", errors="surrogateescape") as stream:
        session.feed_lines(stream)
    session.tracker.finish()
    aggregator.finish()
    order.flush()
    assert ordered == sorted(ordered) and sorted(ordered) == sorted(out)
