"""Redis credentials never reach an output but the raw .log: traced live against private servers with
passwords (the shared server stays without one), each way a password can travel.

On the command line and in the environment: `redis-cli -a PW`, `--user U --pass PW`, `-u
redis://:PW@host`, `REDISCLI_AUTH=PW` (in a script and in the traced program's environment), and the
commands redis-cli is given as arguments (`CONFIG SET requirepass PW`, `ACL SETUSER bob >PW`, `MIGRATE
... AUTH PW`). On the wire: AUTH (redis-cli's), HELLO 3 AUTH (redis-py in RESP3), AUTH user pw (redis-py
in RESP2), CONFIG SET requirepass, ACL SETUSER's `>pw`, MIGRATE's AUTH and AUTH2; and in replies: CONFIG
GET requirepass (the password itself) and ACL GETUSER (its SHA-256). Every file dockit writes is read
back: the XML and TXT summaries, the calls file in TXT, CSV and JSON (blocks and `--each-call`), the
.ini, the pcap, the event log, and what `--serve` serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import run_dockit
from tests.redis_helpers import HOST, Traced, needs, private_server

pytestmark = [pytest.mark.live]
PW1, PW2, PW3, BOB = "Pw1-k7Qz", "Pw2-x9Lm", "Pw3-r4Td", "Bob-v8Wn"
SECRETS = (PW1, PW2, PW3, BOB, hashlib.sha256(BOB.encode()).hexdigest())

REDIS_PY = """
import os, redis
r = redis.Redis(host="127.0.0.1", port=int(os.environ["PORT"]), username="bob",
                password=os.environ["BOB_PASSWORD"], protocol=int(os.environ["PROTO"]))
