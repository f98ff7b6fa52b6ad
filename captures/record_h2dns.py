"""Record the HTTP/2, gRPC and DNS captures with dockit itself: real clients traced live against servers
the recorder starts (tests/h2dns_servers.py).

    DOCKIT_SOURCE=$PWD python captures/record_h2dns.py              # all of them into captures/
    DOCKIT_SOURCE=$PWD python captures/record_h2dns.py dns_dig      # some of them

- `h2_nghttp`: nghttp (HTTP/2 by prior knowledge) against hypercorn serving tests/h2_app.py: /hello,
  /missing and /pushed in one connection; the server pushes /style.css.
- `h2_upgrade`: curl `--http2` against the same server: HTTP/1.1 with `Upgrade: h2c`, 101, then HTTP/2.
- `grpc_reflection`: the client of tests/grpc_service.py against its server: reflection first, then
  the five calls of `CALLS` (unary, an error, client, server and bidi streaming). Python's start is a
  long log: it is kept gzipped (dockit replays it as it is).
- `dns_dig`: dig over UDP (A, an NXDOMAIN, MX) and over TCP (AAAA) against the dnslib server.
- `dns_resolved`: in a network namespace of the recorder's own (root; /etc/resolv.conf names the
  dnslib server on 127.0.0.1:53), Python resolves api.example.test through glibc (A and AAAA in one
  sendmmsg) and sends an HTTP request to it: the connection's socket carries `RemoteName`.

Each leaves `captures/<name>.strace.<pid>.log` (or `.log.gz`) and `.ini`, and
`captures/<name>.objects.json`: the decoded objects the live run's summary held (and the sockets named
by a lookup), which a replay must give again. The facts each must yield are in H2DNS_FACTS.md, checked
by tests/test_h2dns_captures.py.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.h2dns_servers import (  # noqa: E402
    ROOT,
    dns_server,
    grpc_client_command,
    grpc_code,
    grpc_server,
    hypercorn_server,
)

WORK = Path("/tmp/dockit-captures")
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
MAX_BYTES = 300_000
OBJECTS = ("Dockit_HttpRequest", "Dockit_RpcCall", "Dockit_DnsQuery", "Dockit_Socket")


def decoded_objects(xml: Path) -> list[dict]:
    """The summary's decoded objects (and the sockets a lookup named), as class, attributes, children."""
    found = []
    for element in etree.parse(str(xml)).getroot().iter(*OBJECTS):
        if element.tag == "Dockit_Socket" and element.get("RemoteName") is None:
            continue
        found.append({
            "class": element.tag,
            "attributes": dict(element.attrib),
            "children": [[child.tag, dict(child.attrib), child.text] for child in element],
        })  # fmt: skip
    return found


def _clean(name: str, out: Path) -> Path:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for old in glob.glob(str(out / f"{name}.strace.*")) + glob.glob(str(out / f"{name}.objects.json")):
        os.unlink(old)
    return folder


def _environment() -> dict[str, str]:
    environment = dict(ENVIRONMENT)
    environment["PYTHONPATH"] = os.environ.get("DOCKIT_SOURCE") or ROOT
    return environment


def _finish(name: str, out: Path, compress: bool) -> Path:
    (xml,) = glob.glob(str(out / f"{name}.strace.*.xml"))
    (out / f"{name}.objects.json").write_text(json.dumps(decoded_objects(Path(xml)), indent=1) + "\n")
    for extra in glob.glob(str(out / f"{name}.strace.*.xml")) + glob.glob(str(out / f"{name}.strace.*.txt")):
        os.unlink(extra)
    (log,) = glob.glob(str(out / f"{name}.strace.*.log"))
    if compress:
        with open(log, "rb") as source, gzip.open(log + ".gz", "wb", compresslevel=9) as target:
            shutil.copyfileobj(source, target)
        os.unlink(log)
        log += ".gz"
    size = os.path.getsize(log)
    if size > MAX_BYTES:
        raise SystemExit(f"{name}: {size} bytes, more than {MAX_BYTES}")
    print(f"{log}: {size} bytes")
    return Path(log)


def record(name: str, command: list[str], out: Path, compress: bool = False) -> Path:
    folder = _clean(name, out)
    with open(folder / "stdout.txt", "wb") as stdout, open(folder / "stderr.txt", "wb") as stderr:
        result = subprocess.run(
            [sys.executable, "-m", "dockit_core.cli", "-l", str(out / name), *command],
            cwd=folder, env=_environment(), stdout=stdout, stderr=stderr, timeout=300, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(
            f"{name}: exit status {result.returncode}: " + (folder / "stderr.txt").read_text()[-2000:]
        )
    return _finish(name, out, compress)


def h2_nghttp(out: Path) -> None:
    with hypercorn_server() as port:
        base = f"http://127.0.0.1:{port}"
        record("h2_nghttp", ["nghttp", "-n", f"{base}/hello", f"{base}/missing", f"{base}/pushed"], out)


def h2_upgrade(out: Path) -> None:
    with hypercorn_server() as port:
        record("h2_upgrade", ["curl", "-s", "--http2", f"http://127.0.0.1:{port}/hello"], out)


def grpc_reflection(out: Path) -> None:
    with grpc_code() as folder, grpc_server(folder, reflection=True) as port:
        record("grpc_reflection", grpc_client_command(folder, port, reflection=True), out, compress=True)


def dns_dig(out: Path) -> None:
    with dns_server() as port:
        dig = f"dig @127.0.0.1 -p {port} +tries=1"
        script = f"{dig} www.example.test A nx.example.test A mail.example.test MX; {dig} +tcp www.example.test AAAA"
        record("dns_dig", ["sh", "-c", script], out)


def dns_resolved(out: Path) -> None:
    """In a network, mount and pid namespace of its own (every process ends with it)."""
    folder = _clean("dns_resolved", out)
    resolv = folder / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n")
    client = "import http.client as h; c = h.HTTPConnection('api.example.test', 8080); c.request('GET', '/hello'); print(c.getresponse().status)"
    body = textwrap.dedent(f"""
        set -e
        ip link set lo up
        mount --bind {resolv} /etc/resolv.conf
        cd {ROOT}
        {sys.executable} -c 'import time; from tests.h2dns_servers import dns_server; cm = dns_server(53); cm.__enter__(); time.sleep(600)' &
        {sys.executable} -m hypercorn tests.h2_app:app --bind 127.0.0.1:8080 >/dev/null 2>&1 &
        for _ in $(seq 50); do {sys.executable} -c 'import socket; socket.create_connection(("127.0.0.1", 8080)).close()' 2>/dev/null && break; sleep 0.1; done
        cd {folder}
        {sys.executable} -m dockit_core.cli -l {out}/dns_resolved {sys.executable} -c "{client}"
    """)
    done = subprocess.run(["unshare", "-f", "-p", "-n", "-m", "--mount-proc", "sh", "-c", body],
                          env=_environment(), capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"dns_resolved: {done.stderr[-2000:]}")
    _finish("dns_resolved", out, compress=True)


CAPTURES = {
    "h2_nghttp": h2_nghttp,
    "h2_upgrade": h2_upgrade,
    "grpc_reflection": grpc_reflection,
    "dns_dig": dns_dig,
    "dns_resolved": dns_resolved,
}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(CAPTURES)
    for name in chosen:
        CAPTURES[name](HERE)
