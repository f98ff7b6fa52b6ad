"""Servers that speak TLS, started by the tests themselves: a private MariaDB and an HTTPS server.

Each has its own data folder, port and self-signed certificate (made with the `openssl` command), and
is stopped by the test that started it: the machine's shared servers are never touched. Also used by
captures/record_tls.py, which records the committed TLS captures the same way.
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SUBJECT = "/O=Dockit Tests/CN=localhost"  # openssl -subj: the RDNs in order, the last one is the CN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_certificate(folder: Path, subject: str = SUBJECT) -> tuple[Path, Path]:
    """A self-signed RSA certificate for localhost and its key (absolute paths: mariadbd needs them)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder.resolve() / "cert.pem", folder.resolve() / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", subject, "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def certificate_subject(cert: Path) -> str:
    """The subject as openssl writes it in RFC 2253 form (the last RDN first): the independent truth."""
    out = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "RFC2253"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    return out.removeprefix("subject=")


def why_no_mariadb() -> str | None:
    for tool in ("mariadbd", "mariadb-install-db", "mariadb", "openssl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed"
    return None


@dataclass
class PrivateMariaDB:
    """`mariadbd` on its own port and data folder, with TLS (root without a password, from 127.0.0.1)."""

    folder: Path
    port: int
    cert: Path
    key: Path
    process: subprocess.Popen | None = None

    @classmethod
    def start(cls, folder: Path) -> PrivateMariaDB:
        folder = folder.resolve()
        cert, key = make_certificate(folder / "tls")
        data = folder / "data"
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
             "--auth-root-authentication-method=normal"],
            check=True, capture_output=True, timeout=180,
        )  # fmt: skip
        server = cls(folder, free_port(), cert, key)
        server.process = subprocess.Popen(
            [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}",
             "--user=root", f"--port={server.port}", "--bind-address=127.0.0.1",
             f"--socket={data}/s.sock", f"--ssl-cert={cert}", f"--ssl-key={key}", "--skip-log-bin",
             "--skip-name-resolve"],  # 127.0.0.1 stays 127.0.0.1: the anonymous user@localhost never matches
            stdout=subprocess.DEVNULL, stderr=open(folder / "mariadbd.err", "wb"),  # noqa: SIM115
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError((folder / "mariadbd.err").read_text(errors="replace")[-2000:])
            if server.sql("SELECT 1", check=False).returncode == 0:
                return server
            time.sleep(0.2)
        server.stop()
        raise RuntimeError("the private MariaDB did not start within 60 s")

    def sql(self, statements: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["mariadb", "-h", "127.0.0.1", "-P", str(self.port), "-u", "root", "--skip-ssl", "-e", statements],
            capture_output=True, text=True, timeout=60, check=check,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b"hello over tls\n"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status = 404 if self.path.startswith("/missing") else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: object) -> None:
        pass


class HttpsServer:
    """An HTTPS server in a thread of the test: GET answers 200 with `body` (404 under /missing)."""

    def __init__(self, cert: Path, key: Path, alpn: list[str] | None = None) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        if alpn:
            context.set_alpn_protocols(alpn)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.body = _Handler.body
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpsServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def environment_without_proxies() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


@dataclass
class PrivateRedis:
    """`redis-server` with a port in clear and a TLS port, both its own, nothing saved to disk."""

    folder: Path
    port: int
    tls_port: int
    process: subprocess.Popen | None = None

    @classmethod
    def start(cls, folder: Path) -> PrivateRedis:
        folder = folder.resolve()
        cert, key = make_certificate(folder / "tls")
        server = cls(folder, free_port(), free_port())
        server.process = subprocess.Popen(
            ["redis-server", "--port", str(server.port), "--bind", "127.0.0.1", "--tls-port", str(server.tls_port),
             "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
             "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(folder)],
            stdout=open(folder / "redis.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError((folder / "redis.log").read_text(errors="replace")[-2000:])
            ping = subprocess.run(["redis-cli", "-p", str(server.port), "PING"], capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                return server
            time.sleep(0.1)
        server.stop()
        raise RuntimeError("the private Redis did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
