"""The `--each-call` calls file shows each call's buffer; a decoder may learn that a buffer held a
credential only when the message it began is complete, calls later (a password split across two
writes, a login packet read in two reads). Calls wait here while some decoder says it is reading an
unfinished message (`Decoder.reading_since`), and go to the writer, in order, once no decoder holds them:
by then every `Secret` about them is known, and so is every annotation.

Bounded: past MAX_CALLS calls or MAX_BYTES of their arguments, the oldest go anyway; one that a
decoder still reads is written without its buffer (it may be a credential), and counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from dockit_core.ingest.events import Call
from dockit_core.model import Process
from dockit_core.model.channels import ChannelManager
from dockit_core.model.tracker.base import CallInfo

MAX_CALLS = 4096
MAX_BYTES = 16 * 1024 * 1024

Sink = Callable[[Call, Process, CallInfo, list[str]], None]


class HeldCalls:
    """A call sink that holds calls back while a decoder reads a message they may belong to."""

    def __init__(self, channels: ChannelManager, sink: Sink) -> None:
        self.channels = channels
        self.sink = sink
        self.queue: deque[tuple[Call, Process, CallInfo]] = deque()
        self.bytes = 0
        self.forced = 0  # calls written without their buffer because they were held too long
        channels.holding_calls = True

    def __call__(self, call: Call, process: Process, info: CallInfo) -> None:
        queue = self.queue
        held_from = self.channels.held_from()
        if not queue and (held_from is None or call.index < held_from):
            self._write(call, process, info)
            return
        queue.append((call, process, info))
        self.bytes += len(call.args)
        self.release(held_from)

    def release(self, held_from: int | None) -> None:
        queue = self.queue
        while queue and (held_from is None or queue[0][0].index < held_from):
            self._pop()
        while queue and (len(queue) > MAX_CALLS or self.bytes > MAX_BYTES):
            call, process, info = self._pop(write=False)
            info.secret = True  # a decoder may still find a credential in it: its buffer is not shown
            self.forced += 1
            self._write(call, process, info)

    def finish(self) -> None:
        """The trace and its decoders are done: every call goes out."""
        self.release(None)

    def _pop(self, write: bool = True) -> tuple[Call, Process, CallInfo]:
        entry = self.queue.popleft()
        self.bytes -= len(entry[0].args)
        if write:
            self._write(*entry)
        return entry

    def _write(self, call: Call, process: Process, info: CallInfo) -> None:
        channels = self.channels
        channels.released_up_to = call.index
        annotations = channels.take_annotations(call.index) if channels.annotations else []
        if channels.secret_calls and channels.take_secret(call.index):
            info.secret = True
        self.sink(call, process, info, annotations)
