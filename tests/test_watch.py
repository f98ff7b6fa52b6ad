"""The process watch (`dockit -u USER -g GROUP`): the kernel's process connector, live, as root.

Each test makes its own user (removed afterwards), runs commands as that user with runuser or setpriv
while dockit watches, and checks what dockit printed and summarised against what the test itself ran:
executables, arguments, parents, exit statuses, the uid change of runuser's child, and nothing of other
users' processes. forkstat (Debian's) watches the same activity in one test: every exec it shows for the
user, dockit shows too.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from dockit_core.ingest.proc_events import parse_messages
from tests.conftest import REPO, mariadb_listening, run_dockit

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the process connector and useradd need root")


# -- the connector's bytes ----------------------------------------------------------------------------
def connector_message(what: int, body: bytes) -> bytes:
    """One netlink datagram as the kernel sends it (linux/netlink.h, connector.h, cn_proc.h)."""
    event = struct.pack("=IIQ", what, 1, 123456789) + body
    cn_msg = struct.pack("=IIIIHH", 1, 1, 7, 0, len(event), 0) + event
    return struct.pack("=IHHII", 16 + len(cn_msg), 3, 0, 7, 0) + cn_msg


def test_connector_messages_parse_by_kind() -> None:
    datagram = (
        connector_message(0x1, struct.pack("=iiii", 10, 10, 11, 11))  # fork 10 -> 11
        + connector_message(0x4, struct.pack("=iiII", 11, 11, 1001, 1001))  # setuid 1001
        + connector_message(0x80000000, struct.pack("=iiIIii", 11, 11, 3 << 8, 17, 10, 10))  # exit 3
        + connector_message(0x80000000, struct.pack("=iiIIii", 12, 12, 0x80 | 9, 17, 10, 10))  # SIGKILL, core
        + connector_message(0x200, struct.pack("=ii", 11, 11) + b"comm\0" * 3 + b"x")  # comm: not watched
    )
    events = list(parse_messages(datagram))
    assert [e.kind for e in events] == ["fork", "uid", "exit", "exit"]
    fork, uid, exited, killed = events
    assert (fork.parent_tgid, fork.pid, fork.is_thread) == (10, 11, False)
    assert (uid.pid, uid.real_id, uid.effective_id) == (11, 1001, 1001)
    assert (exited.exit_code, exited.signal_number) == (3, None)
    assert (killed.exit_code, killed.signal_number, killed.core_dumped) == (None, 9, True)
    assert list(parse_messages(datagram[:20])) == []  # a cut datagram gives nothing, raises nothing


# -- live ---------------------------------------------------------------------------------------------
@pytest.fixture
def test_user() -> Iterator[str]:
    name = "dkw" + secrets.token_hex(2)  # 7 characters: forkstat shows no more of a name
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", name], check=False)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder the test user may write in (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="dockit-watch-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Watch:
    """`dockit -u USER ...` in the background until stopped (SIGINT, as Ctrl-C) or its --duration."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.prefix = tmp_path / "w"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "-l", str(self.prefix), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 20
        assert self.process.stderr is not None
        self.stderr_head = self.process.stderr.readline()  # "watching processes of ..." once listening
        assert "watching processes" in self.stderr_head, self.stderr_head
        assert time.monotonic() < deadline

    def stop(self) -> tuple[str, str, int]:
        time.sleep(0.5)  # the last events reach the socket
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=60)
        return out, self.stderr_head + err, self.process.returncode

    def summary(self) -> etree._Element:
        xml = next(self.prefix.parent.glob("w.watch.*.xml"))
        return etree.parse(str(xml)).getroot()


def processes(root: etree._Element) -> dict[int, etree._Element]:
    return {int(e.get("Handle")): e for e in root.iter("CIM_Process")}


