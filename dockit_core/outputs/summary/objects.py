"""The summary as a list of CIM objects: the model's processes, files, sockets and pipes, then what the
decoders found. The XML and TXT writers only render these, so both always say the same thing."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import heapq
import math
import os
import pickle
import platform
import shlex
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from decoders.destinations import MessageDestinations
from decoders.records import AttrValue, CimChild, CimObject
from decoders.redis.keys import RedisKeys
from dockit_core.model import FileAccess, FileNode, Model, PipeNode, Process, SocketNode
from dockit_core.model.resolved import ResolvedNames
from dockit_core.model.spill import SortedRuns, SpillError
from dockit_core.outputs.digest.digest import KINDS, Digest, digest_objects
from dockit_core.outputs.redaction import redact_argv
from dockit_core.outputs.summary.filter import SummaryFilter


@dataclass
class RunContext:
    """Facts about the traced machine and run, from the live system or the replayed log's .ini."""

    hostname: str = ""
    os_type: str = "linux"
    os_release: str = ""  # "debian:12"
    kernel: str = ""
    date: str | None = None  # "2018-05-08" when the log's times are times of day
    tracer: str = "strace"
    command: list[str] = field(default_factory=list)
    cwd: str | None = None
    machine: str = ""  # machine_digest() of the traced machine: tells a log recorded here from elsewhere

    @staticmethod
    def local(tracer: str, command: list[str]) -> RunContext:
        return RunContext(
            machine=machine_digest(),
            hostname=platform.node(),
            os_type=platform.system().lower(),
            os_release=read_os_release(),
            kernel=platform.release(),
            date=dt.date.today().isoformat(),
            tracer=tracer,
            command=command,
            cwd=os.getcwd(),
        )


def machine_digest(path: str = "/etc/machine-id") -> str:
    """A digest of this machine's id (the id itself is to be kept confidential, see machine-id(5)):
    the same machine gives the same digest, which tells nothing of the id."""
    try:
        with open(path, "rb") as stream:
            machine_id = stream.read(256).strip()
    except OSError:
        return ""
    if not machine_id:
        return ""
    return hashlib.sha256(b"dockit machine:" + machine_id).hexdigest()[:32]


def read_os_release(path: str = "/etc/os-release") -> str:
    """ "debian:12", "ubuntu:22.04", "fedora:39": the distribution as a base image names it."""
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                key, _, value = line.strip().partition("=")
                fields[key] = value.strip('"')
    except OSError:
        return ""
    name = fields.get("ID", "")
    version = fields.get("VERSION_ID", "")
    return f"{name}:{version}" if name and version else name


