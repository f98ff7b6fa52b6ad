"""Which tables a SQL statement reads and writes, as written in the SQL (`test.t1`, backticks removed).

sqlglot parses the statement in the dialect the caller names (`mysql`, the default, or `postgres`); CTE names, aliases and derived tables are not tables, and
aliases named by multi-table UPDATE / DELETE are resolved to the tables they stand for. What sqlglot
cannot parse (a statement cut by the tracer, REPLACE, RENAME TABLE, SHOW COLUMNS, CALL...) goes to a
small keyword scanner over sqlglot's tokens, which never raises. For a cut statement, a name that runs
up to the cut is dropped: it may be the start of a longer name.

The choice of sqlglot over sqlparse was measured on tests/data/sql_corpus.json (tests/test_sql_tables.py
prints the score of each); the scanner handles what neither parses.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_SQL = 100_000  # longer statements (bulk INSERTs) are scanned only up to here


DIALECTS = ("mysql", "postgres")


def tables_in(sql: str, truncated: bool = False, dialect: str = "mysql") -> tuple[list[str], list[str]]:
    """(every table named by `sql`, the ones it writes), each in order of first appearance. `dialect`
    is sqlglot's name for the SQL's dialect: "mysql" (also used for Oracle) or "postgres"."""
    if dialect == "postgres":
        return _cached(_pg_without_literals(sql[:MAX_SQL]), truncated or len(sql) > MAX_SQL, dialect)
    return _cached(_without_literals(sql[:MAX_SQL]), truncated or len(sql) > MAX_SQL, "mysql")


_LITERAL = re.compile(
    r"(`(?:[^`]|``)*`?)"  # a quoted name: kept
    r"|'(?:[^'\\]|\\.|'')*(?:'|$)|\"(?:[^\"\\]|\\.|\"\")*(?:\"|$)"  # a string
    r"|(?<![\w$.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w$])",  # a number
    re.S,
)


_NUMBER = re.compile(_LITERAL.pattern.rsplit("|", 1)[1])  # the number branch of _LITERAL alone


def _without_literals(sql: str) -> str:
    """Strings and numbers blanked, so statements that differ only by values share one parse (a
    client that inlines parameters, such as PyMySQL, sends a new text for every row)."""
    if "'" not in sql and '"' not in sql and "`" not in sql:
        return _NUMBER.sub("0", sql)  # only numbers can match: the same result without a callback
    return _LITERAL.sub(lambda m: m.group(1) or ("0" if m.group(0)[0].isdigit() else "''"), sql)


# PostgreSQL: "..." is a name (kept); strings are '...', E'...' (backslash escapes) and $tag$...$tag$.
_PG_LITERAL = re.compile(
    r"(\"(?:[^\"]|\"\")*\"?)"  # a quoted name: kept
    r"|(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*(?:'|$)|'(?:[^']|'')*(?:'|$)"  # a string
    r"|(?<![\w$])\$([A-Za-z_]\w*)?\$.*?(?:\$\2\$|$)"  # a dollar-quoted string
    r"|(?<![\w$.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w$])",  # a number
    re.S,
)


def _pg_without_literals(sql: str) -> str:
    """As `_without_literals`, by PostgreSQL's quoting rules."""
    if "'" not in sql and '"' not in sql and "$" not in sql:
        return _NUMBER.sub("0", sql)
    return _PG_LITERAL.sub(lambda m: m.group(1) or ("0" if m.group(0)[0].isdigit() else "''"), sql)


@lru_cache(maxsize=4096)
def _cached(sql: str, truncated: bool, dialect: str = "mysql") -> tuple[list[str], list[str]]:
    # sqlglot is imported here, at the first statement, not when dockit starts: it takes longer to
    # import (about 0.13 s) than a short trace takes to replay.
    from decoders.sql_grammar import parsed, scanned

    try:
        found = None if truncated else parsed(sql, dialect)
        if found is None:
            found = scanned(sql, truncated, dialect)
    except Exception:  # noqa: BLE001 - a SQL text must never break a trace
        return [], []
    tables, written = found
    tables = _ordered(sql, tables)
    written_set = set(written)
    return tables, [t for t in tables if t in written_set]


