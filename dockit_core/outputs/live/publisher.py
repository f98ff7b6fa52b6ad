"""Feeds `--serve`'s store from a running session: the decoders' records as they come, and the model's
processes, files, sockets and pipes by a periodic scan that writes only what changed.

Called from the pipeline's thread (`tick` every so many lines), it never waits for the server. The scan
builds each object as the summary would (the same functions), compares its hash with the last one
written, and writes the changed ones; it runs at most every `interval` seconds, and the interval grows
to ten times what a scan costs, so that a model of 100,000 files never costs more than a tenth of the
replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from decoders.records import AttrValue, CimObject, Time
from dockit_core.model import Model, Process, SocketNode
from dockit_core.outputs.live.store import Change, LiveStore
from dockit_core.outputs.summary.objects import (
    RunContext,
    file_object,
    machine_objects,
    pipe_object,
    process_object,
    socket_object,
)
from dockit_core.outputs.summary.writers import LEGACY_TIME_ATTRIBUTES, attribute_text
from dockit_core.outputs.xmltext import xml_safe

MIN_INTERVAL = 0.5
BATCH = 2000  # changes written to the store in one transaction


def _value(name: str, value: AttrValue, date: str | None) -> AttrValue:
    """As the XML writes it (`attribute_text`), but numbers stay numbers."""
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, Time) or (type(value) is float and name in LEGACY_TIME_ATTRIBUTES):
        return attribute_text(name, value, date)
    if isinstance(value, float):
        return round(value, 6)
    return attribute_text(name, value, date)


def document(obj: CimObject, date: str | None) -> dict:
    """One summary object as JSON: class, attributes (values as the XML shows them, numbers as numbers),
    children."""
    out: dict = {
        "class": obj.cim_class,
        "attrs": {name: _value(name, value, date) for name, value in obj.attrs if value is not None},
    }
    if obj.children:
        children = []
        for child in obj.children:
            item: dict = {"tag": child.tag}
            attrs = {name: _value(name, value, date) for name, value in child.attrs if value is not None}
            if attrs:
                item["attrs"] = attrs
            if child.text is not None:
                item["text"] = xml_safe(child.text)
            children.append(item)
        out["children"] = children
    return out


def channel_of(socket: SocketNode) -> str | None:
    """The channel id the decoders' sessions use for this socket (decoders' `Session`, a session's `Id`)."""
    if socket.local and socket.remote and socket.kind in ("tcp", "tcp6", "udp", "udp6"):
        ends = sorted((socket.local, socket.remote))
        return f"{socket.kind}:{ends[0]}-{ends[1]}"
    if socket.inode and socket.peer_inode:
        ends = sorted((socket.inode, socket.peer_inode))
        return f"unix:{ends[0]}-{ends[1]}"
    return None


def _pids(obj: CimObject) -> tuple[int, ...]:
    """The processes an object names: `Process="1 2"`, its Access children's, a process's own."""
    found: list[int] = []
    for name, value in obj.attrs:
        if name in ("Process", "Handle", "Writers", "Readers", "Processes", "CreatedBy") and value is not None:
            found += [int(part) for part in str(value).split() if part.isdigit()]
    for child in obj.children:
        if child.tag == "Access":
            found += [int(getattr(v, "pid", v)) for n, v in child.attrs if n == "Process" and isinstance(v, int)]
    return tuple(sorted(set(found)))


