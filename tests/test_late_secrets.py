"""A credential split across calls never reaches an output but the raw .log (issue 16's leak).

The `--each-call` calls file shows each call's buffer and is written as the calls stream by; a decoder
may know a message is a credential only when its last byte comes, calls later. Decoders say where an
unfinished message began (`Decoder.reading_since`) and the calls file waits for it.

Both situations are traced live: a line protocol's password written in two `send`s (the KV1 example's
decoder, taught an AUTH command, against its real server), and a MySQL login packet read and written
in pieces of 7 and 3 bytes by a relay between the real `mariadb` client and the local MariaDB, traced
on the relay (both of its connections carry the login in pieces).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_example_plugin import kv_server

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "dockit-kvproto"  # this checkout's example, whatever pip installed
pytestmark = pytest.mark.live

AUTH_DECODER = '''\
from dockit_kvproto import KvDecoder
from decoders.records import Secret


class AuthKv(KvDecoder):
    """KV1 with an AUTH line whose argument is a password: the calls that carried it are secret."""
    name = "kvproto"

    def _command(self, word, rest, chunk, truncated):
        if word == "AUTH":
            self.pending.append(_auth(chunk))  # the server answers it too: keep the replies in line
            return [Secret(chunk.call_index)]
        return super()._command(word, rest, chunk, truncated)


class AuthKvWithoutHold(AuthKv):
    """The same, with no reading_since: dockit cannot know the first half is part of a message."""

    def reading_since(self):
        return None


def _auth(chunk):
    from dockit_kvproto.decoder import PendingCommand
    return PendingCommand(command="AUTH", key=None, value_bytes=None, start=chunk.time, pid=chunk.pid,
                          truncated=False)
'''

SPLIT_CLIENT = """\
import hashlib, socket, sys, time
# The password is derived from a seed here, never read: argv, a file or a pipe would show it in the trace.
password = "pw-" + hashlib.sha256(sys.argv[2].encode()).hexdigest()[:16]
first, second = f"AUTH {password[:9]}", f"{password[9:]}\\n"
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as sock:
    sock.recv(100)                          # the greeting
    sock.send(first.encode()); time.sleep(0.05)
    sock.send(second.encode())              # the password's second half, and its newline
    sock.recv(100)
    sock.send(b"GET a\\n"); sock.recv(100)
