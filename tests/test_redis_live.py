"""Real Redis clients traced live with dockit: redis-cli over TCP (the machine's server, 127.0.0.1:6379)
and over a unix socket (a private server: the shared one has none), and redis-py (captures/redis_clients.py:
pipelining, MULTI/EXEC with a failed WATCH, DISCARD and EXECABORT, pub/sub with a publisher, HELLO 3 and
every RESP3 reply type, CLIENT TRACKING's invalidation push, BLPOP with a real wait, MONITOR).

Each test writes keys under a prefix of its own (`P` in the expectations). The expected commands,
statuses, reply types and sizes are what the clients sent and what the server answered (the clients
print the answers; the reply sizes are the protocol's: `+OK` is 2 bytes, LRANGE of three elements is an
array of 3, HGETALL of two fields an array of 4 in RESP2 and a map of 2 pairs in RESP3). redis-py 8
starts each connection with `CLIENT SETINFO` twice (which Redis 7.0 refuses: error replies), and a RESP3
one with `HELLO 3` and `CLIENT MAINT_NOTIFICATIONS` (refused too): those are left out of the lists
(`SETUP`), and checked once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import run_dockit
from tests.redis_helpers import HOST, REPO, Traced, needs, private_server, requires_server, unique

pytestmark = [requires_server, pytest.mark.live]
CLIENTS = REPO / "captures" / "redis_clients.py"
SETUP = {"CLIENT SETINFO", "CLIENT MAINT_NOTIFICATIONS", "HELLO"}


def trace(
    tmp_path: Path, name: str, *command: str, extra: tuple[str, ...] = (), env: dict | None = None
) -> Traced:
    prefix = tmp_path / name
    result = run_dockit("-l", str(prefix), *extra, *command, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "decoder redis" not in result.stderr, result.stderr
    traced = Traced(prefix)
    assert traced.statistics()["DecoderProblems"] == "0"
    return traced


def workload(tmp_path: Path, name: str, prefix: str) -> Traced:
    pytest.importorskip("redis")
    return trace(tmp_path, name, sys.executable, str(CLIENTS), name, prefix)


def facts(traced: Traced, prefix: str) -> list[tuple]:
    """(command, status, reply type, reply size, arguments) of every command but redis-py's setup."""
    return [
        (c["Command"], c["Status"], c.get("ReplyType"), c.get("ReplySize"),
         tuple((a or "").replace(prefix, "P") for a in c["args"]))
        for c in traced.commands()
        if c["Command"] not in SETUP
    ]  # fmt: skip


# --- redis-cli ---------------------------------------------------------------------------------------------


def test_redis_cli_over_tcp(tmp_path: Path) -> None:
    needs("redis-cli", "strace")
    p = unique()
    script = (
        f"redis-cli -h {HOST} SET {p}:greeting hello; redis-cli -h {HOST} GET {p}:greeting; "
        f"redis-cli -h {HOST} RPUSH {p}:list a b c; redis-cli -h {HOST} LRANGE {p}:list 0 -1; "
        f"redis-cli -h {HOST} NOSUCH {p}:x; redis-cli -h {HOST} -n 2 EXISTS {p}:greeting; "
        f"redis-cli -h {HOST} DEL {p}:greeting {p}:list"
    )
    traced = trace(tmp_path, "cli", "sh", "-c", script)
    assert facts(traced, p) == [
        ("SET", "ok", "string", "2", ("P:greeting", "hello")),
        ("GET", "ok", "bulk", "5", ("P:greeting",)),
        ("RPUSH", "ok", "integer", None, ("P:list", "a", "b", "c")),
        ("LRANGE", "ok", "array", "3", ("P:list", "0", "-1")),
        ("NOSUCH", "error", "error", None, ("P:x",)),
        ("SELECT", "ok", "string", "2", ("2",)),  # -n 2: redis-cli selects the database first
        ("EXISTS", "ok", "integer", None, ("P:greeting",)),
        ("DEL", "ok", "integer", None, ("P:greeting", "P:list")),
    ]
    error = traced.commands()[4]["Error"]
    assert error.startswith("ERR unknown command 'NOSUCH'")
    assert traced.keys(p) == {"P:greeting": (2, 2), "P:list": (1, 2)}  # NOSUCH names no key
    sessions = traced.sessions()
    assert len(sessions) == 7 and {s["Server"] for s in sessions} == {f"{HOST}:6379"}
    assert [s.get("Database") for s in sessions].count("2") == 1
    assert all(s["ProtocolVersion"] == "2" and s["Encrypted"] == "false" for s in sessions)
    calls = next(tmp_path.glob("cli.strace.*.txt")).read_text()
    assert f"redis SET {p}:greeting" in calls and "redis NOSUCH: error ERR unknown command 'NOSUCH'" in calls


