"""Reading SQL text as the servers lex it, shared by the decoders that split statements (MySQL's
multi-statement queries, PostgreSQL's simple Query): where a quoted string or name ends."""

from __future__ import annotations


def end_of_quote(sql: str, pos: int, quote: str, backslash: bool) -> int:
    """The index after the quote closing the string or name whose text starts at `pos` (after its
    opening quote): a doubled quote is one character, and with `backslash` a backslash escapes the next;
    the end of the text when it is never closed (a statement cut by the tracer)."""
    size = len(sql)
    while pos < size:
        char = sql[pos]
        if backslash and char == "\\":
            pos += 2
            continue
        if char == quote:
            if pos + 1 < size and sql[pos + 1] == quote:
                pos += 2
                continue
            return pos + 1
        pos += 1
    return size
