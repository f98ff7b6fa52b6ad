"""The query digest of Redis commands: fingerprints on the command and the key pattern (`GET user:?`),
counts, loops and failures, from a committed capture (facts in captures/REDIS_FACTS.md) and from a live
redis-py workload whose repetitions the test itself makes."""

from __future__ import annotations

import json
import random
import string
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import CAPTURES, run_dockit
from tests.redis_helpers import requires_server


def report(*inputs: Path, cwd: Path) -> dict:
    result = run_dockit("report", "--json", *map(str, inputs), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_redis_cli_capture_digest(tmp_path: Path) -> None:
    """redis_cli: 13 commands on one connection (REDIS_FACTS.md), INCR twice on one key, the LPUSH on a
    string refused with WRONGTYPE; keys without digits are their own pattern."""
    digest = report(CAPTURES / "redis_cli.strace.11708.log", cwd=tmp_path)
    by_print = {q["Fingerprint"]: q for q in digest["queries"]}
    assert digest["executions"] == 13 and all(q["Kind"] == "redis" for q in digest["queries"])
    assert by_print["INCR dockit:cap:visits"]["Count"] == 2
    assert by_print["GET dockit:cap:greeting"]["Count"] == 1 and by_print["GET dockit:cap:absent"]["Count"] == 1
    refused = by_print["LPUSH dockit:cap:greeting"]
    assert refused["Errors"] == 1 and refused["Flags"] == ["always-fails"], refused
    assert list(refused["ErrorCodes"]) == ["WRONGTYPE"]
    assert sum(q["Count"] for q in digest["queries"]) == 13


SCRIPT = """
import redis, sys
prefix = sys.argv[1]
r = redis.Redis(host="127.0.0.1", port=6379, protocol=2, single_connection_client=True)
for i in range(12):
    r.set(f"{prefix}:user:{i}", i)
for i in range(25):
    r.get(f"{prefix}:user:{i}")
try:
    r.lpush(f"{prefix}:user:3", "x")
except redis.ResponseError:
    pass
r.delete(*[f"{prefix}:user:{i}" for i in range(12)])
"""


@requires_server
def test_a_live_loop_of_gets_is_one_fingerprint_flagged_as_a_loop(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    # letters only: a segment of hex digits would itself be an id, `?`, in the pattern
    prefix = "dkdg" + "".join(random.choices(string.ascii_lowercase, k=10))
    script = tmp_path / "loop.py"
    script.write_text(SCRIPT)
    result = run_dockit("-l", str(tmp_path / "loop"), sys.executable, str(script), prefix, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    xml = next(tmp_path.glob("loop.strace.*.xml"))
    digests = {d.findtext("Fingerprint"): d for d in etree.parse(str(xml)).getroot().iter("Dockit_QueryDigest")}
    gets, sets = digests[f"GET {prefix}:user:?"], digests[f"SET {prefix}:user:?"]
    assert gets.get("Count") == "25" and "loop" in gets.get("Flags", "") and gets.get("LongestRun") == "25"
    assert sets.get("Count") == "12" and "loop" in sets.get("Flags", "")
    refused = digests[f"LPUSH {prefix}:user:?"]
    assert refused.get("Count") == "1" and refused.get("Flags") == "always-fails"
    assert refused.find("Error").get("Code") == "WRONGTYPE"
    assert digests[f"DEL {prefix}:user:?+"].get("Count") == "1"  # twelve keys of one pattern
    # the digest's total is the records': one Dockit_RedisCommand per execution counted
    commands = [c for c in etree.parse(str(xml)).getroot().iter("Dockit_RedisCommand")]
    assert sum(int(d.get("Count")) for d in digests.values() if d.get("Kind") == "redis") == len(commands)
