"""Servers the HTTP/2, gRPC and DNS tests start and stop themselves: hypercorn serving tests/h2_app.py
(h2c by prior knowledge and by Upgrade, server push), the gRPC service of tests/grpc_service.py, and a
DNS server (dnslib, UDP and TCP) answering from ZONE. Each runs on a free port of 127.0.0.1 and is
stopped when its context ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (type, value): what the test DNS server answers. `nx.example.test` is NXDOMAIN.
ZONE = {
    ("www.example.test", "A"): ["127.0.0.1"],
    ("www.example.test", "AAAA"): ["::1"],
    ("api.example.test", "A"): ["127.0.0.1"],
    ("api.example.test", "AAAA"): ["::1"],
    ("mail.example.test", "MX"): ["10 mx.example.test"],
    ("note.example.test", "TXT"): ["hello dns"],
    ("alias.example.test", "CNAME"): ["www.example.test"],
}
NXDOMAIN = "nx.example.test"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (the DNS server takes both)."""
    for _ in range(50):
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def _process(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    try:
        try:
            wait_port(port)
        except RuntimeError as error:
            process.kill()
            raise RuntimeError(
                f"{command[:4]} did not start: {process.stderr.read().decode()[-500:]}"
            ) from error  # type: ignore[union-attr]
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stderr:
            process.stderr.close()


def hypercorn_server(port: int | None = None) -> contextlib.AbstractContextManager[int]:
    """tests/h2_app.py under hypercorn, h2c (prior knowledge and Upgrade) on 127.0.0.1:PORT."""
    port = port or free_port()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "hypercorn", "tests.h2_app:app", "--bind", f"127.0.0.1:{port}"]
    return _process(command, port, env)


@contextlib.contextmanager
def grpc_code() -> Iterator[str]:
    """A folder with tests/grpc_service.py's .proto, its generated modules and its descriptor set."""
    folder = tempfile.mkdtemp(prefix="dockit-grpc-")
    try:
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "tests", "grpc_service.py"), "generate", folder], check=True
        )
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def grpc_server(
    folder: str, reflection: bool = True, port: int | None = None
) -> contextlib.AbstractContextManager[int]:
    port = port or free_port()
    command = [sys.executable, os.path.join(ROOT, "tests", "grpc_service.py"), "serve", folder, str(port)]
    return _process(command + (["--reflection"] if reflection else []), port)


def grpc_client_command(folder: str, port: int, reflection: bool = False) -> list[str]:
    command = [sys.executable, os.path.join(ROOT, "tests", "grpc_service.py"), "client", folder, str(port)]
    return command + (["--reflection"] if reflection else [])


def _resolver():  # type: ignore[no-untyped-def]
    from dnslib import QTYPE, RCODE, RR
    from dnslib.server import BaseResolver

    class ZoneResolver(BaseResolver):
        def resolve(self, request, handler):  # type: ignore[no-untyped-def]
            reply = request.reply()
            name = str(request.q.qname).rstrip(".").lower()
            kind = QTYPE[request.q.qtype]
            if name == NXDOMAIN:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            target = name
            if (name, "CNAME") in ZONE:
                target = ZONE[(name, "CNAME")][0]
                reply.add_answer(*RR.fromZone(f"{name}. 60 IN CNAME {target}."))
            for value in ZONE.get((target, kind), []):
                if kind in ("MX", "CNAME"):
                    value += "."
                if kind == "TXT":
                    value = f'"{value}"'
                reply.add_answer(*RR.fromZone(f"{target}. 60 IN {kind} {value}"))
            return reply

    return ZoneResolver()


@contextlib.contextmanager
def dns_server(port: int | None = None, address: str = "127.0.0.1") -> Iterator[int]:
    """A DNS server answering ZONE over UDP and TCP, in threads of this process."""
    from dnslib.server import DNSLogger, DNSServer

    port = port or free_port()
    resolver = _resolver()
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    servers = [
        DNSServer(resolver, port=port, address=address, logger=quiet),
        DNSServer(resolver, port=port, address=address, tcp=True, logger=quiet),
    ]
    for server in servers:
        server.start_thread()
    try:
        yield port
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


def expected_answer(name: str, kind: str) -> tuple[str, list[str]]:
    """(rcode, values) the test server gives for a question: what a test expects, from ZONE alone."""
    name = name.rstrip(".").lower()
    if name == NXDOMAIN:
        return "NXDOMAIN", []
    if (name, "CNAME") in ZONE:
        target = ZONE[(name, "CNAME")][0]
        return "NOERROR", [target] + ZONE.get((target, kind), [])
    return "NOERROR", list(ZONE.get((name, kind), []))


@contextlib.contextmanager
def dot_server(cert: str, key: str, port: int | None = None) -> Iterator[int]:
    """DNS over TLS (RFC 7858: TCP's 2-byte lengths inside TLS) answering ZONE, in threads of this process."""
    import ssl
    import threading

    from dnslib import DNSRecord

    port = port or free_port()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    resolver = _resolver()
    listener = socket.create_server(("127.0.0.1", port))

    def serve(connection: socket.socket) -> None:
        with (
            contextlib.suppress(OSError, ValueError),
            context.wrap_socket(connection, server_side=True) as tls,
        ):
            while True:
                head = tls.recv(2)
                if len(head) < 2:
                    return
                size, data = int.from_bytes(head, "big"), b""
                while len(data) < size:
                    more = tls.recv(size - len(data))
                    if not more:
                        return
                    data += more
                reply = resolver.resolve(DNSRecord.parse(data), None).pack()
                tls.sendall(len(reply).to_bytes(2, "big") + reply)

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield port
    finally:
        listener.close()
