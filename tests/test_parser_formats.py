"""One real command traced here by strace with every output format a user may have chosen, each log
replayed by dockit: the same facts must come out whatever the flags.

The command, run in an empty folder:
    sh -c 'echo hello > a.txt; cat a.txt | tr a-z A-Z > b.txt; rm a.txt; exit 3'
Facts (what the shell does, known without dockit): sh exits 3; it starts cat, tr and rm; cat reads the 6
bytes of a.txt and writes them into a pipe that tr reads; tr writes 6 bytes into b.txt, which it
creates; rm deletes a.txt, which sh created. Without -f only sh is traced: a.txt, the pipe, exit 3, and
the pids of its three children (from its clone calls).

Old forms that strace 6 cannot write (`[pid N]` with `<... read resumed> ` and a space, `socket:[N]`,
`PF_INET`, ltrace `name@SYS`, `lib->fn`, `<no return ...>`) are covered by test_survol_replay.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = pytest.mark.live

SCRIPT = "echo hello > a.txt; cat a.txt | tr a-z A-Z > b.txt; rm a.txt; exit 3"

FORMATS = {
    # name: strace flags (besides -o LOG); "stderr" in the name: no -o, the log is strace's stderr
    "f-ttt-T-yy": ["-f", "-ttt", "-T", "-yy"],
    "f-plain": ["-f"],
    "f-t": ["-f", "-t"],
    "f-tt-y": ["-f", "-tt", "-y"],
    "f-r": ["-f", "-r"],
    "f-T": ["-f", "-T"],
    "f-x-y": ["-f", "-x", "-y"],
    "f-xx-tt": ["-f", "-xx", "-tt"],
    "f-xx-yy-T": ["-f", "-xx", "-yy", "-T"],
    "f-s8": ["-f", "-s", "8", "-tt"],
    "f-stderr-tt": ["-f", "-tt", "stderr"],
    "f-stderr-yy-T": ["-f", "-yy", "-T", "stderr"],
    "nof-tt": ["-tt"],
    "nof-plain": [],
    "nof-yy-ttt": ["-yy", "-ttt"],
}


def record(folder: Path, flags: list[str]) -> Path:
    """Run the script under strace with `flags`; return the log."""
    work = folder / "work"
    work.mkdir()
    log = folder / "trace.log"
    if "stderr" in flags:
        command = ["strace", *[f for f in flags if f != "stderr"], "sh", "-c", SCRIPT]
        with open(log, "wb") as err:
            status = subprocess.run(
                command, cwd=work, stderr=err, stdout=subprocess.DEVNULL, timeout=60
            ).returncode
    else:
        command = ["strace", *flags, "-o", str(log), "sh", "-c", SCRIPT]
        status = subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, timeout=60).returncode
    assert status == 3
    assert (work / "b.txt").read_text() == "HELLO\n" and not (work / "a.txt").exists()
    return log


@pytest.mark.parametrize("name", list(FORMATS))
def test_same_facts_whatever_the_format(tmp_path: Path, strace_bin: str, name: str) -> None:
    flags = FORMATS[name]
    log = record(tmp_path, flags)
    work = str(tmp_path / "work")
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    assert summary.statistics["UnparsedLines"] == "0", result.stderr
    assert summary.statistics["ResumedWithoutStart"] == "0"
    assert not summary.dangling_references()

    roots = [p for p in summary.processes.values() if p.ppid is None]
    assert len(roots) == 1, summary.processes
    sh = roots[0]
    assert sh.exit_status == 3
    if "-y" not in flags and "-yy" not in flags:
        # Without decorations relative paths need the cwd, which only the .ini (absent here) knows.
        a_txt = [path for path in summary.files if path.endswith("a.txt")]
        assert len(a_txt) == 1
        a_txt = a_txt[0]
    else:
        a_txt = f"{work}/a.txt"
    assert summary.access(a_txt, sh.pid).get("Created") == "true"
    pipes = [p for p in summary.pipes if p.get("CreatedBy") == str(sh.pid)]
    assert len(pipes) == 1

    if "-f" not in flags:
        # Only sh is traced, but its clones return its children's pids: known, untraced processes.
        children = [p for p in summary.processes.values() if p.ppid == sh.pid]
        assert len(children) == 3 and len(summary.processes) == 4
        assert all(child.executable == sh.executable for child in children)  # a fork's image
        return
    assert sh.executable == "/usr/bin/sh"
    # strace cuts strings at -s (32 by default): the argument is kept as far as shown, and said cut.
    assert sh.argv[:2] == ["sh", "-c"] and SCRIPT.startswith(sh.argv[2])
    assert (sh.attrs.get("ArgumentsCut") == "true") == (len(sh.argv[2]) < len(SCRIPT))
    children = {p.executable: p for p in summary.processes.values() if p.ppid == sh.pid}
    assert set(children) == {"/usr/bin/cat", "/usr/bin/tr", "/usr/bin/rm"}
    cat, tr, rm = children["/usr/bin/cat"], children["/usr/bin/tr"], children["/usr/bin/rm"]
    assert all(p.exit_status == 0 for p in (cat, tr, rm))
    assert summary.access(a_txt, cat.pid)["ReadBytes"] == "6"
    assert summary.access(a_txt, rm.pid)["Deleted"] == "true"
    b_txt = a_txt[: -len("a.txt")] + "b.txt"
    assert summary.access(b_txt, tr.pid)["WrittenBytes"] == "6"
    assert summary.access(b_txt, tr.pid)["Created"] == "true"
    (pipe,) = pipes
    assert (pipe["Writers"], pipe["Readers"], pipe["Bytes"]) == (str(cat.pid), str(tr.pid), "6")
    if any(flag in flags for flag in ("-t", "-tt", "-ttt", "-r")):
        assert summary.root.find("CIM_Process/CreationDate") is not None


def test_ltrace_system_calls(tmp_path: Path) -> None:
    """ltrace 0.7.3 -S writes system calls as `SYS_name(...)`, library calls as `name(...)`."""
    if shutil.which("ltrace") is None:
        pytest.skip("ltrace is not installed")
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "trace.ltrace.log"
    command = ["ltrace", "-f", "-S", "-tt", "-o", str(log), "sh", "-c", "cat /etc/hostname > out.txt; exit 5"]
    subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, timeout=120, check=False)  # ltrace exits 0
    assert (work / "out.txt").exists()
    text = log.read_text(errors="replace")
    assert "SYS_" in text and "<... SYS_" in text and "<no return ...>" in text
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    roots = [p for p in summary.processes.values() if p.ppid is None]
    assert len(roots) == 1 and roots[0].exit_status == 5
    children = [p for p in summary.processes.values() if p.ppid == roots[0].pid]
    assert len(children) == 1 and children[0].exit_status == 0
    assert any(path.endswith("out.txt") for path in summary.files)


# -- strace 4.x writing to stderr: lines without a pid while one process is traced ---------------------
MIXED = """\
08:00:00.000001 execve("/usr/bin/bash", ["bash", "s.sh"], [/* 3 vars */]) = 0 <0.000100>
08:00:00.000002 clone(child_stack=0, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 101 <0.000100>
[pid   101] 08:00:00.000003 execve("/usr/bin/ls", ["ls"], [/* 3 vars */]) = 0 <0.000100>
[pid   100] 08:00:00.000004 wait4(-1,  <unfinished ...>
[pid   101] 08:00:00.000005 exit_group(0)           = ?
[pid   100] 08:00:00.000006 <... wait4 resumed> [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 101 <0.000100>
08:00:00.000007 openat(AT_FDCWD, "/tmp/after", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3 <0.000100>
08:00:00.000008 exit_group(4)           = ?
"""


def replay_text(folder: Path, text: str, top_pid: int) -> Summary:
    log = folder / "mixed.strace.log"
    log.write_text(text)
    (folder / "mixed.strace.ini").write_text(f"TopProcessId={top_pid}\nCurrentDirectory=/tmp\n")
    result = run_dockit("-i", str(log), "-l", str(folder / "out"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return Summary.load(folder / "out.xml")


def test_unprefixed_first_process_gets_its_real_pid(tmp_path: Path) -> None:
    """The .ini's TopProcessId (12345, as in the survol captures) is a placeholder: pid 100 appears in a
    prefix, was never created by a clone, so it is the unprefixed process; its later lines too."""
    summary = replay_text(tmp_path, MIXED, 12345)
    assert sorted(summary.processes) == [100, 101]
    bash, ls = summary.processes[100], summary.processes[101]
    assert bash.executable == "/usr/bin/bash" and bash.ppid is None and bash.exit_status == 4
    assert ls.ppid == 100 and ls.executable == "/usr/bin/ls" and ls.exit_status == 0
    assert summary.access("/tmp/after", 100)["Created"] == "true"


def test_unprefixed_first_process_with_its_real_pid(tmp_path: Path) -> None:
    summary = replay_text(tmp_path, MIXED, 100)
    assert sorted(summary.processes) == [100, 101]
    assert summary.processes[101].ppid == 100


def test_child_seen_before_its_clone_returns_is_not_the_first_process(tmp_path: Path) -> None:
    """A child's prefixed line may come while its parent's clone is still unfinished: that pid is the
    child, not the unprefixed process; the pid that resumes the unprefixed process's clone is."""
    text = """\
08:00:00.000001 execve("/usr/bin/bash", ["bash"], [/* 3 vars */]) = 0 <0.000100>
08:00:00.000002 clone(child_stack=0, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
[pid   101] 08:00:00.000003 execve("/usr/bin/ls", ["ls"], [/* 3 vars */]) = 0 <0.000100>
[pid   100] 08:00:00.000004 <... clone resumed> child_tidptr=0x7f) = 101 <0.000100>
[pid   100] 08:00:00.000005 exit_group(0)           = ?
"""
    summary = replay_text(tmp_path, text, 12345)
    assert sorted(summary.processes) == [100, 101]
    assert summary.processes[101].executable == "/usr/bin/ls"
    assert summary.processes[101].ppid == 100
    assert summary.statistics["ResumedWithoutStart"] == "0"


@pytest.mark.parametrize("flags", [["-f"], ["-f", "-y"], ["-f", "-yy"]], ids=["no-y", "y", "yy"])
def test_sockets_with_and_without_decorations(tmp_path: Path, strace_bin: str, flags: list[str]) -> None:
    """captures/tcp_pair.py (a server that forks its client) traced here: without -y the sockets are
    known from the fd tables (socket, bind, listen, accept, connect); -y adds only `socket:[inode]`,
    -yy the endpoints. The same sockets and byte counts either way."""
    import socket as socketlib

    with socketlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "tcp.log"
    program = Path(__file__).resolve().parents[1] / "captures" / "tcp_pair.py"
    command = ["strace", *flags, "-o", str(log), "/usr/bin/python3", "-S", "-E", str(program), str(port)]
    assert subprocess.run(command, cwd=tmp_path, timeout=60, check=False).returncode == 0
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    (server,) = [p for p in summary.processes.values() if p.ppid is None]
    (client,) = [p for p in summary.processes.values() if p.ppid == server.pid]
    tcp = [s for s in summary.sockets if s["Family"] == "tcp"]
    assert len(tcp) == 3
    (listening,) = [s for s in tcp if s.get("Listening") == "true"]
    assert listening["Local"] == f"127.0.0.1:{port}" and listening["Process"] == str(server.pid)
    (outgoing,) = [s for s in tcp if s.get("Remote") == f"127.0.0.1:{port}"]
    assert outgoing["Process"] == str(client.pid)
    assert (outgoing["BytesOut"], outgoing["BytesIn"]) == ("16", "9")
    (accepted,) = [s for s in tcp if s.get("Accepted") == "true"]
    assert accepted["Process"] == str(server.pid) and accepted["Local"] == f"127.0.0.1:{port}"
    assert (accepted["BytesIn"], accepted["BytesOut"]) == ("16", "9")
    assert accepted.get("Remote"), "accept's sockaddr names the client"
    if "-yy" in flags:  # -yy shows endpoints; -y only `socket:[inode]`
        assert accepted["Remote"] == outgoing["Local"]
    else:  # the client never asks getsockname: its own port is only in the server's accept
        assert "Local" not in outgoing


@pytest.mark.parametrize("flags", [["-f"], ["-f", "-yy"]], ids=["no-y", "yy"])
def test_file_calls_and_socketpair_whatever_the_decorations(
    tmp_path: Path, strace_bin: str, flags: list[str]
) -> None:
    """tests/test_live.py's FILE_CALLS program (pwrite, writev, pread, readv, sendfile, socketpair)
    traced by strace with and without decorations: the same counts."""
    from tests.test_live import FILE_CALLS

    log = tmp_path / "io.log"
    command = ["strace", *flags, "-o", str(log), "/usr/bin/python3", "-S", "-c", FILE_CALLS]
    assert subprocess.run(command, cwd=tmp_path, timeout=60, check=False).returncode == 0
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    (python,) = summary.processes.values()
    (data,) = [a for path, accesses in summary.files.items() if path.endswith("data.bin") for a in accesses]
    assert (data["Writes"], data["WrittenBytes"], data["Reads"], data["ReadBytes"]) == ("2", "11", "3", "27")
    (copy,) = [a for path, accesses in summary.files.items() if path.endswith("copy.bin") for a in accesses]
    assert (copy["Writes"], copy["WrittenBytes"]) == ("1", "16")
    unix = sorted((s["BytesOut"], s["BytesIn"]) for s in summary.sockets if s["Family"] == "unix")
    assert unix == [("0", "3"), ("3", "0")]


def test_trace_attached_mid_call(tmp_path: Path) -> None:
    """A log that starts inside calls (attached mid-run, or cut from a longer log): their resumptions
    are counted, never fatal, and what they return is still used where it can be."""
    text = """\
200  08:00:00.000001 <... read resumed>"abc", 100) = 3 <0.5>
200  08:00:00.000002 <... wait4 resumed> [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 201 <0.1>
200  08:00:00.000003 openat(AT_FDCWD</srv>, "x", O_RDONLY) = 3</srv/x> <0.1>
200  08:00:00.000004 read(3</srv/x>, "12", 2) = 2 <0.1>
200  08:00:00.000005 +++ exited with 0 +++
"""
    summary = replay_text(tmp_path, text, 200)
    assert summary.statistics["ResumedWithoutStart"] == "2"
    assert summary.statistics["UnparsedLines"] == "0"
    assert summary.processes[200].exit_status == 0
    assert summary.access("/srv/x", 200)["ReadBytes"] == "2"


def test_statuses_without_exit_lines(tmp_path: Path) -> None:
    """strace 4 with -qq, and ltrace, leave out `+++ exited +++`: a process's status comes from its
    exit_group, or from its parent's wait4 (also a signal: `WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL`)."""
    text = """\
300  08:00:00.000001 execve("/usr/bin/sh", ["sh"], [/* 3 vars */]) = 0
300  08:00:00.000002 clone(child_stack=0, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 301
300  08:00:00.000003 clone(child_stack=0, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 302
301  08:00:00.000004 exit_group(2)                     = ?
300  08:00:00.000005 wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 2}], 0, NULL) = 301
300  08:00:00.000006 wait4(-1, [{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}], 0, NULL) = 302
300  08:00:00.000007 exit_group(258)                   = ?
"""
    summary = replay_text(tmp_path, text, 300)
    assert summary.processes[301].exit_status == 2
    assert summary.processes[302].signal == "SIGKILL" and summary.processes[302].exit_status is None
    assert summary.processes[300].exit_status == 258 & 0xFF