def test_redis_cli_over_a_unix_socket_and_resp3(tmp_path: Path) -> None:
    needs("redis-cli", "strace")
    sock = tmp_path / "srv" / "redis.sock"
    with private_server(tmp_path / "srv", "--unixsocket", str(sock)):
        script = (
            f"redis-cli -s {sock} HSET h f1 v1 f2 v2; redis-cli -s {sock} HGETALL h; "
            f"redis-cli -3 -s {sock} HGETALL h; redis-cli -s {sock} CLIENT SETNAME worker-1"
        )
        traced = trace(tmp_path, "unix", "sh", "-c", script)
    commands = [
        (c["Command"], c["Status"], c.get("ReplyType"), c.get("ReplySize")) for c in traced.commands()
    ]
    assert commands == [
        ("HSET", "ok", "integer", None),
        ("HGETALL", "ok", "array", "4"),
        ("HELLO", "ok", "map", "7"),
        ("HGETALL", "ok", "map", "2"),
        ("CLIENT SETNAME", "ok", "string", "2"),
    ]
    sessions = traced.sessions()
    assert [s["Server"] for s in sessions] == [str(sock)] * 4
    resp3 = [s for s in sessions if s["ProtocolVersion"] == "3"]
    assert len(resp3) == 1 and resp3[0]["ServerVersion"].startswith("7.")
    assert [s.get("ClientName") for s in sessions].count("worker-1") == 1
    assert traced.keys("h") == {"P": (2, 1)}  # the key "h", read twice, written once


# --- redis-py ----------------------------------------------------------------------------------------------


def test_redis_py_pipeline(tmp_path: Path) -> None:
    p = unique()
    traced = workload(tmp_path, "pipeline", p)
    assert facts(traced, p) == [
        ("SET", "ok", "string", "2", ("P:a", "1")),
        ("SET", "ok", "string", "2", ("P:b", "two")),
        ("GET", "ok", "bulk", "1", ("P:a",)),
        ("INCRBY", "ok", "integer", None, ("P:n", "1")),
        ("GET", "ok", "null", None, ("P:missing",)),
        ("RPUSH", "ok", "integer", None, ("P:list", "x", "y", "z")),
        ("LRANGE", "ok", "array", "3", ("P:list", "0", "-1")),
        ("HSET", "ok", "integer", None, ("P:hash", "f1", "v1", "f2", "v2")),
        ("HGETALL", "ok", "array", "4", ("P:hash",)),
        ("NOSUCHCOMMAND", "error", "error", None, ("P:a",)),
        ("DEL", "ok", "integer", None, ("P:b",)),
    ]
    pipelined = [c for c in traced.commands() if c["Command"] not in SETUP]
    assert len({c["Start"] for c in pipelined}) == 1  # one write carried the eleven commands
    assert traced.keys(p) == {
        "P:a": (1, 1), "P:b": (0, 2), "P:n": (0, 1), "P:missing": (1, 0), "P:list": (1, 1), "P:hash": (1, 1),
    }  # fmt: skip
    setup = [c for c in traced.commands() if c["Command"] in SETUP]
    # Two connections (the single-connection client's, the pipeline's from the pool), each naming redis-py.
    assert [(c["Command"], c["Status"], c["args"][0]) for c in setup] == [
        ("CLIENT SETINFO", "error", "LIB-NAME"),
        ("CLIENT SETINFO", "error", "LIB-VER"),
    ] * 2


