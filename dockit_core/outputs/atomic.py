"""Outputs appear whole or not at all: written to a hidden temporary beside the target, then renamed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


@contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs: object) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file in `path`'s folder; on success it replaces `path`, on error it vanishes."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=folder)
    try:
        with os.fdopen(fd, mode, **kwargs) as stream:  # type: ignore[call-overload]
            yield stream
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


class AtomicStream:
    """A file written over a long run (the calls file, the raw log) and renamed into place at `commit`."""

    def __init__(self, path: str, mode: str = "w", **kwargs: object) -> None:
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, self.temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=folder
        )
        self.stream: IO = os.fdopen(fd, mode, **kwargs)  # type: ignore[type-arg, call-overload]

    def commit(self) -> None:
        self.stream.close()
        os.chmod(self.temporary, 0o644)
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        self.stream.close()
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass
