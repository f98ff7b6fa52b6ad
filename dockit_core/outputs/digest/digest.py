"""The query digest: every SQL statement, Redis command and HTTP request a run decoded, grouped by
fingerprint, with counts, times, rows, errors, tables, who ran it, and the patterns worth a flag.

It streams: each record is added as the decoder emits it and forgotten. Memory is bounded whatever
the run's length: per fingerprint a quantile sketch (sketch.py) and capped sets; at most
MAX_FINGERPRINTS fingerprints, the executions of any other counted together as `other` (`Overflow`);
the sessions whose last statement is remembered (for the loop flag) at most MAX_SESSIONS."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from math import isfinite

from decoders.records import AttrValue, CimChild, CimObject, Duration, Time
from dockit_core.outputs.digest.fingerprint import (
    SqlFingerprints,
    http_fingerprint,
    query_id,
    redis_fingerprint,
)
from dockit_core.outputs.digest.sketch import QuantileSketch

MAX_FINGERPRINTS = 1000  # as pg_stat_statements.max bounds its table (5000 there: ours weigh more)
MAX_SESSIONS = 4096  # sessions whose last fingerprint is remembered for the loop flag
MAX_NAMES = 32  # sessions, processes, tables, error codes kept per fingerprint (then counted as "more")
MAX_EXAMPLE = 1000  # characters of the example kept

# The N+1 flag: the same fingerprint at least LOOP_RUN times in a row in one session (no other
# statement of that session between them), each one starting at most LOOP_GAP seconds after the one
# before ended. An application that loops over a result and queries once per row does exactly this; a
# batch job spreading one statement over minutes does not.
LOOP_RUN = 10
LOOP_GAP = 1.0
MAX_DURATION = 1e7  # seconds (115 days): a longer duration is a damaged log's, not counted as time

KINDS = {"Dockit_SqlQuery": "sql", "Dockit_RedisCommand": "redis", "Dockit_HttpRequest": "http"}
# Whose time a share is of: the database's (SQL and Redis), or the HTTP requests'.
TIME_GROUP = {"sql": "database", "redis": "database", "http": "http"}


@dataclass(slots=True)
class DigestEntry:
    """One fingerprint's executions, aggregated."""

    kind: str
    protocol: str
    fingerprint: str
    overflow: bool = False
    count: int = 0
    timed: int = 0  # executions whose duration is known
    total: float = 0.0
    max: float = 0.0
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    rows: int = 0
    affected: int = 0
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    tables: dict[str, list[int]] = field(default_factory=dict)  # name -> [reads, writes]
    sessions: dict[str, None] = field(default_factory=dict)  # in the order first seen
    processes: dict[str, None] = field(default_factory=dict)
    more_sessions: bool = False
    more_processes: bool = False
    first: float | None = None
    last: float | None = None
    example: str | None = None
    truncated: int = 0
    longest_run: int = 1
    write_without_where: bool = False
    runs: set[int] = field(default_factory=set)

    @property
    def flags(self) -> list[str]:
        found = []
        if self.longest_run >= LOOP_RUN:
            found.append("loop")
        if self.count and self.errors == self.count:
            found.append("always-fails")
        if self.write_without_where:
            found.append("write-without-where")
        return found


def _remember(names: dict[str, None], name: str) -> bool:
    """Add a name to a capped set; True when it was full and the name new."""
    if name in names:
        return False
    if len(names) >= MAX_NAMES:
        return True
    names[name] = None
    return False


def _count_capped(counts: dict[str, int], key: str, amount: int = 1) -> None:
    if key in counts or len(counts) < MAX_NAMES:
        counts[key] = counts.get(key, 0) + amount
    else:
        counts["other"] = counts.get("other", 0) + amount


def _number(value: AttrValue) -> float | None:
    """A finite number from an attribute (a summary read back has text; a log is untrusted: `nan`)."""
    if isinstance(value, float):  # Time and Duration too: the usual case, first
        return value if isfinite(value) else None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if isfinite(number) else None


