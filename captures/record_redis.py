"""Record the Redis captures with dockit itself: real clients, the machine's real server, traced live.

    python captures/record_redis.py                          # every capture into captures/
    python captures/record_redis.py redis_cli redis_pubsub   # some of them
    python captures/record_redis.py --out DIR redis_blocking # elsewhere
    DOCKIT_SOURCE=/path/to/checkout python captures/record_redis.py   # with that checkout's dockit

The server is the machine's Redis on 127.0.0.1:6379 (no password, RESP2 and RESP3). Before each capture
the recorder (untraced) deletes the keys under `dockit:cap`, so every recording sends and receives the
same things.

How, as captures/record_protocols.py does it (its `record` runs each capture in its own empty folder
with a small fixed environment and keeps `captures/<name>.strace.<pid>.log` and `.ini`): redis-cli runs
under `dockit -l captures/<name> sh -c ...` (commands read from its stdin, one connection); the redis-py
workloads (captures/redis_clients.py) are started untraced and attached with `dockit -p PID` once redis
is imported. MONITOR is traced by the live tests only: what it shows depends on the server's other
clients. The facts each capture must yield are in REDIS_FACTS.md and checked by
tests/test_redis_captures.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from record_protocols import Capture, python, record  # noqa: E402
from record_protocols import Settings as ProtocolSettings  # noqa: E402

PREFIX = "dockit:cap"
# redis-cli reads one command per line from its stdin and sends each on one connection.
CLI_COMMANDS = "\n".join(
    [
        f"SET {PREFIX}:greeting hello",
        f"GET {PREFIX}:greeting",
        f"INCR {PREFIX}:visits",
        f"INCR {PREFIX}:visits",
        f"RPUSH {PREFIX}:queue a b c",
        f"LRANGE {PREFIX}:queue 0 -1",
        f"HSET {PREFIX}:user name ada lang en",
        f"HGET {PREFIX}:user name",
        f"GET {PREFIX}:absent",
        f"LPUSH {PREFIX}:greeting x",  # WRONGTYPE
        f"MGET {PREFIX}:greeting {PREFIX}:absent",
        f"DEL {PREFIX}:queue",
    ]
)
WORKLOADS = ("pipeline", "transactions", "pubsub", "resp3", "blocking")


def captures() -> list[Capture]:
    found = [
        Capture(
            "redis_cli",
            "redis",
            lambda: ["sh", "-c", f"printf '%s\\n' '{CLI_COMMANDS}' | redis-cli -h 127.0.0.1"],
        )
    ]
    for workload in WORKLOADS:
        found.append(
            Capture(
                f"redis_{workload}",
                "redis",
                lambda workload=workload: [
                    python(),
                    "-B",
                    str(HERE / "redis_clients.py"),
                    workload,
                    PREFIX,
                    "--wait",
                ],
                attach=True,
            )
        )
    return found


def clear_keys() -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, protocol=2)
    for key in client.scan_iter(match=f"{PREFIX}:*", count=1000):
        client.delete(key)
    client.close()


def record_all(names: list[str], out: Path = HERE) -> dict[str, Path]:
    known = [c.name for c in captures()]
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(f"unknown capture(s): {sorted(unknown)}")
    logs: dict[str, Path] = {}
    for capture in captures():
        if names and capture.name not in names:
            continue
        clear_keys()
        logs[capture.name] = record(capture, out, ProtocolSettings())
    clear_keys()
    return logs


def main(args: list[str]) -> int:
    out = HERE
    if args[:1] == ["--out"]:
        out, args = Path(args[1]).resolve(), args[2:]
        out.mkdir(parents=True, exist_ok=True)
    for name, log in record_all(args, out).items():
        print(f"{name}: {log} ({log.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
