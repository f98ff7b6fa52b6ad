"""The tracer command lines, and running them: a command under strace/ltrace, or an attach with -p.

strace writes into a FIFO that dockit reads as it goes, so lines are parsed while the program runs and
no descriptor of dockit's leaks into the traced program (a pipe passed down would be inherited by it,
and by any daemon it starts, and dockit would never see the end of the trace).

Buffer size: socket and pipe payloads must reach the decoders whole, so strace runs with `-s 1048576`
(1 MiB, more than one call moves on a socket or a pipe in practice); large file reads and writes are
the price, and dockit cuts their buffers to 32 bytes as it copies the trace into the saved .log, which
therefore stays small while keeping every byte that crossed a socket or a pipe.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dockit_core.ingest.lines import DEFAULT_MAX_LINE, bounded_lines

STRING_LIMIT = 1048576
STRACE_CLASSES = "process,file,desc,network,ipc"
FILE_BUFFER_KEEP = 32
LTRACE_BUFFER_LIMIT = 65536
# ltrace 0.7.3 prototypes (ltrace.conf(5)); see dockit_core/ingest/ltrace_buffers.py for how they print.
# Buffers are char arrays, not strings: a string prints `"` bare and NUL as `\0` even before a digit,
# so its bytes cannot always be read back; an array element can. `+` marks what prints on return.
# -F replaces /etc/ltrace.conf, so the system calls the tracker reads are described here too.
LTRACE_PROTOTYPES = """\
; dockit: library calls that move socket and pipe bytes, each byte printed
long send(int, array(char, arg3)*, ulong, hex(int));
long sendto(int, array(char, arg3)*, ulong, hex(int), addr, int);
long recv(int, +array(char, retval)*, ulong, hex(int));
long recvfrom(int, +array(char, retval)*, ulong, hex(int), addr, addr);
long write(int, array(char, arg3)*, ulong);
long read(int, +array(char, retval)*, ulong);
; OpenSSL: the plaintext of TLS connections (the _ex forms give the count in their last argument)
int SSL_set_fd(addr, int);
int SSL_set_rfd(addr, int);
int SSL_set_wfd(addr, int);
int SSL_get_fd(addr);
int SSL_connect(addr);
int SSL_accept(addr);
int SSL_do_handshake(addr);
void SSL_set_bio(addr, addr, addr);
int BIO_read(addr, +array(char, retval)*, int);
int gnutls_handshake(addr);
int SSL_write(addr, array(char, arg3)*, int);
int SSL_read(addr, +array(char, retval)*, int);
int SSL_write_ex(addr, array(char, arg3)*, ulong, +array(ulong, 1)*);
int SSL_read_ex(addr, +array(char, arg3)*, ulong, array(ulong, 1)*);
; GnuTLS: the same (gnutls_transport_set_int is a macro calling set_int2)
long gnutls_record_send(addr, array(char, arg3)*, ulong);
long gnutls_record_recv(addr, +array(char, retval)*, ulong);
void gnutls_transport_set_int2(addr, int, int);
void gnutls_transport_set_ptr(addr, addr);
void gnutls_transport_set_ptr2(addr, addr, addr);
; client libraries: the SQL as the program hands it over
int mysql_real_query(addr, array(char, arg3)*, ulong);
int mysql_send_query(addr, array(char, arg3)*, ulong);
int mysql_query(addr, array(char, zero(1048576))*);
int mysql_stmt_prepare(addr, array(char, arg3)*, ulong);
addr PQexec(addr, array(char, zero(1048576))*);
addr PQexecParams(addr, array(char, zero(1048576))*, int, addr, addr, addr, addr, int);
addr PQprepare(addr, array(char, zero(4096))*, array(char, zero(1048576))*, int, addr);
addr PQexecPrepared(addr, array(char, zero(4096))*, int, addr, addr, addr, int);
int PQsendQuery(addr, array(char, zero(1048576))*);
int PQsendQueryParams(addr, array(char, zero(1048576))*, int, addr, addr, addr, addr, int);
int PQsendPrepare(addr, array(char, zero(4096))*, array(char, zero(1048576))*, int, addr);
int PQsendQueryPrepared(addr, array(char, zero(4096))*, int, addr, addr, addr, int);
; system calls: paths, sockets, pipes, programs
; clone3 (435 on x86-64: ltrace 0.7.3 prints it by number) and the flags, the first field of its struct
long SYS_435(array(hex(ulong), 1)*, ulong);
int SYS_open(string, hex(int), oct(int));
int SYS_openat(int, string, hex(int), oct(int));
int SYS_creat(string, oct(int));
int SYS_execve(string, array(string, zero(4096))*, addr);
int SYS_chdir(string);
int SYS_socket(enum(AF_UNSPEC=0, AF_UNIX=1, AF_INET=2, AF_INET6=10, AF_NETLINK=16), hex(int), int);
int SYS_socketpair(enum(AF_UNSPEC=0, AF_UNIX=1, AF_INET=2, AF_INET6=10), hex(int), int, +array(int, 2)*);
int SYS_connect(int, array(char, arg3)*, int);
int SYS_bind(int, array(char, arg3)*, int);
int SYS_accept(int, +array(char, 28)*, addr);
int SYS_accept4(int, +array(char, 28)*, addr, hex(int));
int SYS_getsockname(int, +array(char, 28)*, addr);
int SYS_getpeername(int, +array(char, 28)*, addr);
int SYS_pipe(+array(int, 2)*);
int SYS_pipe2(+array(int, 2)*, hex(int));
int SYS_dup(int);
int SYS_dup2(int, int);
int SYS_dup3(int, int, hex(int));
int SYS_fcntl(int, enum(F_DUPFD=0, F_GETFD=1, F_SETFD=2, F_GETFL=3, F_SETFL=4, F_DUPFD_CLOEXEC=1030), hex(long));
int SYS_close(int);
int SYS_stat(string, addr);
int SYS_lstat(string, addr);
int SYS_newfstatat(int, string, addr, hex(int));
int SYS_statx(int, string, hex(int), hex(uint), addr);
int SYS_access(string, oct(int));
int SYS_faccessat(int, string, oct(int));
int SYS_faccessat2(int, string, oct(int), hex(int));
int SYS_readlink(string, addr, ulong);
int SYS_readlinkat(int, string, addr, ulong);
int SYS_unlink(string);
int SYS_unlinkat(int, string, hex(int));
int SYS_mkdir(string, oct(int));
int SYS_mkdirat(int, string, oct(int));
int SYS_rmdir(string);
int SYS_rename(string, string);
int SYS_renameat(int, string, int, string);
int SYS_renameat2(int, string, int, string, hex(int));
int SYS_chmod(string, oct(int));
int SYS_fchmodat(int, string, oct(int));
"""
# The library calls ltrace hooks (-e): the ones above. Tracing every call instead made `mariadb -e
# "select 1"` print 84,000 lines (strncmp...) and run 16 s instead of 0.3 s.
LTRACE_LIBRARY_CALLS = (
    "send",
    "sendto",
    "recv",
    "recvfrom",
    "write",
    "read",
    "SSL_set_fd",
    "SSL_set_rfd",
    "SSL_set_wfd",
    "SSL_get_fd",
    "SSL_connect",
    "SSL_accept",
    "SSL_do_handshake",
    "SSL_set_bio",
    # Python's ssl module reads a memory BIO's ciphertext out with BIO_read (asyncio, SSLObject); hooked
    # there only: OpenSSL's own BIO_read calls (a socket's records, PEM files) would double every log.
    "BIO_read@_ssl*",
    "gnutls_handshake",
    "SSL_write",
    "SSL_read",
    "SSL_write_ex",
    "SSL_read_ex",
    "gnutls_record_send",
    "gnutls_record_recv",
    "gnutls_transport_set_int2",
    "gnutls_transport_set_ptr",
    "gnutls_transport_set_ptr2",
    "mysql_real_query",
    "mysql_send_query",
    "mysql_query",
    "mysql_stmt_prepare",
    "PQexec",
    "PQexecParams",
    "PQprepare",
    "PQexecPrepared",
    "PQsendQuery",
    "PQsendQueryParams",
    "PQsendPrepare",
    "PQsendQueryPrepared",
)

INSTALL_HINT = {"strace": "apt-get install strace", "ltrace": "apt-get install ltrace"}
# How long a tracer has, after each signal dockit sends it to end (SIGINT: strace and ltrace detach;
# SIGTERM; SIGKILL), before the next one. ltrace 0.7.3 stuck after a failed attach ignores both first ones.
STOP_GRACE_SECONDS = 3.0
# A live run's program was sent the user's signal: how long it has to end (and its tracer with it)
# before dockit ends the tracer itself.
PROGRAM_GRACE_SECONDS = 5.0
# ltrace's lines when it cannot attach to a process or one of its threads (it then stops, or spins with
# the thread left in tracing stop): `Cannot attach to pid 31: Inappropriate ioctl for device`.
_LTRACE_ATTACH_FAILED = re.compile(r"Cannot attach to pid (\d+): (.*)")


class TracerError(Exception):
    """A problem that stops a run before it starts (exit status in `status`)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def require_tracer(tracer: str) -> str:
    path = shutil.which(tracer)
    if path is None:
        raise TracerError(
            f"{tracer} is not installed: install it with `{INSTALL_HINT.get(tracer, tracer)}`", 2
        )
    return path