class LivePublisher:
    def __init__(self, store: LiveStore, model: Model, context: RunContext) -> None:
        self.store = store
        self.model = model
        self.context = context
        self._hashes: dict[str, int] = {}  # model objects written, by key: what they looked like
        self._pending: list[Change] = []
        self._counters: dict[str, int] = {}
        self._named: set[str] = set()  # records with an Id of their own (sessions: one per connection)
        self.interval = MIN_INTERVAL
        self._last_scan = 0.0
        self.scans = 0
        self.digest: Callable[[], object] | None = None  # the query digest as JSON, when the run has one

    # -- records ------------------------------------------------------------------------------------
    def record(self, obj: CimObject) -> None:
        """A decoder's record (a query, a request, a session...): written at the next tick."""
        attrs = dict(obj.attrs)
        identity = attrs.get("Id") if obj.cim_class in ("Dockit_DatabaseSession", "Dockit_UndecodedChannel") else None
        known = False
        if identity is None:
            number = self._counters.get(obj.cim_class, 0) + 1
            self._counters[obj.cim_class] = number
            identity = number
        else:  # a session named again (its login finished later): an update
            key = f"{obj.cim_class}/{identity}"
            known = key in self._named
            self._named.add(key)
        self._pending.append(self._change(obj, str(identity), known=known))

    def retired_socket(self, node: SocketNode, obj: CimObject) -> None:
        """A finished connection: its last state is written, and no scan will look at it again."""
        key = f"Dockit_Socket/{node.node_id}"
        known = self._hashes.pop(key, None) is not None
        self._pending.append(self._change(obj, str(node.node_id), channel=channel_of(node), known=known))

    def retired_process(self, process: Process, obj: CimObject) -> None:
        """A process that ended (it leaves the model): its last state is written, and it stays shown."""
        key = f"CIM_Process/{process.key}"
        known = self._hashes.pop(key, None) is not None
        self._pending.append(self._change(obj, str(process.key), parent=process.ppid, known=known))

    def _change(
        self, obj: CimObject, identity: str, channel: str | None = None, parent: int | None = None, known: bool = False
    ) -> Change:
        attrs = dict(obj.attrs)
        session = attrs.get("Session")
        return Change(
            cim_class=obj.cim_class,
            object_id=identity,
            document=document(obj, self.context.date),
            pids=_pids(obj),
            session=str(session) if session is not None else None,
            channel=channel,
            parent=parent,
            known=known,
        )

    # -- the model ----------------------------------------------------------------------------------
    def tick(self, force: bool = False) -> None:
        """Called every few thousand lines: write the pending records; scan the model when due. The
        scan's changes go to the store a batch at a time, so memory does not follow the model's size."""
        if self._pending:
            pending, self._pending = self._pending, []
            self.store.apply(pending)
        now = time.monotonic()
        if not (force or now - self._last_scan >= self.interval):
            return
        started = time.monotonic()
        seen: set[str] = set()
        batch: list[Change] = []
        for change in self._scan(seen):
            batch.append(change)
            if len(batch) >= BATCH:
                self.store.apply(batch)
                batch = []
        self.store.apply(batch, self._gone(seen))
        if self.digest is not None:  # `/api/digest`: the query digest as it stands, at each scan
            self.store.set_digest(self.digest())
        cost = time.monotonic() - started
        self.interval = max(MIN_INTERVAL, 10 * cost)
        self._last_scan = time.monotonic()
        self.scans += 1

    def _model_objects(self) -> Iterator[tuple[str, CimObject, str | None, int | None]]:
        model, date = self.model, self.context.date
        for machine in machine_objects(self.context):
            yield str(machine.attr("Name") or ""), machine, None, None
        for process in list(model.processes.values()):
            if not process.is_thread:
                calls = model.calls_with_threads(process)
                yield str(process.key), process_object(process, date, calls), None, process.ppid
        for path, node in model.files.items():
            yield path, file_object(path, node), None, None
        for socket in model.sockets.values():
            yield str(socket.node_id), socket_object(socket), channel_of(socket), None
        for pipe in model.pipes.values():
            yield pipe.pipe_id, pipe_object(pipe), None, None

    def _scan(self, seen: set[str]) -> Iterator[Change]:
        """The model's objects that changed since they were last written; `seen` collects every key."""
        hashes = self._hashes
        for identity, obj, channel, parent in self._model_objects():
            key = f"{obj.cim_class}/{identity}"
            seen.add(key)
            signature = hash(obj)
            before = hashes.get(key)
            if before != signature:
                hashes[key] = signature
                yield self._change(obj, identity, channel=channel, parent=parent, known=before is not None)

    def _gone(self, seen: set[str]) -> list[str]:
        """Objects written before that the model no longer holds: deleted (but a file the model wrote
        to disk, past 65,536, is still a file of the run: it stays shown)."""
        gone = [key for key in self._hashes if key not in seen and not key.startswith("CIM_DataFile/")]
        for key in gone:
            del self._hashes[key]
        return gone

    def finish(self, tables: list[CimObject], statistics: CimObject | None, digests: Sequence[CimObject] = ()) -> None:
        """The run is over: the last state of everything, the tables, the query digest (each entry
        named by its rank: a fingerprint's ID is the same in two protocols) and the statistics."""
        for obj in tables:
            self._pending.append(self._change(obj, str(dict(obj.attrs).get("Name"))))
        for obj in digests:
            self._pending.append(self._change(obj, str(dict(obj.attrs).get("Rank"))))
        if statistics is not None:
            self._pending.append(self._change(statistics, "run"))
        self.tick(force=True)
        self.store.finish()
