"""PostgreSQL's SQL as the decoder needs it: a Query message's statements, the `$n` parameters that carry
secrets, and auth hashes in values.

A simple Query may hold several statements; the server answers each in turn (CommandComplete,
EmptyQueryResponse or the ErrorResponse that ends the rest), so the decoder pairs the k-th answer with
the k-th statement. The split follows PostgreSQL's lexer where it matters for `;`: strings ('...' with
'' inside, E'...' with backslash escapes), quoted names, dollar quoting ($$...$$, $tag$...$tag$),
comments (`--`, and `/* */` nested), and the SQL-standard routine bodies of `CREATE FUNCTION ... BEGIN
ATOMIC ... END`, whose inner semicolons do not end the statement (as psql counts them). Statements that
are only blanks and comments are not sent to the executor and get no answer: they are dropped.
"""

from __future__ import annotations

import re
from functools import lru_cache

from decoders.redact import REDACTED
from decoders.sql_text import end_of_quote

_SPECIAL = re.compile(r"""['"$;]|--|/\*|\b(?:BEGIN|CASE|END)\b""", re.I)
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$")
_ROUTINE = re.compile(
    r"\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\b", re.I | re.S
)
_COMMENT_OR_BLANK = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.S)


def _identifier_char(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _end_of_comment(sql: str, pos: int) -> int:
    """After `/*` at pos - 2: the index after its matching `*/` (comments nest)."""
    depth = 1
    size = len(sql)
    while pos < size and depth:
        if sql.startswith("/*", pos):
            depth += 1
            pos += 2
        elif sql.startswith("*/", pos):
            depth -= 1
            pos += 2
        else:
            pos += 1
    return pos if not depth else size


def split_statements(sql: str) -> list[str]:
    """The statements of a Query message, each without its `;` and outer blanks. A text with one
    statement, or none (blanks, comments: its one answer is an EmptyQueryResponse), is returned as it
    was sent."""
    if ";" not in sql:
        return [sql]
    pieces: list[str] = []
    start = 0
    pos = 0
    size = len(sql)
    depth = 0  # BEGIN ATOMIC / CASE nesting inside a CREATE FUNCTION or PROCEDURE
    routine = bool(_ROUTINE.match(sql))
    while True:
        match = _SPECIAL.search(sql, pos)
        if match is None:
            break
        token = match.group(0)
        at = match.start()
        pos = match.end()
        if token == ";":
            if depth:
                continue
            pieces.append(sql[start:at])
            start = pos
            routine = bool(_ROUTINE.match(sql, start))
        elif token == "'":
            backslash = at > 0 and sql[at - 1] in "eE" and not (at > 1 and _identifier_char(sql[at - 2]))
            pos = end_of_quote(sql, pos, "'", backslash)
        elif token == '"':
            pos = end_of_quote(sql, pos, '"', False)
        elif token == "$":
            if at > 0 and _identifier_char(sql[at - 1]):
                continue  # inside a name such as a$b
            tag = _DOLLAR_TAG.match(sql, at)
            if tag is None:
                continue  # a parameter ($1) or a lone $
            close = sql.find(tag.group(0), tag.end())
            pos = size if close < 0 else close + len(tag.group(0))
        elif token == "--":
            end = sql.find("\n", pos)
            pos = size if end < 0 else end + 1
        elif token == "/*":
            pos = _end_of_comment(sql, pos)
        elif routine:
            word = token.upper()
            if word == "BEGIN" or (word == "CASE" and depth):
                depth += 1
            elif word == "END" and depth:
                depth -= 1
    pieces.append(sql[start:])
    statements = [piece.strip() for piece in pieces if not _COMMENT_OR_BLANK.fullmatch(piece)]
    return statements if len(statements) > 1 else [sql]  # one statement: its text as sent


# --- parameters that carry secrets ----------------------------------------------------------------

_PARAMETER_SCAN = re.compile(
    r"'(?:[^']|'')*(?:'|$)|\"(?:[^\"]|\"\")*(?:\"|$)|--[^\n]*|/\*.*?(?:\*/|$)|(?<![\w$])\$(\d{1,5})(?!\w)|\?|#",
    re.S,
)


@lru_cache(maxsize=1024)
def secret_parameters(sql: str) -> frozenset[int]:
    """The indexes (from 0) of the `$n` parameters whose values are secrets: compared with, assigned to
    or inserted into a column named like a secret (`password`, `api_token`...), or given to a function
    or clause that takes a password. The shared `?` analysis (decoders/sql_tables.py) reads a copy of
    the text where each `$n` became `?` (and PostgreSQL's own `?` and `#` operators became blanks)."""
    if "$" not in sql:
        return frozenset()
    from decoders.sql_tables import secret_placeholders

    numbers: list[int] = []

    def rewrite(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            numbers.append(int(match.group(1)))
            return "?"
        token = match.group(0)
        return " " if token in ("?", "#") else token

    rewritten = _PARAMETER_SCAN.sub(rewrite, sql)
    if not numbers:
        return frozenset()
    return frozenset(numbers[i] - 1 for i in secret_placeholders(rewritten) if i < len(numbers))


# --- auth hashes in values --------------------------------------------------------------------------

_HASH_IN_VALUE = re.compile(
    r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+|(?<![0-9A-Za-z])md5[0-9a-f]{32}(?![0-9a-f])"
)


def redact_value(value: str) -> str:
    """A sampled value or parameter with any PostgreSQL auth hash in it (pg_authid.rolpassword's SCRAM
    verifier or md5 hash) replaced, whatever its column is called."""
    if "SCRAM-SHA-256$" not in value and "md5" not in value:
        return value
    return _HASH_IN_VALUE.sub(REDACTED, value)