def test_redis_py_transactions(tmp_path: Path) -> None:
    p = unique()
    traced = workload(tmp_path, "transactions", p)
    rows = [(f[0], f[1], f[2], f[4]) for f in facts(traced, p)]
    transactions = [c.get("Transaction") for c in traced.commands() if c["Command"] not in SETUP]
    assert list(zip(rows, transactions, strict=True)) == [
        (("MULTI", "ok", "string", ()), None),
        (("INCRBY", "ok", "integer", ("P:counter", "1")), "exec"),
        (("SET", "ok", "string", ("P:t", "v")), "exec"),
        (("GET", "ok", "bulk", ("P:t",)), "exec"),
        (("EXEC", "ok", "array", ()), None),
        (("WATCH", "ok", "string", ("P:w",)), None),
        (("SET", "ok", "string", ("P:w", "changed")), None),  # the other connection
        (("MULTI", "ok", "string", ()), None),
        (("SET", "unknown", None, ("P:w", "mine")), "aborted"),  # the WATCH failed: EXEC is null
        (("EXEC", "ok", "null", ()), None),
        (("MULTI", "ok", "string", ()), None),
        (("SET", "unknown", None, ("P:d", "never")), "discarded"),
        (("DISCARD", "ok", "string", ()), None),
        (("MULTI", "ok", "string", ()), None),
        (("SET", "error", "error", ("P:e",)), None),  # refused at queue time
        (("SET", "unknown", None, ("P:e", "never")), "aborted"),
        (("EXEC", "error", "error", ()), None),
    ]
    execs = [c for c in traced.commands() if c["Command"] == "EXEC"]
    assert execs[0]["ReplySize"] == "3" and execs[2]["Error"].startswith("EXECABORT")


def test_redis_py_pubsub(tmp_path: Path) -> None:
    p = unique()
    traced = workload(tmp_path, "pubsub", p)
    assert facts(traced, p) == [
        ("SUBSCRIBE", "ok", "array", "3", ("P:news", "P:alerts")),  # RESP2: confirmations are arrays
        ("PSUBSCRIBE", "ok", "array", "3", ("P:logs.*",)),
        ("PUBLISH", "ok", "integer", None, ("P:news", "hello")),
        ("PUBLISH", "ok", "integer", None, ("P:alerts", "a longer alert text")),
        ("PUBLISH", "ok", "integer", None, ("P:logs.web", "GET /")),
    ]
    messages = [
        (
            m["Channel"].replace(p, "P"),
            m["Size"],
            m.get("Pattern", "").replace(p, "P"),
            m["Kind"],
            m["Direction"],
        )
        for m in traced.messages()
    ]
    assert messages == [
        ("P:news", "5", "", "message", "deliver"),
        ("P:alerts", "19", "", "message", "deliver"),
        ("P:logs.web", "5", "P:logs.*", "pmessage", "deliver"),
    ]
    destinations = {
        e.get("Destination").replace(p, "P"): e.get("Deliveries")
        for e in traced.root.iter("Dockit_MessageDestination")
        if e.get("Protocol") == "redis"
    }
    assert destinations == {"P:news": "1", "P:alerts": "1", "P:logs.web": "1"}


def test_redis_py_resp3_and_tracking(tmp_path: Path) -> None:
    p = unique()
    traced = workload(tmp_path, "resp3", p)
    got = [(f[0], f[1], f[2], f[3]) for f in facts(traced, p)]
    assert got == [
        ("HSET", "ok", "integer", None),
        ("HGETALL", "ok", "map", "2"),
        ("SADD", "ok", "integer", None),
        ("SMEMBERS", "ok", "set", "2"),
        ("ZADD", "ok", "integer", None),
        ("ZSCORE", "ok", "double", None),
        ("EVAL", "ok", "boolean", None),
        ("EVAL", "ok", "bignumber", None),
        ("EVAL", "ok", "verbatim", "9"),  # "txt:hello"
        ("GET", "ok", "null", None),
        ("SET", "ok", "string", "2"),
        ("CLIENT TRACKING", "ok", "string", "2"),
        ("GET", "ok", "bulk", "1"),
        ("SET", "ok", "string", "2"),  # the other connection: invalidates the tracked key
        ("PING", "ok", "string", "4"),
        ("SUBSCRIBE", "ok", "push", "3"),
        ("PUBLISH", "ok", "integer", None),
    ]
    messages = [
        (m["Channel"].replace(p, "P"), m["Kind"], m.get("Keys"), m.get("Size")) for m in traced.messages()
    ]
    assert messages == [("__redis__:invalidate", "invalidate", "1", None), ("P:r3", "message", None, "6")]
    resp3 = [s for s in traced.sessions() if s["ProtocolVersion"] == "3"]
    assert len(resp3) == 2
    assert all(
        s["ServerVersion"].startswith("7.") and s["Mode"] == "standalone" and s["ConnectionId"] for s in resp3
    )


