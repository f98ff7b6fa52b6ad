"""The RESP reader and the Redis decoder on bytes: every reply type, whatever the calls' boundaries;
memory bounded whatever lengths the input claims; damage resynchronised; traced from the server's side;
and hypothesis fuzzing (no exception escapes, a damaged stream decodes again after the damage).

The bytes are Redis's own, as the RESP specification and redis-server 7.0 write them (the RESP3 ones
were read from a live `HELLO 3` connection: tests/test_redis_live.py proves the same on the wire)."""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.api import Chunk, Direction
from decoders.records import Problem, Secret
from decoders.redis import RedisDecoder
from decoders.testing import (
    IN,
    OUT,
    assert_never_raises,
    assert_same_records,
    channel,
    conversation,
    cut,
    decode,
    garbage,
    reversed_directions,
)
from protocols import resp
from protocols.resp import command

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RC = "Dockit_RedisCommand"
COLUMNS = ("Command", "Status", "ReplyType", "ReplySize", "Error", "Transaction", "Truncated")

EVERY_TYPE = [
    (b"+OK\r\n", "string", 2, b"OK"),
    (b"-ERR bad\r\n", "error", 7, b"ERR bad"),
    (b":42\r\n", "integer", 2, b"42"),
    (b"$5\r\nhello\r\n", "bulk", 5, b"hello"),
    (b"$0\r\n\r\n", "bulk", 0, b""),
    (b"$-1\r\n", "null", -1, b""),
    (b"*-1\r\n", "null", -1, b""),
    (b"_\r\n", "null", 0, b""),
    (b"*2\r\n$1\r\na\r\n:1\r\n", "array", 2, b""),
    (b"%1\r\n+k\r\n:1\r\n", "map", 1, b""),
    (b"~2\r\n+a\r\n+b\r\n", "set", 2, b""),
    (b",3.5\r\n", "double", 3, b"3.5"),
    (b",inf\r\n", "double", 3, b"inf"),
    (b"#t\r\n", "boolean", 1, b"t"),
    (b"=9\r\ntxt:hello\r\n", "verbatim", 9, b"txt:hello"),
    (b"(123456789012345678901234567890\r\n", "bignumber", 30, b"123456789012345678901234567890"),
    (b"!11\r\nSYNTAX oops\r\n", "error", 11, b"SYNTAX oops"),
    (b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n", "push", 3, b""),
]


def test_every_reply_type_whole_and_byte_by_byte() -> None:
    stream = b"".join(encoded for encoded, *_ in EVERY_TYPE)
    for pieces in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        reader = resp.RespReader(client=False)
        messages = [m for piece in pieces for m in reader.feed(piece)]
        assert [(m.value.type_name, m.value.size, m.value.data) for m in messages] == [
            (name, size, data) for _, name, size, data in EVERY_TYPE
        ]
        assert reader.damaged == 0 and not reader.reading


def test_an_attribute_goes_with_the_value_after_it() -> None:
    reader = resp.RespReader(client=False)
    (message,) = reader.feed(
        b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n"
    )
    assert message.value.type_name == "array" and message.value.size == 2
    assert message.value.attribute is not None and message.value.attribute.size == 1


def test_requests_arrays_and_inline() -> None:
    reader = resp.RespReader(client=True)
    messages = reader.feed(command("SET", "k", "v") + b"PING\r\n\r\n" + b'GET "k"\n')
    assert [(m.value.kind, [i.data for i in m.value.items]) for m in messages] == [
        ("*", [b"SET", b"k", b"v"]),
        ("inline", [b"PING"]),
        ("inline", [b"GET", b'"k"']),
    ]


def test_a_huge_claimed_length_costs_nothing() -> None:
    """`$999999999` then a few bytes, and a count of a billion elements: kept memory stays small."""
    tracemalloc.start()
    reader = resp.RespReader(client=False)
    assert reader.feed(b"$999999999\r\n" + b"x" * 1_000_000) == []
    assert reader.feed(b"*1000000000\r\n" + b":1\r\n" * 10_000) == []
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4_000_000  # the two megabyte-long inputs themselves, not what they claimed
    assert len(reader._blob.data if reader._blob else b"") <= resp.KEEP


def test_damage_resynchronises_at_the_next_command() -> None:
    chunks = conversation(
        [
            (OUT, command("SET", "a", "1")),
            (IN, b"+OK\r\n"),
            (OUT, b"\x00\x01garbage\r\n" + command("GET", "a")),
            (IN, b"$1\r\n1\r\n"),
        ]  # fmt: skip
    )
    decoded = decode(RedisDecoder, chunks)
    assert decoded.table("Command", "Status", "ReplyType", cim_class=RC) == [
        ("SET", "ok", "string"),
        ("GET", "ok", "bulk"),
    ]
    assert [p.message for p in decoded.problems] == ["the client's bytes are not RESP here: resynchronised"]


CONVERSATION = conversation(
    [
        (OUT, command("HELLO", "3", "AUTH", "app", "s3cret-pw")),
        (IN, b"%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"),
        (OUT, command("SELECT", "2") + command("SET", "k", "v") + command("GET", "k") + command("HGETALL", "h")),
        (IN, b"+OK\r\n+OK\r\n$1\r\nv\r\n%1\r\n$1\r\nf\r\n$1\r\nx\r\n"),
        (OUT, command("MULTI")), (IN, b"+OK\r\n"),
        (OUT, command("INCR", "n")), (IN, b"+QUEUED\r\n"),
        (OUT, command("LPUSH", "k", "x")), (IN, b"+QUEUED\r\n"),
        (OUT, command("EXEC")),
        (IN, b"*2\r\n:1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (OUT, command("CLIENT", "TRACKING", "ON")), (IN, b"+OK\r\n"),
        (OUT, command("GET", "k")), (IN, b"$1\r\nv\r\n"),
        (IN, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"),
        (OUT, command("SUBSCRIBE", "news")), (IN, b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"),
        (IN, b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"),
        (OUT, command("BLPOP", "q", "1")),
    ],
    step=0.25,
)  # fmt: skip


def test_a_session_whatever_the_calls() -> None:
    decoded = assert_same_records(RedisDecoder, CONVERSATION)
    assert decoded.table(*COLUMNS, cim_class="Dockit_RedisCommand") == [
        ("HELLO", "ok", "map", 3, None, None, None),
        ("SELECT", "ok", "string", 2, None, None, None),
        ("SET", "ok", "string", 2, None, None, None),
        ("GET", "ok", "bulk", 1, None, None, None),
        ("HGETALL", "ok", "map", 1, None, None, None),
        ("MULTI", "ok", "string", 2, None, None, None),
        ("INCR", "ok", "integer", None, None, "exec", None),
        ("LPUSH", "error", "error", None, "WRONGTYPE Operation against a key holding the wrong kind of value", "exec",
         None),
        ("EXEC", "ok", "array", 2, None, None, None),
        ("CLIENT TRACKING", "ok", "string", 2, None, None, None),
        ("GET", "ok", "bulk", 1, None, None, None),
        ("SUBSCRIBE", "ok", "push", 3, None, None, None),
        ("BLPOP", "unknown", None, None, None, None, None),  # never answered: close() flushed it
    ]  # fmt: skip
    hello = decoded.of("Dockit_RedisCommand")[0]
    assert [c.text for c in hello.children if c.tag == "Argument"] == ["3", "AUTH", "app", "<redacted>"]
    assert decoded.table("Kind", "Channel", "Size", "Keys", cim_class="Dockit_Message") == [
        ("invalidate", "__redis__:invalidate", None, 1),
        ("message", "news", 5, None),
    ]
    (session,) = decoded.of("Dockit_DatabaseSession")
    assert (session.attr("User"), session.attr("Database"), session.attr("ServerVersion")) == (
        "app",
        "2",
        "7.0.15",
    )
    assert session.attr("ProtocolVersion") == 3 and session.attr("Commands") == 13
    assert decoded.secrets == [1]  # the HELLO's call
    assert "s3cret-pw" not in repr(decoded.records) + repr(decoded.notes())


def test_records_are_what_the_declarations_make() -> None:
    """The decoder builds its records directly, for speed: each must be what REDIS_COMMAND, ARGUMENT and
    KEY (the declared contract) make of the same values."""
    from decoders.redis.decoder import ARGUMENT, KEY, REDIS_COMMAND

    def flag(value: object) -> object:
        return True if value == "true" else value

    for obj in decode(RedisDecoder, CONVERSATION).of(RC):
        children = [
            (ARGUMENT if child.tag == "Argument" else KEY)(child.text, **{k: flag(v) for k, v in child.attrs})
            for child in obj.children
        ]
        assert REDIS_COMMAND(children, **{k: flag(v) for k, v in obj.attrs}) == obj


def test_traced_on_the_server_side() -> None:
    server = decode(RedisDecoder, reversed_directions(CONVERSATION), channel(6379, server=True))
    assert server.table(*COLUMNS, cim_class=RC) == decode(RedisDecoder, CONVERSATION).table(
        *COLUMNS, cim_class=RC
    )


def test_a_cut_buffer_is_marked_and_the_next_commands_still_decode() -> None:
    chunks = conversation(
        [
            (OUT, command("SET", "big", "x" * 5000)),
            (IN, b"+OK\r\n"),
            (OUT, command("GET", "big")),
            (IN, b"$5000\r\n" + b"x" * 5000 + b"\r\n"),
            (OUT, command("PING")),
            (IN, b"+PONG\r\n"),
        ]  # fmt: skip
    )
    decoded = decode(RedisDecoder, cut(cut(chunks, 0, 100), 3, 50))
    assert decoded.table("Command", "Status", "ReplyType", "ReplySize", "Truncated", cim_class=RC) == [
        ("SET", "ok", "string", 2, "true"),
        ("GET", "ok", "bulk", 5000, "true"),
        ("PING", "ok", "string", 4, None),
    ]
    (set_command,) = [o for o in decoded.of("Dockit_RedisCommand") if o.attr("Command") == "SET"]
    value = [c for c in set_command.children if c.tag == "Argument"][1]
    assert (
        dict(value.attrs)["Size"] == 5000
        and dict(value.attrs)["Truncated"] == "true"
        and value.text == "x" * 71
    )
    # 71: what the tracer kept of the value (100 bytes, after the 29 of `*3 $3 SET $3 big $5000`)


def test_a_password_split_across_writes_is_hidden_in_every_call() -> None:
    decoder = RedisDecoder(channel(6379))
    auth = command("AUTH", "hunter2-long-password")

    def chunk(data: bytes, index: int) -> Chunk:
        return Chunk(data=data, direction=Direction.OUT, time=1.0, pid=1, size=len(data), call_index=index)

    assert decoder.feed(chunk(auth[:20], 4)) == []
    assert decoder.reading_since() == 4
    assert Secret(4) in decoder.feed(chunk(auth[20:], 5))
    assert decoder.reading_since() is None


def test_garbage_never_raises() -> None:
    assert_never_raises(RedisDecoder, [garbage(seed) for seed in range(30)])


def test_score() -> None:
    info = channel(40000)
    assert RedisDecoder.score(command("PING"), Direction.OUT, info) == 90
    assert RedisDecoder.score(b"*3\r\n$3\r\nSET\r\n", Direction.OUT, info) == 90
    assert RedisDecoder.score(b"GET / HTTP/1.1\r\n", Direction.OUT, info) == 0
    assert RedisDecoder.score(b"*1\r\n$1\r\n\x00\r\n", Direction.OUT, info) == 0
    assert RedisDecoder.score(b"PING\r\n", Direction.OUT, channel(6379)) == 40  # inline, on Redis's port
    assert RedisDecoder.score(b"PING\r\n", Direction.OUT, info) == 0


# --- fuzzing --------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400), st.integers(1, 64))
def test_reader_never_raises_and_stays_bounded(data: bytes, step: int) -> None:
    for client in (True, False):
        reader = resp.RespReader(client=client)
        for i in range(0, len(data), step):
            reader.feed(data[i : i + step], i)
            reader.skip(step % 7, i)
        assert len(reader._buffer) <= resp.MAX_LINE


@FUZZ
@given(st.binary(max_size=200), st.binary(max_size=200), st.integers(1, 50))
def test_a_damaged_stream_decodes_again_after_the_damage(noise: bytes, reply_noise: bytes, step: int) -> None:
    """Whatever bytes come between them, the commands after the damage are read with their replies."""
    before = conversation([(OUT, command("SET", "a", "1")), (IN, b"+OK\r\n")])
    after = [command("GET", "after-the-damage"), command("INCR", "counter")]
    replies = b"$3\r\nabc\r\n:7\r\n"
    # The damage ends with a line break (what resynchronisation waits for), as a broken message would.
    damaged = [
        (OUT, noise + b"\r\n"),
        (IN, reply_noise + b"\r\n"),
        (OUT, b"".join(after)),
        (IN, replies),
    ]
    chunks = before + conversation(damaged, first_call=10)
    pieces = []
    for c in chunks:
        pieces += [
            Chunk(
                data=c.data[i : i + step],
                direction=c.direction,
                time=c.time,
                pid=c.pid,
                size=len(c.data[i : i + step]),
                call_index=c.call_index,
            )  # fmt: skip
            for i in range(0, len(c.data), step)
        ]
    decoder = RedisDecoder(channel(6379))
    outputs = [o for piece in pieces for o in decoder.feed(piece)] + list(decoder.close(99.0))
    commands = [o for o in outputs if getattr(o, "cim_class", None) == "Dockit_RedisCommand"]
    names = [o.attr("Command") for o in commands]
    assert names[0] == "SET"
    assert names[-2:] == ["GET", "INCR"]  # read again after the damage
    assert all(isinstance(o, (Problem,)) or o is not None for o in outputs)


def test_a_flood_of_unanswered_commands_stays_bounded_and_in_step() -> None:
    """More commands awaiting replies than the decoder holds: the oldest go out without their replies,
    and the replies that then come are matched to the right commands, not shifted."""
    from decoders.redis import decoder as module

    count = module.MAX_PENDING + 50
    requests = b"".join(command("INCR", f"k{i}") for i in range(count))
    replies = b"".join(b":%d\r\n" % i for i in range(count))
    decoded = decode(RedisDecoder, conversation([(OUT, requests), (IN, replies), (OUT, command("PING")),
                                                 (IN, b"+PONG\r\n")]))  # fmt: skip
    rows = decoded.table("Command", "Status", cim_class=RC)
    assert len(rows) == count + 1
    assert rows.count(("INCR", "unknown")) == 50 and rows.count(("INCR", "ok")) == count - 50
    assert rows[-1] == ("PING", "ok") and decoded.problems == []
    big = command("SET", "k", "v" * 200) * 50_000  # 50,000 commands of 256 kept bytes: past 8 MiB held
    decoder = RedisDecoder(channel(6379))
    decoder.feed(Chunk(data=big, direction=Direction.OUT, time=1.0, pid=1, size=len(big), call_index=1))
    assert decoder._held <= module.MAX_HELD_BYTES


def test_keys_are_counted_in_bounded_memory() -> None:
    """Past 10,000 distinct keys, the rest are counted together (a key per user must not grow dockit)."""
    from decoders.records import CimChild, CimObject
    from decoders.redis.keys import KEY_LIMIT, RedisKeys

    keys = RedisKeys()
    for i in range(KEY_LIMIT + 500):
        access = "write" if i % 2 else "read"
        keys.add(CimObject(RC, (), (CimChild("Key", (("Name", f"user:{i}"), ("Access", access))),)))
    keys.add(CimObject(RC, (), (CimChild("Key", (("Name", "user:0"), ("Access", "write"))),)))
    objects = keys.objects()
    assert len(objects) == KEY_LIMIT + 1 and len(keys.counts) == KEY_LIMIT
    assert dict(objects[0].attrs) == {"Name": "user:0", "Reads": 1, "Writes": 1}
    overflow = dict(objects[-1].attrs)
    assert (overflow["Name"], overflow["Reads"], overflow["Writes"], overflow["Overflow"]) == (
        "*",
        250,
        250,
        "true",
    )
    assert 450 <= overflow["Keys"] <= 550  # an estimate, in a fixed kilobyte
