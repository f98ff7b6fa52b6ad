"""A private PostgreSQL instance for the tests that need settings the shared server must keep (password
authentication, TLS), or that trace the server itself: its own data folder, port, unix socket folder
and certificate, started as the `postgres` user and stopped by the test.

Its pg_hba.conf asks `md5_user` for an MD5 password, `scram_user` for SCRAM-SHA-256, `clear_user` for
a cleartext password, refuses `refused_user`, and trusts everyone else (over TLS too, `ssl=on`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pg_helpers import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORDS = {
    "md5_user": "Md5-secret-4a1f",
    "scram_user": "Scram-secret-9c2e",
    "clear_user": "Clear-secret-7d3b",
}
HBA = """\
local all all trust
host all md5_user 127.0.0.1/32 md5
host all scram_user 127.0.0.1/32 scram-sha-256
host all clear_user 127.0.0.1/32 password
host all refused_user 127.0.0.1/32 reject
host all all 127.0.0.1/32 trust
hostssl all all 127.0.0.1/32 trust
"""


@dataclass(frozen=True)
class PrivateServer:
    port: int
    socket_dir: str
    data: Path
    command: list[str]  # the server's command line, to run it under a tracer


def _binaries() -> Path:
    found = BIN if (BIN / "initdb").exists() else None
    if found is None:
        initdb = shutil.which("initdb")
        found = Path(initdb).resolve().parent if initdb else None
    if found is None or not (found / "postgres").exists() or shutil.which("runuser") is None:
        pytest.skip("a private PostgreSQL needs initdb, postgres and runuser")
    return found


def _as_postgres(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, command)], check=True, capture_output=True, **kwargs
    )


@contextmanager
def prepared_server() -> Iterator[PrivateServer]:
    """A data folder initialised and configured, with a certificate; the server not started."""
    binaries = _binaries()
    folder = Path(tempfile.mkdtemp(prefix="dockit-pg-"))
    try:
        os.chmod(folder, 0o755)
        data, sockets = folder / "data", folder / "sockets"
        sockets.mkdir()
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
        _as_postgres(
            binaries / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
        )
        (data / "pg_hba.conf").write_text(HBA)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
            check=True, capture_output=True,
        )  # fmt: skip
        for name in ("server.key", "server.crt", "pg_hba.conf"):
            shutil.chown(data / name, "postgres", "postgres")
        os.chmod(data / "server.key", 0o600)
        port = free_port()
        command = [
            "runuser", "-u", "postgres", "--", str(binaries / "postgres"), "-D", str(data), "-p", str(port),
            "-k", str(sockets), "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", "fsync=off",
            "-c", "shared_buffers=16MB", "-c", "max_connections=20", "-c", "logging_collector=off",
        ]  # fmt: skip
        yield PrivateServer(port, str(sockets), data, command)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_ready(server: PrivateServer, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the private server exited with {process.returncode}")
        ready = subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(server.port)], capture_output=True, check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("the private server did not start")


def create_users(server: PrivateServer) -> None:
    """The users of pg_hba.conf, each password stored the way its method needs."""
    md5 = f"SET password_encryption = 'md5'; CREATE USER md5_user PASSWORD '{PASSWORDS['md5_user']}'"
    scram = (
        f"SET password_encryption = 'scram-sha-256'; CREATE USER scram_user PASSWORD '{PASSWORDS['scram_user']}'; "
        f"CREATE USER clear_user PASSWORD '{PASSWORDS['clear_user']}'; CREATE USER refused_user"
    )
    subprocess.run(
        ["psql", "-X", "-q", "-h", server.socket_dir, "-p", str(server.port), "-U", "postgres", "-d", "postgres",
         "-v", "ON_ERROR_STOP=1", "-c", md5, "-c", scram],
        check=True, capture_output=True,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT to the postmaster, whose pid runuser's child has), then wait."""
    if process.poll() is None:
        if _own_group(process):
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _own_group(process: subprocess.Popen) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    """The private server running (untraced) with its users; stopped afterwards."""
    with prepared_server() as server:
        process = subprocess.Popen(
            server.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_ready(server, process)
            create_users(server)
            yield server
        finally:
            stop(process)