def test_redis_py_blocking_waits(tmp_path: Path) -> None:
    p = unique()
    traced = workload(tmp_path, "blocking", p)
    blpops = [c for c in traced.commands() if c["Command"] == "BLPOP"]
    assert [
        (c["Status"], c["ReplyType"], c.get("ReplySize"), c.get("TimedOut"), c["Blocking"]) for c in blpops
    ] == [
        ("ok", "array", "2", None, "true"),  # [key, "job"]
        ("ok", "null", None, "true", "true"),
    ]
    assert 0.4 <= float(blpops[0]["Duration"]) < 3.0  # the push came 0.5 s later
    assert 0.15 <= float(blpops[1]["Duration"]) < 3.0  # the 0.2 s timeout
    assert traced.keys(p) == {"P:queue": (0, 2), "P:empty": (0, 1)}


def test_redis_py_monitor(tmp_path: Path) -> None:
    p = unique()
    traced = workload(tmp_path, "monitor", p)
    monitor = [c for c in traced.commands() if c["Command"] == "MONITOR"]
    assert [(c["Status"], c["ReplyType"]) for c in monitor] == [("ok", "string")]
    seen = [m for m in traced.messages() if m["Destination"] == "MONITOR"]
    # The shared server's other clients may be monitored too: ours are SET, GET, DEL, in order.
    ours = [m["Command"] for m in seen if m["Command"] in ("SET", "GET", "DEL")]
    assert ours[-3:] == ["SET", "GET", "DEL"] or ours[:3] == ["SET", "GET", "DEL"]
    assert all(m["Kind"] == "monitor" and m["Client"].startswith("127.0.0.1:") for m in seen)
    assert facts(traced, p) == [
        ("MONITOR", "ok", "string", "2", ()),
        ("SET", "ok", "string", "2", ("P:m", "1")),
        ("GET", "ok", "bulk", "1", ("P:m",)),
        ("DEL", "ok", "integer", None, ("P:m",)),
    ]


def test_a_long_value_is_cut_and_marked(tmp_path: Path) -> None:
    needs("redis-cli", "strace")
    p = unique()
    value = "v" * 1000
    traced = trace(tmp_path, "long", "redis-cli", "-h", HOST, "SET", f"{p}:long", value)
    (command,) = traced.commands()
    argument = list(traced.root.iter("Dockit_RedisCommand"))[0].findall("Argument")[1]
    assert (
        argument.text == "v" * 256 and argument.get("Size") == "1000" and argument.get("Truncated") == "true"
    )
    assert command["Command"] == "SET" and command.get("Truncated") is None  # nothing lost by the tracer


INLINE_CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for line in (b"PING\\r\\n", b"SET inline:k hello\\r\\n", b"GET inline:k\\r\\n"):
    s.sendall(line)
    print(s.recv(100))
s.close()
"""


def test_decode_forces_the_decoder_on_inline_commands(tmp_path: Path) -> None:
    """Inline commands (a person at a terminal) on a port that is not Redis's prove nothing by content:
    the connection is left undecoded, with the hint; `--decode PORT=redis` decodes it."""
    needs("strace", "redis-server")
    (tmp_path / "inline.py").write_text(INLINE_CLIENT)
    with private_server(tmp_path / "srv") as port:
        plain = trace(tmp_path, "plain", sys.executable, "inline.py", str(port))
        forced = trace(
            tmp_path, "forced", sys.executable, "inline.py", str(port), extra=("--decode", f"{port}=redis")
        )
    assert plain.commands() == []
    (undecoded,) = list(plain.root.iter("Dockit_UndecodedChannel"))
    assert f"--decode {port}=" in undecoded.get("Hint")
    assert [(c["Command"], c["Status"], c["ReplyType"], c["args"]) for c in forced.commands()] == [
        ("PING", "ok", "string", []),
        ("SET", "ok", "string", ["inline:k", "hello"]),
        ("GET", "ok", "bulk", ["inline:k"]),
    ]
