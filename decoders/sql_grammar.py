"""The two readers behind `decoders.sql_tables`: sqlglot's parse tree, and a keyword scanner over
tokens for what sqlglot cannot parse. Kept apart so that sqlglot loads only when SQL is met."""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

# sqlglot logs a warning each time it falls back to a generic Command; that is expected here.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_WRITE_KINDS = frozenset({"TABLE", "VIEW", "TEMPORARY TABLE"})


# --- sqlglot --------------------------------------------------------------------------------------


def _name(table: exp.Table) -> str:
    return ".".join(part for part in (table.catalog, table.db, table.name) if part)


# MySQL's statement modifiers, which sqlglot takes for a table name (`UPDATE LOW_PRIORITY t`).
_MODIFIERS = re.compile(
    r"^(\s*(?:UPDATE|DELETE|INSERT|REPLACE))(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE|DELAYED|HIGH_PRIORITY))+(?=\s)",
    re.I,
)


def parsed(sql: str, dialect: str = "mysql") -> tuple[list[str], list[str]] | None:
    """Tables from sqlglot's tree; None when it cannot say (parse error, generic command)."""
    try:
        trees = sqlglot.parse(_MODIFIERS.sub(r"\1", sql) if dialect == "mysql" else sql, read=dialect)
    except SqlglotError:
        return None
    tables: list[str] = []
    written: list[str] = []
    for tree in trees:
        if tree is None:
            continue
        if isinstance(tree, exp.Command | exp.Show):
            return None
        if isinstance(tree, exp.Use | exp.Set | exp.Transaction | exp.Commit | exp.Rollback):
            continue
        kind = str(tree.args.get("kind") or "").upper() if isinstance(tree, exp.Create | exp.Drop) else ""
        if kind and kind not in _WRITE_KINDS and kind != "INDEX":
            continue  # CREATE DATABASE, DROP FUNCTION...: no table
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        aliases: dict[str, str] = {}
        nodes: list[exp.Table] = []
        # Not tables: DELETE's target list (aliases, resolved below), an index's own name,
        # SELECT ... INTO @var / OUTFILE, and DUAL.
        skip = {id(t) for t in tree.args.get("tables") or ()} if isinstance(tree, exp.Delete) else set()
        for node in tree.find_all(exp.Table):
            if (
                not node.name
                or (not node.db and (node.name in ctes or node.name.upper() == "DUAL"))
                or id(node) in skip
                or (kind == "INDEX" and node.parent is tree)
                or isinstance(node.parent, exp.Into)
            ):
                continue
            nodes.append(node)
            aliases[node.alias_or_name] = _name(node)
            aliases.setdefault(node.name, _name(node))
        tables += [_name(n) for n in nodes]
        written += [_name(n) for n in nodes] if kind == "INDEX" else _written(tree, aliases)
    return tables, written


def _written(tree: exp.Expression, aliases: dict[str, str]) -> list[str]:
    def table_of(node: exp.Expression | None) -> list[str]:
        if isinstance(node, exp.Schema):
            node = node.this
        return [_name(node)] if isinstance(node, exp.Table) and node.name else []

    if isinstance(tree, exp.Insert | exp.Create | exp.Alter | exp.Describe | exp.Merge):
        return [] if isinstance(tree, exp.Describe) else table_of(tree.this)
    if isinstance(tree, exp.Copy):  # COPY t FROM ... writes t; COPY t TO ... reads it
        return table_of(tree.this) if tree.args.get("kind") else []
    if isinstance(tree, exp.Drop | exp.TruncateTable):
        return [_name(t) for t in tree.find_all(exp.Table) if t.name]
    if isinstance(tree, exp.Delete):
        targets = tree.args.get("tables")
        if targets:
            return [aliases.get(t.name, t.name) for t in targets]
        return table_of(tree.this)
    if isinstance(tree, exp.Update):
        qualifiers = [eq.this.table for eq in tree.expressions if isinstance(eq.this, exp.Column)]
        if qualifiers and all(qualifiers):
            return [aliases.get(q, q) for q in qualifiers]
        return table_of(tree.this)
    return []


# --- the scanner, for what sqlglot cannot parse -----------------------------------------------------

_AFTER_TABLE = {"FROM", "JOIN", "UPDATE", "INTO", "TABLE", "TABLES", "USING", "DESCRIBE", "DESC", "TO"}
_TABLE_VERBS = {"CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "LOAD", "LOCK", "SHOW", "OPTIMIZE", "CHECK",
                "REPAIR", "ANALYZE", "CHECKSUM"}  # fmt: skip