@needs_root
def test_watch_reports_a_users_commands_and_nothing_of_others(tmp_path: Path, test_user: str) -> None:
    watch = Watch(tmp_path, "-u", test_user)
    other = subprocess.run(["sh", "-c", "echo $$; exit 4"], capture_output=True, text=True)  # root's
    # the sleep keeps the shell alive while dockit reads /proc: events come a little after the fact
    script = "sleep 0.5; echo $$; id -u; exit 3"
    ran = subprocess.run(["runuser", "-u", test_user, "--", "sh", "-c", script], capture_output=True, text=True)
    out, err, status = watch.stop()
    assert status == 0, err
    assert "Traceback" not in err
    shell_pid, uid = int(ran.stdout.split()[0]), int(ran.stdout.split()[1])
    assert ran.returncode == 3
    lines = out.splitlines()
    mine = [line for line in lines if f" pid={shell_pid} " in line]
    events = [line.split()[1] for line in mine]
    # runuser's child becomes the user (gid, then uid), then runs sh, which exits 3
    assert "uid" in events and "exec" in events and events[-1] == "exit", mine
    assert events.index("uid") < events.index("exec")
    assert f"uid={uid}({test_user})" in mine[events.index("exec")]
    assert mine[events.index("exec")].endswith("-- sh -c " + "'" + script + "'")
    assert "status=3" in mine[-1]
    # id ends at once: dockit may find its path (`-- id -u`) or, too late for /proc, its kernel name, or,
    # when the shell has already reaped it, neither (the line ends with the ids the fork event gave)
    children = [line for line in lines if " exec " in line and f" ppid={shell_pid} " in line]
    assert len(children) == 2 and children[0].endswith("exe=/usr/bin/sleep -- sleep 0.5"), children
    id_line = children[1]
    assert (id_line.endswith("exe=/usr/bin/id -- id -u") or id_line.endswith(" comm=id")
            or (" exe=" not in id_line and " comm=" not in id_line and id_line.endswith(f"({test_user})"))), id_line
    id_lines = [id_line]
    id_pid = int(id_lines[0].split("pid=")[1].split()[0])
    assert any(f" pid={id_pid} " in line and " exit " in line and "status=0" in line for line in lines)
    root_shell = int(other.stdout.split()[0])
    assert not any(f"pid={root_shell} " in line for line in lines)  # root's processes are not the user's
    summary = processes(watch.summary())
    shell = summary[shell_pid]
    assert shell.get("Watch") == "matched"
    assert shell.findtext("ExitStatus") == "3"
    assert shell.findtext("ExecutablePath") == "/usr/bin/dash"
    assert [a.text for a in shell.iter("Argument")] == ["sh", "-c", script]
    assert shell.find("User").text == test_user and shell.find("User").get("Id") == str(uid)
    runuser = summary[int(shell.findtext("ParentProcessId"))]
    assert runuser.findtext("ExecutablePath") == "/usr/sbin/runuser"
    # runuser itself switches to the user for a moment (its PAM session): it may count as matched; the
    # test's own process, runuser's parent, never ran as the user: it is in the chain as an ancestor
    assert runuser.findtext("ParentProcessId") == str(os.getpid())
    me = summary[os.getpid()]
    assert me.get("Watch") == "ancestor" and me.find("User").text == "root"
    assert summary[id_pid].findtext("ParentProcessId") == str(shell_pid)
    assert root_shell not in summary


@needs_root
def test_watch_by_group_with_setpriv_and_json_lines(tmp_path: Path, test_user: str) -> None:
    watch = Watch(tmp_path, "-g", test_user, "--json")
    uid = int(subprocess.run(["id", "-u", test_user], capture_output=True, text=True, check=True).stdout)
    command = ["setpriv", f"--reuid={test_user}", f"--regid={test_user}", "--init-groups", "sh", "-c",
               "sleep 0.5; exit 7"]  # fmt: skip
    subprocess.run(command, check=False)
    out, err, status = watch.stop()
    assert status == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    execs = [r for r in records if r["event"] == "exec" and r["argv"] == ["sh", "-c", "sleep 0.5; exit 7"]]
    # setpriv's own exec may show sh's command line too: /proc is read a moment after the event
    assert execs and len({r["pid"] for r in execs}) == 1, records
    shell = execs[-1]
    assert (shell["uid"], shell["user"], shell["group"], shell["executable"]) == (uid, test_user, test_user, "/usr/bin/dash")
    exits = [r for r in records if r["event"] == "exit" and r["pid"] == shell["pid"]]
    assert len(exits) == 1 and exits[0]["exit_status"] == 7 and exits[0]["signal"] is None


@needs_root
def test_a_killed_process_is_reported_with_its_signal(tmp_path: Path, test_user: str) -> None:
    watch = Watch(tmp_path, "-u", test_user)
    subprocess.run(["runuser", "-u", test_user, "--", "sh", "-c", "sleep 0.5; kill -TERM $$"], check=False)
    out, err, _ = watch.stop()
    exits = [line for line in out.splitlines() if " exit " in line and "exe=/usr/bin/dash" in line]
    assert len(exits) == 1 and "signal=SIGTERM" in exits[0], out
    killed = [p for p in processes(watch.summary()).values() if p.findtext("TerminatingSignal") == "SIGTERM"]
    assert len(killed) == 1


@needs_root
@pytest.mark.skipif(shutil.which("strace") is None, reason="--follow traces with strace")
@pytest.mark.skipif(not mariadb_listening(), reason="needs the MariaDB server on 127.0.0.1:3306")
def test_follow_traces_the_users_process_files_and_query(
    tmp_path: Path, test_user: str, open_folder: Path
) -> None:
    database = "dockit_watch_" + secrets.token_hex(3)
    setup = f"create database {database}; create table {database}.t (n int); insert into {database}.t values (42)"
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", setup], check=True)
    try:
        watch = Watch(tmp_path, "-u", test_user, "--follow")
        query = f"select n from {database}.t"
        # the sleep lets the tracer attach before the client runs; its children are traced with it (-f)
        script = f"sleep 1; echo made > {open_folder}/made.txt; mariadb -h 127.0.0.1 -u root -N -e '{query}'; exit 2"
        ran = subprocess.run(["runuser", "-u", test_user, "--", "sh", "-c", script], capture_output=True, text=True)
        out, err, status = watch.stop()
    finally:
        subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", f"drop database {database}"], check=False)
    assert (ran.stdout.strip(), ran.returncode) == ("42", 2), ran
    assert status == 0 and "Traceback" not in err, err
    root = watch.summary()
    queries = [q.findtext("Text") for q in root.iter("Dockit_SqlQuery")]
    assert queries == [query], queries
    made = [f for f in root.iter("CIM_DataFile") if f.get("Name") == f"{open_folder}/made.txt"]
    assert len(made) == 1 and made[0].find("Access").get("Created") == "true"
    shells = [p for p in processes(root).values() if [a.text for a in p.iter("Argument")] == ["sh", "-c", script]]
    assert len(shells) == 1 and shells[0].findtext("ExitStatus") == "2"
    assert list(tmp_path.glob("w.watch.*.log")), "the followed processes' trace is kept for a replay"


@needs_root
def test_watch_dir_reports_files_created_there(tmp_path: Path, test_user: str, open_folder: Path) -> None:
    watch = Watch(tmp_path, "-u", test_user, "--watch-dir", str(open_folder))
    subprocess.run(["runuser", "-u", test_user, "--", "sh", "-c", f"echo x > {open_folder}/new.txt"], check=True)
    out, err, status = watch.stop()
    assert status == 0, err
    assert any("file-create" in line and f"{open_folder}/new.txt" in line for line in out.splitlines()), out
    events = [(e.get("Event"), e.get("Path")) for e in watch.summary().iter("Dockit_DirectoryEvent")]
    assert ("create", f"{open_folder}/new.txt") in events


@needs_root
@pytest.mark.skipif(shutil.which("forkstat") is None, reason="forkstat (Debian package) is not installed")
def test_every_exec_forkstat_sees_for_the_user_dockit_sees_too(tmp_path: Path, test_user: str) -> None:
    forkstat = subprocess.Popen(["forkstat", "-e", "exec", "-x", "-l"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    watch = Watch(tmp_path, "-u", test_user)
    loop = "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done; ls / > /dev/null; id"
    subprocess.run(["runuser", "-u", test_user, "--", "sh", "-c", loop], check=True, capture_output=True)
    out, err, _ = watch.stop()
    forkstat.send_signal(signal.SIGINT)
    seen, _ = forkstat.communicate(timeout=30)
    # `Time Event PID UID EUID TTY ... Process`: the user's execs (forkstat cuts names to 7 characters)
    theirs = {int(f[2]) for f in (line.split() for line in seen.splitlines()) if len(f) > 4 and f[1] == "exec" and f[3] == test_user}
    ours = {int(line.split("pid=")[1].split()[0]) for line in out.splitlines() if " exec " in line}
    # forkstat, too, reads the uid from /proc a moment late: it misses some of the 13 (sh, ten true, ls,
    # id), shown as `<unknown>`; what it did attribute to the user, dockit must have
    assert len(theirs) >= 5, seen
    assert theirs <= ours, (theirs - ours, out)


def test_watch_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["-u", "no_such_user_dockit"], "no user named 'no_such_user_dockit'"),
        (["--follow", "true"], "--follow belongs to the watch mode"),
        (["-u", "root", "true"], "give no COMMAND and no -p"),
        (["-u", "root", "--duration", "-3"], "not a positive number of seconds"),
    ):
        result = run_dockit("-l", str(tmp_path / "x"), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 or "usage:" in result.stderr


@needs_root
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_without_the_connector_the_watch_says_what_to_do(tmp_path: Path) -> None:
    """In a network namespace of its own (a container's), the kernel refuses the connector: one line
    that says what to do, exit status 2, nothing written."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = ["unshare", "--net", sys.executable, "-m", "dockit_core.cli", "-u", "root", "--duration", "1",
               "-l", str(tmp_path / "x")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "CAP_NET_ADMIN" in result.stderr and "network namespace" in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing half-written"