print(r.ping())
"""
# The replies that hold a secret, read without printing them (a program that prints a password writes it
# to its own stdout, which the calls file shows as any other write).
ADMIN_PY = """
import os, redis
r = redis.Redis(host="127.0.0.1", port=int(os.environ["PORT"]), password=os.environ["ADMIN_PASSWORD"], protocol=2)
r.config_get("requirepass")
r.acl_getuser("bob")
"""


def script(port: int, target: int) -> str:
    cli = f"redis-cli -h {HOST} -p {port} --no-auth-warning"
    return "; ".join(
        [
            f"{cli} -a {PW1} SET k v",
            f"{cli} --user default --pass {PW1} GET k",
            f"redis-cli -u redis://default:{PW1}@{HOST}:{port} PING",
            f"REDISCLI_AUTH={PW1} {cli} DBSIZE",
            f"{cli} -a {PW1} ACL SETUSER bob on '>{BOB}' '~*' '+@all'",
            f"PROTO=3 {sys.executable} redis_py.py",
            f"PROTO=2 {sys.executable} redis_py.py",
            f"{cli} -a {PW1} MIGRATE {HOST} {target} k 0 5000 COPY AUTH {PW3}",
            f"{cli} -a {PW1} MIGRATE {HOST} {target} '' 0 5000 COPY REPLACE AUTH2 default {PW3} KEYS k",
            f"{cli} -a {PW1} CONFIG SET requirepass {PW2}",
            f"ADMIN_PASSWORD={PW2} {sys.executable} admin_py.py",
        ]
    )


def leaks(folder: Path) -> dict[str, list[str]]:
    """Which secrets each file of `folder` holds (the raw .log left out: it keeps every byte)."""
    found: dict[str, list[str]] = {}
    for path in folder.iterdir():
        if path.is_file() and not path.name.endswith(".log"):
            data = path.read_bytes()
            hits = [s for s in SECRETS if s.encode() in data]
            if hits:
                found[path.name] = hits
    return found


def test_no_output_holds_a_redis_password(tmp_path: Path) -> None:
    needs("redis-cli", "redis-server", "strace")
    pytest.importorskip("redis")
    out = tmp_path / "out"
    out.mkdir()
    (out / "redis_py.py").write_text(REDIS_PY)
    (out / "admin_py.py").write_text(ADMIN_PY)
    with (
        private_server(tmp_path / "target", "--requirepass", PW3) as target,
        private_server(tmp_path / "srv", "--requirepass", PW1) as port,
    ):
        env = dict(os.environ, PORT=str(port), BOB_PASSWORD=BOB, REDISCLI_AUTH=PW1)
        result = run_dockit(
            "-l", str(out / "run"), "--each-call", "-f", "CSV", "--pcap", str(out / "run.pcapng"),
            "--events", str(out / "run.events.json"), "sh", "-c", script(port, target), cwd=out, env=env,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("dockit")]  # the clients print too
    assert [s for s in SECRETS if s in "\n".join(said)] == []
    log = next(out.glob("run.strace.*.log"))
    raw = log.read_bytes()
    assert all(s.encode() in raw for s in SECRETS[:4])  # the raw log keeps them: they did cross
    traced = Traced(out / "run")
    commands = traced.commands()
    by_name = {}
    for command in commands:
        by_name.setdefault(command["Command"], []).append(command)
    # Each secret command was decoded, its secret argument shown redacted.
    # redis-cli's -a, --user/--pass, -u, REDISCLI_AUTH, then -a for ACL SETUSER, redis-py in RESP2 (AUTH
    # bob pw; in RESP3 it is HELLO's), -a for two MIGRATEs and CONFIG SET, redis-py's AUTH pw.
    assert [c["args"] for c in by_name["AUTH"]] == (
        [["<redacted>"], ["default", "<redacted>"], ["default", "<redacted>"]] + [["<redacted>"]] * 2
        + [["bob", "<redacted>"]] + [["<redacted>"]] * 4
    )  # fmt: skip
    assert [c["Status"] for c in by_name["AUTH"]] == ["ok"] * 10
    hello = [c for c in by_name["HELLO"] if "AUTH" in c["args"]]
    assert [c["args"] for c in hello] == [["3", "AUTH", "bob", "<redacted>"]] and hello[0]["Status"] == "ok"
    assert by_name["ACL SETUSER"][0]["args"] == ["bob", "on", "<redacted>", "~*", "+@all"]
    assert by_name["CONFIG SET"][0]["args"] == ["requirepass", "<redacted>"]
    assert [c["args"][-1] for c in by_name["MIGRATE"]] == ["<redacted>", "k"]
    assert by_name["MIGRATE"][1]["args"][-3:] == ["<redacted>", "KEYS", "k"]
    assert [c["Status"] for c in by_name["MIGRATE"]] == ["ok", "ok"]
    assert [(c["args"], c["ReplyType"], c["ReplySize"]) for c in by_name["CONFIG GET"]] == [
        (["requirepass"], "array", "2")
    ]
    assert [(c["args"], c["ReplyType"]) for c in by_name["ACL GETUSER"]] == [(["bob"], "array")]
    users = {s.get("User") for s in traced.sessions()}
    assert {"default", "bob"} <= users
    # Replays in the other formats: the TXT summary, the calls file in TXT and JSON, blocks and each call.
    for extra in (["-F", "TXT"], ["-f", "JSON"], ["--each-call", "-f", "JSON"], ["--each-call"]):
        replay = run_dockit(
            "-i", str(log), "-l", str(out / ("replay" + "".join(extra).replace("-", ""))), *extra
        )
        assert replay.returncode == 0, replay.stderr
    assert leaks(out) == {}
    names = {p.name for p in out.iterdir()}
    assert {"run.pcapng", "run.events.json"} <= names and any(n.endswith(".ini") for n in names)
    assert any(n.endswith(".csv") for n in names) and any(
        n.endswith(".json") and "replay" in n for n in names
    )
    events = json.loads((out / "run.events.json").read_text())
    assert events  # written, and read back above for secrets
    # --serve: every object and the summary as served.
    from tests.test_serve import Served, all_objects

    served = Served("-i", str(log), "--serve-after", "-l", str(tmp_path / "served" / "run"))
    try:
        served.wait_line("wrote")
        text = json.dumps(all_objects(served)) + json.dumps(served.get("/api/summary"))
    finally:
        served.stop()
    assert "Dockit_RedisCommand" in text
    assert [s for s in SECRETS if s in text] == []
