"""What the Redis tests share: the machine's server (127.0.0.1:6379), private servers started on a free
port with their own folder (a password, a unix socket, TLS: the shared server is never reconfigured),
a live run's summary read back, and the decoder fed chunks."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree

from decoders.api import ChannelInfo, Chunk
from decoders.records import CimObject, Output, as_cim
from decoders.redis import RedisDecoder
from tests.conftest import listening

HOST = "127.0.0.1"
PORT = 6379
REPO = Path(__file__).resolve().parents[1]


def server_listening(port: int = PORT) -> bool:
    return listening(port, HOST)


requires_server = pytest.mark.skipif(not server_listening(), reason="no Redis server on 127.0.0.1:6379")


def unique(prefix: str = "dockit") -> str:
    """A key prefix of this test's own: the shared server may hold anyone's keys."""
    return f"{prefix}:{secrets.token_hex(4)}"


def needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def private_server(folder: Path, *arguments: str, port: int | None = None) -> Iterator[int]:
    """`redis-server` of the test's own, on a free port, its files in `folder`; stopped afterwards."""
    needs("redis-server")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port() if port is None else port
    tls = "--tls-port" in arguments
    command = ["redis-server", "--port", "0" if tls else str(port), "--dir", str(folder), "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--bind", HOST, *arguments]  # fmt: skip
    if tls:
        command[command.index("--tls-port") + 1] = str(port)
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not server_listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(folder / 'server.log').read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Traced:
    """A live run's summary, as the tests read it: commands (dicts with their arguments and keys),
    sessions, messages, keys."""

    def __init__(self, prefix: Path, tracer: str = "strace") -> None:
        self.xml = next(prefix.parent.glob(f"{prefix.name}.{tracer}.*.xml"))
        self.root = etree.parse(str(self.xml)).getroot()
        self.folder = prefix.parent

    def commands(self, keep: str | None = None) -> list[dict]:
        """Every Dockit_RedisCommand; with `keep`, only those with an argument containing it."""
        found = []
        for e in self.root.iter("Dockit_RedisCommand"):
            record = dict(e.attrib)
            record["args"] = [a.text for a in e.iter("Argument")]
            record["keys"] = [(k.get("Name"), k.get("Access")) for k in e.iter("Key")]
            if keep is None or any(keep in (a or "") for a in record["args"]):
                found.append(record)
        return found

    def facts(self, keep: str, prefix: str) -> list[tuple]:
        """(command, status, reply type, reply size, arguments with the prefix as `P`) in order."""
        return [
            (c["Command"], c["Status"], c.get("ReplyType"), c.get("ReplySize"),
             tuple((a or "").replace(prefix, "P") for a in c["args"]))
            for c in self.commands(keep)
        ]  # fmt: skip

    def sessions(self) -> list[dict[str, str]]:
        return [
            dict(e.attrib) for e in self.root.iter("Dockit_DatabaseSession") if e.get("Protocol") == "redis"
        ]

    def messages(self) -> list[dict[str, str]]:
        return [dict(e.attrib) for e in self.root.iter("Dockit_Message") if e.get("Protocol") == "redis"]

    def keys(self, prefix: str) -> dict[str, tuple[int, int]]:
        return {
            e.get("Name").replace(prefix, "P"): (int(e.get("Reads")), int(e.get("Writes")))
            for e in self.root.iter("Dockit_RedisKey")
            if e.get("Name", "").startswith(prefix)
        }

    def statistics(self) -> dict[str, str]:
        return dict(self.root.find("Dockit_Statistics").attrib)

    def output_files(self) -> list[Path]:
        """Every file the run wrote but the raw log."""
        return [p for p in self.folder.iterdir() if p.is_file() and not p.name.endswith(".log")]


def decode(chunks: Iterable[Chunk], channel: ChannelInfo) -> list[Output]:
    decoder = RedisDecoder(channel)
    out: list[Output] = []
    last = None
    for chunk in chunks:
        out += decoder.feed(chunk)
        last = chunk.time
    out += decoder.close(last)
    return out


def cims(out: Iterable[Output], cim_class: str) -> list[CimObject]:
    return [
        as_cim(o)
        for o in out
        if hasattr(o, "to_cim") or isinstance(o, CimObject)
        if as_cim(o).cim_class == cim_class
    ]  # type: ignore[arg-type]
