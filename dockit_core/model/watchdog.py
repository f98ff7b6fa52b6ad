"""Stops a decoder stuck on one chunk, so that one bad plugin cannot hang a run or make Ctrl-C useless.

The channel manager marks each call into a decoder (`busy` is the chunk being fed, None between calls:
two attribute stores a chunk). A thread looks every TICK seconds: when the same call has lasted more than
`timeout` seconds, or more than HURRY seconds after the user asked dockit to stop (Ctrl-C, SIGTERM), it
interrupts the main thread with `_thread.interrupt_main(SIGNAL)`. The handler raises `DecoderStuck` only
when the main thread is inside the decoder's own code (not between two chunks, not in dockit's), so the
channel manager catches it where it called the decoder, leaves that channel undecoded and goes on.

Only Python code can be interrupted so: a decoder stuck inside one call into C (on Python 3.11, a
regular expression backtracking for ever is one; so is a C extension spinning) never returns to the
interpreter, and neither the watchdog nor a signal handler runs in that thread until it does. The
watchdog then says so on stderr, once, with the pid to kill.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from types import CodeType, FrameType

TICK = 0.2
HURRY = 1.0  # after Ctrl-C or SIGTERM, a decoder still on the same chunk gets this long
NATIVE_GRACE = 5.0  # a decoder interrupted this long ago and still on its chunk is stuck in C code
DEFAULT_TIMEOUT = 10.0
SIGNAL = signal.SIGUSR2  # what interrupt_main simulates; a real SIGUSR2 is ignored unless a decoder is stuck


class DecoderStuck(BaseException):  # noqa: N818 - not an Exception, so a decoder's `except Exception` cannot swallow it
    """Raised inside a decoder that took too long on one chunk."""


class Watchdog:
    """Watches the calls into decoders; `start` in the main thread, `stop` at the end of the run."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.busy: object | None = None  # the chunk (or other token) of the decoder call in progress
        self.safe_code: set[CodeType] = set()  # dockit's own frames around the call: never interrupted there
        self.fired: object | None = None
        self.hurry_token: object | None = None
        self.hurry_at = 0.0
        self.stops = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: object = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> bool:
        """Start watching; False (and no watching) when not called from the main thread, where a signal
        handler can be set."""
        if self._thread is not None or threading.current_thread() is not threading.main_thread():
            return False
        if self.timeout <= 0:
            return False
        self._previous = signal.signal(SIGNAL, self._handle)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="dockit-decoder-watchdog", daemon=True)
        # The thread is born with every signal blocked (it inherits this mask): a signal the kernel gave
        # it would not interrupt the main thread's blocking read of the trace, and Ctrl-C or SIGTERM
        # would wait for the tracer's next line.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return True

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2 * TICK + 1)
        self._thread = None
        if threading.current_thread() is threading.main_thread():
            signal.signal(SIGNAL, self._previous)  # type: ignore[arg-type]

    def hurry(self) -> None:
        """The user asked dockit to stop: the decoder call in progress, if any, gets HURRY more seconds."""
        if self.busy is not None:
            self.hurry_token = self.busy
            self.hurry_at = time.monotonic()

    def _watch(self) -> None:
        last: object | None = None
        since = fired_at = time.monotonic()
        warned = False
        while not self._stop.wait(TICK):
            busy = self.busy
            now = time.monotonic()
            if busy is None or busy is not last:
                last, since = busy, now
                continue
            late = now - since >= self.timeout
            hurried = busy is self.hurry_token and now - self.hurry_at >= HURRY
            if late or hurried:
                if self.fired is busy and now - fired_at >= NATIVE_GRACE and not warned:
                    warned = True
                    sys.stderr.write(
                        "dockit: a decoder is stuck inside native code (a C extension or a regular "
                        f"expression) and cannot be stopped; kill -9 {os.getpid()} ends dockit\n"
                    )
                if self.fired is not busy:
                    self.fired, fired_at = busy, now
                _thread.interrupt_main(SIGNAL)

    def _handle(self, _signum: int, frame: FrameType | None) -> None:
        fired = self.fired
        if fired is None or fired is not self.busy:
            return
        if frame is not None and frame.f_code in self.safe_code:
            return  # between two calls into the decoder: the next tick decides again
        self.fired = None
        self.stops += 1
        reason = (
            "interrupted by a signal" if fired is self.hurry_token else f"took more than {self.timeout:g} s"
        )
        raise DecoderStuck(f"{reason} on one chunk")
