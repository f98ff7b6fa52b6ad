"""Fuzzing, kept in the repository and run by CI in bounded time (issue 17): the trace parser with the
tracker behind it, the .ini reader, `-s`, and every built-in decoder, fed mutations of a corpus of
real inputs (tests/fuzz_corpus/, written by its make.py from the captures and the crafted inputs).

Each target runs DOCKIT_FUZZ_EXAMPLES examples (default 200: about a minute in all here); set it higher
for a longer campaign (`DOCKIT_FUZZ_EXAMPLES=20000 python3 -m pytest tests/test_fuzz.py`). What must
hold: no exception but the ones a target documents, outputs that can be written, and for the .ini
that what is written is read back as it was, or left out, never as another key.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions, Direction
from decoders.records import CimObject, Output, Record, as_cim
from decoders.registry import BUILTIN_DECODERS, load_reference
from dockit_core.ingest.strace_parser import StraceParser
from dockit_core.model import Model
from dockit_core.model.channels import ChannelManager
from dockit_core.model.tracker import Tracker
from dockit_core.outputs.ini import (
    attached_threads_from_ini,
    context_from_ini,
    environment_from_ini,
    environment_parts,
    read_ini,
    top_pid_from_ini,
    write_ini,
)
from dockit_core.outputs.summary.filter import SummaryFilter, SummaryFilterError
from dockit_core.outputs.summary.objects import RecordSpool, RunContext, summary_objects
from dockit_core.outputs.summary.writers import element_markup, txt_block

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
OUTPUT_TYPES = typing.get_args(Output)  # what the decoder contract lets a decoder return
EXAMPLES = int(os.environ.get("DOCKIT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

LINES = (CORPUS / "lines.txt").read_bytes().decode("utf-8", "surrogateescape").splitlines()
INI_SEEDS = [
    p.read_bytes().decode("utf-8", "surrogateescape") for p in sorted((CORPUS / "ini").glob("*.ini"))
]
FILTERS = (CORPUS / "filters.txt").read_text().splitlines()
# Pieces a mutation inserts: what the parsers look for, and what broke them before.
TOKENS = [
    " <unfinished ...>", "<... read resumed>", ") = ", " = -1 ENOENT (No such file or directory)", "+++ exited with ",
    "+++ killed by SIGSEGV (core dumped) +++", "--- SIGCHLD {si_pid=1} ---", "[pid 12] ", "\\x", "\\377", "\\",
    '"', "[", "]", "{", "}", "<", ">", "->", "0x", "9" * 30, "9" * 5000, "\0", "\r", "\u00b2", "\udce9", "...",
    "AT_FDCWD", "/../..", "//", "O_CREAT|O_EXCL", "CLONE_THREAD", "TCP:[1.2.3.4:5->6.7.8.9:10]", "pipe:[7]",
]  # fmt: skip


def decoder_seeds(name: str) -> list[list[tuple[Direction, bytes]]]:
    seeds = []
    for path in sorted(CORPUS.glob(f"decoder-{name}-*.bin")):
        data = path.read_bytes()
        chunks, position = [], 0
        while position + 5 <= len(data):
            direction, length = struct.unpack_from("<BI", data, position)
            position += 5
            chunks.append(
                (Direction.OUT if direction == 0 else Direction.IN, data[position : position + length])
            )
            position += length
        seeds.append(chunks)
    return seeds


@st.composite
def mutated_text(draw: st.DrawFn, seeds: list[str]) -> str:
    """A seed with a few edits: characters cut, replaced or repeated, tokens inserted, two seeds spliced."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["cut", "token", "char", "splice", "repeat", "truncate"]))
        if kind == "cut":
            text = text[:position] + text[position + draw(st.integers(1, 8)) :]
        elif kind == "token":
            text = text[:position] + draw(st.sampled_from(TOKENS)) + text[position:]
        elif kind == "char":
            text = text[:position] + draw(st.characters()) + text[position + 1 :]
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            text = text[:position] + other[draw(st.integers(0, len(other))) :]
        elif kind == "repeat":
            text = (
                text[:position] + text[position : position + 16] * draw(st.integers(2, 50)) + text[position:]
            )
        else:
            text = text[:position]
    return text


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            data += draw(st.binary(max_size=64))
            continue
        position = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup", "truncate"]))
        if kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[position] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFB, 0xFC, 0xFE, 0xFF]))
        elif kind == "cut":
            del data[position : position + draw(st.integers(1, 32))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(max_size=32))
        elif kind == "dup":
            data[position:position] = data[position : position + 64] * draw(st.integers(1, 20))
        else:
            del data[position:]
    return bytes(data)


# -- the parser, the tracker behind it, the summary written from what they made ----------------------


@FUZZ
@given(st.lists(mutated_text(LINES), min_size=1, max_size=40))
def test_parser_and_tracker(lines: list[str]) -> None:
    parser = StraceParser(4242)
    model = Model()
    spool = RecordSpool(lambda obj: element_markup(obj, None))
    tracker = Tracker(
        model, ChannelManager(None, spool.add), initial_cwd="/srv", pending_calls=lambda: parser.pending
    )
    for index, line in enumerate(lines, 1):
        event = parser.parse(line + "\n", index)
        if event is not None:
            tracker.apply(event)
    tracker.finish()
    for obj in summary_objects(model, RunContext(date="2026-01-01"), spool, None):
        if isinstance(obj, CimObject):
            element_markup(obj, "2026-01-01")
            txt_block(obj, None)


# -- the .ini ----------------------------------------------------------------------------------------


@FUZZ
@given(mutated_text(INI_SEEDS))
def test_ini_reader(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.ini"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        values = read_ini(str(path))
    context = context_from_ini(values)
    environment_from_ini(values)
    top_pid_from_ini(values)
    attached_threads_from_ini(values)
    # what names a base image or a date in a Dockerfile is one, or unknown
    assert context.date is None or re.fullmatch(r"\d{4}-\d\d-\d\d", context.date)
    assert not re.search(r"\s", context.os_release)


_ENV_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@FUZZ
@given(
    st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True), _ENV_TEXT, max_size=8),
    _ENV_TEXT,
    _ENV_TEXT,
)
def test_ini_written_is_read_back_and_injects_nothing(
    environment: dict[str, str], cwd: str, hostname: str
) -> None:
    """Whatever an environment, a directory or a host name holds (`\\r`, NUL, newlines), the .ini reads
    back each value as written or leaves it out, and no other key appears."""
    context = RunContext(hostname=hostname, cwd=cwd, tracer="strace", command=["true"], date="2026-01-01")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.ini"
        write_ini(str(path), context, 4242, ["strace", "true"], 0, environment)
        values = read_ini(str(path))
    kept, _left = environment_parts(environment)
    assert environment_from_ini(values) == kept
    assert values["CurrentDirectory"] == cwd.strip() or values["CurrentDirectory"] == cwd
    assert values["TopProcessId"] == "4242"
    assert {k for k in values if not k.startswith("Env.")} <= {
        "TopProcessId", "CurrentDirectory", "CurrentDate", "CurrentHostname", "CurrentOSType", "OsRelease",
        "Kernel", "Tracer", "CommandLine", "ExitStatus", "MachineId",
    }  # fmt: skip


# -- -s ----------------------------------------------------------------------------------------------

_OBJECTS = [
    CimObject.make("CIM_Process", {"Handle": 4242, "Calls": 3}, ()),
    CimObject.make("CIM_DataFile", {"Name": "/etc/passwd", "Category": "System config files"}, ()),
    CimObject.make("Dockit_SqlQuery", {"Status": "error", "Protocol": "mysql"}, ()),
]


@FUZZ
@given(st.one_of(mutated_text(FILTERS), st.text(max_size=200)))
@example("\U0010ffff" * 60 + ":Name=x")  # found by the fuzzer: each escaped character is ten in the message
def test_summary_filter(text: str) -> None:
    try:
        chosen = SummaryFilter.parse(text)
    except SummaryFilterError as error:
        assert "\n" not in str(error) and len(str(error)) < 400
        return
    for obj in _OBJECTS:
        chosen.matches(obj)
    chosen.unmatched_note({"CIM_Process", "CIM_DataFile"})


# -- every built-in decoder --------------------------------------------------------------------------

DECODERS = [load_reference(reference) for reference in BUILTIN_DECODERS]
ALL_SEEDS = {cls.name: decoder_seeds(cls.name) for cls in DECODERS}
ANY_SEEDS = [seed for seeds in ALL_SEEDS.values() for seed in seeds]


def channel_for(cls: type[Decoder]) -> ChannelInfo:
    port = min(getattr(cls, "ports", None) or {9999})
    return ChannelInfo(channel_id="tcp:fuzz", kind="tcp", local="127.0.0.1:40000", remote=f"127.0.0.1:{port}",
                       local_port=40000, remote_port=port, pid=4242)  # fmt: skip


@pytest.mark.parametrize("cls", DECODERS, ids=[cls.name for cls in DECODERS])
def test_decoder(cls: type[Decoder]) -> None:
    seeds = ALL_SEEDS[cls.name] or ANY_SEEDS  # a decoder without captures yet gets the others' bytes

    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        seed = data.draw(st.sampled_from(seeds))
        conversation = [(direction, data.draw(mutated_bytes(chunk))) for direction, chunk in seed]
        if data.draw(st.booleans()):  # and cut into other pieces: one byte at a time, or random splits
            pieces = []
            for direction, chunk in conversation:
                cut = data.draw(st.integers(1, max(1, len(chunk))))
                pieces += [(direction, chunk[i : i + cut]) for i in range(0, len(chunk), cut)]
            conversation = pieces
        decoder = cls(channel_for(cls))
        decoder.options = DecoderOptions(rows=data.draw(st.integers(0, 3)))
        outputs = []
        for index, (direction, chunk) in enumerate(conversation):
            size = len(chunk) + data.draw(st.sampled_from([0, 0, 0, 5, 1000]))  # the tracer may have cut it
            outputs += decoder.feed(Chunk(data=chunk, direction=direction, time=1.0 + index, pid=4242, size=size,
                                          call_index=index))  # fmt: skip
        outputs += decoder.close(99.0)
        for output in outputs:
            assert isinstance(output, OUTPUT_TYPES), output
            if isinstance(output, (Record, CimObject)):
                element_markup(as_cim(output), None)

    run()
