"""Wireshark as the independent check of the Redis decoder.

1. tshark captures loopback (port 6379) while dockit traces a workload of real clients (redis-cli, and
   redis-py's pipeline, transactions and RESP2 pub/sub from captures/redis_clients.py): every command
   tshark's `resp` dissector shows the workload's connections sending is in dockit's summary, as many
   times, and dockit claims none it did not see.
2. `--pcap`: tshark reads the pcapng dockit wrote of a redis-cli run, over TCP and over a unix socket
   (which no packet capture can see: dockit writes it as TCP on Redis's port), and finds the same
   commands as the summary.

tshark's dissector gives each request as an array of bulk strings (`resp.array.length`, then
`resp.bulk_string.value` in hex); the command's name is the first string (two for a container such as
CLIENT SETINFO), as dockit names it. Rerun by hand with `python3 -m pytest tests/test_redis_tshark.py`
(as root: tshark captures loopback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_dockit
from tests.redis_helpers import HOST, REPO, needs, private_server, requires_server, unique
from tests.tshark import loopback_capture, needs_tshark

pytestmark = [requires_server, needs_tshark, pytest.mark.live]
CONTAINERS = {"ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
              "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO"}  # fmt: skip


def tshark_commands(pcap: Path, client_ports: set[str] | None = None, server_port: int = 6379) -> Counter:
    """The commands tshark's resp dissector shows sent to `server_port` (from `client_ports` if given);
    a port other than 6379 is read as RESP with `-d tcp.port==P,resp`, as a Wireshark user would."""
    display = f"resp && tcp.dstport == {server_port}"
    decode_as = [] if server_port == 6379 else ["-d", f"tcp.port=={server_port},resp"]
    if client_ports:
        display += " && (" + " || ".join(f"tcp.srcport == {p}" for p in sorted(client_ports)) + ")"
    result = subprocess.run(
        ["tshark", "-r", str(pcap), *decode_as, "-Y", display, "-T", "json", "-e", "resp.array.length",
         "-e", "resp.bulk_string.value"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    found: Counter = Counter()
    for frame in json.loads(result.stdout or "[]"):
        layers = frame["_source"]["layers"]
        values = [
            bytes.fromhex(v.replace(":", "")).decode("utf-8", "replace")
            for v in layers.get("resp.bulk_string.value", [])
        ]
        at = 0
        for length in map(int, layers.get("resp.array.length", [])):
            words = values[at : at + length]
            at += length
            if not words:
                continue
            name = words[0].upper()
            found[f"{name} {words[1].upper()}" if name in CONTAINERS and len(words) > 1 else name] += 1
    return found


def summary_commands(xml: Path) -> Counter:
    root = etree.parse(str(xml)).getroot()
    return Counter(e.get("Command") for e in root.iter("Dockit_RedisCommand"))


def test_tshark_sees_nothing_dockit_misses(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("capturing loopback with tshark needs root")
    needs("redis-cli", "strace")
    pytest.importorskip("redis")
    p = unique("dockit:tshark")
    clients = REPO / "captures" / "redis_clients.py"
    script = (
        f"redis-cli -h {HOST} SET {p}:a 1; redis-cli -h {HOST} GET {p}:a; redis-cli -h {HOST} NOSUCH x; "
        + "; ".join(f"{sys.executable} {clients} {w} {p}" for w in ("pipeline", "transactions", "pubsub"))
    )
    pcap = tmp_path / "loopback.pcapng"
    with loopback_capture(pcap, "tcp port 6379"):
        result = run_dockit("-l", str(tmp_path / "work"), "sh", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    xml = next(tmp_path.glob("work.strace.*.xml"))
    root = etree.parse(str(xml)).getroot()
    ports = {
        s.get("Local").rsplit(":", 1)[1]
        for s in root.iter("Dockit_Socket")
        if s.get("Remote") == f"{HOST}:6379" and s.get("Local")
    }
    assert len(ports) == 3 + 2 + 3 + 2  # redis-cli thrice; the workloads' connections
    theirs = tshark_commands(pcap, ports)
    ours = summary_commands(xml)
    assert theirs["SET"] >= 5 and theirs["EXEC"] == 3 and theirs["SUBSCRIBE"] == 1  # the dissector saw them
    assert theirs == ours
    # redis-cli 3; the pipeline 11, the transactions 17, pub/sub 5, each connection's 2 CLIENT SETINFO (2+3+2).
    assert sum(ours.values()) == 3 + 11 + 17 + 5 + 2 * (2 + 3 + 2)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_pcap_out_read_by_tshark(tmp_path: Path, transport: str) -> None:
    needs("redis-cli", "strace", "redis-server")
    sock = tmp_path / "srv" / "redis.sock"
    with private_server(tmp_path / "srv", "--unixsocket", str(sock)) as port:
        where = ["-h", HOST, "-p", str(port)] if transport == "tcp" else ["-s", str(sock)]
        cli = " ".join(["redis-cli", *where])
        script = (
            f"{cli} SET k v; {cli} GET k; {cli} RPUSH l a b; {cli} LRANGE l 0 -1; {cli} CLIENT SETNAME w; "
            f"{cli} NOSUCH; {cli} DEL k l"
        )
        prefix, pcap = tmp_path / transport, tmp_path / f"{transport}.pcapng"
        result = run_dockit("-l", str(prefix), "--pcap", str(pcap), "sh", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ours = summary_commands(next(tmp_path.glob(f"{transport}.strace.*.xml")))
    expected = Counter(["SET", "GET", "RPUSH", "LRANGE", "CLIENT SETNAME", "NOSUCH", "DEL"])
    assert ours == expected
    # A unix socket is written as TCP to Redis's port (6379), so that the dissector reads it.
    theirs = tshark_commands(pcap, server_port=port if transport == "tcp" else 6379)
    assert theirs == expected


def test_a_packet_capture_replayed_gives_what_tshark_dissects(tmp_path: Path) -> None:
    """`dockit -i capture.pcapng` (issue 14's pcap in): tshark captures loopback while redis-cli and a
    redis-py pipeline run untraced; dockit reads the capture through the same decoder and finds the
    commands tshark's dissector finds on those connections."""
    if os.geteuid() != 0:
        pytest.skip("capturing loopback with tshark needs root")
    needs("redis-cli")
    pytest.importorskip("redis")
    p = unique("dockit:pcapin")
    pcap = tmp_path / "loopback.pcapng"
    clients = REPO / "captures" / "redis_clients.py"
    with loopback_capture(pcap, "tcp port 6379"):
        for command in (["SET", f"{p}:a", "1"], ["GET", f"{p}:a"], ["HGETALL", f"{p}:a"]):
            subprocess.run(["redis-cli", "-h", HOST, *command], check=True, capture_output=True)
        subprocess.run([sys.executable, str(clients), "pipeline", p], check=True, capture_output=True)
    result = run_dockit("-i", str(pcap), "-l", str(tmp_path / "replayed"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = etree.parse(str(tmp_path / "replayed.xml")).getroot()
    ours = [e for e in root.iter("Dockit_RedisCommand")]
    sessions = {e.get("Session") for e in ours if any(p in (a.text or "") for a in e.iter("Argument"))}
    mine = Counter(e.get("Command") for e in ours if e.get("Session") in sessions)
    ports = {session.rsplit("-", 1)[0].rsplit(":", 1)[1] for session in sessions}
    assert len(ports) == 4  # redis-cli thrice, the pipeline's (redis-py's other one only names itself)
    assert tshark_commands(pcap, ports) == mine
    assert mine["SET"] == 3 and mine["HGETALL"] == 2 and mine["NOSUCHCOMMAND"] == 1
