"""A decoder is someone else's code: whatever it does, the run goes on, says what went wrong in one line
(its traceback with -v), writes every output, and names the channel in a Dockit_DecoderProblem.

The trace is real: the KV1 example's client against its real server, traced by dockit once per session;
each test replays that log with a misbehaving subclass of the example's decoder given with --decoder.
The expected commands and statuses are what the client sent and the protocol requires.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.test_example_plugin import CLIENT, kv_server

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "dockit-kvproto"  # this checkout's example, whatever pip installed
COMMANDS = ["SET a 1", "GET a", "DEL a", "GET a"]
ALL = [("SET", "a", "ok"), ("GET", "a", "ok"), ("DEL", "a", "ok"), ("GET", "a", "error")]

pytestmark = pytest.mark.live

MISBEHAVING = '''\
"""KV1 decoders that break the contract in every way issue 16 lists."""
import re
import time

from dockit_kvproto import KvDecoder
from decoders.records import Annotation, CimObject


class ReturnsInt(KvDecoder):
    name = "kvproto"

    def feed(self, chunk):
        outputs = super().feed(chunk)
        return 42 if b"DEL" in chunk.data else outputs


class RaisingGenerator(KvDecoder):
    name = "kvproto"

    def feed(self, chunk):
        outputs = super().feed(chunk)
        def produce():
            yield from outputs
            if b"DEL" in chunk.data:
                raise ValueError("generator broke on DEL")
        return produce()


class ScoreNone(KvDecoder):
    name = "kvproto"

    @classmethod
    def score(cls, data, direction, channel):
        return None


class IntAttributes(KvDecoder):
    name = "kvproto"

    def feed(self, chunk):
        outputs = list(super().feed(chunk))
        if b"DEL" in chunk.data:
            outputs.append(CimObject("Kv_Broken", 42))
            outputs.append(Annotation("not an index", 7))
            outputs.append("a string")
        return outputs


class RaisesOnReply(KvDecoder):
    """Raises on the reply to DEL: DEL is pending then, and close() must still report it."""
    name = "kvproto"

    def feed(self, chunk):
        if self.pending and self.pending[0].command == "DEL" and chunk.data.startswith(b"OK"):
            raise RuntimeError("gave up on the reply to DEL")
        return super().feed(chunk)


class Loops(KvDecoder):
    """Never returns from the chunk carrying DEL."""
    name = "kvproto"

    def feed(self, chunk):
        if b"DEL" in chunk.data:
            while True:
                try:
                    time.sleep(0.01)
                except Exception:
                    pass
        return super().feed(chunk)


class Escapes(KvDecoder):
    """Annotations that carry a peer's bytes as they are: terminal escapes, a carriage return."""
    name = "kvproto"

    def feed(self, chunk):
        outputs = list(super().feed(chunk))
        if b"GET" in chunk.data:
            outputs.append(Annotation(chunk.call_index, "peer said \\x1b[2J\\x1b]0;owned\\x07 and \\r\\u202e"))
        return outputs
