"""What every part of the tracker shares: the state it works on, and what it learns about a call.

The tracker is one class made of parts, one module per kind of call (processes, files, descriptors,
sockets and pipes, data). Each part reads and changes the state declared here, and may call the
methods the others provide, listed below with their owners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockit_core.ingest.events import Call
from dockit_core.model import FdEntry, FileNode, Model, PipeNode, Process, SocketNode

if TYPE_CHECKING:
    from dockit_core.model.channels import ChannelManager
    from dockit_core.model.tracker.library_tls import LibraryTlsCalls


@dataclass(slots=True)
class CallInfo:
    """What the tracker learnt about a call, for the calls file."""

    target: str | None = None  # the file, socket or pipe the call worked on
    file_io: bool = False  # a read/write on a regular file: its buffer is not worth keeping in full
    secret: bool = False  # a decoder found a credential in its bytes: the calls file hides them
    keep_elements: int | None = None  # ltrace: the saved log keeps this many elements of its buffer


CallSink = Callable[[Call, Process, CallInfo, list[str]], None]
Handler = Callable[[Call, Process, CallInfo], None]
PendingCalls = Callable[[], dict[int, tuple[str, float | None, str, str]]]


class TrackerBase:
    """The state the parts share. The methods below are implemented by the part named in their
    docstring; they are declared here so that each part reads on its own."""

    model: Model
    channels: ChannelManager
    initial_cwd: str | None
    pending_calls: PendingCalls
    last_time: float | None
    _absent: set[str]
    library_tls: LibraryTlsCalls
    _dirfds: dict[str, tuple[int | None, str | None, str | None, bool]]

    def _resolve(self, process: Process, path: str, dirfd: int | None = None) -> str:
        """file_calls: `path` as an absolute path, from the process's cwd or a dirfd."""
        raise NotImplementedError

    def _node(self, process: Process, fd_arg: str) -> FileNode | SocketNode | PipeNode | None:
        """fd_calls: what an fd argument designates."""
        raise NotImplementedError

    def _entry_from_decoration(self, process: Process, fd: int, text: str, entry: FdEntry | None) -> FdEntry:
        """fd_calls: the fd table entry a `-y` decoration describes."""
        raise NotImplementedError
