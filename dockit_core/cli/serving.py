"""`--serve [HOST:]PORT` and `--serve-after`: the run's objects over HTTP while it goes (see
dockit_core/outputs/live/). Started before the first line is read, stopped when dockit ends, or, with
`--serve-after`, kept up until Ctrl-C so a finished run can be browsed. The pipeline writes the store;
the server runs in a process of its own (serve_process.py) that reads it."""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dockit_core.cli.arguments import UsageError

if TYPE_CHECKING:
    import argparse

    from dockit_core.cli.session import TraceSession
    from dockit_core.outputs.live.store import LiveStore

TICK_SECONDS = 0.1  # how often a live run publishes what changed: a new query shows well within a second
STOP_GRACE_SECONDS = 5.0


class Serving:
    """The store, the publisher hooked to the session, the server, and the thread that ticks when the
    trace is idle (a live run waiting for its program)."""

    def __init__(self, address: str, session: TraceSession, command: list[str], mode: str) -> None:
        from dockit_core.outputs.live.publisher import LivePublisher
        from dockit_core.outputs.live.server import listening_socket, parse_address, url_of
        from dockit_core.outputs.live.store import LiveStore
        from dockit_core.outputs.redaction import redact_argv

        try:
            host_port = parse_address(address)
        except ValueError as error:
            raise UsageError(str(error)) from error
        try:
            self.listening = listening_socket(host_port)
        except OSError as error:
            raise UsageError(f"--serve {address}: cannot listen there: {error.strerror or error}") from error
        self.url = url_of(self.listening)
        about = {"command": shlex.join(redact_argv(command)), "mode": mode, "tracer": session.context.tracer}
        self.store: LiveStore = LiveStore(about)
        self.session = session
        self.publisher = LivePublisher(self.store, session.model, session.context)
        digest = session.digest
        if digest is not None:  # `/api/digest`: written to the store at each of the publisher's scans
            from dockit_core.outputs.digest.render import digest_json

            self.publisher.digest = lambda: digest_json(digest, session.context.date)
        session.serve(self.publisher)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.server: subprocess.Popen[bytes] | None = None
        atexit.register(self._end)  # a run that fails leaves no server and no scratch file behind

    def start(self, tick_when_idle: bool) -> None:
        self.server = start_server_process(self.store.path, self.listening)
        self.listening.close()  # the server's process holds it now
        sys.stderr.write(f"dockit: serving the run on {self.url}\n")
        if tick_when_idle:
            self._ticker = threading.Thread(target=self._tick, name="dockit-serve-tick", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        session = self.session
        while not self._stop.wait(TICK_SECONDS):
            with session.lock:
                if self.store.finished:
                    return
                self.publisher.tick()

    def stop(self, keep_serving: bool) -> None:
        """After the outputs are written: stop, or with `--serve-after` serve until Ctrl-C or SIGTERM."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self.store.finish()
        try:
            if keep_serving:
                sys.stderr.write(f"dockit: the run is over; still serving on {self.url} until Ctrl-C\n")
                wait_for_interrupt()
        finally:
            self._end()

    def _end(self) -> None:
        """Stop the server's process (SIGTERM, then SIGKILL after a grace period) and remove the store."""
        server, self.server = self.server, None
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        self.store.close()


def start_server_process(store_path: str, listening: object) -> subprocess.Popen[bytes]:
    """`python -m dockit_core.cli.serve_process`, with the same dockit on its path as this one."""
    fd = listening.fileno()  # type: ignore[attr-defined]
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    return subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli.serve_process", store_path, str(fd), str(os.getpid())],
        pass_fds=(fd,),
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=False,
    )


def wait_for_interrupt() -> None:
    stopped = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stopped.set()) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def serve_if_asked(
    args: argparse.Namespace, session: TraceSession, command: list[str], mode: str, tick_when_idle: bool
) -> Serving | None:
    """`--serve`: start serving this session; None when not asked."""
    if not getattr(args, "serve", None):
        return None
    serving = Serving(args.serve, session, command, mode)
    serving.start(tick_when_idle)
    return serving


def end_serving(serving: Serving | None, args: argparse.Namespace) -> None:
    """The outputs are written: stop serving, or go on until Ctrl-C with `--serve-after`."""
    if serving is not None:
        serving.stop(keep_serving=bool(args.serve_after))
