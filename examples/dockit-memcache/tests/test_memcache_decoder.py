"""The memcached decoder against a real memcached (Debian's package), started by the test on a port of
its own: a conversation recorded through a socket is fed back as chunks (every split, both ends, cut,
garbage), and the real `pymemcache` client is traced by dockit end to end. Expected values are what
the test sent and what memcached's protocol.txt says the server answers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockit_memcache import MemcacheDecoder

from decoders.testing import (
    IN,
    OUT,
    assert_never_raises,
    assert_same_records,
    channel,
    chunk,
    cut,
    decode,
    garbage,
    reversed_directions,
)

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(
    shutil.which("memcached") is None, reason="needs memcached (apt install memcached)"
)


@pytest.fixture(scope="module")
def memcached() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    user = ["-u", "root"] if os.geteuid() == 0 else []
    server = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def converse(port: int, messages: list[bytes]) -> list:
    """Send each message and read until the reply is complete; every send and recv becomes a chunk."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for message in messages:
            sock.sendall(message)
            chunks.append(chunk(message, OUT, time=time.time(), call_index=len(chunks) + 1))
            if b"noreply" in message:
                continue
            received = b""
            while not complete(received, message):
                data = sock.recv(65536)
                received += data
                chunks.append(chunk(data, IN, time=time.time(), call_index=len(chunks) + 1))
    return chunks


def complete(received: bytes, message: bytes) -> bool:
    if message.startswith((b"get", b"gets", b"stats")):
        return received.endswith(b"END\r\n")
    return received.endswith(b"\r\n")


def messages_and_facts() -> tuple[list[bytes], list[tuple]]:
    """A conversation on keys of its own (memcached keeps state between tests), and what it must yield."""
    key = b"dockit-" + os.urandom(4).hex().encode()
    text = key.decode()
    return [m.replace(KEY, key) for m in MESSAGES], [
        tuple(v.replace(KEY_TEXT, text) if isinstance(v, str) else v for v in row) for row in EXPECTED
    ]


KEY = b"dockit-KEY"
MESSAGES = [
    b"set " + KEY + b" 5 0 7\r\nva\r\nlue\r\n",  # a value holding CRLF
    b"get " + KEY + b" nosuch-" + KEY + b"\r\n",
    b"add " + KEY + b" 0 0 1\r\nx\r\n",
    b"incr " + KEY + b"n 1\r\n",
    b"set " + KEY + b"n 0 0 1 noreply\r\n5\r\n",
    b"incr " + KEY + b"n 3\r\n",
    b"delete " + KEY + b"\r\n",
    b"get " + KEY + b"\r\n",
    b"bogus\r\n",
]
KEY_TEXT = KEY.decode()
EXPECTED = [  # Command, Key, Status, ValueBytes: what protocol.txt says memcached must answer
    ("set", KEY_TEXT, "stored", 7),
    ("get", KEY_TEXT, "hit", 7),
    ("add", KEY_TEXT, "not_stored", 1),
    ("incr", KEY_TEXT + "n", "not_found", None),
    ("set", KEY_TEXT + "n", "sent", 1),
    ("incr", KEY_TEXT + "n", "ok", None),
    ("delete", KEY_TEXT, "deleted", None),
    ("get", KEY_TEXT, "miss", None),
    ("bogus", None, "error", None),
]


def table(decoded) -> list[tuple]:  # type: ignore[no-untyped-def]
    return decoded.table("Command", "Key", "Status", "ValueBytes")


def test_every_command_and_every_split(memcached: int) -> None:
    messages, expected = messages_and_facts()
    chunks = converse(memcached, messages)
    decoded = assert_same_records(MemcacheDecoder, chunks, channel(memcached))
    assert table(decoded) == expected
    assert (
        decoded.of("Memcache_Command")[1].attr("Keys") == 2
        and decoded.of("Memcache_Command")[1].attr("Hits") == 1
    )
    assert decoded.problems == [] and "value" not in repr(decoded.records).replace("ValueBytes", "")


def test_traced_on_the_server_side(memcached: int) -> None:
    messages, expected = messages_and_facts()
    chunks = reversed_directions(converse(memcached, messages))
    assert table(decode(MemcacheDecoder, chunks, channel(memcached, server=True))) == expected


def test_a_cut_value_keeps_the_stream_in_step(memcached: int) -> None:
    key = b"big-" + os.urandom(4).hex().encode()
    big = b"set " + key + b" 0 0 5000\r\n" + b"z" * 5000 + b"\r\n"
    chunks = converse(memcached, [big, b"get " + key + b"\r\n", b"delete " + key + b"\r\n"])
    first = next(i for i, c in enumerate(chunks) if c.size > 5000 and c.direction is OUT)
    rows = table(decode(MemcacheDecoder, cut(chunks, first, 40), channel(memcached)))
    name = key.decode()
    assert [r[:3] for r in rows] == [
        ("set", name, "stored"),
        ("get", name, "hit"),
        ("delete", name, "deleted"),
    ]
    assert rows[0][3] is None  # never a wrong length


def test_garbage_never_raises() -> None:
    assert_never_raises(MemcacheDecoder, [garbage(seed) for seed in range(20)])
    assert_never_raises(
        MemcacheDecoder, [garbage(seed, alphabet=b"set get 0123 VALUE END\r\n") for seed in range(20)]
    )


def test_score() -> None:
    assert MemcacheDecoder.score(b"set k 0 0 5\r\n", OUT, channel(11211)) == 90
    assert MemcacheDecoder.score(b"GET / HTTP/1.1\r\n", OUT, channel(80)) == 0


CLIENT = """\
import sys
from pymemcache.client.base import Client
client = Client(("127.0.0.1", int(sys.argv[1])))
client.set(sys.argv[2], b"hello", noreply=False)
print(client.get(sys.argv[2]))
print(client.get(sys.argv[2] + "-missing"))
client.delete(sys.argv[2], noreply=False)
"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_pymemcache_traced_by_dockit(memcached: int, tmp_path: Path) -> None:
    pytest.importorskip("pymemcache")
    key = "dockit-" + os.urandom(4).hex()
    from lxml import etree

    (tmp_path / "client.py").write_text(CLIENT)
    root = HERE.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "--decoder", "dockit_memcache:MemcacheDecoder",
         "-l", str(tmp_path / "m"), sys.executable, str(tmp_path / "client.py"), str(memcached), key],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["b'hello'", "None"]
    (xml,) = tmp_path.glob("m.strace.*.xml")
    found = [
        (e.get("Command"), e.get("Key"), e.get("Status"))
        for e in etree.parse(str(xml)).getroot().iter("Memcache_Command")
    ]
    assert found == [("set", key, "stored"), ("get", key, "hit"), ("get", key + "-missing", "miss"),
                     ("delete", key, "deleted")]  # fmt: skip
