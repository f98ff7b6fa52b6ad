"""The redis-py workloads that captures/record_redis.py records and tests/test_redis_live.py traces live:
fixed commands on keys under a prefix, so that each run yields the same facts (captures/REDIS_FACTS.md).

    python redis_clients.py WORKLOAD PREFIX [--wait]

Workloads (each on 127.0.0.1:6379, or the port in REDIS_PORT):
- `pipeline`: one pipeline of 11 commands (one write), an unknown command among them;
- `transactions`: MULTI/EXEC through a redis-py transaction, a WATCH that fails (another connection
  changes the key: EXEC answers null), a MULTI ended by DISCARD, a MULTI with a command refused at
  queue time (EXECABORT);
- `pubsub`: a RESP2 subscriber (SUBSCRIBE two channels, PSUBSCRIBE a pattern) and a publisher
  (three PUBLISH), the subscriber reading the three deliveries;
- `resp3`: HELLO 3, replies of each RESP3 type (map, set, double, boolean, big number, verbatim,
  null), CLIENT TRACKING ON with an invalidation pushed after another connection's SET, and a RESP3
  subscriber's pushed message;
- `blocking`: BLPOP answered after about 0.5 s by another connection's RPUSH, and BLPOP timing out
  after 0.2 s (null);
- `monitor`: MONITOR, while another connection sends SET, GET and DEL; the monitor reads three lines.

With `--wait` the workload imports redis, writes `ready` in its working folder and waits for a tracer
(TracerPid in /proc/self/status), as captures/postgres_clients.py does, so that a capture attached with
`dockit -p PID` holds the protocol work, not the imports.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import redis

HOST = "127.0.0.1"
PORT = int(os.environ.get("REDIS_PORT", "6379"))


def show(value: object) -> None:
    """What the server returned, on stdout: the log then shows it."""
    print(repr(value), flush=True)


def wait_for_tracer() -> None:
    Path("ready").write_text("ready\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = Path("/proc/self/status").read_text()
        if any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in status.splitlines()):
            time.sleep(0.2)
            return
        time.sleep(0.01)
    raise SystemExit("no tracer attached")


def connect(protocol: int = 2) -> redis.Redis:
    """One connection (redis-py 8 would say HELLO 3 by default: RESP2 unless asked)."""
    return redis.Redis(host=HOST, port=PORT, protocol=protocol, single_connection_client=True)


def pipeline(p: str) -> None:
    r = connect()
    pipe = r.pipeline(transaction=False)
    pipe.set(f"{p}:a", "1")
    pipe.set(f"{p}:b", "two")
    pipe.get(f"{p}:a")
    pipe.incr(f"{p}:n")
    pipe.get(f"{p}:missing")
    pipe.rpush(f"{p}:list", "x", "y", "z")
    pipe.lrange(f"{p}:list", 0, -1)
    pipe.hset(f"{p}:hash", mapping={"f1": "v1", "f2": "v2"})
    pipe.hgetall(f"{p}:hash")
    pipe.execute_command("NOSUCHCOMMAND", f"{p}:a")
    pipe.delete(f"{p}:b")
    show(pipe.execute(raise_on_error=False))
    r.close()


def transactions(p: str) -> None:
    r = connect()
    other = connect()
    pipe = r.pipeline(transaction=True)
    pipe.incr(f"{p}:counter")
    pipe.set(f"{p}:t", "v")
    pipe.get(f"{p}:t")
    show(pipe.execute())
    watched = r.pipeline(transaction=True)
    watched.watch(f"{p}:w")
    other.set(f"{p}:w", "changed")
    watched.multi()
    watched.set(f"{p}:w", "mine")
    try:
        watched.execute()
    except redis.WatchError as error:
        show(error)
    show(r.execute_command("MULTI"))
    show(r.execute_command("SET", f"{p}:d", "never"))
    show(r.execute_command("DISCARD"))
    show(r.execute_command("MULTI"))
    show(r.execute_command("SET", f"{p}:e", "never"))
    try:
        r.execute_command("SET", f"{p}:e")  # wrong number of arguments: refused at queue time
    except redis.ResponseError as error:
        show(error)
    try:
        r.execute_command("EXEC")
    except redis.ResponseError as error:
        show(error)
    r.close()
    other.close()


def pubsub(p: str) -> None:
    subscriber = redis.Redis(host=HOST, port=PORT, protocol=2)  # redis-py 8 speaks RESP3 unless told
    publisher = connect()
    sub = subscriber.pubsub()
    sub.subscribe(f"{p}:news", f"{p}:alerts")
    sub.psubscribe(f"{p}:logs.*")
    for _ in range(3):
        show(sub.get_message(timeout=5))
    show(publisher.publish(f"{p}:news", "hello"))
    show(publisher.publish(f"{p}:alerts", "a longer alert text"))
    show(publisher.publish(f"{p}:logs.web", "GET /"))
    for _ in range(3):
        show(sub.get_message(timeout=5))
    sub.close()
    publisher.close()


def resp3(p: str) -> None:
    r = connect(protocol=3)
    other = connect()
    r.hset(f"{p}:h", mapping={"a": "1", "b": "2"})
    show(r.hgetall(f"{p}:h"))
    r.sadd(f"{p}:s", "x", "y")
    show(r.smembers(f"{p}:s"))
    r.zadd(f"{p}:z", {"m": 1.5})
    show(r.zscore(f"{p}:z", "m"))
    show(r.eval("redis.setresp(3); return true", 0))
    show(r.eval("return {big_number='123456789012345678901234567890'}", 0))
    show(r.eval("return {verbatim_string={format='txt', string='hello'}}", 0))
    show(r.get(f"{p}:absent"))
    r.set(f"{p}:cached", "1")
    show(r.execute_command("CLIENT", "TRACKING", "ON"))
    show(r.get(f"{p}:cached"))
    other.set(f"{p}:cached", "2")  # the server pushes an invalidation to r
    time.sleep(0.2)
    show(r.ping())
    subscriber = redis.Redis(host=HOST, port=PORT, protocol=3)
    sub = subscriber.pubsub()
    sub.subscribe(f"{p}:r3")
    show(sub.get_message(timeout=5))
    show(other.publish(f"{p}:r3", "pushed"))
    show(sub.get_message(timeout=5))
    sub.close()
    r.close()
    other.close()


def blocking(p: str) -> None:
    r = connect()
    other = connect()
    timer = threading.Timer(0.5, lambda: other.rpush(f"{p}:queue", "job"))
    timer.start()
    show(r.blpop([f"{p}:queue"], timeout=5))
    timer.join()
    show(r.blpop([f"{p}:empty"], timeout=0.2))
    r.close()
    other.close()


def monitor(p: str) -> None:
    r = redis.Redis(host=HOST, port=PORT, protocol=2)
    other = connect()
    with r.monitor() as m:
        other.set(f"{p}:m", "1")
        other.get(f"{p}:m")
        other.delete(f"{p}:m")
        seen = 0
        while seen < 3:
            command = m.next_command()
            if f"{p}:m" in command["command"]:
                show(command["command"])
                seen += 1
    other.close()


WORKLOADS = {f.__name__: f for f in (pipeline, transactions, pubsub, resp3, blocking, monitor)}


def main(args: list[str]) -> int:
    name, prefix = args[0], args[1]
    if "--wait" in args:
        wait_for_tracer()
    WORKLOADS[name](prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