class Digest:
    """Records in (`add`), entries out (`entries`, ranked by total time). Not locked: `--serve` reads it
    from the publisher's scan, which the session runs between two lines, never while one is applied
    (cli/session.py holds its lock around both in a live run)."""

    BATCH = 256  # records counted together (see `add`)

    def __init__(self, max_fingerprints: int = MAX_FINGERPRINTS) -> None:
        self.max_fingerprints = max_fingerprints
        self.entries: dict[tuple[str, str, str], DigestEntry] = {}
        self.overflow: dict[str, DigestEntry] = {}  # kind -> the executions past the cap
        self._last: dict[tuple[int, str], list] = {}  # (run, session) -> [entry, run length, end]  # type: ignore[type-arg]
        self._fingerprints = SqlFingerprints()  # a loop's statement tokenized once
        self._pending: list[tuple[CimObject, int]] = []  # records not counted yet (at most BATCH)
        self.executions = 0

    # -- in ----------------------------------------------------------------------------------------

    def add(self, obj: CimObject, run: int = 0) -> None:
        """One decoded record (a `Dockit_SqlQuery`, `Dockit_RedisCommand` or `Dockit_HttpRequest`;
        anything else is ignored). Records wait in a batch of BATCH and are counted together: one at a
        time between the pipeline's other work, the counting ran three times slower (its code and
        data out of the processor's caches each time)."""
        if obj.cim_class in KINDS:
            pending = self._pending
            pending.append((obj, run))
            if len(pending) >= self.BATCH:
                self.flush()

    def flush(self) -> None:
        """Count the records waiting; every reader of the digest calls it first."""
        pending, self._pending = self._pending, []
        add_sql = self._add_sql
        for obj, run in pending:
            kind = KINDS[obj.cim_class]
            attrs = dict(obj.attrs)
            if kind == "sql":
                add_sql(obj, attrs, run)
            elif kind == "redis":
                self._add_redis(obj, attrs, run)
            else:
                self._add_http(attrs, run)

    def _add_sql(self, obj: CimObject, attrs: dict[str, AttrValue], run: int) -> None:
        # The hot path (one call per query of the run): `_count`'s work written out, to keep the
        # digest's cost a few microseconds a query (bench/run.py --only digest).
        protocol = attrs.get("Protocol") or "sql"
        text = ""
        tables = None
        for child in obj.children:
            tag = child.tag
            if tag == "Text":
                text = child.text or ""
            elif tag == "Table":
                if tables is None:
                    tables = []
                tables.append(child.attrs)
        shape = self._fingerprints.shape(text, protocol)  # type: ignore[arg-type]
        entry = self.entries.get(("sql", protocol, shape.fingerprint))  # type: ignore[arg-type]
        if entry is None:
            entry = self._entry("sql", str(protocol), shape.fingerprint)
        self.executions += 1
        entry.count += 1
        if run not in entry.runs:
            entry.runs.add(run)
        duration = _number(attrs.get("Duration"))
        if duration is not None and 0 <= duration <= MAX_DURATION:
            entry.timed += 1
            entry.total += duration
            if duration > entry.max:
                entry.max = duration
            entry.sketch.add(duration)
        if attrs.get("Status") == "error":
            code = attrs.get("ErrorCode")
            entry.errors += 1
            _count_capped(entry.error_codes, "error" if code is None else str(code))
        start = _number(attrs.get("Start"))
        if start is not None:
            first = entry.first
            if first is None or start < first:
                entry.first = start
                entry.example = text[:MAX_EXAMPLE]
            if entry.last is None or start > entry.last:
                entry.last = start
        elif entry.example is None:
            entry.example = text[:MAX_EXAMPLE]
        rows = attrs.get("Rows")
        if rows is not None:
            entry.rows += int(_number(rows) or 0)
        affected = attrs.get("AffectedRows")
        if affected is not None:
            entry.affected += int(_number(affected) or 0)
        if shape.write_without_where:
            entry.write_without_where = True
        if attrs.get("Truncated") in ("true", True):
            entry.truncated += 1
        if tables is not None:
            for table_attrs in tables:
                table = dict(table_attrs)
                name = str(table.get("Name"))
                counts = entry.tables.get(name)
                if counts is None:
                    if len(entry.tables) >= MAX_NAMES:
                        continue
                    counts = entry.tables[name] = [0, 0]
                counts[1 if table.get("Access") == "write" else 0] += 1
        self._who(entry, attrs, run, start, duration)

    def _add_redis(self, obj: CimObject, attrs: dict[str, AttrValue], run: int) -> None:
        command = str(attrs.get("Command") or "?")
        arguments = [
            (_number(dict(child.attrs).get("Index")) or 0, child.text or "")
            for child in obj.children
            if child.tag == "Argument"
        ]
        values = [text for _, text in sorted(arguments, key=lambda pair: pair[0])]
        fingerprint = redis_fingerprint(command, values)
        # the example as the summary shows it; AUTH and HELLO carry credentials: never their arguments
        shown = [] if command.upper() in ("AUTH", "HELLO", "MIGRATE") else [v[:64] for v in values[:8]]
        example = " ".join([command.upper(), *shown]) + (" ..." if len(values) > len(shown) and shown else "")
        failed = attrs.get("Status") == "error"
        error = attrs.get("Error") or attrs.get("ErrorCode")
        code = str(error).split(" ", 1)[0] if error else "error"
        entry = self._entry("redis", str(attrs.get("Protocol") or "redis"), fingerprint)
        self._count(entry, attrs, example, failed, code, run)

    def _add_http(self, attrs: dict[str, AttrValue], run: int) -> None:
        method = attrs.get("Method")
        url = attrs.get("Url")
        fingerprint = http_fingerprint(
            None if method is None else str(method), None if url is None else str(url)
        )
        status = _number(attrs.get("Status"))
        failed = status is not None and status >= 400
        if not attrs.get("Session"):  # HTTP/1 records name no connection: the process and its server
            attrs["Session"] = f"{attrs.get('Process')}>{attrs.get('Server') or attrs.get('Host') or '?'}"
        entry = self._entry("http", "http", fingerprint)
        self._count(
            entry,
            attrs,
            f"{method or '?'} {url or ''}",
            failed,
            str(int(status)) if failed else None,
            run,
        )  # type: ignore[arg-type]

    def _entry(self, kind: str, protocol: str, fingerprint: str) -> DigestEntry:
        key = (kind, protocol, fingerprint)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= self.max_fingerprints:
                entry = self.overflow.get(kind)
                if entry is None:
                    entry = self.overflow[kind] = DigestEntry(kind, "*", "*", overflow=True)
                return entry
            entry = self.entries[key] = DigestEntry(kind, protocol, fingerprint)
        return entry

    def _count(
        self,
        entry: DigestEntry,
        attrs: dict[str, AttrValue],
        example: str,
        failed: bool,
        code: str | None,
        run: int,
    ) -> None:
        self.executions += 1
        entry.count += 1
        entry.runs.add(run)
        duration = _number(attrs.get("Duration"))
        if duration is not None and 0 <= duration <= MAX_DURATION:
            entry.timed += 1
            entry.total += duration
            if duration > entry.max:
                entry.max = duration
            entry.sketch.add(duration)
        if failed:
            entry.errors += 1
            _count_capped(entry.error_codes, code or "error")
        start = _number(attrs.get("Start"))
        if start is not None:
            if entry.first is None or start < entry.first:
                entry.first = start
                entry.example = example[:MAX_EXAMPLE]
            if entry.last is None or start > entry.last:
                entry.last = start
        if entry.example is None:
            entry.example = example[:MAX_EXAMPLE]
        self._who(entry, attrs, run, start, duration)

    def _who(
        self,
        entry: DigestEntry,
        attrs: dict[str, AttrValue],
        run: int,
        start: float | None,
        duration: float | None,
    ) -> None:
        """The session and process that ran it, and the run of executions of its session."""
        session = attrs.get("Session")
        if session is not None:
            session = str(session)
            if session not in entry.sessions:
                entry.more_sessions |= _remember(entry.sessions, session)
            if not entry.overflow:
                self._follow_session((run, session), entry, start, duration)
        process = attrs.get("Process")
        if process is not None:
            process = str(process)
            if process not in entry.processes:
                entry.more_processes |= _remember(entry.processes, process)

    def _follow_session(
        self, session: tuple[int, str], entry: DigestEntry, start: float | None, duration: float | None
    ) -> None:
        """The loop flag: how many times in a row this session ran this fingerprint. Past MAX_SESSIONS
        sessions, the one seen first is forgotten (a run of it starts again at 1)."""
        end = None if start is None else start + (duration or 0.0)
        last = self._last.get(session)
        if last is None:
            self._last[session] = [entry, 1, end]
            if len(self._last) > MAX_SESSIONS:
                del self._last[next(iter(self._last))]
        elif last[0] is entry and (start is None or last[2] is None or start - last[2] <= LOOP_GAP):
            last[1] += 1
            last[2] = end
            if last[1] > entry.longest_run:
                entry.longest_run = last[1]
        else:
            last[0] = entry
            last[1] = 1
            last[2] = end

    # -- out ---------------------------------------------------------------------------------------

    def ranked(self) -> list[DigestEntry]:
        """The entries, the most time first (then the most executions), the overflow last."""
        self.flush()
        entries = sorted(self.entries.values(), key=lambda e: (-e.total, -e.count, e.kind, e.fingerprint))
        return entries + [self.overflow[kind] for kind in sorted(self.overflow)]

    def group_times(self, entries: Iterable[DigestEntry]) -> dict[str, float]:
        times: dict[str, float] = {}
        for entry in entries:
            group = TIME_GROUP[entry.kind]
            times[group] = times.get(group, 0.0) + entry.total
        return times

    def __bool__(self) -> bool:
        self.flush()
        return bool(self.entries or self.overflow)


