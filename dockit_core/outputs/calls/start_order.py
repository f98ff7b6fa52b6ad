"""Blocks put back in order of their start, with bounded memory: the calls file reads as a timeline.

Blocks end in another order than they start (a file opened first and closed last, a connection used for
the whole run, a process's block of other calls). The aggregator hands each block over when it ends;
this window holds up to `window` of them in a heap by (start, first line) and writes the earliest when
it is full, and all of them at the end. So the file is in start order whenever a block ends before
`window` blocks that started after it have ended; a block that stays open longer (a terminal, a
connection kept for the whole of a long run) is written as soon as it ends, behind blocks that started
after it. Memory: `window` blocks at most (the default 4,096 is a few MB), never the length of the log.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from dockit_core.outputs.calls.blocks import Block

WINDOW = 4096


class StartOrder:
    """Takes blocks in the order they end, passes them to `emit` in the order they started."""

    def __init__(self, emit: Callable[[Block], None], window: int = WINDOW) -> None:
        self.emit = emit
        self.window = window
        self._heap: list[tuple[float, int, int, Block]] = []
        self._count = 0  # a tie-breaker: blocks never compare
        self.late = 0  # blocks written after a block that started later than them (held too long)
        self._last: tuple[float, int] | None = None

    def push(self, block: Block) -> None:
        self._count += 1
        start = block.start if block.start is not None else 0.0
        heapq.heappush(self._heap, (start, block.first_line, self._count, block))
        if len(self._heap) > self.window:
            self._pop()

    def flush(self) -> None:
        while self._heap:
            self._pop()

    def held(self) -> int:
        return len(self._heap)

    def _pop(self) -> None:
        start, line, _, block = heapq.heappop(self._heap)
        if self._last is not None and (start, line) < self._last:
            self.late += 1
        else:
            self._last = (start, line)
        self.emit(block)
