"""docs/decoders.md runs: its code is taken from the page and run here, so the page cannot rot.

- The minimal decoder (`my_echo.py`) and its tests (`test_my_echo.py`) are written out as the page shows
  them and the tests run with pytest; two deliberate mutations of the decoder make them fail.
- The same decoder decodes a real ECHO1 server's answers (through the page's `converse`), and a live
  trace of a real client under `dockit --decoder`; `dockit extract --decoder` names it in the listing.
- The page's import lines import, its redaction lines hold, and its `FieldMessages` (messages that end
  with a field) groups examples/dockit-tag1's recorded bytes into the messages TAG1's own splitter sees.
- Every public name `tests/test_layout.py` keeps is on the page; README's Architecture paragraph and
  `decoders/__init__.py` name the five public modules.

ECHO1 (the page's made-up protocol) is served by a real socket server in this file: `LOGIN user
password` is answered `OK welcome user` or `ERR bad password`, `ECHO text` with `OK text` or, for no
text, `ERR nothing to echo`, anything else with `ERR unknown command`. Expected records come from what
the client sent and those rules, never from the decoder.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from decoders import framing
from decoders.api import Direction
from decoders.testing import (
    OUT,
    byte_by_byte,
    chunk,
    conversation,
    cut,
    decode,
    load_chunks,
    random_splits,
    replay,
)
from tests.test_layout import PUBLIC

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "decoders.md"
TAG1 = REPO / "examples" / "dockit-tag1"
BLOCK = re.compile(r"<!-- (?:file: (?P<name>[\w.]+)|(?P<run>run)) -->\n```python\n(?P<code>.*?)```", re.S)
PASSWORD = "Echo1-pw-Qx7"


def page() -> str:
    return DOC.read_text(encoding="utf-8")


def page_files() -> dict[str, str]:
    """The files the page shows whole (`<!-- file: NAME -->` before the block)."""
    return {m["name"]: m["code"] for m in BLOCK.finditer(page()) if m["name"]}


def run_block(containing: str) -> dict[str, object]:
    """Run the page's one runnable block (`<!-- run -->`) holding `containing`; return its names."""
    (code,) = [m["code"] for m in BLOCK.finditer(page()) if m["run"] and containing in m["code"]]
    names: dict[str, object] = {"__name__": "decoders_md"}
    exec(compile(code, f"{DOC}:{containing}", "exec"), names)  # noqa: S102 - the page's own code
    return names


