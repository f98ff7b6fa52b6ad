"""`--serve [HOST:]PORT` and `--serve-after`: the run's objects over HTTP while it goes (see
dockit_core/outputs/live/). Started before the first line is read, stopped when dockit ends, or, with
`--serve-after`, kept up until Ctrl-C so a finished run can be browsed."""

from __future__ import annotations

import atexit
import shlex
import signal
import sys
import threading
from typing import TYPE_CHECKING

from dockit_core.cli.arguments import UsageError

if TYPE_CHECKING:
    import argparse

    from dockit_core.cli.session import TraceSession
    from dockit_core.outputs.live.server import LiveServer
    from dockit_core.outputs.live.store import LiveStore

TICK_SECONDS = 0.1  # how often a live run publishes what changed: a new query shows well within a second


class Serving:
    """The store, the publisher hooked to the session, the server, and the thread that ticks when the
    trace is idle (a live run waiting for its program)."""

    def __init__(self, address: str, session: TraceSession, command: list[str], mode: str) -> None:
        from dockit_core.outputs.live.publisher import LivePublisher
        from dockit_core.outputs.live.server import LiveServer, parse_address
        from dockit_core.outputs.live.store import LiveStore

        try:
            host_port = parse_address(address)
        except ValueError as error:
            raise UsageError(str(error)) from error
        self.store: LiveStore = LiveStore()
        self.session = session
        self.publisher = LivePublisher(self.store, session.model, session.context)
        from dockit_core.outputs.redaction import redact_argv

        about = {"command": shlex.join(redact_argv(command)), "mode": mode, "tracer": session.context.tracer}
        try:
            self.server: LiveServer = LiveServer(self.store, host_port, about, digest=None)
        except OSError as error:
            self.store.close()
            raise UsageError(f"--serve {address}: cannot listen there: {error.strerror or error}") from error
        session.serve(self.publisher)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        atexit.register(self.store.close)  # a run that fails leaves no scratch file behind

    def start(self, tick_when_idle: bool) -> None:
        self.server.start()
        sys.stderr.write(f"dockit: serving the run on {self.server.url}\n")
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
                sys.stderr.write(f"dockit: the run is over; still serving on {self.server.url} until Ctrl-C\n")
                wait_for_interrupt()
        finally:
            self.server.stop()
            self.store.close()


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
