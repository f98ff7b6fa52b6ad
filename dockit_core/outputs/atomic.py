"""Outputs appear whole or not at all: written to a hidden temporary beside the target, then renamed.

A temporary is named after its target and the pid of the run writing it (`.P.xml.4242.x8f2.partial`):
a run that died without cleaning up (SIGKILL, a power cut) leaves one behind, and the next run writing
the same output removes those whose run is gone. Any failure to write (a read-only or missing folder, a
full disk) is an `OutputError`: one line for the user, never a traceback, and no temporary left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


class OutputError(Exception):
    """An output that cannot be written: the message names it and says why, in one line."""


def output_error(path: str, error: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {error.strerror or error}")


def remove_stale_partials(folder: str, name: str) -> None:
    """Remove the temporaries of `name` that runs now dead left in `folder`."""
    prefix = f".{name}."
    try:
        entries = [e for e in os.listdir(folder) if e.startswith(prefix) and e.endswith(".partial")]
    except OSError:
        return
    for entry in entries:
        pid_text = entry[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or len(pid_text) > 10 or _alive(int(pid_text)):
            continue
        try:
            os.unlink(os.path.join(folder, entry))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _temporary(path: str) -> tuple[int, str]:
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    try:
        os.makedirs(folder, exist_ok=True)
        remove_stale_partials(folder, name)
        return tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".partial", dir=folder)
    except OSError as error:
        raise output_error(path, error) from error


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs: object) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file in `path`'s folder; on success it replaces `path`, on error it vanishes."""
    fd, temporary = _temporary(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as stream:  # type: ignore[call-overload]
            yield stream
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        _unlink(temporary)
        raise output_error(path, error) from error
    except BaseException:
        _unlink(temporary)
        raise


class _GuardedStream:
    """A text stream whose write errors (a full disk) are OutputErrors naming the output."""

    __slots__ = ("_stream", "_path", "write")

    def __init__(self, stream: IO[str], path: str) -> None:
        self._stream = stream
        self._path = path
        raw_write = stream.write

        def write(text: str) -> int:
            try:
                return raw_write(text)
            except OSError as error:
                raise output_error(self._path, error) from error

        self.write = write

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError as error:
            raise output_error(self._path, error) from error

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


class AtomicStream:
    """A file written over a long run (the calls file, the raw log) and renamed into place at `commit`."""

    def __init__(self, path: str, mode: str = "w", **kwargs: object) -> None:
        self.path = path
        fd, self.temporary = _temporary(path)
        self.stream: IO = _GuardedStream(os.fdopen(fd, mode, **kwargs), path)  # type: ignore[type-arg, call-overload, assignment]

    def commit(self) -> None:
        try:
            self.stream.close()
            os.chmod(self.temporary, 0o644)
            os.replace(self.temporary, self.path)
        except (OSError, OutputError) as error:
            _unlink(self.temporary)
            if isinstance(error, OutputError):
                raise
            raise output_error(self.path, error) from error

    def discard(self) -> None:
        try:
            self.stream.close()
        except (OSError, OutputError):
            pass  # the data goes anyway: a full disk cannot refuse what is thrown away
        _unlink(self.temporary)