_WRITE_VERBS = {
    "INSERT",
    "REPLACE",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "RENAME",
    "LOAD",
}
_SKIP_WORDS = {
    "IF",
    "NOT",
    "EXISTS",
    "IGNORE",
    "LOW_PRIORITY",
    "DELAYED",
    "HIGH_PRIORITY",
    "QUICK",
    "ONLY",
    "TEMPORARY",
    "OUTFILE",
    "DUMPFILE",
    "NO_WRITE_TO_BINLOG",
    "LOCAL",
}
_STOP = {"WHERE", "SET", "ON", "USING", "GROUP", "ORDER", "LIMIT", "HAVING", "VALUES", "VALUE", "SELECT", "JOIN",
         "LEFT", "RIGHT", "INNER", "OUTER", "CROSS", "NATURAL", "STRAIGHT_JOIN", "UNION", "FOR", "LOCK", "WINDOW",
         "PARTITION", "FIELDS", "COLUMNS", "LINES", "CHARACTER", "WITH", "AS", "INTO", "FROM", "TO", "ADD", "DROP",
         "MODIFY", "CHANGE", "RENAME", "ENGINE", "DEFAULT", "LIKE", "PROCEDURE"}  # fmt: skip


# PostgreSQL statements whose FROM or IN names a cursor, not a table.
_CURSOR_VERBS = {"FETCH", "MOVE", "CLOSE"}


def scanned(sql: str, truncated: bool, dialect: str = "mysql") -> tuple[list[str], list[str]]:
    """Keyword scan: names that follow FROM, JOIN, INTO, UPDATE, TABLE... outside function calls."""
    # Not sqlglot's tokens: it turns the rest of REPLACE or RENAME into one string.
    tokens = _rough_tokens(sql, dialect)
    end = len(sql.rstrip())
    words = [_word(t) for t in tokens]
    verb = words[0] if words else ""
    if dialect == "postgres" and verb in _CURSOR_VERBS:
        return [], []
    ctes = _cte_names(words)
    tables: list[tuple[str, bool]] = []
    aliases: dict[str, str] = {}
    depth_function: list[bool] = []  # per open parenthesis: is it a function call (FROM there is not a table)
    i = 0
    while i < len(tokens):
        word = words[i]
        if word == "(":
            prev = tokens[i - 1] if i else None
            is_call = (
                prev is not None
                and prev.token_type not in (TokenType.IN, TokenType.EXISTS)
                and words[i - 1] not in _AFTER_TABLE
                and _is_name(prev)
                and words[i + 1 : i + 2] not in (["SELECT"], ["WITH"])
            )
            depth_function.append(is_call)
        elif word == ")":
            if depth_function:
                depth_function.pop()
        elif word == ";":
            verb = words[i + 1] if i + 1 < len(words) else ""
        elif word in _AFTER_TABLE and not any(depth_function) and _starts_list(words, i):
            i = _read_list(tokens, words, i + 1, verb, word, tables, aliases, ctes, end, truncated)
            continue
        i += 1
    names = [n for n, _ in tables]
    written = [n for n, w in tables if w]
    if verb in ("UPDATE", "DELETE"):
        written = _resolve_targets(tokens, words, verb, aliases) or written
    return names, written


def _cte_names(words: list[str]) -> set[str]:
    """The names a WITH clause defines (`name AS (`, `name (col, ...) AS (`), upper case."""
    names = set()
    for i in range(1, len(words) - 1):
        if words[i] != "AS" or words[i + 1] != "(":
            continue
        j = i - 1
        if words[j] == ")":  # a column list: the name is before its opening parenthesis
            depth = 0
            while j >= 0:
                depth += words[j] == ")"
                depth -= words[j] == "("
                if depth == 0:
                    break
                j -= 1
            j -= 1
        if j >= 0:
            names.add(words[j].lstrip("\0").upper())
    return names


def _starts_list(words: list[str], i: int) -> bool:
    word = words[i]
    if word in ("DESCRIBE", "DESC"):
        return i == 0
    if word == "TO":
        return words[0] == "RENAME"
    if word == "TABLE":
        return i > 0 and (words[0] in _TABLE_VERBS or words[i - 1] == "INTO")
    if word == "TABLES":
        return words[0] in ("LOCK", "FLUSH") or words[:2] == ["OPTIMIZE", "TABLES"]
    if word == "USING":
        return words[0] == "DELETE"
    if words[0] == "SHOW" and word == "FROM":  # SHOW COLUMNS FROM t, but SHOW TABLES FROM db
        return i > 0 and words[i - 1] in ("COLUMNS", "FIELDS", "INDEX", "INDEXES", "KEYS")
    return True