def entry_facts(entry: DigestEntry, rank: int, group_times: dict[str, float]) -> dict[str, object]:
    """One entry as named values: what the XML object, the JSON and the text all say."""
    group_total = group_times.get(TIME_GROUP[entry.kind], 0.0)
    timed = entry.timed
    return {
        "Rank": rank,
        "Id": None if entry.overflow else query_id(entry.fingerprint),
        "Kind": entry.kind,
        "Protocol": entry.protocol,
        "Fingerprint": entry.fingerprint,
        "Count": entry.count,
        "TotalTime": entry.total if timed else None,
        "MeanTime": entry.total / timed if timed else None,
        "P50Time": entry.sketch.quantile(0.5),
        "P95Time": entry.sketch.quantile(0.95),
        "MaxTime": entry.max if timed else None,
        "TimeShare": round(100.0 * entry.total / group_total, 1) if group_total > 0 else None,
        "Rows": entry.rows if entry.kind == "sql" else None,
        "AffectedRows": entry.affected if entry.kind == "sql" else None,
        "Errors": entry.errors,
        "ErrorCodes": dict(sorted(entry.error_codes.items(), key=lambda item: (-item[1], item[0]))),
        "Tables": [
            {"Name": name, "Reads": reads, "Writes": writes}
            for name, (reads, writes) in sorted(entry.tables.items())
        ],
        "Sessions": list(entry.sessions),
        "MoreSessions": entry.more_sessions,
        "Processes": list(entry.processes),
        "MoreProcesses": entry.more_processes,
        "FirstSeen": entry.first,
        "LastSeen": entry.last,
        "LongestRun": entry.longest_run,
        "Flags": entry.flags,
        "Truncated": entry.truncated,
        "Overflow": entry.overflow,
        "Runs": len(entry.runs),
        "Example": entry.example,
    }