def resolve_command(command: str) -> str:
    """The program as a shell would find it; 127 if not found, 126 if not executable."""
    if "/" in command:
        if not os.path.exists(command):
            raise TracerError(f"{command}: No such file or directory", 127)
        if os.path.isdir(command) or not os.access(command, os.X_OK):
            raise TracerError(f"{command}: Permission denied", 126)
        return command
    found = shutil.which(command)
    if found is None:
        raise TracerError(f"{command}: command not found", 127)
    return found


def ltrace_runnable(command: list[str], depth: int = 4) -> list[str]:
    """The command as ltrace can start it: ltrace 0.7.3 starts ELF programs only ("... is not an ELF
    file"), so a `#!` script runs through its interpreter, as the kernel would run it (Debian's `psql`
    is a Perl wrapper that execs the real psql; `-f` follows the exec, library calls included)."""
    if depth <= 0 or not command:
        return command
    try:
        path = resolve_command(command[0])
        with open(path, "rb") as stream:
            head = stream.read(256)
    except (OSError, TracerError):
        return command
    if not head.startswith(b"#!"):
        return command
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    interpreter, _, argument = line.partition(" ")
    if not interpreter:
        return command
    runnable = [interpreter] + ([argument.strip()] if argument.strip() else []) + [path, *command[1:]]
    return ltrace_runnable(runnable, depth - 1)


def strace_command(
    output: str, *, pids: list[int] | None = None, command: list[str] | None = None
) -> list[str]:
    args = [
        "strace",
        "-f",
        "-q",
        "-ttt",
        "-T",
        "-yy",
        "-s",
        str(STRING_LIMIT),
        "-e",
        f"trace={STRACE_CLASSES}",
        "-o",
        output,
    ]
    if pids:
        for pid in pids:
            args += ["-p", str(pid)]
        return args
    return args[:1] + ["--seccomp-bpf"] + args[1:] + ["--"] + list(command or [])


def ltrace_command(
    output: str, prototypes: str, *, pids: list[int] | None = None, command: list[str] | None = None
) -> list[str]:
    args = [
        "ltrace",
        "-f",
        "-ttt",
        "-T",
        "-S",
        "-F",
        prototypes,
        "-e",
        "+".join(LTRACE_LIBRARY_CALLS),
        "-A",
        str(LTRACE_BUFFER_LIMIT),
        "-s",
        str(LTRACE_BUFFER_LIMIT),
        "-o",
        output,
    ]
    if pids:
        for pid in pids:
            args += ["-p", str(pid)]
        return args
    return args + ["--"] + list(command or [])


def threads_of(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


@dataclass
class TracerRun:
    """A started tracer: iterate `lines()`, then `wait()` for its status."""

    process: subprocess.Popen
    fifo_dir: str
    fifo: str
    command: list[str]
    fd: int  # the FIFO's read end, open before the tracer starts
    stderr_lines: list[str] = field(default_factory=list)
    attach_error: str | None = None  # the tracer's own line saying it could not attach (ltrace)
    _stderr_thread: threading.Thread | None = None
    _fd_taken: bool = False  # lines() owns the read end (and closes it)
    _stopper: threading.Thread | None = None
    _hurry: threading.Event = field(default_factory=threading.Event)
    signals_sent: list[int] = field(default_factory=list)

    def stop(self, first: int = signal.SIGINT, delay: float = 0.0, grace: float = STOP_GRACE_SECONDS) -> None:
        """End the tracer, whatever state it is in, without waiting here: after `delay` seconds (if it
        has not ended by itself), `first` (SIGINT: strace and ltrace detach and exit), then SIGTERM, then
        SIGKILL, `grace` seconds apart. A second call hurries it: the next signal goes at once."""
        if self._stopper is not None:
            self._hurry.set()
            return
        order = [first] + [s for s in (signal.SIGTERM, signal.SIGKILL) if s != first]

        def wait(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while self.process.poll() is None and time.monotonic() < deadline and not self._hurry.is_set():
                time.sleep(0.05)
            self._hurry.clear()

        def escalate() -> None:
            wait(delay)
            for signum in order:
                if self.process.poll() is not None:
                    return
                try:
                    self.process.send_signal(signum)
                except OSError:
                    return
                self.signals_sent.append(signum)
                wait(grace)

        self._stopper = threading.Thread(target=escalate, daemon=True, name="dockit-tracer-stop")
        self._stopper.start()

    def lines(self, max_line: int = DEFAULT_MAX_LINE) -> Iterator[str]:
        """The trace as the tracer writes it (a line longer than `max_line` is skipped, see
        ingest/lines.py); nothing if the tracer exits before opening the FIFO (a refused attach), where
        a plain blocking open would wait for a writer forever."""
        fd = self.fd
        self._fd_taken = True
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while not poller.poll(100):
            if self.process.poll() is not None and not poller.poll(0):
                os.close(fd)
                return
        os.set_blocking(fd, True)
        with open(fd, encoding="utf-8", errors="surrogateescape", newline="\n") as stream:
            yield from bounded_lines(stream, max_line)

    def cleanup(self) -> None:
        """The FIFO's folder and read end go (idempotent; `wait` does it too)."""
        if not self._fd_taken:
            self._fd_taken = True
            try:
                os.close(self.fd)
            except OSError:
                pass
        shutil.rmtree(self.fifo_dir, ignore_errors=True)

    def wait(self) -> int:
        status = self.process.wait()
        if not self._fd_taken:  # the trace was never read (dockit failed before its first line)
            self._fd_taken = True
            os.close(self.fd)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        shutil.rmtree(self.fifo_dir, ignore_errors=True)
        return status


FIFO_DIR_PREFIX = "dockit-"


def remove_stale_fifo_dirs(folder: str | None = None) -> list[str]:
    """Remove the FIFO folders (`/tmp/dockit-PID-xxxx`) of runs that died without cleaning up (SIGKILL);
    the ones removed. A folder whose run is alive, or whose name has no pid, is left alone."""
    folder = folder or tempfile.gettempdir()
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(FIFO_DIR_PREFIX)]
    except OSError:
        return removed
    for name in names:
        pid_text = name[len(FIFO_DIR_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or len(pid_text) > 10 or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # its run is alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        path = os.path.join(folder, name)
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        # only what dockit puts there: the FIFO and ltrace's prototypes
        if os.path.isdir(path) and not os.path.islink(path) and set(entries) <= {"trace", "prototypes.conf"}:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _widen_pipe(fd: int) -> None:
    """A 1 MiB FIFO instead of 64 KiB: the tracer blocks less often while dockit parses a burst."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1024 * 1024)
    except OSError:
        pass  # not allowed above /proc/sys/fs/pipe-max-size: the default still works


def start(
    tracer: str,
    *,
    command: list[str] | None = None,
    pid: int | None = None,
    echo_stderr: Callable[[str], None] | None = None,
) -> TracerRun:
    """Start the tracer writing into a FIFO. In attach mode its stderr is read (to explain failures)."""
    require_tracer(tracer)
    remove_stale_fifo_dirs()
    fifo_dir = tempfile.mkdtemp(prefix=f"{FIFO_DIR_PREFIX}{os.getpid()}-")
    fifo = os.path.join(fifo_dir, "trace")
    os.mkfifo(fifo, 0o600)
    pids = threads_of(pid) or [pid] if pid is not None else None
    if tracer == "ltrace" and pid is not None:
        # ltrace -f attaches a process's threads itself; named with -p, a thread is an attach that fails
        # ("Cannot attach to pid N") and leaves that thread in tracing stop.
        pids = [pid]
    if tracer == "ltrace":
        prototypes = os.path.join(fifo_dir, "prototypes.conf")
        with open(prototypes, "w", encoding="ascii") as stream:
            stream.write(LTRACE_PROTOTYPES)
        args = ltrace_command(fifo, prototypes, pids=pids, command=command)
    else:
        args = strace_command(fifo, pids=pids, command=command)
    # The read end is open before the tracer starts: the tracer's open for writing does not wait for
    # dockit, so the program runs while dockit loads its pipeline, and the FIFO holds what it writes.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    _widen_pipe(fd)
    stderr = subprocess.PIPE if pid is not None else None
    try:
        process = subprocess.Popen(args, stderr=stderr, start_new_session=False)
    except BaseException:
        os.close(fd)
        shutil.rmtree(fifo_dir, ignore_errors=True)
        raise
    run = TracerRun(process, fifo_dir, fifo, args, fd)
    if stderr is not None:

        def pump() -> None:
            assert process.stderr is not None
            for raw in process.stderr:
                text = raw.decode("utf-8", "replace").rstrip("\n")
                if len(run.stderr_lines) < 1000:
                    run.stderr_lines.append(text)
                if echo_stderr is not None:
                    echo_stderr(text)
                if run.attach_error is None and tracer == "ltrace" and _LTRACE_ATTACH_FAILED.search(text):
                    # ltrace goes on spinning, the thread it failed on stopped: end it now (it ignores
                    # SIGINT and SIGTERM then, so this ends in SIGKILL), which lets the thread run.
                    run.attach_error = text
                    run.stop(signal.SIGTERM, grace=1.0)

        run._stderr_thread = threading.Thread(target=pump, daemon=True)
        run._stderr_thread.start()
    return run


def _tracer_of(pid: int) -> int:
    """The pid tracing `pid` (a debugger, another strace), 0 if none or unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as stream:
            for line in stream:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def thread_states(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (state letter, TracerPid) of each thread of `pid`, from /proc."""
    states: dict[int, tuple[str, int]] = {}
    for tid in threads_of(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii", errors="replace") as stream:
                fields = dict(line.split(":", 1) for line in stream if ":" in line)
            states[tid] = (fields.get("State", "?").split()[0], int(fields.get("TracerPid", "0").split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return states


def release(pid: int, was_stopped: bool, tracer_pid: int, timeout: float = 2.0) -> list[int]:
    """After our tracer (`tracer_pid`) is gone: wait until no thread of `pid` is traced by it any more,
    and let the process run again if the attach left it stopped (SIGSTOP sent by ptrace's attach, never
    delivered to a tracer) while it was running before. A process another tracer holds is its business.
    The threads still stopped or traced are returned (none, normally)."""
    deadline = time.monotonic() + timeout
    while True:
        states = thread_states(pid)
        if any(tracer not in (0, tracer_pid) for _state, tracer in states.values()):
            return []  # another tracer has it (an attach refused for that reason)
        traced = [tid for tid, (_state, tracer) in states.items() if tracer]
        stopped = [tid for tid, (state, _tracer) in states.items() if state in ("T", "t")]
        if stopped and not traced and not was_stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                return []
        if not traced and (not stopped or was_stopped):
            return []
        if time.monotonic() > deadline:
            return sorted(set(traced) | set(stopped))
        time.sleep(0.05)


def is_stopped(pid: int) -> bool:
    """Whether the process is stopped (job control) before dockit touches it."""
    return any(state == "T" for state, _tracer in thread_states(pid).values())


def attach_failure(stderr_lines: list[str], pid: int) -> str | None:
    """Why an attach failed, in one line, from what strace or ltrace said."""
    text = "\n".join(stderr_lines)
    refused = _LTRACE_ATTACH_FAILED.search(text)
    if refused is not None and "Operation not permitted" not in refused.group(2):
        tid, reason = int(refused.group(1)), refused.group(2).strip()
        leader = _tgid(tid) or pid
        if leader == tid:
            which, hint = f"process {tid}", ""
        else:
            which = f"thread {tid} of process {leader}"
            hint = f" (ltrace attaches a process's threads itself: give -p {leader})"
        return f"ltrace cannot attach to {which}: {reason}{hint}; ltrace was ended and the process goes on"
    if "Operation not permitted" in text:
        tracer = _tracer_of(pid)
        if tracer:
            return (
                f"cannot attach to process {pid}: ptrace refused (Operation not permitted): it is already "
                f"traced by process {tracer}, and a process has one tracer at most"
            )
        return (
            f"cannot attach to process {pid}: ptrace refused (Operation not permitted); run as root or "
            "set /proc/sys/kernel/yama/ptrace_scope to 0"
        )
    if "No such process" in text:
        return f"no process {pid}"
    return None


def _tgid(tid: int) -> int | None:
    """The process a thread belongs to."""
    try:
        with open(f"/proc/{tid}/status", encoding="ascii", errors="replace") as stream:
            for line in stream:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def trim_for_log(line: str, file_io: bool, keep_elements: int | None) -> str:
    """The line as the saved .log keeps it: a file's buffer cut to FILE_BUFFER_KEEP bytes, an ltrace
    buffer cut to the elements the call really moved (SSL_read_ex prints the whole buffer it was given),
    any other line whole."""
    if keep_elements is not None and keep_elements > 0:
        from dockit_core.ingest.ltrace_buffers import trim_array

        return trim_array(line, keep_elements) or line
    if file_io:
        return trim_file_buffer(line)
    return line


def trim_file_buffer(line: str, keep: int = FILE_BUFFER_KEEP) -> str:
    """Cut the data literal of a file read/write line to `keep` characters, marked `...` as strace does."""
    if ", [ '" in line[:256]:  # ltrace: a char array (never on a call's first line: its result is unknown)
        if line.rstrip().endswith("<unfinished ...>"):
            return line
        from dockit_core.ingest.ltrace_buffers import trim_array

        trimmed = trim_array(line, keep)
        if trimmed is not None:
            return trimmed
    open_paren = line.find("(")
    start = line.find(', "', open_paren)
    if start < 0:
        return line
    start += 2
    position = start + 1
    end = len(line)
    while position < end:
        char = line[position]
        if char == "\\":
            position += 2
            continue
        if char == '"':
            break
        position += 1
    if position - start <= keep + 8:
        return line
    cut = start + 1 + keep
    backslash = line.rfind("\\", cut - 4, cut)
    if backslash >= 0:
        cut = backslash
    after = position + 1
    if line.startswith("...", after):
        after += 3
    return line[:cut] + '"...' + line[after:]


class Terminated(BaseException):  # noqa: N818 - like KeyboardInterrupt, which it stands beside
    """SIGTERM or SIGHUP reached a replay: raised where the replay is, so that every temporary output is
    removed on the way out (a BaseException, so that no `except Exception` takes it for a failure)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class TerminateOnSignals:
    """While a replay runs, SIGTERM and SIGHUP raise `Terminated` (SIGINT already raises
    KeyboardInterrupt)."""

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}

    def __enter__(self) -> TerminateOnSignals:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    @staticmethod
    def _handle(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]


class SignalGuard:
    """While the program runs, Ctrl-C and SIGTERM belong to it: dockit notes them and goes on reading,
    so that every output is still written. In attach mode they make the tracer detach."""

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.received: list[int] = []
        self.on_signal = on_signal
        self._previous: dict[int, object] = {}

    def __enter__(self) -> SignalGuard:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        if self.on_signal is not None:
            self.on_signal(signum)

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
