"""The worked example, end to end: pip-install examples/dockit-kvproto, run its real server on 127.0.0.1,
trace its real client with dockit, and find its `Kv_Command` objects in the summary.

This proves the plugin path a team would use: no line of dockit names the package; the entry point
`dockit.decoders` does. Expected commands, keys and statuses are what the test sent and the protocol
requires; error texts are the ones the real client printed from the real server's replies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "dockit-kvproto"
CLIENT = [sys.executable, "-m", "dockit_kvproto.client"]
SERVER = [sys.executable, "-m", "dockit_kvproto.server"]

COMMANDS = ["SET color blue", "GET color", "DEL color", "GET color", "SET token s3cr3t-value", "PING"]
EXPECTED = [  # (Command, Key, Status)
    ("SET", "color", "ok"),
    ("GET", "color", "ok"),
    ("DEL", "color", "ok"),
    ("GET", "color", "error"),
    ("SET", "token", "ok"),
    ("PING", None, "error"),
]

pytestmark = pytest.mark.live


@pytest.fixture(scope="session")
def kvproto_installed() -> None:
    """Install the example into this interpreter, as a team would (`pip install -e`), once per run."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    result = subprocess.run([*pip, "-e", str(EXAMPLE)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"pip install -e {EXAMPLE} failed:\n{result.stdout}{result.stderr}"
    probe = "from importlib.metadata import entry_points; print(*entry_points(group='dockit.decoders'))"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "dockit_kvproto:KvDecoder" in found.stdout


def dockit(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


@contextmanager
def kv_server(*extra: str, name: str = "kvd") -> Iterator[int]:
    """A real KV1 server on 127.0.0.1, on a port the system picked; yields the port."""
    process = subprocess.Popen(
        [*SERVER, "--port", "0", "--name", name, *extra], stdout=subprocess.PIPE, text=True
    )
    try:
        yield listening_port(process)
    finally:
        process.terminate()
        process.wait(timeout=10)


def listening_port(process: subprocess.Popen) -> int:
    line = process.stdout.readline()  # "kvproto server NAME listening on 127.0.0.1:PORT"
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)$", line.strip())
    assert match, f"no port announced: {line!r}"
    return int(match.group(1))


def outputs(prefix: Path) -> tuple[Path, int]:
    """The summary of a live run and the traced program's pid (from PREFIX.strace.PID.xml)."""
    (xml,) = prefix.parent.glob(f"{prefix.name}.strace.*.xml")
    return xml, int(xml.name.split(".")[-2])


def kv_commands(xml: Path) -> list[dict[str, str]]:
    return [dict(e.attrib) for e in etree.parse(str(xml)).getroot().iter("Kv_Command")]


def statistics(xml: Path) -> dict[str, str]:
    return dict(etree.parse(str(xml)).getroot().find("Dockit_Statistics").attrib)


def triples(commands: list[dict[str, str]]) -> list[tuple]:
    return [(c["Command"], c.get("Key"), c["Status"]) for c in commands]


@pytest.mark.parametrize("pipeline", [False, True], ids=["one-by-one", "pipelined"])
def test_live_client_commands_are_in_the_summary(kvproto_installed, tmp_path: Path, pipeline: bool) -> None:
    prefix = tmp_path / "p"
    with kv_server() as port:
        flags = ["--pipeline"] if pipeline else []
        result = dockit("-l", str(prefix), *CLIENT, "--port", str(port), *flags, *COMMANDS)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr  # the client's own status: it saw ERR replies
    replies = result.stdout.splitlines()
    assert replies[:4] == ["OK", "VALUE blue", "OK", "ERR no such key"]
    xml, pid = outputs(prefix)
    found = kv_commands(xml)
    assert triples(found) == EXPECTED
    errors = [line.removeprefix("ERR ") for line in replies if line.startswith("ERR ")]
    assert [c["Error"] for c in found if "Error" in c] == errors
    assert {c["Process"] for c in found} == {str(pid)}
    assert {c["Server"] for c in found} == {f"127.0.0.1:{port}"}
    assert all(0 < float(c["Latency"]) < 5 for c in found)
    assert [c.get("ValueBytes") for c in found][:2] == ["4", "4"]  # len("blue"), sent then read back
    assert "s3cr3t-value" not in repr(found)  # the value is on the command line, never in a record
    assert statistics(xml)["DecoderProblems"] == "0"
    calls = next(tmp_path.glob("p.strace.*.txt")).read_text()
    assert "kvproto: SET color" in calls and "kvproto: VALUE to GET color" in calls