'''


@pytest.fixture(scope="module")
def kv_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real trace of the KV1 client's four commands against the real server (one connection)."""
    pytest.importorskip("dockit_kvproto")
    work = tmp_path_factory.mktemp("kvlog")
    with kv_server(name="kvd") as port:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "dockit_core.cli",
                "-l",
                str(work / "kv"),
                *CLIENT,
                "--port",
                str(port),
                *COMMANDS,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1, result.stderr  # the client's last GET fails: its exit status is 1
    return next(work.glob("kv.strace.*.log"))


@pytest.fixture
def misbehaving(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "misbehaving_kv.py").write_text(MISBEHAVING)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
    }


def replay(
    log: Path, out: Path, env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-i", str(log), "-l", str(out), "-F", "XML", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def commands(xml: Path) -> list[tuple[str | None, ...]]:
    root = etree.parse(str(xml)).getroot()
    return [(e.get("Command"), e.get("Key"), e.get("Status")) for e in root.iter("Kv_Command")]


def problems(xml: Path) -> list[dict[str, str]]:
    return [dict(e.attrib) for e in etree.parse(str(xml)).getroot().iter("Dockit_DecoderProblem")]


def decoder_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("dockit: decoder kvproto")]


def test_the_plain_example_decodes_the_log(kv_log: Path, tmp_path: Path, misbehaving: dict[str, str]) -> None:
    result = replay(kv_log, tmp_path / "plain", misbehaving)
    assert result.returncode == 0, result.stderr
    assert commands(tmp_path / "plain.xml") == ALL
    assert problems(tmp_path / "plain.xml") == []


@pytest.mark.parametrize(
    "decoder, said, decoded",
    [
        ("ReturnsInt", "returned int 42", ALL),  # the 42 replaced the DEL's note, not its state
        ("IntAttributes", "returned CimObject CimObject(cim_class='Kv_Broken', attrs=42", ALL),
        # raised after DEL was queued: close() reports it, unanswered
        ("RaisingGenerator", "failed on", [("SET", "a", "ok"), ("GET", "a", "ok"), ("DEL", "a", "unknown")]),
    ],
)
def test_a_wrong_output_is_one_line_and_the_trace_goes_on(
    kv_log: Path, tmp_path: Path, misbehaving: dict[str, str], decoder: str, said: str, decoded: list
) -> None:
    out = tmp_path / decoder
    result = replay(kv_log, out, misbehaving, "--decoder", f"misbehaving_kv:{decoder}")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = decoder_lines(result.stderr)
    assert any(said in line for line in lines), result.stderr
    assert all(line.count("\n") == 0 and len(line) < 400 for line in lines)
    assert commands(out.with_suffix(".xml")) == decoded
    assert Path(str(out) + ".txt").exists()  # every output written


def test_int_attributes_and_odd_outputs_are_each_reported_once(
    kv_log: Path, tmp_path: Path, misbehaving
) -> None:
    result = replay(kv_log, tmp_path / "odd", misbehaving, "--decoder", "misbehaving_kv:IntAttributes", "-v")
    lines = decoder_lines(result.stderr)
    assert len([line for line in lines if "returned" in line]) == 3, (
        result.stderr
    )  # the object, the note, the str
    assert any("Annotation(int, str)" in line for line in lines)
    assert any("returned str 'a string'" in line for line in lines)
    assert "misbehaving_kv.IntAttributes.feed at" in result.stderr  # -v says where the outputs came from


def test_score_returning_none_is_taken_as_zero(kv_log: Path, tmp_path: Path, misbehaving) -> None:
    result = replay(kv_log, tmp_path / "score", misbehaving, "--decoder", "misbehaving_kv:ScoreNone")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert any("score returned None, not a number" in line for line in result.stderr.splitlines())
    assert commands(tmp_path / "score.xml") == []  # nobody claimed the channel


def test_close_still_runs_after_a_failure_and_the_problem_names_the_channel(
    kv_log: Path, tmp_path: Path, misbehaving
) -> None:
    out = tmp_path / "raises"
    result = replay(kv_log, out, misbehaving, "--decoder", "misbehaving_kv:RaisesOnReply")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # SET and GET were answered; DEL was waiting for its reply when the decoder raised: close() says so.
    assert commands(out.with_suffix(".xml")) == [
        ("SET", "a", "ok"),
        ("GET", "a", "ok"),
        ("DEL", "a", "unknown"),
    ]
    [problem] = problems(out.with_suffix(".xml"))
    assert problem["Decoder"] == "kvproto" and problem["Severity"] == "error"
    assert (
        problem["Channel"].startswith("tcp:127.0.0.1:")
        and "gave up on the reply to DEL" in problem["Message"]
    )
    sockets = etree.parse(str(out.with_suffix(".xml"))).getroot().iter("Dockit_Socket")
    assert any(
        problem["Channel"].endswith(s.get("Local", "?")) or s.get("Local", "?") in problem["Channel"]
        for s in sockets
    )


def test_a_traceback_only_with_verbose(kv_log: Path, tmp_path: Path, misbehaving) -> None:
    quiet = replay(kv_log, tmp_path / "q", misbehaving, "--decoder", "misbehaving_kv:RaisesOnReply")
    loud = replay(kv_log, tmp_path / "l", misbehaving, "--decoder", "misbehaving_kv:RaisesOnReply", "-v")
    assert "Traceback" not in quiet.stderr
    assert "Traceback (most recent call last)" in loud.stderr
    assert 'raise RuntimeError("gave up on the reply to DEL")' in loud.stderr
    assert "misbehaving_kv.py" in loud.stderr


@pytest.mark.parametrize("decoder", ["Loops"])
def test_a_decoder_stuck_on_a_chunk_is_stopped_by_the_watchdog(
    kv_log: Path, tmp_path: Path, misbehaving, decoder: str
) -> None:
    out = tmp_path / decoder
    started = time.monotonic()
    result = replay(
        kv_log,
        out,
        misbehaving,
        "--decoder",
        f"misbehaving_kv:{decoder}",
        "--decoder-timeout",
        "1",
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 30  # one second of watchdog, plus starting Python twice over
    assert any(
        "was stopped" in line and "took more than 1 s" in line for line in decoder_lines(result.stderr)
    ), result.stderr
    assert commands(out.with_suffix(".xml")) == [("SET", "a", "ok"), ("GET", "a", "ok")]
    [problem] = problems(out.with_suffix(".xml"))
    assert "took more than 1 s" in problem["Message"]


def test_annotations_reach_the_calls_file_with_control_characters_escaped(
    kv_log: Path, tmp_path: Path, misbehaving
) -> None:
    for extra in ([], ["--each-call"], ["-f", "CSV"], ["--each-call", "-f", "JSON"]):
        out = tmp_path / ("esc" + "".join(extra).replace("-", ""))
        result = replay(kv_log, out, misbehaving, "--decoder", "misbehaving_kv:Escapes", *extra)
        assert result.returncode == 0, result.stderr
        calls = next(
            p
            for p in tmp_path.iterdir()
            if p.name.startswith(out.name + ".") and p.suffix in (".txt", ".csv", ".json")
        )
        text = calls.read_text()
        assert "peer said" in text
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, calls
        assert "\\x1b[2J" in text or "\\\\x1b[2J" in text


LOOPING_PLUGIN = """\
from dockit_kvproto import KvDecoder

class Loops(KvDecoder):
    name = "kvproto"

    def feed(self, chunk):
        if b"GET" in chunk.data:
            while True:
                pass
        return super().feed(chunk)
"""


def test_ctrl_c_ends_a_live_run_whose_decoder_loops(tmp_path: Path) -> None:
    """Live: the decoder loops for ever on the client's GET (watchdog limit 600 s: only the signal can
    end it). SIGINT to dockit makes it stop that decoder within seconds, the program goes on to its end,
    and every output is written."""
    pytest.importorskip("dockit_kvproto")
    (tmp_path / "looping_kv.py").write_text(LOOPING_PLUGIN)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
    }
    prefix = tmp_path / "live"
    with kv_server(name="kvd") as port:
        client = f"{' '.join(CLIENT)} --port {port} 'SET a 1' 'GET a'; sleep 1; echo done"
        dockit = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "--decoder", "looping_kv:Loops", "--decoder-timeout", "600",
             "-l", str(prefix), "sh", "-c", client],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        time.sleep(6)  # the client is done; dockit's decoder spins on the GET
        assert dockit.poll() is None, dockit.communicate()
        signalled = time.monotonic()
        dockit.send_signal(signal.SIGINT)
        out, err = dockit.communicate(timeout=30)
        ended = time.monotonic() - signalled
    assert ended < 10, ended
    assert "Traceback" not in err, err
    assert "interrupted by a signal" in err, err
    xml = next(tmp_path.glob("live.strace.*.xml"))
    assert [(c, k, s) for c, k, s in commands(xml)] == [("SET", "a", "ok")]
    for suffix in (".log", ".ini", ".txt"):
        assert xml.with_suffix(suffix).exists()
    assert "done" in out  # the program ran to its end
