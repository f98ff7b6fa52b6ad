"""The optional C line splitter (dockit_core/ingest/_linesplit.c) is really what runs where it can be
built, it is built from the source in the tree, and it changes no byte of any output.

`python3 -m pytest -q tests/test_accelerator.py` is the CI's second pass (.ci/run): every capture of
captures/ and of the original tool's captures (../shared/captures/survol/) replayed with the accelerator
and with `DOCKIT_PURE_PYTHON=1`, the summary and the calls file compared byte for byte.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import CAPTURES, REPO, SURVOL

SOURCE = REPO / "dockit_core/ingest/_linesplit.c"
COMPILER = shutil.which("cc") or shutil.which("gcc")
HEADERS = Path(sysconfig.get_paths()["include"], "Python.h").exists()
PURE = {"DOCKIT_PURE_PYTHON": "1"}


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKIT_PURE_PYTHON"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def accelerator_state(**extra: str) -> list[str]:
    """What a fresh interpreter loads: the parser's state line, and the compiled source's digest."""
    code = (
        "from dockit_core.ingest import accelerator as a\n"
        "print(a.STATE)\n"
        "print(a.MODULE.SOURCE_SHA256 if a.MODULE else '-')\n"
        "print(a.MODULE.__file__ if a.MODULE else '-')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment(**extra), capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


@pytest.mark.skipif(not (COMPILER and HEADERS), reason="no C compiler or no Python headers: nothing to build")
def test_the_compiled_splitter_is_loaded_and_built_from_this_source() -> None:
    state, digest, path = accelerator_state()
    assert state == "the C line splitter", (
        f"a C compiler is here but dockit reads lines with {state}: `pip install -e .` (setup.sh) builds it"
    )
    assert Path(path).resolve().parent == SOURCE.parent, path  # this tree's build, not another checkout's
    assert digest == hashlib.sha256(SOURCE.read_bytes()).hexdigest(), (
        f"{path} was built from another version of {SOURCE.name}: rebuild it (`pip install -e .`)"
    )


def test_the_variable_refuses_it() -> None:
    assert accelerator_state(**PURE)[0] == "pure Python (DOCKIT_PURE_PYTHON is set)"


def capture_logs() -> list[Path]:
    logs = sorted(CAPTURES.glob("*.log")) + sorted(CAPTURES.glob("*.log.gz"))
    if SURVOL.is_dir():
        logs += sorted(SURVOL.glob("*.log"))
    return logs


@pytest.mark.parametrize("log", capture_logs(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_both_paths_write_the_same_bytes(log: Path, tmp_path: Path) -> None:
    """One replay with the accelerator, one without, side by side: the same summary, the same calls."""
    runs = {}
    for name, extra in (("accelerated", {}), ("pure", PURE)):
        (tmp_path / name).mkdir()
        runs[name] = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "-v", "-i", str(log), "-l", f"{tmp_path / name}/"],
            env=environment(**extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    stderr = {name: run.communicate(timeout=300)[1].decode("utf-8", "replace") for name, run in runs.items()}
    for name, run in runs.items():
        assert "Traceback" not in stderr[name], stderr[name]
        assert run.returncode == 0, stderr[name]
    assert "lines read by pure Python" in stderr["pure"]
    if COMPILER and HEADERS:
        assert "lines read by the C line splitter" in stderr["accelerated"], stderr["accelerated"]
    written = sorted(path.name for path in (tmp_path / "accelerated").iterdir())
    assert any(name.endswith(".xml") for name in written) and any(name.endswith(".txt") for name in written)
    assert written == sorted(path.name for path in (tmp_path / "pure").iterdir())
    for name in written:
        accelerated, pure = (tmp_path / "accelerated" / name), (tmp_path / "pure" / name)
        if accelerated.is_file():
            assert accelerated.read_bytes() == pure.read_bytes(), f"{name} differs between the two paths"


# -- the splitter against the regex, line by line, in this process -----------------------------------------


def in_process_splitter():  # noqa: ANN201 - the compiled function, or a skip
    from dockit_core.ingest import accelerator

    if accelerator.split_call is None:
        pytest.skip(f"the C line splitter is not loaded here: {accelerator.STATE}")
    return accelerator.split_call


def regex_call(line: str, index: int, unprefixed_pid: int, absolute: bool) -> object:
    """What the pure path makes of the line when it is the parser's common one: the regex, `_fast_call`."""
    from dockit_core.ingest.strace_parser import _COMPLETE_CALL, StraceParser

    parser = StraceParser(unprefixed_pid)
    parser._relative = False if absolute else None
    match = _COMPLETE_CALL.match(line)
    return None if match is None else parser._fast_call(match, index, line)


def fields(call: object) -> list[tuple[type, object]]:
    return [(type(value), value) for value in dataclasses.astuple(call)]  # type: ignore[call-overload]


def capture_lines() -> list[str]:
    lines = []
    for log in capture_logs():
        opener = gzip.open if log.suffix == ".gz" else open
        with opener(log, "rt", encoding="utf-8", errors="surrogateescape") as stream:
            lines += [line.rstrip("\r\n") for line in stream]
    return lines


def test_the_splitter_agrees_with_the_regex_on_every_capture_line() -> None:
    """Each line of every capture, with and without a pid for unprefixed lines: wherever the splitter
    answers, its `Call` is the regex path's, field by field and type by type."""
    split = in_process_splitter()
    answered = 0
    lines = capture_lines()
    for index, line in enumerate(lines):
        for unprefixed_pid, absolute in ((-1, True), (4242, False)):
            call = split(line, index, unprefixed_pid, True, absolute)
            if call is None:
                continue
            answered += 1
            expected = regex_call(line, index, 4242, absolute)
            assert expected is not None, f"the splitter read a line the regex does not: {line!r}"
            assert fields(call) == fields(expected), line
    assert answered > len(lines)  # most lines are the common one, read both ways


# Pieces that make the regex backtrack or refuse: results, decorations, errnos, durations, prefixes.
PIECES = [
    ")",
    " = ",
    ") = ",
    "<",
    ">",
    " (",
    "(",
    " E",
    "EAGAIN",
    " <0.000100>",
    "0x",
    "-",
    "?",
    "0",
    "9",
    " ",
    "[pid 12] ",
    "12:00:01 ",
    "1.5 ",
    "(deleted)",
    "<a<b>>",
    " ) = 0x1f",
    "\n",
    "é",
    "@SYS",
    "SYS_",
    ".",
    ":",
    "]",
    "123456789012345678901",
    "\\",
    '"',
]


def test_the_splitter_agrees_with_the_regex_on_damaged_lines() -> None:
    """Capture lines cut and spliced with the pieces the pattern turns on (seeded, so a failure
    repeats): the splitter answers only what the regex path answers the same."""
    split = in_process_splitter()
    rng = random.Random(20)
    lines = capture_lines()
    answered = 0
    for index in range(30_000):
        line = rng.choice(lines)
        for _ in range(rng.randint(1, 4)):
            at = rng.randint(0, len(line))
            if rng.random() < 0.3:
                line = line[:at] + line[rng.randint(at, min(len(line), at + 6)) :]
            else:
                line = line[:at] + rng.choice(PIECES) + line[at:]
        line = line.rstrip("\r\n")
        call = split(line, index, 5, True, True)
        if call is None:
            continue
        answered += 1
        expected = regex_call(line, index, 5, True)
        assert expected is not None, f"the splitter read a line the regex does not: {line!r}"
        assert fields(call) == fields(expected), line
    assert answered > 3_000
