"""Live runs on this machine: real programs under dockit, checked from the outside (their output, their
exit status, the files they wrote) and then in dockit's summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Summary, run_dockit

pytestmark = pytest.mark.live

DOCKIT = [sys.executable, "-m", "dockit_core.cli"]


def outputs(folder: Path, name: str) -> dict[str, Path]:
    """The files of one live run, by extension (.log, .ini, .txt, .xml)."""
    found = {}
    for path in folder.glob(f"{name}.strace.*"):
        found[path.name.rsplit(".", 1)[1]] = path
    return found


def no_partials(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".partial") or ".pending" in p.name]
    assert not leftovers, leftovers


def wait_for(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_large_output_streams_through_a_pipe(tmp_path: Path, strace_bin: str) -> None:
    """The original hung after 64 KB of output: here seq's 6.9 MB reach `tail` while it runs."""
    command = f"{' '.join(DOCKIT)} -l {tmp_path}/seq seq 1 1000000 | tail -1"
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1000000\n"
    files = outputs(tmp_path, "seq")
    assert {"log", "ini", "txt", "xml"} <= set(files)
    summary = Summary.load(files["xml"])
    (process,) = summary.processes.values()
    assert process.executable == "/usr/bin/seq" and process.exit_status == 0
    no_partials(tmp_path)


def test_stdin_reaches_the_program(tmp_path: Path, strace_bin: str) -> None:
    result = subprocess.run(
        [*DOCKIT, "-l", str(tmp_path / "cat"), "cat"],
        input=b"typed on stdin\n",
        capture_output=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == b"typed on stdin\n"


ODD_ARGUMENTS = [
    "two words",
    "it's",
    '"double"',
    "*",
    "$HOME",
    "tab\there",
    "",
    "new\nline",
    "ünïcödé",
    "back\\slash",
    "--",
    "-l",
]


def test_arguments_reach_the_program_byte_for_byte(tmp_path: Path, strace_bin: str) -> None:
    program = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv[1:]))"
    result = run_dockit(
        "-l", str(tmp_path / "args"), sys.executable, "-c", program, *ODD_ARGUMENTS, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "argv.json").read_text()) == ODD_ARGUMENTS
    summary = Summary.load(outputs(tmp_path, "args")["xml"])
    root = summary.processes[int(outputs(tmp_path, "args")["xml"].name.split(".")[2])]
    assert root.argv[3:] == ODD_ARGUMENTS, "the summary keeps every argument as the program got it"


