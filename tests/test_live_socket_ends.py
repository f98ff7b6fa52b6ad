"""Live runs: what -yy shows of a socket changes during its life (an inode, then the port the kernel
chose for a bind to port 0), and a unix socket may have an abstract name. One socket must stay one
object in the summary, named as the program named it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = pytest.mark.live

PROGRAM = """
import socket
server = socket.socket()
server.bind(("127.0.0.1", 0))          # the kernel chooses the port
server.listen()
port = server.getsockname()[1]
client = socket.create_connection(("127.0.0.1", port))
accepted, _ = server.accept()
client.sendall(b"hello")
assert accepted.recv(10) == b"hello"
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.sendto(b"ping", udp.getsockname())
assert udp.recv(10) == b"ping"
listener = socket.socket(socket.AF_UNIX)
listener.bind("\\0dockit-abstract-test")   # an abstract name: no file
listener.listen()
peer = socket.socket(socket.AF_UNIX)
peer.connect("\\0dockit-abstract-test")
end, _ = listener.accept()
peer.sendall(b"abc")
assert end.recv(10) == b"abc"
print(port, udp.getsockname()[1])
"""


def test_a_socket_bound_to_port_zero_is_one_socket_with_its_real_port(tmp_path: Path, strace_bin: str) -> None:
    result = run_dockit("-l", str(tmp_path / "ends"), "/usr/bin/python3", "-S", "-c", PROGRAM, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tcp_port, udp_port = result.stdout.split()
    summary = Summary.load(next(tmp_path.glob("ends.strace.*.xml")))
    assert not [s for s in summary.sockets if (s.get("Local") or "").endswith(":0")], summary.sockets
    (listening,) = summary.sockets_with(Family="tcp", Listening="true")
    assert listening["Local"] == f"127.0.0.1:{tcp_port}"
    (udp,) = summary.sockets_with(Family="udp", Local=f"127.0.0.1:{udp_port}")
    assert udp["BytesIn"] == "4"
    assert len(summary.sockets_with(Family="tcp")) == 3, "the listener, the client, the accepted end"


def test_an_abstract_unix_socket_is_named_as_the_program_named_it(tmp_path: Path, strace_bin: str) -> None:
    result = run_dockit("-l", str(tmp_path / "abs"), "/usr/bin/python3", "-S", "-c", PROGRAM, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = Summary.load(next(tmp_path.glob("abs.strace.*.xml")))
    names = {s.get("Local") for s in summary.sockets if s["Family"] == "unix"} | {
        s.get("Remote") for s in summary.sockets if s["Family"] == "unix"
    }
    assert "@dockit-abstract-test" in names
    assert not [n for n in names if n and '"' in n], names


def test_binding_a_unix_socket_creates_its_file(tmp_path: Path, strace_bin: str) -> None:
    program = (
        "import os, socket\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.bind('app.sock')\n"
        "s.close()\n"
        "os.unlink('app.sock')\n"
    )
    result = run_dockit("-l", str(tmp_path / "bind"), "/usr/bin/python3", "-S", "-c", program, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = Summary.load(next(tmp_path.glob("bind.strace.*.xml")))
    access = summary.access(str(tmp_path / "app.sock"))
    assert (access.get("Created"), access.get("Deleted")) == ("true", "true")


def test_a_child_sharing_the_fd_table_leaves_it_to_its_parent_when_it_exits(tmp_path: Path, strace_bin: str) -> None:
    """clone(CLONE_FILES) without CLONE_THREAD: a process of its own with its parent's fd table. Its
    exit closes nothing: the parent's socketpair and file stay the same objects, with their bytes."""
    import shutil
    import subprocess

    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the test program")
    source = Path(__file__).parent / "data" / "clone_files.c"
    subprocess.run(["gcc", "-o", str(tmp_path / "clone_files"), str(source)], check=True)
    result = run_dockit("-l", str(tmp_path / "cf"), "./clone_files", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = Summary.load(next(tmp_path.glob("cf.strace.*.xml")))
    unix = sorted((s["BytesOut"], s["BytesIn"]) for s in summary.sockets if s["Family"] == "unix")
    assert unix == [("0", "5"), ("5", "0")], summary.sockets
    assert summary.access(str(tmp_path / "after.txt"))["WrittenBytes"] == "8"
