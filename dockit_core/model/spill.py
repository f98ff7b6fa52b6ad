"""Items kept on disk in sorted runs, read back merged in order: how a trace that names millions of
processes or files keeps its memory flat while the summary still lists them in their usual order.

Items come in any order. Every RUN of them is sorted and pickled in chunks to one temporary file; at
the end the runs are merged (heapq.merge reads one chunk of each at a time), so memory holds one run
being filled and one chunk per run, never all the items. Equal keys come out in the order they were
added (the merge is stable, and runs are merged in the order they were written).
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Generic, TypeVar

Item = TypeVar("Item")


class SpillError(OSError):
    """The temporary file could not be written (a full /tmp)."""


class SortedRuns(Generic[Item]):
    RUN = 4096  # items sorted and written at once
    CHUNK = 256  # items pickled together: what the merge holds of each run
    FAN_IN = 16  # runs merged into one when there are this many: the final merge holds 16 chunks at most

    def __init__(self, key: Callable[[Item], object]) -> None:
        self._key = key
        self._file: IO[bytes] | None = None
        self._runs: list[list[int]] = []  # each run: the offsets of its chunks
        self._batch: list[Item] = []
        self._weight = 0
        self.count = 0

    def add(self, item: Item, weight: int = 1) -> None:
        """`weight`: what the item holds, counted against RUN (a file's accesses of many processes)."""
        self._batch.append(item)
        self.count += 1
        self._weight += weight
        if self._weight >= self.RUN:
            self.flush()

    def flush(self) -> None:
        """Write the items waiting as one sorted run (callers may cut a run short: a spill of files)."""
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self._weight = 0
        batch.sort(key=self._key)
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="dockit-spill-")
            self._runs.append(self._write_run(self._file, batch))
            if len(self._runs) >= self.FAN_IN:
                self._merge_runs()
        except OSError as error:
            raise SpillError(
                error.errno, f"a temporary file in {tempfile.gettempdir()}: {error.strerror}"
            ) from error

    def _write_run(self, stream: IO[bytes], items: Iterable[Item]) -> list[int]:
        """Write sorted `items` at the end of `stream`, a chunk at a time; the chunks' offsets."""
        offsets = []
        chunk: list[Item] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= self.CHUNK:
                offsets.append(stream.tell())
                pickle.dump(chunk, stream, protocol=pickle.HIGHEST_PROTOCOL)
                chunk = []
        if chunk:
            offsets.append(stream.tell())
            pickle.dump(chunk, stream, protocol=pickle.HIGHEST_PROTOCOL)
        return offsets

    def _merge_runs(self) -> None:
        """The runs so far become one, in a new file: the runs stay few however many items come."""
        assert self._file is not None
        merged = tempfile.TemporaryFile(prefix="dockit-spill-")
        self._file.flush()
        try:
            offsets = self._write_run(merged, heapq.merge(*(self._run(o) for o in self._runs), key=self._key))
        except BaseException:
            merged.close()
            raise
        self._file.close()
        self._file = merged
        self._runs = [offsets]

    def __iter__(self) -> Iterator[Item]:
        """Every item, by key (those still in memory included)."""
        waiting = sorted(self._batch, key=self._key)
        if not self._runs:
            return iter(waiting)
        assert self._file is not None
        self._file.flush()
        return heapq.merge(*(self._run(offsets) for offsets in self._runs), waiting, key=self._key)

    def _run(self, offsets: list[int]) -> Iterator[Item]:
        assert self._file is not None
        for offset in offsets:
            self._file.seek(offset)
            yield from pickle.load(self._file)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