def format_time(value: float | None, date: str | None) -> str | None:
    """Epoch seconds as ISO 8601; seconds since midnight with the log's date (or alone) likewise."""
    if value is None:
        return None
    if value > 86400 * 2:
        return _epoch_iso(value)
    try:  # a damaged .ini's date (2026-13-45) or one no time can follow (9999-12-31): no date then
        midnight = dt.datetime.fromisoformat(date) if date else None
        if midnight is not None:
            return (midnight + dt.timedelta(seconds=value)).isoformat(timespec="microseconds")
    except (ValueError, OverflowError):
        pass
    hours, rest = divmod(value, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{seconds:09.6f}"


_SECONDS: dict[int, str] = {}  # whole second -> "2026-11-26T19:33:12": a trace has few distinct ones


def _epoch_iso(value: float) -> str:
    """`datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds")`, with the date and time
    of each second made once (a summary of 20,000 queries formats 20,000 start times). The microseconds
    are rounded half to even, as datetime does."""
    fraction, whole = math.modf(value)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        micro -= 1_000_000
        whole += 1
    second = int(whole)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        prefix = _SECONDS[second] = dt.datetime.fromtimestamp(second, dt.UTC).isoformat()[:19]
    return f"{prefix}.{micro:06d}+00:00"


@dataclass(slots=True)
class Rendered:
    """A summary object already written out in the summary's format (XML element or TXT block)."""

    cim_class: str
    text: str


class RecordSpool:
    """Decoded records kept on disk, not in memory, until the summary is written: a log with a million
    queries costs a file, not a million objects. Sessions and table counts stay in memory (few).

    Each record is rendered in the summary's format as it comes (`render`), and filtered by `-s` then
    (`keep`): the spool holds text. Texts wait in batches of SPILL_BATCH, each full batch pickled in
    one go (a list of strings pickles at memory speed; the objects themselves cost more to pickle and
    unpickle than their decoding)."""

    SPILL_BATCH = 1024

    def __init__(
        self,
        render: Callable[[CimObject], str],
        keep: Callable[[CimObject], bool] | None = None,
        digest: Digest | None = None,
    ) -> None:
        self._file = tempfile.TemporaryFile()
        self.digest = digest  # the query digest, fed every query, command and request (-s or not)
        self._render = render
        self._keep = keep
        self._batch: list[tuple[str, str]] = []
        self._spilled = 0  # batches in the file
        self.count = 0
        self.tables: dict[str, list[int]] = {}  # name -> [reads, writes]
        self.destinations = MessageDestinations()  # Dockit_MessageDestination, bounded
        self.redis_keys = RedisKeys()  # Dockit_RedisKey, bounded
        self.counts: dict[str, int] = {}
        self.resolved: ResolvedNames | None = None  # the model's: DNS answers, by address

    def add(self, obj: CimObject) -> None:
        # Rendered before it is counted: an object a third-party decoder built wrong raises here, and
        # is then neither counted nor written (the channel manager reports it).
        cim_class = obj.cim_class
        keep = self._keep is None or self._keep(obj)
        text = self._render(obj) if keep else ""
        self.count += 1
        counts = self.counts
        counts[cim_class] = counts.get(cim_class, 0) + 1
        if cim_class == "Dockit_SqlQuery":
            counted: set[str] = set()  # `customers` and `shop.customers` in one statement: one table
            for child in obj.children:
                if child.tag == "Table":
                    attrs = dict(child.attrs)
                    name = str(
                        attrs.get("Resolved") or attrs.get("Name")
                    )  # `customers` in shop: shop.customers
                    if name in counted:
                        continue
                    counted.add(name)
                    entry = self.tables.setdefault(name, [0, 0])
                    entry[1 if attrs.get("Access") == "write" else 0] += 1
        elif cim_class == "Dockit_RedisCommand":
            self.redis_keys.add(obj)
        elif cim_class == "Dockit_Message":
            self.destinations.add(obj)
        elif cim_class == "Dockit_DnsQuery" and self.resolved is not None:
            self.resolved.learn_query(obj)  # a socket that connects to an answer gets its RemoteName
        if self.digest is not None and cim_class in KINDS:
            self.digest.add(obj)
        if not keep:
            return
        batch = self._batch
        batch.append((cim_class, text))
        if len(batch) >= self.SPILL_BATCH:
            try:
                pickle.dump(batch, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            except OSError as error:
                raise SpillError(error.errno, f"a temporary file in {tempfile.gettempdir()}: {error.strerror}") from error
            self._spilled += 1
            self._batch = []

    def __iter__(self) -> Iterator[Rendered]:
        self._file.flush()
        self._file.seek(0)
        try:
            for _ in range(self._spilled):
                for cim_class, text in _load_without_gc(self._file):
                    yield Rendered(cim_class, text)
        finally:
            self._file.seek(0, os.SEEK_END)
        for cim_class, text in list(self._batch):
            yield Rendered(cim_class, text)

    def table_objects(self) -> list[CimObject]:
        return [
            CimObject.make("Dockit_SqlTable", {"Name": name, "Reads": reads, "Writes": writes})
            for name, (reads, writes) in sorted(self.tables.items())
        ] + self.redis_keys.objects() + self.destinations.objects()

    def digest_objects(self) -> list[CimObject]:
        """The `Dockit_QueryDigest` objects, after the records they sum up."""
        return digest_objects(self.digest) if self.digest is not None else []


class StreamedChildren:
    """The children of an object, made while a writer reads them, once: a file's Access children when
    there may be too many to hold (`-s` never reads Access children: they carry no text)."""

    __slots__ = ("_first", "_rest")

    def __init__(self, children: Iterator[CimChild]) -> None:
        self._first = next(children, None)  # so that an object without children is told as one
        self._rest = children

    def __iter__(self) -> Iterator[CimChild]:
        if self._first is not None:
            yield self._first
            yield from self._rest

    def __bool__(self) -> bool:
        return self._first is not None


class OrderedSpool:
    """Summary objects written as they come (the processes that ended), rendered and filtered by -s
    then, kept on disk and given back in the order of a key (when each began): see model/spill.py."""

    def __init__(self, render: Callable[[CimObject], str], keep: Callable[[CimObject], bool] | None = None) -> None:
        self._render = render
        self._keep = keep
        self._runs: SortedRuns[tuple[int, str, str]] = SortedRuns(key=_first)
        self.classes: set[str] = set()  # of every object added, kept by -s or not

    def add(self, order: int, obj: CimObject) -> None:
        self.classes.add(obj.cim_class)
        if self._keep is not None and not self._keep(obj):
            return
        self._runs.add((order, obj.cim_class, self._render(obj)))

    def __iter__(self) -> Iterator[tuple[int, Rendered]]:
        for order, cim_class, text in self._runs:
            yield order, Rendered(cim_class, text)


def _first(item: tuple) -> object:  # type: ignore[type-arg]
    return item[0]


def _load_without_gc(stream: IO[bytes]) -> list[tuple[str, str]]:
    """One batch unpickled with the cyclic GC paused: its tens of thousands of new tuples would
    otherwise set off collections that walk the whole heap, and records hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.load(stream)
    finally:
        if enabled:
            gc.enable()


def process_object(process: Process, date: str | None, calls: int | None = None) -> CimObject:
    """`calls`: the calls of the process and its threads (its own when not given)."""
    argv = redact_argv(process.argv)
    children = [
        ("ParentProcessId", process.ppid),
        ("ExecutablePath", process.executable),
        ("CommandLine", shlex.join(argv) or None),  # quoted as a shell would need it; Argument has each
        ("CurrentDirectory", process.cwd),
        ("CreationDate", format_time(process.start, date)),
        ("TerminationDate", format_time(process.end, date)),
        ("ExitStatus", process.exit_code),
        ("TerminatingSignal", process.signal),
    ]
    elements = [CimChild(tag, text=str(value)) for tag, value in children if value is not None]
    elements += [CimChild("Argument", (("Index", i),), text=arg) for i, arg in enumerate(argv)]
    elements += [CimChild("Thread", (("Handle", tid),)) for tid in process.threads]
    if process.uid is not None:  # the process watch knows who it ran as
        elements.append(CimChild("User", (("Id", process.uid),), process.user))
    if process.gid is not None:
        elements.append(CimChild("Group", (("Id", process.gid),), process.group))
    return CimObject.make(
        "CIM_Process",
        {
            "Handle": process.pid,
            "Instance": process.instance if process.instance > 1 else None,
            "Calls": process.calls if calls is None else calls,
            "CoreDumped": "true" if process.core_dumped else None,
            "AttachedMidRun": None if process.seen_from_start else "true",
            "ArgumentsCut": "true" if process.argv_cut else None,
            "Watch": process.watch_role,
        },
        elements,
    )


def _access_attributes(pid: int, a: FileAccess) -> tuple[tuple[str, AttrValue], ...]:
    """What one process did to a file, the attributes it has only: once per file of a summary."""
    attrs: list[tuple[str, AttrValue]] = [] if pid is None else [("Process", pid)]
    if a.opens:
        attrs.append(("Opens", a.opens))
    if a.reads:
        attrs.append(("Reads", a.reads))
    if a.read_bytes:
        attrs.append(("ReadBytes", a.read_bytes))
    if a.writes:
        attrs.append(("Writes", a.writes))
    if a.written_bytes:
        attrs.append(("WrittenBytes", a.written_bytes))
    if a.metadata:
        attrs.append(("Metadata", a.metadata))
    if a.created:
        attrs.append(("Created", "true"))
    if a.deleted:
        attrs.append(("Deleted", "true"))
    if a.executed:
        attrs.append(("Executed", "true"))
    if a.renamed_to is not None:
        attrs.append(("RenamedTo", a.renamed_to))
    if a.renamed_from is not None:
        attrs.append(("RenamedFrom", a.renamed_from))
    return tuple(attrs)


def socket_object(socket: SocketNode) -> CimObject:
    return CimObject.make(
        "Dockit_Socket",
        {
            "Family": socket.kind,
            "Local": socket.local,
            "Remote": socket.remote,
            "RemoteName": socket.remote_name,
            "Process": " ".join(str(pid) for pid in sorted(socket.pids)) or None,
            "Listening": "true" if socket.listening else None,
            "Accepted": "true" if socket.accepted else None,
            "BytesIn": socket.bytes_in,
            "BytesOut": socket.bytes_out,
            "Inode": socket.inode,
        },
    )


def model_objects(
    model: Model,
    context: RunContext,
    retired_sockets: Iterable[CimObject | Rendered] = (),
    retired_processes: Iterable[tuple[int, Rendered]] = (),
) -> Iterator[CimObject | Rendered]:
    """Everything the model holds, in a stable order: machine, processes (in the order they began),
    files (by path), sockets, pipes. `retired_processes`: (creation order, object) of the processes
    that ended, written as they ended (see Model.retire_process), merged in their place;
    `retired_sockets`: the finished connections, written as they ended (see Tracker.socket_retired),
    before the sockets still in the model."""
    yield from machine_objects(context)
    live = (
        (process.seq, process_object(process, context.date, model.calls_with_threads(process)))
        for process in list(model.processes.values())
        if not process.is_thread
    )
    for _, obj in heapq.merge(retired_processes, live, key=_first):
        yield obj
    for path, category, accesses in model.file_entries():
        children = _access_elements(accesses)
        # A file of a trace too large for memory may have an Access per process of 100,000: they are
        # made as the writer reads them, never all at once.
        elements = StreamedChildren(children) if model.spilled else tuple(children)
        yield CimObject("CIM_DataFile", (("Name", path), ("Category", category)), elements)  # type: ignore[arg-type]
    yield from retired_sockets
    for socket in model.sockets.values():
        yield socket_object(socket)
    for pipe in model.pipes.values():
        yield pipe_object(pipe)


def machine_objects(context: RunContext) -> list[CimObject]:
    """The traced machine and its operating system."""
    return [
        CimObject.make("CIM_ComputerSystem", {"Name": context.hostname or None}),
        CimObject.make(
            "CIM_OperatingSystem",
            {"Name": context.os_type or None, "Release": context.os_release or None, "Version": context.kernel or None},
        ),
    ]


# Most files have one Access like many others (a directory walk: the same process, one stat): the
# children are immutable, so one is made per distinct attributes (ints and strs: equal means alike).
_access_children: dict[tuple[tuple[str, AttrValue], ...], CimChild] = {}


def file_object(path: str, node: FileNode) -> CimObject:
    elements = tuple(_access_elements(node.accesses.items()))
    return CimObject("CIM_DataFile", (("Name", path), ("Category", node.category)), elements)


def _access_elements(accesses: Iterable[tuple[int, FileAccess]]) -> Iterator[CimChild]:
    for pid, access in accesses:
        attrs = _access_attributes(pid, access)
        child = _access_children.get(attrs)
        if child is None:
            if len(_access_children) >= 4096:
                _access_children.clear()
            child = _access_children[attrs] = CimChild("Access", attrs)
        yield child


def pipe_object(pipe: PipeNode) -> CimObject:
    return CimObject.make(
        "Dockit_Pipe",
        {
            "Id": pipe.pipe_id,
            "Writers": " ".join(map(str, sorted(pipe.writers))) or None,
            "Readers": " ".join(map(str, sorted(pipe.readers))) or None,
            "Processes": " ".join(map(str, sorted(pipe.holders | pipe.writers | pipe.readers))) or None,
            "Bytes": pipe.bytes,
            "CreatedBy": pipe.created_by,
        },
    )


def summary_objects(
    model: Model,
    context: RunContext,
    spool: RecordSpool,
    statistics: CimObject | None,
    filters: Iterable[SummaryFilter] = (),
    retired_sockets: Iterable[Rendered] = (),
    classes: set[str] | None = None,
    retired_processes: Iterable[tuple[int, Rendered]] = (),
) -> Iterator[CimObject | Rendered]:
    """All objects of the summary, filtered by `-s` when given (the spool's records were filtered as
    they came: see `keep_filter`). `classes` is given the class of every object, kept or not."""
    chosen = list(filters)
    seen = classes if classes is not None else set()
    seen.update(spool.counts)

    def kept(objects: Iterable[CimObject | Rendered]) -> Iterator[CimObject | Rendered]:
        for obj in objects:
            seen.add(obj.cim_class)
            if type(obj) is Rendered:  # spooled: filtered when it was written
                yield obj
            elif not chosen or _any_match(chosen, obj) or obj.cim_class == "Dockit_Statistics":  # type: ignore[arg-type]
                yield obj

    yield from kept(model_objects(model, context, retired_sockets, retired_processes))
    yield from spool
    yield from kept(spool.table_objects())
    yield from kept(spool.digest_objects())
    yield from kept([statistics] if statistics else [])


def keep_filter(filters: Iterable[SummaryFilter]) -> Callable[[CimObject], bool] | None:
    """The `-s` test for a decoder's record, or None when every record is kept."""
    chosen = list(filters)
    if not chosen:
        return None
    return lambda obj: _any_match(chosen, obj)


def _any_match(filters: list[SummaryFilter], obj: CimObject) -> bool:
    """Whether a filter keeps `obj`; each is asked (each counts what it kept)."""
    kept = False
    for one in filters:
        if one.matches(obj):
            kept = True
    return kept