def digest_facts(digest: Digest) -> list[dict[str, object]]:
    """Every entry's facts, ranked."""
    entries = digest.ranked()
    times = digest.group_times(entries)
    return [entry_facts(entry, rank, times) for rank, entry in enumerate(entries, start=1)]


def _typed(facts: dict[str, object], kind: type[float]) -> Callable[[str], float | None]:
    """A reader of `facts` giving its numbers typed (`Duration`, `Time`), for the writers."""
    return lambda name: None if facts[name] is None else kind(facts[name])  # type: ignore[arg-type]


def digest_objects(digest: Digest) -> list[CimObject]:
    """The `Dockit_QueryDigest` objects of the summary (README's contract)."""
    objects = []
    for facts in digest_facts(digest):
        duration = _typed(facts, Duration)
        time = _typed(facts, Time)
        sessions: list[str] = facts["Sessions"]  # type: ignore[assignment]
        processes: list[str] = facts["Processes"]  # type: ignore[assignment]
        attrs: dict[str, AttrValue] = {
            "Rank": facts["Rank"],  # type: ignore[dict-item]
            "Id": facts["Id"],  # type: ignore[dict-item]
            "Kind": facts["Kind"],  # type: ignore[dict-item]
            "Protocol": facts["Protocol"],  # type: ignore[dict-item]
            "Count": facts["Count"],  # type: ignore[dict-item]
            "TotalTime": duration("TotalTime"),
            "MeanTime": duration("MeanTime"),
            "P50Time": duration("P50Time"),
            "P95Time": duration("P95Time"),
            "MaxTime": duration("MaxTime"),
            "TimeShare": None if facts["TimeShare"] is None else f"{facts['TimeShare']:.1f}",
            "Rows": facts["Rows"],  # type: ignore[dict-item]
            "AffectedRows": facts["AffectedRows"],  # type: ignore[dict-item]
            "Errors": facts["Errors"],  # type: ignore[dict-item]
            "Sessions": len(sessions),
            "MoreSessions": "true" if facts["MoreSessions"] else None,
            "Processes": " ".join(processes) or None,
            "MoreProcesses": "true" if facts["MoreProcesses"] else None,
            "FirstSeen": time("FirstSeen"),
            "LastSeen": time("LastSeen"),
            "LongestRun": facts["LongestRun"],  # type: ignore[dict-item]
            "Flags": " ".join(facts["Flags"]) or None,  # type: ignore[arg-type]
            "Truncated": facts["Truncated"] or None,  # type: ignore[dict-item]
            "Overflow": "true" if facts["Overflow"] else None,
        }
        children = [CimChild("Fingerprint", (), str(facts["Fingerprint"]))]
        if facts["Example"] is not None:
            children.append(CimChild("Example", (), str(facts["Example"])))
        children += [
            CimChild("Error", (("Code", code), ("Count", count)))
            for code, count in facts["ErrorCodes"].items()  # type: ignore[attr-defined]
        ]
        children += [
            CimChild("Table", (("Name", t["Name"]), ("Reads", t["Reads"]), ("Writes", t["Writes"])))
            for t in facts["Tables"]  # type: ignore[attr-defined]
        ]
        children += [CimChild("Session", (("Id", session),)) for session in sessions]
        objects.append(CimObject.make("Dockit_QueryDigest", attrs, children))
    return objects