def write_skeleton(folder: Path, mutate: tuple[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = page_files()
    assert set(files) >= {"my_echo.py", "test_my_echo.py"}
    for name, code in files.items():
        if mutate and name == "my_echo.py":
            assert mutate[0] in code, f"the mutation's text {mutate[0]!r} is no longer in the page"
            code = code.replace(mutate[0], mutate[1])
        (folder / name).write_text(code, encoding="utf-8")
    return folder


def load_skeleton(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("decoders_md_my_echo", folder / "my_echo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_page_tests(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_echo.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


# -- the ECHO1 server ---------------------------------------------------------------------------------
class Echo1Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for raw in self.rfile:
            command, _, argument = raw.rstrip(b"\n").partition(b" ")
            if command == b"LOGIN":
                user, _, password = argument.partition(b" ")
                reply = b"OK welcome " + user if password == PASSWORD.encode() else b"ERR bad password"
            elif command == b"ECHO":
                reply = b"OK " + argument if argument else b"ERR nothing to echo"
            else:
                reply = b"ERR unknown command"
            self.wfile.write(reply + b"\n")


@contextmanager
def echo1_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo1Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


REQUESTS = [f"LOGIN alice {PASSWORD}", "ECHO hello world", "ECHO ", "LOGIN bob wrong", "NOPE"]
# What the server must answer to REQUESTS, by the rules above: (Command, User, Status, Error, TextBytes)
EXPECTED = [
    ("LOGIN", "alice", "ok", None, None),
    ("ECHO", None, "ok", None, len("hello world")),
    ("ECHO", None, "error", "nothing to echo", 0),
    ("LOGIN", "bob", "error", "bad password", None),
    ("NOPE", None, "error", "unknown command", None),
]
COLUMNS = ("Command", "User", "Status", "Error", "TextBytes")


# -- the page's text ----------------------------------------------------------------------------------
def test_every_public_name_is_on_the_page() -> None:
    text = page()
    missing = [
        f"{module}.{name}" for module, names in PUBLIC.items() for name in names if f"`{name}`" not in text
    ]
    assert not missing, f"docs/decoders.md does not name {missing}"
    for module in PUBLIC:
        assert f"`{module}`" in text


def test_readme_and_the_package_docstring_name_the_five_public_modules() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    architecture = readme[readme.index("## Architecture") :]
    architecture = architecture[: architecture.index("\n## ", 3)]
    import decoders

    for module in PUBLIC:
        assert f"`{module}`" in architecture, f"README's Architecture does not name {module}"
        assert f"`{module}`" in (decoders.__doc__ or ""), f"decoders/__init__.py does not name {module}"


def test_the_import_lines_import_what_they_say() -> None:
    names = run_block("# in tests only:")
    expected = {
        "framing",
        "Decoder",
        "Chunk",
        "Output",
        "DECIMAL",
        "RecordType",
        "Secret",
        "redact_url",
        "replay",
    }
    assert expected <= set(names)


def test_the_redaction_lines_hold() -> None:
    assert "redact_sql" in run_block("redact_header(")  # each line of the block is an assert


# -- the minimal decoder ------------------------------------------------------------------------------
def test_the_minimal_decoder_passes_its_own_tests(tmp_path: Path) -> None:
    folder = write_skeleton(tmp_path / "page")
    result = run_page_tests(folder)
    count = page_files()["test_my_echo.py"].count("\ndef test_")
    assert result.returncode == 0 and f"{count} passed" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    "mutation",
    [
        ("starts_message=starts_message", "starts_message=None"),  # no resynchronisation after a cut
        ("Secret(at), ", ""),  # the login's call not named as a secret
        ("return framing.reading_since(*self.readers.values())", "return None"),
    ],
    ids=["no-starts-message", "no-secret", "no-reading-since"],
)
def test_the_page_s_tests_catch_a_broken_decoder(tmp_path: Path, mutation: tuple[str, str]) -> None:
    result = run_page_tests(write_skeleton(tmp_path / "mutant", mutation))
    assert result.returncode == 1 and " failed" in result.stdout, result.stdout + result.stderr


def test_the_minimal_decoder_on_a_real_servers_answers(tmp_path: Path) -> None:
    echo = load_skeleton(write_skeleton(tmp_path / "page"))
    converse = run_block("def converse(")["converse"]
    with echo1_server() as port:
        chunks = converse(("127.0.0.1", port), [f"{r}\n".encode() for r in REQUESTS])  # type: ignore[operator]
    decoded = decode(echo.EchoDecoder, chunks)
    assert decoded.table(*COLUMNS, cim_class="Echo_Request") == EXPECTED
    passwords = [r.attr("Password") for r in decoded.of("Echo_Request")]
    assert passwords == ["<redacted>" if r.startswith("LOGIN") else None for r in REQUESTS]
    assert all(0 <= r.attr("Latency") < 5 for r in decoded.of("Echo_Request"))
    logins = [c.call_index for c in chunks if c.data.startswith(b"LOGIN")]
    assert decoded.secrets == logins and decoded.problems == []
    assert PASSWORD not in repr(decoded.records) + repr(decoded.notes())


@pytest.mark.live
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (setup.sh installs it)")
def test_the_minimal_decoder_on_a_live_trace_and_extract_names_it(tmp_path: Path) -> None:
    folder = write_skeleton(tmp_path / "page")
    client = tmp_path / "echo1_client.py"
    client.write_text(
        "import os, socket, sys\n"
        "lines = [line.replace('$PASSWORD', os.environ['ECHO1_PASSWORD']) for line in sys.argv[2:]]\n"
        "with socket.create_connection(('127.0.0.1', int(sys.argv[1]))) as sock:\n"
        "    replies = sock.makefile('rb')\n"
        "    for line in lines:\n"
        "        sock.sendall(line.encode() + b'\\n')\n"
        "        print(replies.readline().decode().rstrip())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)]), "ECHO1_PASSWORD": PASSWORD}

    def dockit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dockit_core.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    listed = dockit("decoders", "--decoder", "my_echo:EchoDecoder")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^echo1 +7007 +--decoder +my_echo:EchoDecoder", listed.stdout, re.M), listed.stdout
    requests = [r.replace(PASSWORD, "$PASSWORD") for r in REQUESTS]
    prefix = tmp_path / "run" / "e"
    with echo1_server() as port:
        run = dockit("--decoder", "my_echo:EchoDecoder", "-l", str(prefix), "--each-call",
                     sys.executable, str(client), str(port), *requests)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[:2] == ["OK welcome alice", "OK hello world"]
    (xml,) = prefix.parent.glob("e.strace.*.xml")
    root = ET.parse(xml).getroot()
    records = [o.attrib for o in root.iter("Echo_Request")]
    assert [tuple(r.get(c) for c in COLUMNS) for r in records] == [
        tuple(None if v is None else str(v) for v in row) for row in EXPECTED
    ]
    assert all(r["Server"] == f"127.0.0.1:{port}" for r in records)
    for written in prefix.parent.iterdir():
        if not written.name.endswith(".log"):  # only the raw log keeps the password
            assert PASSWORD.encode() not in written.read_bytes(), f"the password is in {written.name}"

    (log,) = prefix.parent.glob("e.strace.*.log")
    plain = dockit("extract", str(log))
    named = dockit("extract", "--decoder", "my_echo:EchoDecoder", str(log))
    assert plain.returncode == 0 and named.returncode == 0, plain.stderr + named.stderr

    def rows(listing: str) -> dict[str, str]:  # channel -> decoder, for the connection to the server
        lines = [row.split() for row in listing.splitlines()[1:]]
        return {row[0]: row[2] for row in lines if row[1] == "tcp" and f"127.0.0.1:{port}" in row[0]}

    (channel_id,) = rows(named.stdout)
    assert rows(plain.stdout) == {channel_id: "-"} and rows(named.stdout) == {channel_id: "echo1"}
    fixture = tmp_path / "e.chunks"
    assert dockit("extract", "--channel", channel_id, "-o", str(fixture), str(log)).returncode == 0
    echo = load_skeleton(folder)
    assert replay(fixture, echo.EchoDecoder).table(*COLUMNS) == EXPECTED


# -- messages that end with a field -------------------------------------------------------------------
def test_field_messages_groups_tag1s_recorded_bytes_as_its_own_splitter_does() -> None:
    sys.path.insert(0, str(TAG1))
    try:
        from dockit_tag1.wire import Splitter
    finally:
        sys.path.remove(str(TAG1))
    field_messages = run_block("class FieldMessages")["FieldMessages"]
    for name in ("session", "pipelined"):
        chunks = load_chunks(TAG1 / "tests" / "fixtures" / f"{name}.chunks").chunks
        for direction in Direction:
            wire = Splitter().feed(b"".join(c.data for c in chunks if c.direction == direction))
            assert len(wire) >= 3
            for variant in (chunks, byte_by_byte(chunks), random_splits(chunks, 7)):
                reader = field_messages()  # type: ignore[operator]
                got = [m.data for c in variant if c.direction == direction for m in reader.feed(c)]
                assert got == wire, f"{name} {direction}"


def test_field_messages_reading_since_is_the_messages_first_call() -> None:
    field_messages = run_block("class FieldMessages")["FieldMessages"]
    reader = field_messages()  # type: ignore[operator]
    assert reader.feed(chunk(b"35=A\x01553=alice\x01", OUT, call_index=4)) == []
    assert reader.fields.reading_since is None  # the LineReader holds no half field...
    assert framing.reading_since(reader) == 4  # ...but the message began at call 4
    assert reader.feed(chunk(b"554=pw\x0110=0", OUT, call_index=5)) == []
    assert framing.reading_since(reader) == 4
    (message,) = reader.feed(chunk(b"42\x01", OUT, call_index=6))
    assert (message.data, message.start.call_index, message.end.call_index) == (
        b"35=A\x01553=alice\x01554=pw\x0110=042\x01",
        4,
        6,
    )
    assert framing.reading_since(reader) is None and not message.truncated


def test_field_messages_resynchronise_after_lost_bytes() -> None:
    field_messages = run_block("class FieldMessages")["FieldMessages"]
    chunks = conversation(
        [(OUT, b"35=D\x0111=o1\x0155=ACME\x0110=001\x01"), (OUT, b"35=D\x0111=o2\x0110=002\x01")]
    )
    reader = field_messages()  # type: ignore[operator]
    messages = [m for c in cut(chunks, 0, 12) for m in reader.feed(c)]  # "35=D\x0111=o1\x015" kept
    assert [(m.data, m.truncated) for m in messages] == [
        (b"35=D\x0111=o1\x015\x01", True),
        (b"35=D\x0111=o2\x0110=002\x01", False),
    ]