def _read_list(tokens: list[Token], words: list[str], i: int, verb: str, keyword: str,
               tables: list[tuple[str, bool]], aliases: dict[str, str], ctes: set[str], end: int,
               truncated: bool) -> int:  # fmt: skip
    """Read `name [AS alias] {, name [AS alias]}` from token i; returns the index after it."""
    writes = (
        verb in _WRITE_VERBS
        and keyword in ("INTO", "TABLE", "UPDATE", "TO")
        or (verb == "DELETE" and keyword == "FROM")
    )
    while i < len(tokens) and words[i] in _SKIP_WORDS:
        i += 1
    while i < len(tokens) and _is_name(tokens[i]):
        parts = [tokens[i]]
        while i + 2 < len(tokens) and words[i + 1] == "." and _is_name(tokens[i + 2]):
            parts.append(tokens[i + 2])
            i += 2
        i += 1
        name = ".".join(t.text for t in parts)
        reaches_cut = truncated and (
            parts[-1].end + 1 >= end or (i < len(tokens) and words[i] == "." and i + 1 >= len(tokens))
        )
        followed_by_paren = i < len(tokens) and words[i] == "("
        if followed_by_paren and keyword not in ("INTO", "TABLE"):
            break  # a function call, not a table
        if not reaches_cut and name.upper() not in ctes:
            tables.append((name, writes))
        if followed_by_paren:
            break  # INSERT INTO t (columns), CREATE TABLE t (definitions)
        if i < len(tokens) and words[i] == "AS":
            i += 1
        if i < len(tokens) and _is_name(tokens[i]) and words[i] not in _STOP:
            aliases[tokens[i].text] = name
            i += 1
        if i < len(tokens) and words[i] == "," and keyword not in ("INTO",):
            i += 1
            continue
        break
    return i


def _resolve_targets(tokens: list[Token], words: list[str], verb: str, aliases: dict[str, str]) -> list[str]:
    """Multi-table UPDATE / DELETE: the tables behind the aliases that are written."""
    if verb == "DELETE" and len(words) > 1 and words[1] != "FROM":
        targets: list[str] = []
        for i in range(1, len(tokens)):
            if words[i] == "FROM":
                break
            if _is_name(tokens[i]):
                targets.append(aliases.get(tokens[i].text, tokens[i].text))
        return targets
    if verb == "UPDATE" and "SET" in words:
        start = words.index("SET") + 1
        qualifiers = [
            tokens[i].text
            for i in range(start, len(tokens) - 2)
            if words[i + 1] == "." and (i == start or words[i - 1] == ",") and _is_name(tokens[i])
        ]
        return [aliases.get(q, q) for q in dict.fromkeys(qualifiers)]
    return []


_RESERVED = _STOP | _AFTER_TABLE | _SKIP_WORDS | {"IN", "EXISTS", "WHERE", "SELECT", "VALUES", "NULL", "AND", "OR",
                                                  "BY", "DISTINCT", "ALL", "CASE", "WHEN", "THEN", "ELSE", "END"}  # fmt: skip


def _is_name(token: Token) -> bool:
    if token.token_type == TokenType.IDENTIFIER:
        return True
    return (
        token.token_type == TokenType.VAR
        and token.text.isidentifier()
        and token.text.upper() not in _RESERVED
    )


def _word(token: Token) -> str:
    if token.token_type in (TokenType.IDENTIFIER, TokenType.STRING):
        return "\0" + token.text  # never equal to a keyword
    return token.text.upper()


_ROUGH = re.compile(
    r"`((?:[^`]|``)*)`?|'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|--[^\n]*|/\*.*?(?:\*/|$)|#[^\n]*|(\w+)|(\S)",
    re.S,
)
# PostgreSQL: "..." is a name, '...' a string ('' inside), and # an operator.
_ROUGH_PG = re.compile(
    r"\"((?:[^\"]|\"\")*)\"?|'(?:[^']|'')*'?|--[^\n]*|/\*.*?(?:\*/|$)|(\w+)|(\S)",
    re.S,
)


def _rough_tokens(sql: str, dialect: str = "mysql") -> list[Token]:
    """Tokens for text sqlglot's tokenizer refuses (an unterminated quote at a cut)."""
    out: list[Token] = []
    for match in (_ROUGH_PG if dialect == "postgres" else _ROUGH).finditer(sql):
        if match.group(1) is not None:
            out.append(Token(TokenType.IDENTIFIER, match.group(1), start=match.start(), end=match.end() - 1))
        elif match.group(2) is not None:
            out.append(Token(TokenType.VAR, match.group(2), start=match.start(), end=match.end() - 1))
        elif match.group(3) is not None:
            char = match.group(3)
            kind = {
                "(": TokenType.L_PAREN,
                ")": TokenType.R_PAREN,
                ",": TokenType.COMMA,
                ".": TokenType.DOT,
            }.get(char, TokenType.VAR)
            out.append(Token(kind, char, start=match.start(), end=match.end() - 1))
        elif match.group(0).startswith(("'", '"')):
            out.append(Token(TokenType.STRING, match.group(0), start=match.start(), end=match.end() - 1))
    return out
