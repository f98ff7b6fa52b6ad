"""The schema a PostgreSQL session resolves an unqualified table name in: its search path's first schema.

The server looks a name up in each schema of `search_path` in turn; without its catalog the decoder
cannot know where a table exists, so it takes the path's first schema that is not `$user` (a schema
named after the user rarely exists), `pg_catalog` or `pg_temp`. Followed: the path given at startup (a
`search_path` parameter, or `-c search_path=...` in `options`), else the default (`"$user", public`:
public), then each `SET [SESSION] search_path`, `SET search_path TO DEFAULT` and `RESET search_path`
that succeeded. Not followed: `SET LOCAL` (it ends with the transaction), `set_config()`, a path set
for the role or database (`ALTER ROLE ... SET search_path`), and a temporary table that hides a table.
"""

from __future__ import annotations

import re

DEFAULT = "public"
_SKIPPED = frozenset({"$user", "pg_catalog", "pg_temp"})
_SET = re.compile(
    r"\s*(?:SET\s+(?:SESSION\s+)?search_path\s*(?:TO|=)\s*(?P<path>.*?)|RESET\s+search_path)\s*;?\s*\Z",
    re.I | re.S,
)
_OPTION = re.compile(r"(?:-c\s*|--)search_path=((?:\\.|[^\s\\])*)")
_ITEM = re.compile(r'\s*("(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|[^,\s]+)\s*(?:,|\Z)')


def first_schema(path: str) -> str | None:
    """The schema an unqualified name resolves to under `path` (`"$user", shop, public`: shop)."""
    for item in _ITEM.finditer(path.strip()):
        name = item.group(1)
        if name[0] in "\"'":
            name = name[1:-1].replace(name[0] * 2, name[0])
        else:
            name = name.lower()
        if name and name not in _SKIPPED and not name.startswith("pg_temp"):
            return name
    return None


def startup_schema(parameters: dict[str, str]) -> str | None:
    """The schema of a session by its startup message's parameters."""
    path = parameters.get("search_path")
    if path is None:
        option = _OPTION.search(parameters.get("options", ""))
        path = option.group(1).replace("\\", "") if option else None
    return DEFAULT if path is None else first_schema(path)


def after_set(text: str) -> str | None | bool:
    """The schema once the statement `text` succeeded, when it sets the search path (None: a path of
    no usable schema); False when it does not touch it."""
    match = _SET.match(text)
    if match is None:
        return False
    path = match.group("path")
    if path is None or path.strip().upper() == "DEFAULT":
        return DEFAULT
    return first_schema(path)
