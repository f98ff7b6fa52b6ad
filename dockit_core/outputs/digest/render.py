"""The digest for a person (the top of the TXT summary, `dockit report`) and for a script (`--json`,
`/api/digest`)."""

from __future__ import annotations

from collections.abc import Callable

from dockit_core.outputs.digest.digest import LOOP_GAP, LOOP_RUN, Digest, digest_facts
from dockit_core.outputs.summary.objects import format_time
from dockit_core.outputs.xmltext import xml_safe

SHOWN_IN_TEXT = 50  # fingerprints a person reads; the JSON and XML have them all


def digest_json(digest: Digest, date: str | None = None) -> dict[str, object]:
    """The digest as one JSON document: totals, then the fingerprints ranked by total time."""
    facts = digest_facts(digest)
    times = digest.group_times(digest.ranked())
    executions = digest.executions
    for one in facts:
        for name in ("TotalTime", "MeanTime", "P50Time", "P95Time", "MaxTime"):
            if one[name] is not None:
                one[name] = round(one[name], 6)  # type: ignore[call-overload]  # microseconds, as the summary
        one["FirstSeen"] = format_time(one["FirstSeen"], date)  # type: ignore[arg-type]
        one["LastSeen"] = format_time(one["LastSeen"], date)  # type: ignore[arg-type]
    return {
        "fingerprints": sum(1 for one in facts if not one["Overflow"]),
        "executions": executions,
        "time": {group: round(value, 6) for group, value in sorted(times.items())},
        "loop": {"run": LOOP_RUN, "gap": LOOP_GAP},
        "queries": facts,
    }


def _ms(value: object) -> str:
    return "-" if value is None else f"{1000 * value:.3f} ms"  # type: ignore[operator]


def digest_text(
    digest: Digest, date: str | None = None, title: str = "Query digest", limit: int = SHOWN_IN_TEXT
) -> str:
    """The answers first: one block per fingerprint, the most time first."""
    facts = list(digest_facts(digest))
    times = digest.group_times(digest.ranked())
    spent = ", ".join(f"{group} {seconds:.6f} s" for group, seconds in sorted(times.items()))
    distinct = sum(1 for one in facts if not one["Overflow"])
    lines = [
        f"== {title}: {distinct} fingerprint(s), {digest.executions} execution(s), time: {spent or 'none'} ==\n"
    ]
    show: Callable[[object], str] = lambda value: xml_safe(str(value))  # noqa: E731 - a log is untrusted
    for one in facts[:limit]:
        share = (
            ""
            if one["TimeShare"] is None
            else f"{one['TimeShare']:.1f}% of the {'HTTP' if one['Kind'] == 'http' else 'database'} time, "
        )
        lines.append(
            f"\n{one['Rank']}. {share}{one['Count']} x {one['Protocol']}"
            + (f", total {one['TotalTime']:.6f} s, mean {_ms(one['MeanTime'])}, p50 {_ms(one['P50Time'])}, "
               f"p95 {_ms(one['P95Time'])}, max {_ms(one['MaxTime'])}" if one["TotalTime"] is not None else "")
            + (f"  [{one['Id']}]" if one["Id"] else "") + "\n"
        )  # fmt: skip
        lines.append(f"   {show(one['Fingerprint'])}\n")
        details = []
        if one["Kind"] == "sql":
            details.append(f"rows {one['Rows']} returned, {one['AffectedRows']} affected")
        tables = one["Tables"]
        if tables:
            details.append(
                "tables "
                + ", ".join(
                    f"{show(t['Name'])} ({'/'.join(a for a, n in (('read', t['Reads']), ('write', t['Writes'])) if n)})"
                    for t in tables  # type: ignore[attr-defined]
                )
            )
        sessions: list[str] = one["Sessions"]  # type: ignore[assignment]
        processes: list[str] = one["Processes"]  # type: ignore[assignment]
        if sessions:
            details.append(f"sessions {len(sessions)}{'+' if one['MoreSessions'] else ''}")
        if processes:
            details.append(f"processes {' '.join(processes)}{' ...' if one['MoreProcesses'] else ''}")
        if one["Runs"] and one["Runs"] > 1:  # type: ignore[operator]
            details.append(f"in {one['Runs']} runs")
        if details:
            lines.append(f"   {'; '.join(details)}\n")
        if one["FirstSeen"] is not None:
            lines.append(
                f"   first {format_time(one['FirstSeen'], date)}, last {format_time(one['LastSeen'], date)}\n"  # type: ignore[arg-type]
            )
        if one["Errors"]:
            codes = ", ".join(f"{show(code)} x {count}" for code, count in one["ErrorCodes"].items())  # type: ignore[attr-defined]
            lines.append(f"   errors {one['Errors']}: {codes}\n")
        for flag in one["Flags"]:  # type: ignore[attr-defined]
            lines.append(f"   FLAG {flag}: {_explain(flag, one)}\n")
        if one["Truncated"]:
            lines.append(f"   {one['Truncated']} execution(s) with the text cut by the trace\n")
        if one["Example"] is not None and not one["Overflow"]:
            lines.append(f"   example: {show(one['Example'])}\n")
    if len(facts) > limit:
        lines.append(
            f"\n... and {len(facts) - limit} more fingerprint(s) (the XML summary and --json have them all)\n"
        )
    return "".join(lines)


def _explain(flag: str, facts: dict[str, object]) -> str:
    if flag == "loop":
        return (
            f"{facts['LongestRun']} in a row in one session, each within {LOOP_GAP:g} s of the last "
            "(an N+1 loop? one query with a join or IN list would do)"
        )
    if flag == "always-fails":
        return f"failed every time ({facts['Errors']} of {facts['Count']})"
    if flag == "write-without-where":
        return "an UPDATE or DELETE without WHERE: every row of the table"
    return flag