def _ordered(sql: str, names: list[str]) -> list[str]:
    unique = list(dict.fromkeys(names))

    def position(name: str) -> int:
        last = name.rsplit(".", 1)[-1]
        match = re.search(r"(?<![\w$])`?" + re.escape(last) + r"`?(?![\w$])", sql)
        return match.start() if match else len(sql)

    return sorted(unique, key=position)


def qualified(name: str, default: str | None) -> str | None:
    """A table name as the server resolves it: one written without a database (MySQL) or schema
    (PostgreSQL) is in the session's current one, `default`; a qualified name stays as written. None
    when that is not known (`default` None: a trace that began after the login, a login packet cut, a
    search path of no schema)."""
    if "." in name:
        return name
    return f"{default}.{name}" if default else None


# --- placeholders that carry secrets --------------------------------------------------------------

# What a prepared statement's text is made of, for finding its `?` placeholders: strings, quoted names
# and comments are skipped whole; parentheses and commas place a `?` inside an INSERT's VALUES tuple.
_PLACEHOLDER_SCAN = re.compile(
    r"'(?:[^'\\]|\\.|'')*(?:'|$)|\"(?:[^\"\\]|\\.|\"\")*(?:\"|$)|`(?:[^`]|``)*`?"
    r"|/\*.*?(?:\*/|$)|(?:--[ \t]|#)[^\n]*|\bVALUES?\b|[?(),]",
    re.S | re.I,
)
# A `?` that is a password by what comes before it: `PASSWORD(?)`, `IDENTIFIED BY ?`, `SET PASSWORD = ?`.
_SECRET_BEFORE = re.compile(
    r"(?:\b(?:OLD_)?PASSWORD\s*\(|\bIDENTIFIED\s+(?:BY|(?:VIA|WITH)\s+\S+\s+(?:USING|AS|BY))"
    r"|\bPASSWORD\s*(?:FOR\s+\S+\s*)?=)\s*$",
    re.I,
)
# A `?` compared with or assigned to a column: `password = ?`, `t.api_token <> ?`, `pwd LIKE ?`.
_COLUMN_BEFORE = re.compile(r"`?([\w$]+)`?\s*(?:=|<=>|<>|!=|\bLIKE)\s*$", re.I)
_INSERT_COLUMNS = re.compile(
    r"^\s*(?:INSERT|REPLACE)\b[^(]*?\(((?:[^()'\"]|`[^`]*`)*)\)\s*(?=VALUES?\b|SELECT\b)", re.I | re.S
)


@lru_cache(maxsize=1024)
def secret_placeholders(sql: str) -> frozenset[int]:
    """The indexes (from 0) of the `?` placeholders in a prepared statement whose values are secrets: a
    password given to PASSWORD(), IDENTIFIED BY or SET PASSWORD, or a value compared with, assigned to,
    or inserted into a column named like a secret (`password`, `password_hash`, `api_token`...)."""
    from decoders.redact import is_secret_column

    if "?" not in sql:
        return frozenset()
    insert = _INSERT_COLUMNS.match(sql)
    columns = [c.strip().strip("`").rsplit(".", 1)[-1] for c in insert.group(1).split(",")] if insert else []
    secret: set[int] = set()
    index = 0
    depth = 0
    in_values = False
    position = 0  # the place of the current value in a VALUES tuple
    for match in _PLACEHOLDER_SCAN.finditer(sql):
        token = match.group(0)
        if token == "?":
            before = sql[max(0, match.start() - 200) : match.start()]
            column = _COLUMN_BEFORE.search(before)
            if (
                _SECRET_BEFORE.search(before)
                or (column is not None and is_secret_column(column.group(1)))
                or (
                    in_values
                    and depth == 1
                    and position < len(columns)
                    and is_secret_column(columns[position])
                )
            ):
                secret.add(index)
            index += 1
        elif token == "(":
            depth += 1
            if depth == 1:
                position = 0
        elif token == ")":
            depth = max(0, depth - 1)
        elif token == ",":
            if depth == 1:
                position += 1
        elif token[0] in "vV":
            in_values = bool(columns) and depth == 0
    return frozenset(secret)