def test_no_decode_finds_no_kv_command(kvproto_installed, tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    with kv_server() as port:
        result = dockit("--no-decode", "-l", str(prefix), *CLIENT, "--port", str(port), *COMMANDS)
    assert result.returncode == 1, result.stderr
    xml, _ = outputs(prefix)
    assert kv_commands(xml) == []
    assert statistics(xml)["DecodedChannels"] == "0"


def trace_server(tmp_path: Path) -> tuple[list[dict[str, str]], int, Path]:
    """dockit traces the server for one client connection: its Kv_Commands, its port, the summary."""
    prefix = tmp_path / "s"
    command = [*SERVER, "--port", "0", "--connections", "1"]
    traced = subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", "-l", str(prefix), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        port = listening_port(traced)
        client = subprocess.run(
            [*CLIENT, "--port", str(port), *COMMANDS], capture_output=True, text=True, timeout=60
        )
        assert client.returncode == 1, client.stderr
        _, stderr = traced.communicate(timeout=120)
    finally:
        traced.kill()
    assert traced.returncode == 0, stderr
    xml, _ = outputs(prefix)
    return kv_commands(xml), port, xml


def test_traced_server_side(kvproto_installed, tmp_path: Path) -> None:
    """dockit traces the server: the greeting and replies are its OUT bytes; roles come from content."""
    found, port, xml = trace_server(tmp_path)
    assert triples(found) == EXPECTED
    assert {c["Server"] for c in found} == {f"127.0.0.1:{port}"}
    server = next(etree.parse(str(xml)).getroot().iter("CIM_Process"))
    threads = {t.get("Handle") for t in server.iter("Thread")}
    assert {c["Process"] for c in found} <= threads | {server.get("Handle")}


def test_traced_server_records_name_the_process_not_the_thread(kvproto_installed, tmp_path: Path) -> None:
    found, _, _ = trace_server(tmp_path)
    _, pid = outputs(tmp_path / "s")
    assert {c["Process"] for c in found} == {str(pid)}


def wait_until_traced(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as status:
            if re.search(r"^TracerPid:\s+[1-9]", status.read(), re.M):
                return
        time.sleep(0.02)
    raise AssertionError(f"strace never attached to {pid}")


@pytest.mark.parametrize("forced", [False, True], ids=["detected", "decode-PORT=kvproto"])
def test_attached_mid_session_needs_decode_override(kvproto_installed, tmp_path: Path, forced: bool) -> None:
    """dockit attaches to a client whose greeting went by before: nothing scores the stream, so only
    `--decode PORT=kvproto` decodes it (and then roles come from the first command line)."""
    prefix = tmp_path / "m"
    with kv_server() as port:
        client = subprocess.Popen(
            [*CLIENT, "--port", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        client.stdin.write("SET early 1\n")
        client.stdin.flush()
        assert client.stdout.readline() == "OK\n"  # connected, greeting read: now attach
        override = ["--decode", f"{port}=kvproto"] if forced else []
        traced = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "-p", str(client.pid), "-l", str(prefix), *override],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            wait_until_traced(client.pid)
            rest, _ = client.communicate("GET early\nSET late 2\nDEL late\nDEL late\n", timeout=60)
            _, stderr = traced.communicate(timeout=120)
        finally:
            client.kill()
            traced.kill()
    assert rest.splitlines() == ["VALUE 1", "OK", "OK", "ERR no such key"]
    assert traced.returncode == 0, stderr
    xml, _ = outputs(prefix)
    expected = [
        ("GET", "early", "ok"),
        ("SET", "late", "ok"),
        ("DEL", "late", "ok"),
        ("DEL", "late", "error"),
    ]
    assert triples(kv_commands(xml)) == (expected if forced else [])
    assert "KV1" not in (next(tmp_path.glob("m.strace.*.log")).read_text())  # no greeting in this trace


# -- failures are reported, never fatal ---------------------------------------------------------------------
BROKEN_ENTRY_POINTS = """\
[dockit.decoders]
missing = no_such_module_for_dockit:Decoder
notadecoder = json:loads
raising = dockit_test_raising_plugin:Decoder
"""

FLAKY_DECODER = '''\
"""A decoder that claims the "boom" server's connections and gives up on the first DEL."""
from dockit_kvproto import KvDecoder


class FlakyKv(KvDecoder):
    name = "flakykv"

    @classmethod
    def score(cls, data, direction, channel):
        return 1000 if data.startswith(b"KV1 boom") else 0

    def feed(self, chunk):
        if b"DEL" in chunk.data:
            raise RuntimeError("flaky decoder gave up on DEL")
        return super().feed(chunk)
'''


def plugin_path(tmp_path: Path) -> Path:
    """A directory for PYTHONPATH holding three broken installed plugins and the flaky decoder."""
    path = tmp_path / "plugins"
    dist = path / "broken_dockit_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dockit-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(BROKEN_ENTRY_POINTS)
    (path / "dockit_test_raising_plugin.py").write_text(
        "raise RuntimeError('this plugin breaks on import')\n"
    )
    (path / "dockit_test_flaky.py").write_text(FLAKY_DECODER)
    return path


def test_broken_plugins_and_a_failing_decoder_are_reported_and_the_trace_goes_on(
    kvproto_installed, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(plugin_path(tmp_path))}
    prefix = tmp_path / "f"
    with kv_server(name="boom") as boom, kv_server(name="calm") as calm:
        script = "; ".join(
            f"{' '.join(CLIENT)} --port {port} 'SET a 1' 'GET a' 'DEL a' 'GET a'" for port in (boom, calm)
        )
        script += "; exit 0"
        result = dockit(
            "-w", "--decoder", "dockit_test_flaky:FlakyKv", "-l", str(prefix), "sh", "-c", script, env=env
        )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["OK", "VALUE 1", "OK", "ERR no such key"] * 2
    xml, _ = outputs(prefix)
    found = kv_commands(xml)
    by_server = {
        port: triples([c for c in found if c["Server"] == f"127.0.0.1:{port}"]) for port in (boom, calm)
    }
    # The flaky decoder decoded the boom connection until it raised on DEL; then that channel stopped.
    assert by_server[boom] == [("SET", "a", "ok"), ("GET", "a", "ok")]
    # The other connection, the plugin's, is decoded whole.
    assert by_server[calm] == [
        ("SET", "a", "ok"),
        ("GET", "a", "ok"),
        ("DEL", "a", "ok"),
        ("GET", "a", "error"),
    ]
    problems = [line for line in result.stderr.splitlines() if "decoder" in line]
    assert any(
        "flakykv failed on" in p and "gave up on DEL" in p and "left undecoded" in p for p in problems
    ), result.stderr
    for name in ("missing", "notadecoder", "raising"):
        assert any(f"decoder plugin {name} " in p and "skipped" in p for p in problems), result.stderr
    assert statistics(xml)["DecoderProblems"] == "4"
