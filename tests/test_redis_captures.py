"""The Redis captures (recorded here by captures/record_redis.py) replay to the facts of
captures/REDIS_FACTS.md, which were read from the logs' bytes and the clients' printed output.

Each test runs twice: on the committed captures, and on the same captures recorded again now into a
temporary folder by the script's own functions, so the live path (redis-cli traced from its execve, the
redis-py workloads attached with `dockit -p`) is proven too. Besides the stated facts, every command the
clients wrote on their sockets (read from the logs' buffers with Python's own codec and a RESP reader of
ten lines, not dockit's) is in the summary, in the same order.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import CAPTURES, REPO, load_capture_module, run_dockit
from tests.redis_helpers import server_listening

NAMES = ["redis_cli", "redis_pipeline", "redis_transactions", "redis_pubsub", "redis_resp3", "redis_blocking"]
SETUP = {"CLIENT SETINFO", "CLIENT MAINT_NOTIFICATIONS", "HELLO"}
P = "dockit:cap"


recorder = load_capture_module("record_redis")


@dataclass
class Replayed:
    log: Path
    root_pid: int
    xml: etree._Element
    stderr: str

    def commands(self, setup: bool = False) -> list[tuple]:
        return [
            (e.get("Command"), e.get("Status"), e.get("ReplyType"), e.get("ReplySize"),
             tuple((a.text or "").replace(P, "P") for a in e.iter("Argument")))
            for e in self.xml.iter("Dockit_RedisCommand")
            if setup or e.get("Command") not in SETUP
        ]  # fmt: skip

    def attr(self, name: str) -> list[str | None]:
        return [e.get(name) for e in self.xml.iter("Dockit_RedisCommand") if e.get("Command") not in SETUP]

    def messages(self) -> list[tuple]:
        return [
            (e.get("Kind"), (e.get("Channel") or "").replace(P, "P"), e.get("Size"), e.get("Keys"))
            for e in self.xml.iter("Dockit_Message")
        ]

    def keys(self) -> dict[str, tuple[int, int]]:
        return {
            e.get("Name").replace(P, "P"): (int(e.get("Reads")), int(e.get("Writes")))
            for e in self.xml.iter("Dockit_RedisKey")
        }

    def sessions(self) -> list[dict[str, str]]:
        return [dict(e.attrib) for e in self.xml.iter("Dockit_DatabaseSession")]


def replay(log: Path, out: Path) -> Replayed:
    prefix = out / log.name.removesuffix(".log")
    result = run_dockit("-i", str(log), "-l", str(prefix))
    assert "Traceback" not in result.stderr and result.returncode == 0, result.stderr
    match = re.search(r"\.strace\.(\d+)\.log$", log.name)
    assert match
    return Replayed(log, int(match.group(1)), etree.parse(f"{prefix}.xml").getroot(), result.stderr)


@pytest.fixture(scope="module", params=["committed", "recorded-now"])
def captures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Replayed]:
    out = tmp_path_factory.mktemp("redis_captures")
    if request.param == "committed":
        logs = {name: next(CAPTURES.glob(f"{name}.strace.*.log")) for name in NAMES}
    else:
        if not server_listening():
            pytest.skip("no Redis server on 127.0.0.1:6379")
        pytest.importorskip("redis")
        import os

        os.environ.setdefault("DOCKIT_SOURCE", str(REPO))
        folder = out / "recorded"
        folder.mkdir()
        logs = recorder.record_all(NAMES, folder)
    return {name: replay(log, out) for name, log in logs.items()}


_WRITE = re.compile(
    r'^\d+\s+[\d.]+ (?:write|sendto|writev)\((\d+)<TCP:\[[^\]]*->127\.0\.0\.1:6379\]>, "((?:[^"\\]|\\.)*)"',
    re.M,
)


def wire_commands(log: Path) -> list[str]:
    """The commands' names the clients wrote to 127.0.0.1:6379, in the log's order: each buffer's C
    escapes undone by Python's codec, then `*N` arrays of `$len` strings walked (each written whole)."""
    names = []
    for _fd, buffer in _WRITE.findall(log.read_text()):
        data = codecs.escape_decode(buffer.encode())[0]
        at = 0
        while at < len(data):
            assert data[at : at + 1] == b"*", data[at : at + 20]
            end = data.index(b"\r\n", at)
            count, at, words = int(data[at + 1 : end]), end + 2, []
            for _ in range(count):
                end = data.index(b"\r\n", at)
                size = int(data[at + 1 : end])
                words.append(data[end + 2 : end + 2 + size].decode())
                at = end + 2 + size + 2
            two = words[0].upper() in ("CLIENT", "COMMAND", "CONFIG", "ACL") and len(words) > 1
            names.append(f"{words[0].upper()} {words[1].upper()}" if two else words[0].upper())
    return names


