"""The run as events: each call worth a process-mining step (exec, fork, open, read, write, connect,
accept...), each exit, and each record a decoder made (query, request, login) becomes one event, linked
to the objects it touches. Calls are seen as they are applied, records as the decoders return them, so
nothing waits for the end of the run.

A socket is known by its connection (the channel its bytes went to: one object for both ends of a
loopback connection). Its connect, accept, bind and listen come before its first bytes, when that
connection is not known yet: they wait (a few per open socket) and go out with its first bytes, or when
it is closed or the run ends.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from decoders.api import Chunk
from decoders.records import AttrValue, CimObject
from dockit_core.ingest.args import first_arg, parse_fd
from dockit_core.ingest.events import Call, Exit
from dockit_core.model.channels import Channel, ChannelManager
from dockit_core.model.nodes import FileNode, PipeNode, SocketNode
from dockit_core.model.processes import Process
from dockit_core.model.state import Model
from dockit_core.outputs.redaction import redact_argv

ACTIVITIES = {
    "execve": "exec",
    "execveat": "exec",
    "clone": "fork",
    "clone3": "fork",
    "fork": "fork",
    "vfork": "fork",
    "open": "open",
    "openat": "open",
    "openat2": "open",
    "creat": "open",
    "close": "close",
    "connect": "connect",
    "accept": "accept",
    "accept4": "accept",
    "bind": "bind",
    "listen": "listen",
    "unlink": "delete",
    "unlinkat": "delete",
    "rmdir": "delete",
    "rename": "rename",
    "renameat": "rename",
    "renameat2": "rename",
    "mkdir": "mkdir",
    "mkdirat": "mkdir",
}
for _name in ("read", "pread64", "readv", "preadv", "preadv2", "recv", "recvfrom", "recvmsg", "recvmmsg"):
    ACTIVITIES[_name] = "read"
for _name in ("write", "pwrite64", "writev", "pwritev", "pwritev2", "send", "sendto", "sendmsg", "sendmmsg"):
    ACTIVITIES[_name] = "write"

RECORD_ACTIVITIES = {
    "Dockit_SqlQuery": "query",
    "Dockit_HttpRequest": "request",
    "Dockit_DatabaseSession": "login",
    "Dockit_TlsSession": "tls",
}
MAX_WAITING_SOCKETS = 10_000  # sockets whose connect/accept wait for their connection's name


@dataclass(slots=True)
class ObjectRef:
    object_id: str
    object_type: str
    qualifier: str


@dataclass(slots=True)
class LogEvent:
    activity: str
    time: str  # ISO 8601
    pid: int | None
    resource: str | None  # the program that did it
    objects: list[ObjectRef] = field(default_factory=list)
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    connection: str | None = None
    session: str | None = None


class EventSink(Protocol):
    def event(self, event: LogEvent) -> None: ...

    def declare(
        self,
        object_id: str,
        object_type: str,
        time: str,
        attributes: dict[str, AttrValue],
        relations: list[tuple[str, str]] | None = None,
    ) -> None: ...

    def update(self, object_id: str, object_type: str, time: str, name: str, value: AttrValue) -> None: ...

    def commit(self) -> str: ...

    def discard(self) -> None: ...


class EventSource:
    """Observer of calls and exits, channel tap, and wrapper of the decoders' records (see bridges)."""

    def __init__(self, sink: EventSink, context: object, model: Model, channels: ChannelManager) -> None:
        self.sink = sink
        self.model = model
        self.channels = channels
        self.date = getattr(context, "date", None)
        self._last_time: float | None = None
        self._waiting: dict[int, list[LogEvent]] = {}  # socket node id -> its events before its bytes
        emit = channels.emit
        channels.emit = lambda obj: (emit(obj), self.record(obj))  # type: ignore[func-returns-value]

    # -- bridge ------------------------------------------------------------------------------------
    def commit(self) -> str:
        for node_id in list(self._waiting):
            self._release(node_id, None)
        return self.sink.commit()

    def discard(self) -> None:
        self.sink.discard()

    # -- the tap: a connection that ends lets its waiting events go --------------------------------
    def chunk(self, channel: Channel, chunk: Chunk) -> None:
        return

    def closed(self, channel: Channel, time: float | None) -> None:
        return

    # -- calls and exits ---------------------------------------------------------------------------
    def call(self, call: Call, process: Process, info: object, annotations: list[str]) -> None:
        activity = ACTIVITIES.get(call.name)
        if activity is None or call.partial:
            return
        if activity == "fork":
            self._fork(call, process)
            return
        if activity == "exec":
            if call.ok:
                self._exec(call, process)
            return
        event = self._event(activity, call.time, process)
        if call.errno:
            event.attributes["error"] = call.errno
        if activity in ("read", "write") and call.ok:
            event.attributes["bytes"] = call.retval
        node = None
        if activity == "accept":
            if call.ok and call.retval is not None:
                entry = process.fds.get(call.retval)
                node = entry.node if entry is not None else None
        elif activity not in ("delete", "rename", "mkdir", "open") or (activity == "open" and call.ok):
            node = self._fd_node(call, process, activity)
        target = getattr(info, "target", None)
        if isinstance(node, SocketNode):
            self._socket_event(event, node, activity)
            return
        if isinstance(node, PipeNode):
            channel = self.channels.channel_of(node)
            pipe_id = f"pipe:{node.pipe_id}"
            self.sink.declare(pipe_id, "pipe", event.time, {"id": node.pipe_id})
            event.objects.append(ObjectRef(pipe_id, "pipe", activity))
            if channel is not None:
                event.connection = channel.info.channel_id
        elif isinstance(node, FileNode) or (target and target.startswith("/")):
            path = node.path if isinstance(node, FileNode) else target
            file_node = self.model.files.get(path)  # type: ignore[arg-type]
            self._file(event, path, file_node.category if file_node else None, activity)  # type: ignore[arg-type]
        elif activity == "close":
            return  # a socket or pipe: its connection's events say enough
        self.sink.event(event)

    def event(self, event: object) -> None:
        """An exit (other events, signals and attaches, are no steps of their own)."""
        if type(event) is tuple:
            for part in event:
                self.event(part)
            return
        if type(event) is not Exit:
            return
        process = self.model.processes.get(event.pid)
        if process is None or process.is_thread:
            return
        log_event = self._event("exit", event.time, process)
        if event.code is not None:
            log_event.attributes["status"] = event.code
            self.sink.update(f"process:{process.pid}", "process", log_event.time, "exit_status", event.code)
        if event.signal:
            log_event.attributes["signal"] = event.signal
            self.sink.update(f"process:{process.pid}", "process", log_event.time, "signal", event.signal)
        self.sink.event(log_event)

    # -- records -----------------------------------------------------------------------------------
    def record(self, obj: CimObject) -> None:
        activity = RECORD_ACTIVITIES.get(obj.cim_class)
        if activity is None:
            if not obj.cim_class.startswith("Dockit_") or obj.cim_class in ("Dockit_Capture",):
                return
            activity = obj.cim_class[len("Dockit_") :].lower()
        attrs = dict(obj.attrs)
        pid = attrs.get("Process")
        process = self.model.processes.get(pid) if isinstance(pid, int) and pid else None
        start = attrs.get("Start")
        event = self._event(activity, start if isinstance(start, (int, float)) else None, process, pid=pid)
        channel = self.channels.feeding
        if channel is not None:
            event.connection = channel.info.channel_id
            self._declare_connection(channel, event.time)
            event.objects.append(ObjectRef(f"socket:{channel.info.channel_id}", "socket", activity))
        children = obj.children
        if activity == "query":
            session = attrs.get("Session")
            text = next((child.text for child in children if child.tag == "Text"), None)
            event.attributes.update(
                {
                    k: attrs.get(v)
                    for k, v in (
                        ("protocol", "Protocol"),
                        ("status", "Status"),
                        ("duration", "Duration"),
                        ("rows", "Rows"),
                        ("affected_rows", "AffectedRows"),
                        ("error", "ErrorCode"),
                    )
                    if attrs.get(v) is not None
                }  # fmt: skip
            )
            if text is not None:
                event.attributes["text"] = text
            if session is not None:
                event.session = str(session)
                self._session_ref(event, str(session), {"protocol": attrs.get("Protocol")})
            for child in children:
                if child.tag == "Table":
                    table = dict(child.attrs)
                    name = str(table.get("Resolved") or table.get("Name"))  # one object per table, as Dockit_SqlTable
                    self.sink.declare(f"table:{name}", "table", event.time, {"name": name})
                    event.objects.append(
                        ObjectRef(f"table:{name}", "table", str(table.get("Access") or "read"))
                    )
        elif activity == "request":
            method, url = attrs.get("Method"), attrs.get("Url")
            path = str(url or "").split("?", 1)[0] or "/"
            route = f"{method or '?'} {path}"
            self.sink.declare(f"route:{route}", "route", event.time, {"method": method, "path": path})
            event.objects.append(ObjectRef(f"route:{route}", "route", "request"))
            event.session = event.connection  # an HTTP connection is the session its requests share
            for name, key in (("method", "Method"), ("url", "Url"), ("status", "Status"), ("side", "Side"),
                              ("duration", "Duration"), ("server", "Server")):  # fmt: skip
                if attrs.get(key) is not None:
                    event.attributes[name] = attrs.get(key)
        elif activity == "login":
            session = str(attrs.get("Id"))
            event.session = session
            details = {
                name: attrs.get(key)
                for name, key in (
                    ("protocol", "Protocol"),
                    ("user", "User"),
                    ("database", "Database"),
                    ("server", "Server"),
                    ("server_version", "ServerVersion"),
                )  # fmt: skip
            }
            self._session_ref(event, session, details)
            event.attributes.update({k: v for k, v in details.items() if v is not None})
        elif activity == "tls":
            for name, key in (("server_name", "ServerName"), ("version", "Version"), ("server", "Server")):
                if attrs.get(key) is not None:
                    event.attributes[name] = attrs.get(key)
        self.sink.event(event)

    # -- helpers -----------------------------------------------------------------------------------
    def _event(
        self, activity: str, time: float | None, process: Process | None, pid: object = None
    ) -> LogEvent:
        when = self._time(time)
        if process is not None:
            owner = process.owner
            leader = self.model.processes.get(owner, process)
            self._declare_process(leader, when)
            event = LogEvent(activity, when, owner, _program(leader))
            event.objects.append(ObjectRef(f"process:{owner}", "process", "by"))
            return event
        return LogEvent(activity, when, pid if isinstance(pid, int) and pid else None, None)

    def _time(self, value: float | None) -> str:
        """ISO 8601 in UTC. A log's time of day counts from midnight of its date (or of 1970-01-01);
        a log without times gives each event the time of the one before it."""
        if value is None:
            value = self._last_time if self._last_time is not None else 0.0
        self._last_time = value
        if value > 86400 * 2:
            return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="microseconds")
        base = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        if self.date:
            try:
                base = dt.datetime.fromisoformat(self.date).replace(tzinfo=dt.UTC)
            except ValueError:
                pass
        return (base + dt.timedelta(seconds=value)).isoformat(timespec="microseconds")

    def _declare_process(self, process: Process, when: str) -> None:
        relations = [(f"process:{process.ppid}", "parent")] if process.ppid else None
        self.sink.declare(
            f"process:{process.pid}",
            "process",
            when,
            {"pid": process.pid, "executable": process.executable, "command": _command(process)},
            relations,
        )

    def _fork(self, call: Call, process: Process) -> None:
        if not call.ok or not call.retval:
            return
        child = self.model.processes.get(call.retval)
        if child is None or child.is_thread:
            return
        event = self._event("fork", call.time, process)
        self._declare_process(child, event.time)
        event.objects.append(ObjectRef(f"process:{child.pid}", "process", "child"))
        event.attributes["child"] = child.pid
        self.sink.event(event)

    def _exec(self, call: Call, process: Process) -> None:
        leader = self.model.processes.get(process.owner, process)
        event = self._event("exec", call.time, process)
        process_id = f"process:{leader.pid}"
        self.sink.update(process_id, "process", event.time, "executable", leader.executable)
        self.sink.update(process_id, "process", event.time, "command", _command(leader))
        if leader.executable:
            self._file(event, leader.executable, None, "executable")
        event.attributes["command"] = _command(leader)
        self.sink.event(event)

    def _file(self, event: LogEvent, path: str, category: str | None, qualifier: str) -> None:
        file_id = f"file:{path}"
        self.sink.declare(file_id, "file", event.time, {"path": path, "category": category})
        event.objects.append(ObjectRef(file_id, "file", qualifier))

    def _fd_node(
        self, call: Call, process: Process, activity: str
    ) -> FileNode | SocketNode | PipeNode | None:
        if activity == "open":
            entry = process.fds.get(call.retval) if call.retval is not None else None
            return entry.node if entry is not None else None
        fd, _ = parse_fd(first_arg(call.args))
        if fd is None:
            return None
        entry = process.fds.get(fd)
        return entry.node if entry is not None else None

    def _socket_event(self, event: LogEvent, node: SocketNode, activity: str) -> None:
        channel = self.channels.channel_of(node)
        if channel is None:
            if activity in ("read", "write", "close"):
                if activity == "close":
                    self._release(node.node_id, None)
                return  # bytes no channel took (a failed call); a close: its waiting events went
            waiting = self._waiting.setdefault(node.node_id, [])
            event.attributes.update({k: v for k, v in (("local", node.local), ("remote", node.remote)) if v})
            waiting.append(event)
            if len(self._waiting) > MAX_WAITING_SOCKETS:
                self._release(next(iter(self._waiting)), None)
            return
        self._release(node.node_id, channel)
        if activity == "close":
            return
        self._connection_event(event, channel, activity)

    def _release(self, node_id: int, channel: Channel | None) -> None:
        """A socket's events that waited for its connection: with it, or under the socket's own name."""
        waiting = self._waiting.pop(node_id, None)
        if not waiting:
            return
        for event in waiting:
            if channel is not None:
                self._connection_event(event, channel, event.activity)
            else:
                socket_id = f"socket:{node_id}"
                self.sink.declare(socket_id, "socket", event.time, {})
                event.objects.append(ObjectRef(socket_id, "socket", event.activity))
                self.sink.event(event)

    def _connection_event(self, event: LogEvent, channel: Channel, qualifier: str) -> None:
        event.connection = channel.info.channel_id
        self._declare_connection(channel, event.time)
        event.objects.append(ObjectRef(f"socket:{channel.info.channel_id}", "socket", qualifier))
        self.sink.event(event)

    def _declare_connection(self, channel: Channel, when: str) -> None:
        info = channel.info
        self.sink.declare(
            f"socket:{info.channel_id}",
            "socket",
            when,
            {
                "family": info.kind,
                "local": info.local,
                "remote": info.remote,
                "protocol": channel.decoder.name if channel.decoder is not None else None,
            },  # fmt: skip
        )

    def _session_ref(self, event: LogEvent, session: str, details: dict[str, AttrValue]) -> None:
        relations = [(f"socket:{event.connection}", "over")] if event.connection else None
        self.sink.declare(f"session:{session}", "session", event.time,
                          {k: v for k, v in details.items() if v is not None}, relations)  # fmt: skip
        event.objects.append(ObjectRef(f"session:{session}", "session", event.activity))


def _program(process: Process) -> str | None:
    if process.executable:
        return os.path.basename(process.executable)
    return os.path.basename(process.argv[0]) if process.argv else None


def _command(process: Process) -> str | None:
    return shlex.join(redact_argv(process.argv)) if process.argv else None


Describe = Callable[[int], str]
