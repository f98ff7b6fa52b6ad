"""The statements of one COM_QUERY, as the server runs them under CLIENT_MULTI_STATEMENTS.

The server answers each statement with its own result (an OK, a result set, or the ERR that ends the
rest), flagging SERVER_MORE_RESULTS_EXISTS on all but the last: the decoder pairs the k-th result with
the k-th statement. The split follows MySQL's lexer where it matters for `;`: strings ('...' and "..."
with backslash escapes and doubled quotes), quoted names (`...`), comments (`-- `, `#`, `/* */`). A
statement that creates a stored routine, trigger or event holds its body's semicolons (`BEGIN ...;
... END`): from there the rest of the text is one statement, as the server reads it (a client must
not put another statement after one). Statements that are only blanks and comments are dropped.
"""

from __future__ import annotations

import re

from decoders.sql_text import end_of_quote

_SPECIAL = re.compile(r"""['"`;#]|--(?=[\s]|$)|/\*""")
_COMMENT_OR_BLANK = re.compile(r"(?:\s+|--(?:\s[^\n]*)?(?:\n|$)|#[^\n]*|/\*.*?\*/)*", re.S)
_ROUTINE = re.compile(
    r"(?:\s+|/\*.*?\*/|--\s[^\n]*\n|#[^\n]*\n)*CREATE\b[^;]*?\b(?:PROCEDURE|FUNCTION|TRIGGER|EVENT)\b",
    re.I | re.S,
)


def split_statements(sql: str) -> list[str]:
    """The statements of a COM_QUERY, each without its `;` and outer blanks. A text with one
    statement (or none) is returned as it was sent."""
    if ";" not in sql:
        return [sql]
    pieces: list[str] = []
    start = pos = 0
    size = len(sql)
    routine = bool(_ROUTINE.match(sql))
    while not routine:  # a routine's body holds the rest of the text: its semicolons are its own
        match = _SPECIAL.search(sql, pos)
        if match is None:
            break
        token, at, pos = match.group(0), match.start(), match.end()
        if token == ";":
            pieces.append(sql[start:at])
            start = pos
            routine = bool(_ROUTINE.match(sql, start))
        elif token in ("'", '"', "`"):
            pos = end_of_quote(sql, pos, token, backslash=token != "`")
        elif token == "/*":
            end = sql.find("*/", pos)
            pos = size if end < 0 else end + 2
        else:  # `#` or `-- `: to the end of the line
            end = sql.find("\n", pos)
            pos = size if end < 0 else end + 1
    pieces.append(sql[start:])
    statements = [piece.strip() for piece in pieces if not _COMMENT_OR_BLANK.fullmatch(piece)]
    return statements if len(statements) > 1 else [sql]
