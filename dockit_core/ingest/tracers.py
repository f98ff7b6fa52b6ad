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
import select
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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
int SSL_write(addr, array(char, arg3)*, int);
int SSL_read(addr, +array(char, retval)*, int);
int SSL_write_ex(addr, array(char, arg3)*, ulong, +array(ulong, 1)*);
int SSL_read_ex(addr, +array(char, arg3)*, ulong, array(ulong, 1)*);
; client libraries: the SQL as the program hands it over
int mysql_real_query(addr, array(char, arg3)*, ulong);
int mysql_send_query(addr, array(char, arg3)*, ulong);
int mysql_query(addr, array(char, zero(1048576))*);
int mysql_stmt_prepare(addr, array(char, arg3)*, ulong);
; system calls: paths, sockets, pipes, programs
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
    "SSL_write",
    "SSL_read",
    "SSL_write_ex",
    "SSL_read_ex",
    "mysql_real_query",
    "mysql_send_query",
    "mysql_query",
    "mysql_stmt_prepare",
)

INSTALL_HINT = {"strace": "apt-get install strace", "ltrace": "apt-get install ltrace"}


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
    _stderr_thread: threading.Thread | None = None
    _fd_taken: bool = False  # lines() owns the read end (and closes it)

    def lines(self) -> Iterator[str]:
        """The trace as the tracer writes it; nothing if the tracer exits before opening the FIFO (a
        refused attach), where a plain blocking open would wait for a writer forever."""
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
            yield from stream

    def wait(self) -> int:
        status = self.process.wait()
        if not self._fd_taken:  # the trace was never read (dockit failed before its first line)
            self._fd_taken = True
            os.close(self.fd)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        shutil.rmtree(self.fifo_dir, ignore_errors=True)
        return status


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
    fifo_dir = tempfile.mkdtemp(prefix="dockit-")
    fifo = os.path.join(fifo_dir, "trace")
    os.mkfifo(fifo, 0o600)
    pids = threads_of(pid) or [pid] if pid is not None else None
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
                run.stderr_lines.append(text)
                if echo_stderr is not None:
                    echo_stderr(text)

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


def attach_failure(stderr_lines: list[str], pid: int) -> str | None:
    """Why an attach failed, in one line, from what strace said."""
    text = "\n".join(stderr_lines)
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
