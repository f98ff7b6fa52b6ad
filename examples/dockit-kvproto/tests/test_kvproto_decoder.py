"""The KV1 decoder, sans-IO: bytes recorded from a conversation with the real server, fed back as chunks.

Expected values are what the test sent and what the server answered, never the decoder's own output.
The same recording is fed whole, one byte at a time, merged and in random splits, from the client's
side and from the server's; a cut buffer and random garbage complete the picture. dockit's testing
helpers (`decoders.testing`) do the feeding, splitting, cutting and collecting; a fixture file made by
`dockit extract` from a real trace, and a hex dump, are replayed too.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockit_kvproto import KvDecoder
from dockit_kvproto.server import KvServer
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.api import ChannelInfo, Chunk, Direction
from decoders.records import Annotation, CimObject
from decoders.testing import (
    IN,
    OUT,
    assert_never_raises,
    assert_same_records,
    byte_by_byte,
    channel,
    conversation,
    cut,
    from_hex,
    garbage,
    random_splits,
    replay,
    reversed_directions,
)
from decoders.testing import decode as run_decoder

FIXTURES = Path(__file__).parent / "fixtures"

COMMANDS = ["SET color blue", "GET color", "DEL color", "GET color", "SET secret hunter2", "FLY away"]
EXPECTED = [  # (command, key, status, error), as the protocol says the server must answer
    ("SET", "color", "ok", None),
    ("GET", "color", "ok", None),
    ("DEL", "color", "ok", None),
    ("GET", "color", "error", "no such key"),
    ("SET", "secret", "ok", None),
    ("FLY", "away", "error", "unknown command 'FLY'"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[KvServer]:
    with KvServer(("127.0.0.1", 0), "test") as kv:
        thread = threading.Thread(target=kv.serve_forever, daemon=True)
        thread.start()
        yield kv
        kv.shutdown()


def converse(server: KvServer, commands: list[str], pipeline: bool = False) -> list[Chunk]:
    """Talk to the real server; return each send and recv as a chunk seen from the client (OUT = sent)."""
    chunks: list[Chunk] = []

    def record(data: bytes, direction: Direction) -> None:
        chunks.append(Chunk(data=data, direction=direction, time=time.time(), pid=1, size=len(data)))

    def receive_lines(count: int) -> None:
        received = b""
        while received.count(b"\n") < count:
            data = sock.recv(4096)
            record(data, Direction.IN)
            received += data

    with socket.create_connection(server.server_address[:2]) as sock:
        receive_lines(1)  # the greeting
        if pipeline:
            data = "".join(f"{c}\n" for c in commands).encode()
            sock.sendall(data)
            record(data, Direction.OUT)
            receive_lines(len(commands))
        for command in [] if pipeline else commands:
            data = f"{command}\n".encode()
            sock.sendall(data)
            record(data, Direction.OUT)
            receive_lines(1)
    return [Chunk(**{**vars(c), "call_index": i}) for i, c in enumerate(chunks)]


def client_channel(server: KvServer) -> ChannelInfo:
    return channel(server.server_address[1])


def decode(chunks: list[Chunk], info: ChannelInfo) -> list[CimObject]:
    return run_decoder(KvDecoder, chunks, info).records


def summary(records: list[CimObject]) -> list[tuple]:
    return [tuple(r.attr(a) for a in ("Command", "Key", "Status", "Error")) for r in records]


def split(chunks: list[Chunk], seed: int | None) -> list[Chunk]:
    """Each chunk cut at random places (seed None: into single bytes)."""
    return byte_by_byte(chunks) if seed is None else random_splits(chunks, seed, max_pieces=8)


def test_every_command_with_its_reply_and_latency(server: KvServer) -> None:
    chunks = converse(server, COMMANDS)
    records = decode(chunks, client_channel(server))
    assert summary(records) == EXPECTED
    sends = [c for c in chunks if c.direction is Direction.OUT]
    replies = [c for c in chunks if c.direction is Direction.IN][1:]  # each reply came in one recv here
    for record, send, reply in zip(records, sends, replies, strict=True):
        assert record.attr("Start") == send.time
        assert record.attr("Latency") == round(reply.time - send.time, 6)
        assert record.attr("Process") == 1
        assert record.attr("Server") == client_channel(server).remote
    assert "hunter2" not in repr(records)  # values are counted, never kept
    assert records[4].attr("ValueBytes") == len("hunter2")


def test_annotations_point_at_the_calls(server: KvServer) -> None:
    chunks = converse(server, ["SET color blue"])
    decoder = KvDecoder(client_channel(server))
    notes = [out for c in chunks for out in decoder.feed(c) if isinstance(out, Annotation)]
    assert notes == [Annotation(1, "kvproto: SET color"), Annotation(2, "kvproto: OK to SET color")]


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_any_split_gives_the_same_records(server: KvServer, seed: int | None) -> None:
    chunks = converse(server, COMMANDS)
    assert summary(decode(split(chunks, seed), client_channel(server))) == EXPECTED


def test_every_way_of_cutting_the_bytes_gives_the_same_records(server: KvServer) -> None:
    """whole, byte by byte, merged, random splits: one helper call, records and annotations compared."""
    decoded = assert_same_records(
        KvDecoder, converse(server, COMMANDS), client_channel(server), seeds=range(8)
    )
    assert decoded.table("Command", "Key", "Status", "Error") == EXPECTED


def test_a_hex_dump_decodes(server: KvServer) -> None:
    """Bytes pinned as a hex dump (as `xxd` prints them), in the conversation a KV1 server must hold."""
    greeting = from_hex("00000000: 4b56 3120 6b76 640a                      KV1 kvd.")
    command = from_hex("47 45 54 20 63 6f 6c 6f 72 0a")  # GET color
    reply = from_hex("4552 5220 6e6f 2073 7563 6820 6b65 790a")  # ERR no such key
    assert (greeting, command, reply) == (b"KV1 kvd\n", b"GET color\n", b"ERR no such key\n")
    decoded = run_decoder(KvDecoder, conversation([(IN, greeting), (OUT, command), (IN, reply)], step=0.25))
    assert decoded.table("Command", "Key", "Status", "Error", "Latency") == [
        ("GET", "color", "error", "no such key", 0.25)
    ]
    assert decoded.notes() == ["kvproto: GET color", "kvproto: ERR to GET color"]


def test_a_reply_that_is_no_reply_is_a_problem(server: KvServer) -> None:
    chunks = conversation([(IN, b"KV1 kvd\n"), (OUT, b"GET a\n"), (IN, b"HELLO\n"), (IN, b"OK\n")])
    decoded = run_decoder(KvDecoder, chunks)
    assert [(p.severity, p.call_index) for p in decoded.problems] == [("warning", 3)]
    assert decoded.table("Command", "Status") == [("GET", "ok")]


def test_a_real_trace_extracted_as_a_fixture_replays() -> None:
    """tests/fixtures/kv_session.chunks is one channel of a real `dockit` trace of the client against
    the real server (recorded by tests/fixtures/record.py with `dockit extract`): the commands the
    recording script sent, with the statuses the protocol requires."""
    decoded = replay(FIXTURES / "kv_session.chunks", KvDecoder)
    assert decoded.table("Command", "Key", "Status", "Error") == [
        ("SET", "color", "ok", None),
        ("GET", "color", "ok", None),
        ("DEL", "color", "ok", None),
        ("GET", "color", "error", "no such key"),
    ]
    assert decoded.failures == [] and decoded.problems == []


def test_the_calls_carrying_an_unfinished_line_are_held() -> None:
    """A command split across two writes: `reading_since` names the first until the line is complete."""
    decoder = KvDecoder(channel(7379))
    first, second = conversation([(OUT, b"SET tok"), (OUT, b"en abc\n")], first_call=10)
    decoder.feed(first)
    assert decoder.reading_since() == 10
    decoder.feed(second)
    assert decoder.reading_since() is None


def test_pipelined_commands_are_matched_in_order(server: KvServer) -> None:
    chunks = converse(server, COMMANDS, pipeline=True)
    assert sum(c.direction is Direction.OUT for c in chunks) == 1
    assert summary(decode(chunks, client_channel(server))) == EXPECTED


def test_server_side_roles_come_from_content(server: KvServer) -> None:
    """Traced on the server, the greeting and replies are OUT: the decoder finds the roles itself."""
    chunks = reversed_directions(converse(server, COMMANDS))
    records = decode(chunks, channel(7379, server=True))
    assert summary(records) == EXPECTED
    assert records[0].attr("Server") == "127.0.0.1:7379"


def test_a_cut_buffer_is_marked_and_the_next_line_decoded(server: KvServer) -> None:
    """The tracer showed 12 bytes of a long SET: the command is kept, truncated; the rest decodes."""
    commands = ["SET big " + "x" * 5000, "GET big", "DEL nothing"]
    chunks = converse(server, commands)
    long_send = next(i for i, c in enumerate(chunks) if c.size > 5000)
    chunks = cut(chunks, long_send, 12)
    assert chunks[long_send].missing == len(commands[0]) + 1 - 12
    records = decode(chunks, client_channel(server))
    assert summary(records) == [
        ("SET", "big", "ok", None),
        ("GET", "big", "ok", None),
        ("DEL", "nothing", "error", "no such key"),
    ]
    assert [r.attr("Truncated") for r in records] == ["true", None, None]
    assert records[0].attr("ValueBytes") is None  # its length is unknown: never a wrong number
    assert records[1].attr("ValueBytes") == 5000  # the reply was whole


def test_an_endless_line_is_cut_and_the_replies_stay_in_line(server: KvServer) -> None:
    """A 200 KB value is longer than the decoder buffers: its SET is kept, cut, and matched to its OK."""
    commands = ["SET huge " + "y" * 200_000, "GET huge", "DEL huge", "GET huge"]
    chunks = converse(server, commands)
    for pieces in (chunks, split(chunks, 5)):
        records = decode(pieces, client_channel(server))
        assert summary(records) == [
            ("SET", "huge", "ok", None),
            ("GET", "huge", "ok", None),
            ("DEL", "huge", "ok", None),
            ("GET", "huge", "error", "no such key"),
        ]
        assert [r.attr("Truncated") for r in records] == ["true", "true", None, None]
        assert [r.attr("ValueBytes") for r in records[:2]] == [None, None]  # never a wrong length


def test_an_unanswered_command_is_reported_at_close(server: KvServer) -> None:
    chunks = converse(server, ["GET color"])[:-1]  # the trace ended before the reply
    assert summary(decode(chunks, client_channel(server))) == [("GET", "color", "unknown", None)]


def test_score_claims_the_greeting_only(server: KvServer) -> None:
    channel = client_channel(server)
    greeting = converse(server, [])[0].data
    assert KvDecoder.score(greeting, Direction.IN, channel) == 100
    assert KvDecoder.score(b"GET / HTTP/1.1\r\n", Direction.OUT, channel) == 0
    assert KvDecoder.score(b"KV10", Direction.IN, channel) == 0
    assert KvDecoder.score(b"", Direction.IN, channel) == 0


def test_garbage_never_raises_with_the_helpers() -> None:
    assert_never_raises(KvDecoder, [garbage(seed) for seed in range(20)])
    assert_never_raises(KvDecoder, [garbage(seed, alphabet=b"KV1 GETSOKVALUERR\r\n") for seed in range(20)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=64), st.booleans(), st.integers(0, 100)), max_size=20))
def test_garbage_never_raises(pieces: list[tuple[bytes, bool, int]]) -> None:
    decoder = KvDecoder(channel())
    decoder.feed(Chunk(data=b"KV1 x\n", direction=Direction.IN, time=0.0, pid=1, size=6))
    for data, out, lost in pieces:
        direction = Direction.OUT if out else Direction.IN
        decoder.feed(Chunk(data=data, direction=direction, time=None, pid=1, size=len(data) + lost))
    decoder.close(None)