def test_every_command_on_the_wire_is_in_the_summary(captures) -> None:
    for name, replayed in captures.items():
        statistics = dict(replayed.xml.find("Dockit_Statistics").attrib)
        assert statistics["UnparsedLines"] == "0", name
        assert "decoder redis" not in replayed.stderr, replayed.stderr
        wire = wire_commands(replayed.log)
        decoded = [c[0] for c in replayed.commands(setup=True)]
        assert sorted(decoded) == sorted(wire) and len(wire) > 5, name
        if name in ("redis_cli", "redis_pipeline"):  # one connection at a time: the same order too
            assert decoded == wire, name
        processes = {e.get("Process") for e in replayed.xml.iter("Dockit_RedisCommand")}
        assert len(processes) == 1


def test_redis_cli(captures) -> None:
    replayed = captures["redis_cli"]
    assert replayed.commands() == [
        ("COMMAND DOCS", "ok", "array", "480", ()),  # redis-cli's hints, asked first when reading stdin
        ("SET", "ok", "string", "2", ("P:greeting", "hello")),
        ("GET", "ok", "bulk", "5", ("P:greeting",)),
        ("INCR", "ok", "integer", None, ("P:visits",)),
        ("INCR", "ok", "integer", None, ("P:visits",)),
        ("RPUSH", "ok", "integer", None, ("P:queue", "a", "b", "c")),
        ("LRANGE", "ok", "array", "3", ("P:queue", "0", "-1")),
        ("HSET", "ok", "integer", None, ("P:user", "name", "ada", "lang", "en")),
        ("HGET", "ok", "bulk", "3", ("P:user", "name")),
        ("GET", "ok", "null", None, ("P:absent",)),
        ("LPUSH", "error", "error", None, ("P:greeting", "x")),
        ("MGET", "ok", "array", "2", ("P:greeting", "P:absent")),
        ("DEL", "ok", "integer", None, ("P:queue",)),
    ]
    assert replayed.attr("Error")[10] == "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert replayed.keys() == {
        "P:greeting": (2, 2), "P:visits": (0, 2), "P:queue": (1, 2), "P:user": (1, 1), "P:absent": (2, 0),
    }  # fmt: skip
    (session,) = replayed.sessions()
    assert (session["Protocol"], session["Server"], session["ProtocolVersion"], session["Commands"]) == (
        "redis", "127.0.0.1:6379", "2", "13",
    )  # fmt: skip


def test_redis_pipeline(captures) -> None:
    replayed = captures["redis_pipeline"]
    assert [c[:4] for c in replayed.commands()] == [
        ("SET", "ok", "string", "2"), ("SET", "ok", "string", "2"), ("GET", "ok", "bulk", "1"),
        ("INCRBY", "ok", "integer", None), ("GET", "ok", "null", None), ("RPUSH", "ok", "integer", None),
        ("LRANGE", "ok", "array", "3"), ("HSET", "ok", "integer", None), ("HGETALL", "ok", "array", "4"),
        ("NOSUCHCOMMAND", "error", "error", None), ("DEL", "ok", "integer", None),
    ]  # fmt: skip
    assert (
        len(set(replayed.attr("Start"))) == 1 and len(set(replayed.attr("Duration"))) == 1
    )  # one write, one read
    assert replayed.keys() == {
        "P:a": (1, 1), "P:b": (0, 2), "P:n": (0, 1), "P:missing": (1, 0), "P:list": (1, 1), "P:hash": (1, 1),
    }  # fmt: skip


def test_redis_transactions(captures) -> None:
    replayed = captures["redis_transactions"]
    got = list(zip([c[:3] for c in replayed.commands()], replayed.attr("Transaction"), strict=True))
    assert got == [
        (("MULTI", "ok", "string"), None),
        (("INCRBY", "ok", "integer"), "exec"),
        (("SET", "ok", "string"), "exec"),
        (("GET", "ok", "bulk"), "exec"),
        (("EXEC", "ok", "array"), None),
        (("WATCH", "ok", "string"), None),
        (("SET", "ok", "string"), None),
        (("MULTI", "ok", "string"), None),
        (("SET", "unknown", None), "aborted"),
        (("EXEC", "ok", "null"), None),
        (("MULTI", "ok", "string"), None),
        (("SET", "unknown", None), "discarded"),
        (("DISCARD", "ok", "string"), None),
        (("MULTI", "ok", "string"), None),
        (("SET", "error", "error"), None),
        (("SET", "unknown", None), "aborted"),
        (("EXEC", "error", "error"), None),
    ]


def test_redis_pubsub(captures) -> None:
    replayed = captures["redis_pubsub"]
    assert replayed.commands() == [
        ("SUBSCRIBE", "ok", "array", "3", ("P:news", "P:alerts")),
        ("PSUBSCRIBE", "ok", "array", "3", ("P:logs.*",)),
        ("PUBLISH", "ok", "integer", None, ("P:news", "hello")),
        ("PUBLISH", "ok", "integer", None, ("P:alerts", "a longer alert text")),
        ("PUBLISH", "ok", "integer", None, ("P:logs.web", "GET /")),
    ]
    assert replayed.messages() == [
        ("message", "P:news", "5", None),
        ("message", "P:alerts", "19", None),
        ("pmessage", "P:logs.web", "5", None),
    ]


def test_redis_resp3(captures) -> None:
    replayed = captures["redis_resp3"]
    assert [c[:4] for c in replayed.commands()] == [
        ("HSET", "ok", "integer", None), ("HGETALL", "ok", "map", "2"), ("SADD", "ok", "integer", None),
        ("SMEMBERS", "ok", "set", "2"), ("ZADD", "ok", "integer", None), ("ZSCORE", "ok", "double", None),
        ("EVAL", "ok", "boolean", None), ("EVAL", "ok", "bignumber", None), ("EVAL", "ok", "verbatim", "9"),
        ("GET", "ok", "null", None), ("SET", "ok", "string", "2"), ("CLIENT TRACKING", "ok", "string", "2"),
        ("GET", "ok", "bulk", "1"), ("SET", "ok", "string", "2"), ("PING", "ok", "string", "4"),
        ("SUBSCRIBE", "ok", "push", "3"), ("PUBLISH", "ok", "integer", None),
    ]  # fmt: skip
    assert replayed.messages() == [
        ("invalidate", "__redis__:invalidate", None, "1"),
        ("message", "P:r3", "6", None),
    ]
    versions = sorted(s["ProtocolVersion"] for s in replayed.sessions())
    assert versions == ["2", "3", "3"]
    assert {s.get("ServerVersion") for s in replayed.sessions() if s["ProtocolVersion"] == "3"} == {"7.0.15"}


def test_redis_blocking(captures) -> None:
    replayed = captures["redis_blocking"]
    # The RPUSH's reply and the BLPOP it wakes come back together: either record may come first.
    commands = {
        e.get("ReplyType"): e
        for e in replayed.xml.iter("Dockit_RedisCommand")
        if e.get("Command") not in SETUP
    }
    assert sorted((e.get("Command"), e.get("Status"), t, e.get("ReplySize")) for t, e in commands.items()) == [
        ("BLPOP", "ok", "array", "2"), ("BLPOP", "ok", "null", None), ("RPUSH", "ok", "integer", None),
    ]  # fmt: skip
    assert 0.45 <= float(commands["array"].get("Duration")) < 2  # the push came 0.5 s later
    assert 0.2 <= float(commands["null"].get("Duration")) < 2  # the 0.2 s timeout
    assert (commands["null"].get("TimedOut"), commands["array"].get("TimedOut")) == ("true", None)
    assert replayed.keys() == {"P:queue": (0, 2), "P:empty": (0, 1)}