"""


@pytest.fixture
def admin():  # type: ignore[no-untyped-def]
    """A root connection to the local MariaDB, to create and drop the user the test logs in as."""
    pymysql = pytest.importorskip("pymysql")
    try:
        connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    except pymysql.err.OperationalError:
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306")
    yield connection
    connection.close()


def outputs_but_the_log(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".log") and p.suffix != ".py"]


@pytest.mark.parametrize(
    "extra", [["--each-call"], ["--each-call", "-f", "CSV"], ["--each-call", "-f", "JSON"], []]
)
def test_a_password_split_across_two_writes_is_in_no_output(tmp_path: Path, extra: list[str]) -> None:
    pytest.importorskip("dockit_kvproto")
    (tmp_path / "auth_kv.py").write_text(AUTH_DECODER)
    (tmp_path / "split_client.py").write_text(SPLIT_CLIENT)
    seed = secrets.token_hex(8)
    password = "pw-" + hashlib.sha256(seed.encode()).hexdigest()[:16]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp_path / "out"
    with kv_server(name="kvd") as port:
        result = subprocess.run(
            [sys.executable, "-m", "dockit_core.cli", "--decoder", "auth_kv:AuthKv", "-l", str(out / "run"), *extra,
             sys.executable, str(tmp_path / "split_client.py"), str(port), seed],
            capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (log,) = out.glob("run.strace.*.log")
    raw = log.read_text(errors="replace")
    assert password[:9] in raw and password[9:] in raw  # both halves crossed the socket, in two calls
    assert "after the calls file had written it" not in result.stderr, result.stderr
    for path in outputs_but_the_log(out):
        text = path.read_text(errors="replace")
        for piece in (password, password[:9], password[9:], password[3:9]):
            assert piece not in text, f"{path.name} shows {piece!r}"
    if extra:
        calls = next(
            p for p in out.iterdir() if p.suffix in (".txt", ".csv", ".json") and ".summary" not in p.name
        )
        assert calls.read_text().count("<credentials redacted>") == 2  # the two sends, nothing else


def test_a_decoder_that_does_not_say_where_a_message_began_is_told(tmp_path: Path) -> None:
    """Without reading_since the first half is written before the Secret comes: dockit cannot take it
    back, hides what it still can, and says in one line what the decoder must do."""
    pytest.importorskip("dockit_kvproto")
    (tmp_path / "auth_kv.py").write_text(AUTH_DECODER)
    (tmp_path / "split_client.py").write_text(SPLIT_CLIENT)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
    }
    with kv_server(name="kvd") as port:
        result = subprocess.run(
            [sys.executable, "-m", "dockit_core.cli", "-w", "--decoder", "auth_kv:AuthKvWithoutHold", "--each-call",
             "-l", str(tmp_path / "run"), sys.executable, str(tmp_path / "split_client.py"), str(port), "seed"],
            capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "decoder kvproto named call" in result.stderr and "reading_since()" in result.stderr, result.stderr
    (calls,) = tmp_path.glob("run.strace.*.txt")
    assert calls.read_text().count("<credentials redacted>") == 1  # the second half; the first was written


RELAY = '''\
"""Relays one connection to 127.0.0.1:3306, reading 7 bytes at a time and writing 3: every packet,
the login among them, is cut across calls. Writes what it moved to the file given, as JSON lines."""
import json, selectors, socket, sys

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
client, _ = listener.accept()
server = socket.create_connection(("127.0.0.1", 3306))
record = open(sys.argv[1], "w")
selector = selectors.DefaultSelector()
selector.register(client, selectors.EVENT_READ, ("c2s", server))
selector.register(server, selectors.EVENT_READ, ("s2c", client))
open_sides = 2
while open_sides:
    for key, _ in selector.select():
        direction, target = key.data
        data = key.fileobj.recv(7)
        if not data:
            selector.unregister(key.fileobj)
            open_sides -= 1
            if direction == "c2s":
                server.shutdown(socket.SHUT_WR)
            continue
        record.write(json.dumps([direction, "recv", data.hex()]) + "\\n")
        for start in range(0, len(data), 3):
            piece = data[start:start + 3]
            target.sendall(piece)
            record.write(json.dumps([direction, "send", piece.hex()]) + "\\n")
record.close()
'''


def login_pieces(record: list[list[str]], kind: str) -> tuple[list[bool], int]:
    """For each `kind` call on the client-to-server stream, whether its bytes overlap the login packet
    (the client's first packet); and how many such calls there are."""
    pieces = [bytes.fromhex(data) for direction, what, data in record if direction == "c2s" and what == kind]
    stream = b"".join(pieces)
    login_end = 4 + int.from_bytes(stream[:3], "little")
    overlaps, offset = [], 0
    for piece in pieces:
        overlaps.append(offset < login_end)
        offset += len(piece)
    return overlaps, login_end


@pytest.mark.mysql
@pytest.mark.skipif(
    shutil.which("strace") is None or shutil.which("mariadb") is None, reason="needs strace and mariadb"
)
@pytest.mark.parametrize("calls_format", ["TXT", "JSON"])
def test_a_mysql_login_read_and_written_in_pieces_is_hidden_in_every_call(
    tmp_path: Path,
    calls_format: str,
    admin,  # type: ignore[no-untyped-def]
) -> None:
    user = f"dockit_split_{secrets.token_hex(3)}"
    password = f"Pw-{secrets.token_hex(8)}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
        cursor.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY %s", (password,))
    (tmp_path / "relay.py").write_text(RELAY)
    record_path = tmp_path / "relay.jsonl"
    out = tmp_path / "out"
    try:
        dockit = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "--each-call", "-f", calls_format, "-l", str(out / "relay"),
             sys.executable, str(tmp_path / "relay.py"), str(record_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
        assert dockit.stdout is not None
        port = int(dockit.stdout.readline())
        client = subprocess.run(
            ["mariadb", "--skip-ssl", "-h", "127.0.0.1", "-P", str(port), "-u", user, f"-p{password}",
             "-e", "select 'relayed' as word"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        _, stderr = dockit.communicate(timeout=120)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
    assert client.returncode == 0 and "relayed" in client.stdout, client.stderr
    assert dockit.returncode == 0, stderr
    record = [json.loads(line) for line in record_path.read_text().splitlines()]
    received, login_size = login_pieces(record, "recv")
    sent, _ = login_pieces(record, "send")
    assert login_size > 60 and sum(received) >= 9 and sum(sent) >= 20  # the login really was in pieces
    calls_path = next(out.glob(f"relay.strace.*.{calls_format.lower()}"))
    calls = each_call_records(calls_path, calls_format)
    # The relay's calls on the client-to-server stream, in order: its reads from the client, its
    # writes to the server. Every one that carried a byte of the login shows no buffer.
    reads = [c for c in calls if c["call"] in ("recvfrom", "read") and c["target"].startswith("tcp:")
             and c["target"].rsplit("->", 1)[0].endswith(f":{port}")]  # fmt: skip
    writes = [c for c in calls if c["call"] in ("sendto", "write") and c["target"].endswith(":3306")]
    assert len(writes) == len(sent), (len(writes), len(sent))
    hidden_writes = ["<credentials redacted>" in c["arguments"] for c in writes]
    shown = [
        c["arguments"][:70]
        for c, h, login in zip(writes, hidden_writes, sent, strict=True)
        if login and not h
    ]
    assert not shown, shown
    assert not all(hidden_writes)  # the query's bytes after the login are shown
    client_reads = [c for c in reads if not c["arguments"].startswith(("-1",))]
    hidden_reads = ["<credentials redacted>" in c["arguments"] for c in client_reads]
    assert sum(hidden_reads) >= sum(received), (hidden_reads, received)
    for path in outputs_but_the_log(out):
        assert password not in path.read_text(errors="replace")


def each_call_records(path: Path, calls_format: str) -> list[dict[str, str]]:
    if calls_format == "JSON":
        return [
            {k: str(v) if v is not None else "" for k, v in r.items()} for r in json.loads(path.read_text())
        ]
    records = []
    for line in path.read_text().splitlines():
        head, _, rest = line.partition("(")
        name = head.split()[-1]
        target = line.rsplit("  [", 1)[1].split("]", 1)[0] if "  [" in line else ""
        records.append({"call": name, "target": target, "arguments": rest})
    return records
