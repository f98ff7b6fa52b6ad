"""inotify(7) through libc, for `--watch-dir`: which names appear in a folder. The standard library has
no inotify; ctypes reaches glibc's three calls. `parse_events` is pure (bytes of one read in, events out)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_DELETE = 0x00000200
IN_CLOSE_WRITE = 0x00000008
IN_ISDIR = 0x40000000
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCHED = IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_CLOSE_WRITE

_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len (then len bytes of NUL-padded name)
NAMES = {IN_CREATE: "create", IN_MOVED_TO: "moved-in", IN_DELETE: "delete", IN_CLOSE_WRITE: "written"}


@dataclass(frozen=True)
class DirEvent:
    watch: int
    kind: str  # create, moved-in, delete, written, overflow
    name: str
    is_dir: bool


def parse_events(data: bytes) -> Iterator[DirEvent]:
    offset = 0
    while offset + _EVENT.size <= len(data):
        watch, mask, _cookie, length = _EVENT.unpack_from(data, offset)
        raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
        offset += _EVENT.size + length
        name = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if mask & IN_Q_OVERFLOW:
            yield DirEvent(watch, "overflow", "", False)
            continue
        for bit, kind in NAMES.items():
            if mask & bit:
                yield DirEvent(watch, kind, name, bool(mask & IN_ISDIR))


class DirectoryWatch:
    """An inotify descriptor watching folders for names that appear, change or go."""

    def __init__(self) -> None:
        libc_name = ctypes.util.find_library("c") or "libc.so.6"
        self._libc = ctypes.CDLL(libc_name, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self.fd = fd
        self.folders: dict[int, str] = {}

    def add(self, folder: str) -> None:
        watch = self._libc.inotify_add_watch(self.fd, os.fsencode(folder), WATCHED)
        if watch < 0:
            error = ctypes.get_errno()
            raise OSError(error, f"{folder}: {os.strerror(error)}")
        self.folders[watch] = folder

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[tuple[str, DirEvent]]:
        """(full path, event) for what happened since the last read."""
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return []
        return [(os.path.join(self.folders.get(e.watch, "?"), e.name), e) for e in parse_events(data)]

    def close(self) -> None:
        os.close(self.fd)
