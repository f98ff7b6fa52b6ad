"""Every capture of the original dockit (../shared/captures/survol, strace 4.x and ltrace 0.7 on Fedora,
2017-2018) replays without error, and yields the facts its README and its lines state.

The expected values were read from the logs themselves (grep), or are computed here from the log's
lines by code that shares nothing with dockit's parser (e.g. the bytes on a socket, summed from the
return values of the calls whose fd decoration names it). Decoded SQL is checked by the decoder tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import SURVOL, Summary, replay, run_dockit

LOGS = sorted(p.name for p in SURVOL.glob("*.log")) if SURVOL.is_dir() else []


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Summary, str]]:
    """Each survol capture replayed once for the whole module (lazily, on first use)."""
    return {}


@pytest.fixture
def replayed(replays, survol: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    def get(name: str) -> Summary:
        if name not in replays:
            out = tmp_path_factory.mktemp(name.replace(".", "_"))
            summary, result = replay(survol / name, out)
            replays[name] = (summary, result.stderr)
        return replays[name][0]

    return get


def data_bytes(log: Path, endpoint: str) -> tuple[int, int]:
    """(bytes out, bytes in) of the complete calls whose fd decoration names `endpoint`."""
    outgoing = incoming = 0
    pattern = re.compile(
        r"\b(sendto|sendmsg|write|writev|send|recvfrom|recvmsg|read|readv|recv)\((\d+)<(.+?)>, .*\) += (\d+)"
    )
    with open(log, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            match = pattern.search(line)
            if match and endpoint in match.group(3) and "MSG_PEEK" not in line:  # a peek consumes nothing
                if match.group(1).startswith(("send", "write")):
                    outgoing += int(match.group(4))
                else:
                    incoming += int(match.group(4))
    return outgoing, incoming


@pytest.mark.parametrize("name", LOGS or ["(survol captures absent)"])
def test_every_capture_replays(replayed, replays, name: str) -> None:
    summary = replayed(name)
    assert summary.statistics, "Dockit_Statistics is in every summary"
    assert int(summary.statistics["Lines"]) > 0
    assert summary.processes, "every capture has at least one process"
    stderr = replays[name][1]
    assert "Traceback" not in stderr
    assert not summary.dangling_references(), "every pid the summary names is a CIM_Process of it"
    # What is left unparsed is the traced programs' own output, written into the log they shared with
    # strace (they ran with strace's stderr): never more than a few percent of the lines.
    assert int(summary.statistics["UnparsedLines"]) <= int(summary.statistics["Lines"]) // 50


def test_sample_shell_strace_process_tree(replayed) -> None:
    """`ls`, `pwd` (a bash builtin: no process), `ps -ef | wc`, `cat $0`. The first process's lines have
    no `[pid N]` prefix and the .ini's TopProcessId=12345 is a placeholder: its real pid, 18193, shows
    when strace starts prefixing (line 209); it was never created by a clone, so it is bash."""
    summary = replayed("dockit_sample_shell.strace.log")
    assert sorted(summary.processes) == [18193, 18194, 18195, 18196, 18198]
    bash = summary.processes[18193]
    assert bash.executable == "/usr/bin/bash" and bash.ppid is None
    expected = {18194: "/usr/bin/ls", 18195: "/usr/bin/ps", 18196: "/usr/bin/wc", 18198: "/usr/bin/cat"}
    for pid, executable in expected.items():
        process = summary.processes[pid]
        assert process.executable == executable
        assert process.ppid == 18193
        assert process.exit_status == 0, "from the parent's wait4 statuses and exit_group(0)"
    assert summary.processes[18195].argv == ["ps", "-ef"]
    # `ps -ef | wc`: the pipe bash made, written by ps and read by wc.
    (pipe,) = [p for p in summary.pipes if p["Id"] == "586559"]
    assert (pipe["Writers"], pipe["Readers"], pipe["CreatedBy"]) == ("18195", "18196", "18193")
    # ls writes its listing on the script's stdout, a pipe (587230) whose write line the listing cut.
    (stdout,) = [p for p in summary.pipes if p["Id"] == "587230"]
    assert "18194" in stdout["Writers"].split()


def test_sample_shell_ltrace_process_tree(replayed) -> None:
    """ltrace: `clone@SYS(...) <unfinished ...>` resumes as `<... clone resumed> ) = 0x478f` (hex), and
    a successful `execve@SYS(...) <unfinished ...>` ends with `--- Called exec() ---`."""
    summary = replayed("dockit_sample_shell.ltrace.log")
    assert summary.processes[18316].ppid is None
    expected = {18317: "/usr/bin/ls", 18318: "/usr/bin/ps", 18319: "/usr/bin/wc", 18320: "/usr/bin/cat"}
    for pid, executable in expected.items():
        assert summary.processes[pid].ppid == 18316
        assert summary.processes[pid].executable == executable
    assert set(summary.processes) == {18316, *expected}


def test_gcc_ltrace_vfork_tree_and_no_return(replayed) -> None:
    """`vfork@SYS` with hex pids, `execve@SYS(...) <no return ...>`, `+++ exited (status 0) +++`."""
    summary = replayed("dockit_gcc_hello_world.ltrace.log")
    assert summary.processes[11759].executable == "/usr/libexec/gcc/x86_64-redhat-linux/5.3.1/cc1"
    assert summary.processes[11760].executable == "/usr/bin/as"
    assert summary.processes[11762].executable == "/usr/bin/ld"
    assert [summary.processes[pid].ppid for pid in (11759, 11760, 11761, 11762)] == [
        11758,
        11758,
        11758,
        11761,
    ]
    assert all(process.exit_status == 0 for process in summary.processes.values())


def test_gcc_strace_tree_with_resumed_space(replayed) -> None:
    """strace 4: `<... execve resumed> ) = 0` with a space; gcc -> cc1, as, collect2 -> ld."""
    summary = replayed("dockit_gcc_incomplete.strace.log")
    tree = {pid: (p.ppid, p.executable) for pid, p in summary.processes.items()}
    assert tree == {
        23944: (None, "/usr/bin/gcc"),
        23945: (23944, "/usr/libexec/gcc/x86_64-redhat-linux/5.3.1/cc1"),
        23946: (23944, "/usr/bin/as"),
        23947: (23944, "/usr/libexec/gcc/x86_64-redhat-linux/5.3.1/collect2"),
        23948: (23947, "/usr/bin/ld"),
    }


def test_big_mysql_select_socket(replayed, survol: Path) -> None:
    """Python MySQLdb to 127.0.0.1:3306; `PF_INET` sockets, strings cut at 20 bytes."""
    log = survol / "dockit_big_mysql_select.strace.18648.log"
    summary = replayed(log.name)
    (mysql,) = summary.sockets_with(Remote="127.0.0.1:3306")
    assert mysql["Family"] == "tcp"
    assert mysql["Local"] == "127.0.0.1:59100"
    assert mysql["Process"] == "18648"
    out, into = data_bytes(log, "127.0.0.1:3306")
    assert (out, into) == (236, 956)
    assert (int(mysql["BytesOut"]), int(mysql["BytesIn"])) == (out, into)
    assert summary.processes[18648].executable == "/usr/bin/python"


def test_mysql_show_databases_strace4_socket_inode(replayed) -> None:
    """strace 4.x decorates sockets as `socket:[535040603]`: endpoints come from connect()."""
    summary = replayed("dockit_mysql_show_databases.strace.log")
    (mysql,) = summary.sockets_with(Remote="10.2.10.79:3306")
    assert mysql["Family"] == "tcp" and mysql["Inode"] == "535040603"
    assert int(mysql["BytesOut"]) > 0 and int(mysql["BytesIn"]) > 0


def test_oracle_beq_pipes(replayed) -> None:
    """cx_Oracle's BEQ connection: the client forks its dedicated server (29839) and talks to it on two
    pipes: it writes the requests (the SQL) on pipe 5648149 and reads the replies on pipe 5648150."""
    summary = replayed("dockit_oracle_db_schemas.strace.log")
    root = [p for p in summary.processes.values() if p.ppid is None]
    assert len(root) == 1
    client = root[0].pid
    assert summary.processes[29839].ppid == client
    pipes = {p["Id"]: p for p in summary.pipes}
    assert pipes["5648149"]["Writers"] == str(client)
    assert pipes["5648150"]["Readers"] == str(client)
    for pipe_id in ("5648149", "5648150"):
        assert set(pipes[pipe_id]["Processes"].split()) == {str(client), "29839"}
        assert pipes[pipe_id]["CreatedBy"] == str(client)
        assert int(pipes[pipe_id]["Bytes"]) > 0


def test_sqlplus_attach_beq_pipes(replayed) -> None:
    summary = replayed("sqlplus.strace.4401.log")
    assert list(summary.processes) == [4401]
    pipes = {p["Id"]: p for p in summary.pipes}
    assert pipes["1173642"]["Writers"] == "4401"
    assert pipes["1173643"]["Readers"] == "4401"


def test_wget_sockets(replayed, survol: Path) -> None:
    """wget of www.hotmail.com: HTTP on port 80 answered by a redirect, then TLS on port 443."""
    log = survol / "dockit_wget_hotmail.strace.866.log"
    summary = replayed(log.name)
    (wget,) = summary.by_executable("/usr/bin/wget")
    assert wget.pid == 869 and wget.ppid == 866
    (http,) = summary.sockets_with(Remote="204.79.197.212:80")
    (https,) = summary.sockets_with(Remote="13.107.42.11:443")
    for socket, endpoint in ((http, "204.79.197.212:80"), (https, "13.107.42.11:443")):
        assert socket["Family"] == "tcp" and socket["Process"] == "869"
        out, into = data_bytes(log, endpoint)
        assert out > 0 and into > 0
        assert (int(socket["BytesOut"]), int(socket["BytesIn"])) == (out, into)


def test_find_grep_exit_codes(replayed) -> None:
    """find -exec grep: each grep that finds nothing exits 1 (exit_group(1), WEXITSTATUS == 1)."""
    summary = replayed("dockit_find_grep.strace.log")
    greps = summary.by_executable("/usr/bin/grep")
    assert len(greps) > 100
    assert all(grep.ppid == 12345 for grep in greps)
    assert {grep.exit_status for grep in greps} <= {0, 1}
    assert sum(grep.exit_status == 1 for grep in greps) > 100


def test_proftpd_attach(replayed) -> None:
    """Attached to the ProFTPD daemon: the listening socket on port 21, the session child and its
    unix_chkpwd helpers, one of which exits 7 (a refused password check)."""
    summary = replayed("dockit_proftpd.strace.26299.log")
    chkpwd = summary.by_executable("/usr/sbin/unix_chkpwd")
    assert sorted(p.pid for p in chkpwd) == [10623, 10624, 10625]
    assert all(p.ppid == 10622 for p in chkpwd)
    assert summary.processes[10623].exit_status == 7
    assert summary.processes[10622].ppid == 26299
    ftp = [s for s in summary.sockets if s.get("Local", "").endswith(":21") and s.get("Remote")]
    assert ftp and int(ftp[0]["BytesOut"]) > 0
    # sssd's NSS pipe (/var/lib/sss/pipes/nss) speaks its own protocol: no decoder may claim it.
    assert summary.statistics["DecodedChannels"] == "0"
    assert summary.root.find("Dockit_DatabaseSession") is None


def test_sssd_nss_socket_is_not_mysql(replayed) -> None:
    """ps -ef asks sssd for user names; its request bytes once passed for a MySQL command."""
    summary = replayed("dockit_ps_ef.strace.log")
    assert [s["Remote"] for s in summary.sockets if s.get("Remote")] == ["/var/lib/sss/pipes/nss"]
    assert summary.statistics["DecodedChannels"] == "0"
    assert summary.root.find("Dockit_DatabaseSession") is None


def test_make_process_tree(replayed) -> None:
    summary = replayed("make_hello.strace.1338.log")
    make = summary.processes[1338]
    assert make.executable == "/usr/bin/make" and make.argv == ["make", "-B"]
    gccs = summary.by_executable("/usr/bin/gcc")
    assert len(gccs) == 3 and all(g.ppid == 1338 for g in gccs)
    assert all(p.exit_status == 0 for p in summary.processes.values())


def test_program_output_inside_the_log(replayed) -> None:
    """graphviz wrote its stderr into the log strace wrote: `write(2<...>, "dot - graphviz versi"...,
    46dot - graphviz version ...` then `) = 46` on the next line. The call is joined across its output."""
    summary = replayed("dockit_graphviz_ps.strace.log")
    log_file = "/home/rchateau/rdfmon-code/Experimental/RetroBatch/mineit_graphviz_ps.log"
    access = summary.access(log_file, 12345)
    assert int(access["Writes"]) > 0 and int(access["WrittenBytes"]) >= 46


def test_wget_dns_sendmmsg(replayed) -> None:
    """glibc's resolver sends the A and AAAA queries in one sendmmsg (strace 4: `{{{msg_name(0)=NULL,
    msg_iov(1)=[{"...", 29}], ...}, 29}, {...}}, 2, ...) = 2`): 2 x 29 and 2 x 34 bytes out."""
    summary = replayed("dockit_wget_hotmail.strace.866.log")
    dns = {s["Local"]: s for s in summary.sockets_with(Remote="194.168.4.100:53")}
    assert dns["192.168.0.17:54913"]["BytesOut"] == str(2 * 29)
    assert dns["192.168.0.17:43224"]["BytesOut"] == str(2 * 34)


def test_ltrace_library_calls_are_counted(survol: Path, tmp_path: Path) -> None:
    """ltrace's `gcc->getenv("COLLECT_GCC")` library calls: every one reaches the calls file, named with
    its library, as many as the log has lines starting one."""
    log = survol / "dockit_gcc_hello_world.ltrace.log"
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "lib"), "-f", "JSON")
    assert result.returncode == 0, result.stderr
    blocks = json.loads((tmp_path / "lib.json").read_text())
    counted = sum(block["call_counts"].get("gcc->getenv", 0) for block in blocks)
    with open(log, encoding="utf-8", errors="replace") as stream:
        expected = sum(1 for line in stream if re.search(r"\] [\d:.]+ gcc->getenv\(", line))
    assert counted == expected == 42