@pytest.mark.parametrize(
    ("script", "status", "signal_name"),
    [
        ("exit 0", 0, None),
        ("exit 3", 3, None),
        ("exit 255", 255, None),
        ("kill -9 $$", 137, "SIGKILL"),
        ("kill -TERM $$", 143, "SIGTERM"),
    ],
)
def test_exit_status_passes_through(
    tmp_path: Path, strace_bin: str, script: str, status: int, signal_name: str | None
) -> None:
    result = run_dockit("-l", str(tmp_path / "st"), "sh", "-c", script, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    files = outputs(tmp_path, "st")
    ini = files["ini"].read_text()
    assert f"ExitStatus={status}\n" in ini
    (process,) = Summary.load(files["xml"]).processes.values()
    assert process.signal == signal_name
    assert process.exit_status == (None if signal_name else status)


def test_command_not_found_is_127(tmp_path: Path, strace_bin: str) -> None:
    result = run_dockit("-l", str(tmp_path / "nf"), "no-such-command-here", cwd=tmp_path)
    assert result.returncode == 127
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "no-such-command-here" in result.stderr
    assert not list(tmp_path.iterdir()), "nothing written for a command that never ran"


def test_command_not_executable_is_126(tmp_path: Path, strace_bin: str) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    result = run_dockit("-l", str(tmp_path / "ne"), str(script), cwd=tmp_path)
    assert result.returncode == 126
    assert "Traceback" not in result.stderr


def _terminal_signals() -> None:
    """SIGINT and SIGQUIT as a terminal's foreground job has them. A test run started in the background
    by a non-interactive shell inherits them ignored, and the program would inherit that too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def start_in_own_group(tmp_path: Path, name: str, *command: str) -> subprocess.Popen[bytes]:
    """dockit as a terminal starts it: the leader of its own process group, default signal handling."""
    return subprocess.Popen(
        [*DOCKIT, "-l", str(tmp_path / name), *command],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_terminal_signals,
    )


def test_ctrl_c_to_the_process_group_still_writes_every_output(tmp_path: Path, strace_bin: str) -> None:
    """Ctrl-C in a terminal sends SIGINT to the whole foreground group: the program dies of it and
    dockit, which survives it, writes its outputs and returns 128+2."""
    dockit = start_in_own_group(
        tmp_path, "int", "sh", "-c", "echo partial > written-before.txt; touch ready; exec sleep 30"
    )
    try:
        wait_for(tmp_path / "ready")
        time.sleep(0.2)
        os.killpg(dockit.pid, signal.SIGINT)
        _out, err = dockit.communicate(timeout=30)
    finally:
        if dockit.poll() is None:
            dockit.kill()
    assert dockit.returncode == 130, err
    assert b"Traceback" not in err
    files = outputs(tmp_path, "int")
    assert {"log", "ini", "txt", "xml"} <= set(files)
    summary = Summary.load(files["xml"])
    (root,) = [p for p in summary.processes.values() if p.ppid is None]  # sh, then sleep by exec
    assert root.signal == "SIGINT"
    assert summary.access(str(tmp_path / "written-before.txt"))["WrittenBytes"] == "8"
    no_partials(tmp_path)


def test_sigint_to_the_program_alone(tmp_path: Path, strace_bin: str) -> None:
    dockit = start_in_own_group(tmp_path, "prog", "sh", "-c", "echo $$ > pid; exec sleep 30")
    try:
        wait_for(tmp_path / "pid")
        time.sleep(0.3)
        os.kill(int((tmp_path / "pid").read_text()), signal.SIGINT)
        _out, err = dockit.communicate(timeout=30)
    finally:
        if dockit.poll() is None:
            dockit.kill()
    assert dockit.returncode == 130, err
    assert {"log", "ini", "txt", "xml"} <= set(outputs(tmp_path, "prog"))
    no_partials(tmp_path)


def test_killed_dockit_leaves_no_half_written_summary(tmp_path: Path, strace_bin: str) -> None:
    """An interrupted run never leaves a summary under its final name, whole or not."""
    dockit = start_in_own_group(tmp_path, "dead", "sh", "-c", "touch ready; exec sleep 30")
    try:
        wait_for(tmp_path / "ready")
        os.killpg(dockit.pid, signal.SIGKILL)
        dockit.wait(timeout=30)
    finally:
        if dockit.poll() is None:
            dockit.kill()
    assert not list(tmp_path.glob("dead*.xml"))
    assert not list(tmp_path.glob("dead*.ini"))


def test_live_pipeline_yields_the_capture_facts(tmp_path: Path, strace_bin: str) -> None:
    """The pipeline capture, run again live: the same process tree and pipe as captures/FACTS.md."""
    result = run_dockit("-l", str(tmp_path / "pipe"), "sh", "-c", "ls / | wc -l > out.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = Summary.load(outputs(tmp_path, "pipe")["xml"])
    assert len(summary.processes) == 3
    (ls,) = summary.by_executable("/usr/bin/ls")
    (wc,) = summary.by_executable("/usr/bin/wc")
    (pipe,) = [p for p in summary.pipes if p.get("Writers") == str(ls.pid)]  # stdout/stderr are pipes too
    assert pipe["Readers"] == str(wc.pid) and pipe["CreatedBy"] == str(ls.ppid)
    listing = subprocess.run(["ls", "/"], capture_output=True, check=True, cwd=tmp_path).stdout
    assert pipe["Bytes"] == str(len(listing))
    written = (tmp_path / "out.txt").read_text()
    assert written == str(listing.count(b"\n")) + "\n"
    assert summary.access(str(tmp_path / "out.txt"), wc.pid)["WrittenBytes"] == str(len(written))
    assert summary.statistics["UnparsedLines"] == "0"
    no_partials(tmp_path)


def test_live_threads_and_sockets(tmp_path: Path, strace_bin: str) -> None:
    """A Python server thread and a client in one process: the thread is kept apart, both socket ends
    are seen, and each byte is counted once per end."""
    program = (
        "import socket, threading\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "port = server.getsockname()[1]\n"
        "def serve():\n"
        "    connection, _ = server.accept()\n"
        "    connection.sendall(connection.recv(100).upper())\n"
        "    connection.close()\n"
        "thread = threading.Thread(target=serve)\n"
        "thread.start()\n"
        "client = socket.create_connection(('127.0.0.1', port))\n"
        "client.sendall(b'hello thread')\n"
        "assert client.recv(100) == b'HELLO THREAD'\n"
        "thread.join()\n"
        "open('port', 'w').write(str(port))\n"
    )
    result = run_dockit("-l", str(tmp_path / "thr"), sys.executable, "-c", program, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    port = (tmp_path / "port").read_text()
    summary = Summary.load(outputs(tmp_path, "thr")["xml"])
    roots = [p for p in summary.processes.values() if p.ppid is None]
    assert len(roots) == 1 and len(roots[0].threads) >= 1
    client = [s for s in summary.sockets if s.get("Remote") == f"127.0.0.1:{port}"]
    accepted = [s for s in summary.sockets if s.get("Accepted") == "true"]
    assert len(client) == 1 and len(accepted) == 1
    assert (client[0]["BytesOut"], client[0]["BytesIn"]) == ("12", "12")
    assert (accepted[0]["BytesIn"], accepted[0]["BytesOut"]) == ("12", "12")
    assert accepted[0]["Remote"] == client[0]["Local"]


def test_live_dns_sendmmsg(tmp_path: Path, strace_bin: str) -> None:
    """getent asks the resolver for A and AAAA in one sendmmsg: 2 queries of 12 + 21 + 4 = 37 bytes
    for `dockit-test.example` (header, name, type and class)."""
    probe = subprocess.run(
        ["strace", "-f", "-e", "trace=sendmmsg", "getent", "ahosts", "dockit-test.example"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "sendmmsg(" not in probe.stderr:
        pytest.skip("no DNS resolver configured here: getent sends no query")
    result = run_dockit("-l", str(tmp_path / "dns"), "getent", "ahosts", "dockit-test.example", cwd=tmp_path)
    assert "Traceback" not in result.stderr
    summary = Summary.load(outputs(tmp_path, "dns")["xml"])
    dns = [s for s in summary.sockets if s.get("Family") == "udp" and (s.get("Remote") or "").endswith(":53")]
    assert dns and dns[0]["BytesOut"] == str(2 * 37)


FILE_CALLS = """
import os, socket
fd = os.open("data.bin", os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
assert os.pwrite(fd, b"abcdef", 10) == 6           # pwrite64
assert os.writev(fd, [b"12", b"345"]) == 5          # writev at offset 0
assert len(os.pread(fd, 4, 0)) == 4                 # pread64
os.lseek(fd, 0, os.SEEK_SET)
assert os.readv(fd, [bytearray(3), bytearray(4)]) == 7   # readv
out = os.open("copy.bin", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
assert os.sendfile(out, fd, 0, 16) == 16            # sendfile: 16 bytes read from data.bin
os.close(out)
os.close(fd)
left, right = socket.socketpair()
left.send(b"xyz")
assert right.recv(10) == b"xyz"
"""


def test_live_vector_and_positional_file_calls(tmp_path: Path, strace_bin: str) -> None:
    """pread/pwrite/readv/writev/sendfile are counted with their byte counts; a socketpair is two unix
    sockets, one per end, whatever the decorations say."""
    result = run_dockit("-l", str(tmp_path / "io"), "/usr/bin/python3", "-S", "-c", FILE_CALLS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = Summary.load(outputs(tmp_path, "io")["xml"])
    (python,) = summary.processes.values()
    data = summary.access(str(tmp_path / "data.bin"), python.pid)
    assert (data["Writes"], data["WrittenBytes"]) == ("2", "11")
    assert (data["Reads"], data["ReadBytes"]) == ("3", str(4 + 7 + 16))
    assert data["Created"] == "true"
    copy = summary.access(str(tmp_path / "copy.bin"), python.pid)
    assert (copy["Writes"], copy["WrittenBytes"]) == ("1", "16")
    unix = sorted((s["BytesOut"], s["BytesIn"]) for s in summary.sockets if s["Family"] == "unix")
    assert unix == [("0", "3"), ("3", "0")], "one socket per end, as for TCP"


def test_any_byte_in_arguments_and_paths_gives_valid_xml(tmp_path: Path, strace_bin: str) -> None:
    """Control characters, an escape sequence and bytes that are not UTF-8, in argv and in a file name:
    the summary is still well-formed XML, with one Argument per argument, and the calls file valid JSON."""
    odd = ["bell\x07", "esc\x1b[31mred", os.fsdecode(b"latin1-\xe9\xff"), "nul-free\x01\x02"]
    name = os.fsdecode(b"file-\xff\x01.txt")
    program = "import sys; open(sys.argv[1], 'w').write('x')"
    result = run_dockit(
        "-l",
        str(tmp_path / "odd"),
        "-f",
        "JSON",
        "/usr/bin/python3",
        "-S",
        "-c",
        program,
        name,
        *odd,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(outputs(tmp_path, "odd")["json"].read_text(encoding="utf-8"))  # valid JSON too
    summary = Summary.load(outputs(tmp_path, "odd")["xml"])  # lxml parses it: well-formed
    (python,) = summary.processes.values()
    assert len(python.argv) == 4 + 1 + len(odd)
    assert python.argv[5].startswith("bell") and python.argv[6].startswith("esc")
    assert [path for path in summary.files if "file-" in path], "the odd file name is there"


def test_sigterm_to_dockit_alone_reaches_the_program(tmp_path: Path, strace_bin: str) -> None:
    """`kill DOCKIT_PID` (a service manager, a timeout): the program gets the SIGTERM, dies of it, and
    dockit writes its outputs and returns 128+15."""
    dockit = start_in_own_group(tmp_path, "term", "sh", "-c", "touch ready; exec sleep 30")
    try:
        wait_for(tmp_path / "ready")
        time.sleep(0.3)
        started = time.monotonic()
        dockit.send_signal(signal.SIGTERM)
        _out, err = dockit.communicate(timeout=30)
    finally:
        if dockit.poll() is None:
            dockit.kill()
    assert time.monotonic() - started < 10, "the program did not wait its 30 s"
    assert dockit.returncode == 143, err
    files = outputs(tmp_path, "term")
    assert {"log", "ini", "txt", "xml"} <= set(files)
    (root,) = [p for p in Summary.load(files["xml"]).processes.values() if p.ppid is None]
    assert root.signal == "SIGTERM"
    no_partials(tmp_path)
