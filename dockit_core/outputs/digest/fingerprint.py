"""Fingerprints: what stays of a statement, a command or a request once its values are taken out, so
that the executions of one query in a loop are counted as one.

SQL follows pt-query-digest's fingerprint (literals to `?`, `IN (...)` and `VALUES (...),(...)` lists
to `(?+)`, comments dropped, whitespace collapsed, words lower-cased) on a tokenizer instead of its
regular expressions, so that the text inside a string or a quoted identifier is never rewritten, and
with the dialect of the protocol (PostgreSQL's `"identifiers"`, `E'...'` and `$$...$$` strings).
Placeholders (`?`, `$1`, `:name`) are kept as they are: a prepared statement fingerprints on its SQL.
docs/digest.md says where this differs from pt-query-digest and pg_stat_statements, and why.

Redis: the command and its keys' pattern (`GET user:?`). HTTP: the method and the route
(`GET /users/{id}/orders`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Longest text fingerprinted (a multi-row INSERT can be megabytes): past it, the rest is left out and
# the fingerprint says so. Longest fingerprint kept, for the same reason.
MAX_SQL = 256 * 1024
MAX_FINGERPRINT = 2048


@dataclass(frozen=True, slots=True)
class SqlShape:
    """A statement's fingerprint and what the digest flags from its shape."""

    fingerprint: str
    verb: str  # the first word: select, update, delete, insert... ("" when none)
    write_without_where: bool  # an UPDATE or DELETE with no WHERE of its own: every row of the table


_COMMON = r"""
  (?P<space>\s+)
| (?P<comment>--[^\n]*|/\*(?!!).*?(?:\*/|\Z))
| (?P<versioned>/\*!.*?(?:\*/|\Z))
| (?P<hex>[xX]'[0-9a-fA-F]*'|0x[0-9a-fA-F]+\b|[bB]'[01]*'|0b[01]+\b)
| (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
| (?P<variable>@@?[\w$.]+)
| (?P<placeholder>\?|\$\d+|(?<!:):[A-Za-z_]\w*|(?<!:):\d+)
| (?P<word>[^\W\d][\w$]*)
| (?P<operator>::|<=>|<>|!=|<=|>=|\|\||&&|->>|->|:=|[^\s\w])
"""
# MySQL: '...' and "..." are strings (without ANSI_QUOTES), backslash escapes, `#` starts a comment.
_MYSQL = re.compile(
    r"""(?P<string>[nN]?'(?:[^'\\]|\\.|'')*(?:'|\Z)|"(?:[^"\\]|\\.|"")*(?:"|\Z)|_[a-z0-9]+'(?:[^'\\]|\\.|'')*(?:'|\Z))
| (?P<quoted>`(?:[^`]|``)*(?:`|\Z))
| (?P<hashcomment>\#[^\n]*)
|"""
    + _COMMON,
    re.VERBOSE | re.DOTALL,
)
# PostgreSQL: "..." is an identifier; '...' a string where a backslash is text (standard strings), E'...'
# one with escapes, $tag$...$tag$ a dollar-quoted string.
_POSTGRES = re.compile(
    r"""(?P<string>[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z)|[uU]&'(?:[^']|'')*(?:'|\Z)|[nN]?'(?:[^']|'')*(?:'|\Z)
                  |\$(?P<tag>[^\W\d]\w*|)\$.*?(?:\$(?P=tag)\$|\Z))
| (?P<quoted>"(?:[^"]|"")*(?:"|\Z))
|"""
    + _COMMON,
    re.VERBOSE | re.DOTALL,
)

_LITERAL_KINDS = frozenset({"string", "hex", "number"})
# After these a `-` or `+` is a sign, not a subtraction (`a = -1`, `(-1, 2)`, `limit -1`).
_VALUE_END = frozenset({"?", ")", "]"})
# Words after which `(` opens a list or a subquery, written with a space: `from (select`, `in(?+)` stays
# pt-query-digest's.
_SPACED_BEFORE_PAREN = frozenset(
    {"in", "from", "join", "as", "exists", "and", "or", "not", "on", "where", "select", "union", "all", "any",
     "some", "when", "then", "else", "set", "by", "having", "with", "using", "lateral", "=", "<", ">",
     "<=", ">=", "<>", "!=", ",", "+", "-", "*", "/", "||", "case", "return", "returning"}
)  # fmt: skip


def sql_fingerprint(text: str, protocol: str = "mysql") -> SqlShape:
    """The fingerprint of one SQL statement as the given protocol's server reads it (`postgresql`:
    PostgreSQL's quoting; anything else: MySQL's, which Oracle's and most others' literals also fit)."""
    cut = len(text) > MAX_SQL
    if cut:
        text = text[:MAX_SQL]
    scanner = _POSTGRES if protocol == "postgresql" else _MYSQL
    tokens: list[str] = []
    append = tokens.append
    for match in scanner.finditer(text):
        kind = match.lastgroup
        if kind == "tag":  # the dollar quote's tag group closed last: the string itself
            kind = "string"
        if kind in ("space", "comment", "hashcomment"):
            continue
        if kind in _LITERAL_KINDS:
            if tokens and tokens[-1] in ("-", "+") and (len(tokens) < 2 or not _is_value(tokens[-2])):
                tokens[-1] = "?"  # a signed number: one literal
            else:
                append("?")
        elif kind == "word" or kind == "variable":
            word = match.group().lower()
            if word == "null" and not (tokens and (tokens[-1] == "is" or tokens[-2:] == ["is", "not"])):
                append("?")
            else:
                append(word)
        elif kind == "versioned":
            append(" ".join(match.group().split()).lower())
        else:  # quoted identifiers as written; placeholders and operators
            append(match.group())
    while tokens and tokens[-1] == ";":
        tokens.pop()
    tokens = _collapse_lists(tokens)
    tokens = _simplify_limit_and_order(tokens)
    fingerprint = _join(tokens)
    if tokens[:1] == ["call"] and len(tokens) > 1:
        fingerprint = f"call {tokens[1]}"  # a procedure's arguments are values, as pt-query-digest says
    elif tokens[:1] == ["use"] and len(tokens) == 2:
        fingerprint = "use ?"  # the database is a value too (pt-query-digest's rule)
    elif "union" in tokens:
        fingerprint = _REPEATED_UNION.sub(r"\1 /*repeat\2*/", fingerprint)
    if cut or len(fingerprint) > MAX_FINGERPRINT:
        fingerprint = fingerprint[:MAX_FINGERPRINT] + " /* cut */"
    verb = next((t for t in tokens if t != "("), "")
    return SqlShape(fingerprint, verb, verb in ("update", "delete") and not _has_top_level_where(tokens))


# `select ... union select ...` of the same select: one fingerprint whatever the count (pt-query-digest's).
_REPEATED_UNION = re.compile(r"\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+")


def _is_value(token: str) -> bool:
    """Whether a token ends an operand (so that a following `-` subtracts)."""
    return token in _VALUE_END or token[0].isalnum() or token[0] in '_`"$:'


def _is_placeholder(token: str) -> bool:
    return token == "?" or (len(token) > 1 and token[0] in "$:")


def _paren_group(tokens: list[str], start: int) -> int:
    """The index after the `)` that closes the `(` at `start` when only placeholders and commas are
    between them, else -1."""
    i = start + 1
    expect_value = True
    while i < len(tokens):
        token = tokens[i]
        if token == ")":
            return i + 1 if not expect_value else -1
        if expect_value and _is_placeholder(token):
            expect_value = False
        elif not expect_value and token == ",":
            expect_value = True
        else:
            return -1
        i += 1
    return -1


def _collapse_lists(tokens: list[str]) -> list[str]:
    """`in (?, ?, ?)` -> `in (?+)`; `values (?, ?), (?, ?)` -> `values (?+)`, as pt-query-digest does:
    a list's length is a value, not a different query. Lists with anything but values are kept, and
    the repeated tuples of a multi-row VALUES whose tuples are all alike reduced to the first."""
    out: list[str] = []
    i = 0
    n = len(tokens)
    while i < n:
        token = tokens[i]
        out.append(token)
        i += 1
        if token not in ("in", "values", "value") or i >= n or tokens[i] != "(":
            continue
        end = _paren_group(tokens, i)
        if end > 0:
            while end < n - 1 and tokens[end] == "," and tokens[end + 1] == "(":
                following = _paren_group(tokens, end + 1)
                if following < 0 or token == "in":
                    break
                end = following
            out.append("(?+)")
            i = end
        elif token != "in":  # VALUES tuples holding expressions: the later ones shaped as the first dropped
            first_end = _matching(tokens, i)
            if first_end < 0:
                continue
            shape = tokens[i:first_end]
            end = first_end
            while tokens[end : end + 1] == [","] and tokens[end + 1 : end + 1 + len(shape)] == shape:
                end += 1 + len(shape)
            out += shape
            i = end
    return out


def _matching(tokens: list[str], start: int) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i] == "(":
            depth += 1
        elif tokens[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _simplify_limit_and_order(tokens: list[str]) -> list[str]:
    """`limit ?, ?` and `limit ? offset ?` -> `limit ?`; `asc` dropped after `order by` (the default
    order): pt-query-digest's two last rules."""
    out: list[str] = []
    ordering = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "limit" and tokens[i + 1 : i + 2] == ["?"]:
            out += ("limit", "?")
            i += 2
            if tokens[i : i + 2] in ([",", "?"], ["offset", "?"]):
                i += 2
            continue
        if token == "by" and out and out[-1] == "order":
            ordering = True
        elif token == "asc" and ordering:
            i += 1
            continue
        out.append(token)
        i += 1
    return out


def _join(tokens: list[str]) -> str:
    """Tokens written back with one canonical spacing, whatever the author's: `f(a, b)`, `t.c`,
    `a = ?`, `in(?+)` (no space between a name and its parenthesis, as pt-query-digest writes lists)."""
    parts: list[str] = []
    previous = ""
    for token in tokens:
        if parts and not (
            token in (",", ")", ".", "(?+)", ";", "::")
            or previous in ("(", ".", "::")
            or (
                token == "("
                and previous not in _SPACED_BEFORE_PAREN
                and (previous[:1].isalnum() or previous[:1] in '_`"')
            )
        ):
            parts.append(" ")
        parts.append(token)
        previous = token
    return "".join(parts)


def _has_top_level_where(tokens: list[str]) -> bool:
    depth = 0
    for token in tokens:
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token == "where":
            return True
    return False


def query_id(fingerprint: str) -> str:
    """pt-query-digest's query ID for a fingerprint (`0x` and the MD5 of the fingerprint in upper case,
    as pt-query-digest 3 prints it; 2.x printed its last 16 digits): the same fingerprint gives the
    same ID in both tools' reports."""
    digest = hashlib.md5(fingerprint.encode("utf-8", "surrogateescape"), usedforsecurity=False)
    return "0x" + digest.hexdigest().upper()


# --- Redis --------------------------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KEY_SEGMENT = re.compile(r"[^:/.\-_|#,{}=@\[\]\s]+")
_ID_SEGMENT = re.compile(
    r"\d+|(?=[a-fA-F]*\d)[0-9a-fA-F]{8,}|(?=\d*[a-fA-F])(?=[a-fA-F]*\d)[0-9a-fA-F]{16,}\Z"
)

# Commands without keys: the command alone (SELECT's database and AUTH's credentials are values).
_REDIS_NO_KEY = frozenset(
    {"PING", "ECHO", "INFO", "AUTH", "SELECT", "MULTI", "EXEC", "DISCARD", "QUIT", "HELLO", "DBSIZE",
     "FLUSHDB", "FLUSHALL", "TIME", "SAVE", "BGSAVE", "BGREWRITEAOF", "LASTSAVE", "SWAPDB", "WAIT",
     "READONLY", "READWRITE", "RESET", "ROLE", "SHUTDOWN", "UNWATCH", "RANDOMKEY", "MONITOR", "SYNC",
     "PSYNC", "REPLCONF", "SCAN", "KEYS", "PUNSUBSCRIBE", "SLOWLOG", "LATENCY", "LOLWUT"}
)  # fmt: skip
# Commands named by their first argument too (`CLIENT SETNAME`, `CONFIG GET`).
_REDIS_SUBCOMMAND = frozenset(
    {"CLIENT", "CONFIG", "SCRIPT", "CLUSTER", "OBJECT", "MEMORY", "XINFO", "XGROUP", "COMMAND", "ACL",
     "FUNCTION", "DEBUG", "MODULE", "PUBSUB"}
)  # fmt: skip
# Every argument is a key (or a channel).
_REDIS_ALL_KEYS = frozenset(
    {"DEL", "UNLINK", "EXISTS", "TOUCH", "WATCH", "MGET", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE",
     "SINTER", "SUNION", "SDIFF", "PFCOUNT"}
)  # fmt: skip
_REDIS_PAIRS = frozenset({"MSET", "MSETNX"})  # key value key value...
_REDIS_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})


def key_pattern(key: str) -> str:
    """A key with its ids taken out: `user:42` -> `user:?`, `session:5f0c...` -> `session:?`. An id is a
    segment (between `:`, `/`, `.`, `-`, `_`...) of digits, a UUID, or hex of 8 digits or more with a digit
    in it (so that words such as `cafe` or `feed` stay)."""
    key = _UUID.sub("?", key)
    return _KEY_SEGMENT.sub(_segment, key)


def _segment(match: re.Match[str]) -> str:
    return "?" if _ID_SEGMENT.fullmatch(match.group()) else match.group()


def redis_fingerprint(command: str, arguments: Sequence[str]) -> str:
    """`GET user:?`, `MGET user:?+` (the same pattern repeated), `HSET cart:? ...` (the first key only:
    fields and values are data), `CLIENT SETNAME`, `EVALSHA ? user:?` (a script's keys)."""
    name = command.upper()
    if name in _REDIS_NO_KEY or not arguments:
        return name
    if name in _REDIS_SUBCOMMAND:
        return f"{name} {arguments[0].upper()}"
    if name in _REDIS_SCRIPTS:
        try:
            count = int(arguments[1]) if len(arguments) > 1 else 0
        except ValueError:
            count = 0
        keys = list(arguments[2 : 2 + max(0, min(count, 64))])
        return " ".join([name, "?", *_patterns(keys)])
    if name in _REDIS_ALL_KEYS:
        keys = list(arguments[:256])
    elif name in _REDIS_PAIRS:
        keys = list(arguments[:512:2])
    else:
        keys = [arguments[0]]
    return " ".join([name, *_patterns(keys)])


def _patterns(keys: list[str]) -> list[str]:
    """Key patterns in order, a run of one pattern written once with `+` (`user:?+`)."""
    out: list[str] = []
    repeated = False
    for key in keys:
        pattern = key_pattern(key)
        if out and out[-1] == pattern:
            repeated = True
            continue
        if repeated:
            out[-1] += "+"
            repeated = False
        out.append(pattern)
    if repeated:
        out[-1] += "+"
    return out


# --- HTTP ---------------------------------------------------------------------------------------------

_PATH_ID = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|(?=[a-fA-F]*\d)[0-9a-fA-F]{16,}"
)


def http_fingerprint(method: str | None, url: str | None) -> str:
    """`GET /users/{id}/orders`: the method and the path, without scheme, host, query string or fragment,
    each segment that is a number, a UUID or a long hex id (16 digits or more: object ids, hashes)
    written `{id}`."""
    path = url or "/"
    if "://" in path[:12]:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    segments = ["{id}" if _PATH_ID.fullmatch(segment) else segment for segment in path.split("/")]
    route = "/".join(segments)
    if len(route) > MAX_FINGERPRINT:
        route = route[:MAX_FINGERPRINT]
    return f"{(method or '?').upper()} {route}"


# --- SQL, many times over -----------------------------------------------------------------------------

# A statement's values replaced in one C-level pass (its "skeleton"): the executions of one query in a
# loop have the same skeleton, so the tokenizer runs once per query, not once per execution. The
# patterns are the tokenizer's own (strings, quoted identifiers, numbers where a token may start), so
# that two texts with the same skeleton always have the same fingerprint; a text with a comment, a
# backslash or PostgreSQL's `"` or `$` quoting, where a skeleton could cut differently, is tokenized
# whole instead.
_SKELETON_MYSQL = re.compile(  # the lookahead first: most characters start nothing (2.5 times faster)
    r"""(?=[`'"nN\d.])(?:(?P<keep>`(?:[^`]|``)*(?:`|\Z))
| (?P<string>[nN]?'(?:[^'\\]|\\.|'')*(?:'|\Z)|"(?:[^"\\]|\\.|"")*(?:"|\Z))
| (?<![\w$@.:])(?:0x[0-9a-fA-F]+\b|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))""",
    re.VERBOSE | re.DOTALL,
)
_SKELETON_POSTGRES = re.compile(
    r"""(?=['\d.])(?:(?P<string>'(?:[^']|'')*(?:'|\Z))
| (?<![\w$@.:])(?:0x[0-9a-fA-F]+\b|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))""",
    re.VERBOSE | re.DOTALL,
)
_UNSAFE_MYSQL = re.compile(r"--|#|/\*|\\")
_UNSAFE_POSTGRES = re.compile(r'--|/\*|\\|"|\$\D|\$\Z')


def _literal(match: re.Match[str]) -> str:
    return match.group() if match.lastgroup == "keep" else "?"


class SqlFingerprints:
    """`sql_fingerprint` for a stream of statements, remembering the last CACHED queries' shapes by
    skeleton: a loop of 20,000 executions tokenizes its statement once."""

    CACHED = 4096

    def __init__(self) -> None:
        self._shapes: dict[tuple[str, str], SqlShape] = {}

    def shape(self, text: str, protocol: str) -> SqlShape:
        postgres = protocol == "postgresql"
        if len(text) > 4096 or (_UNSAFE_POSTGRES if postgres else _UNSAFE_MYSQL).search(text):
            key = (protocol, text)  # tokenized whole; the text itself remembered (a prepared statement's)
        else:
            key = (protocol, (_SKELETON_POSTGRES if postgres else _SKELETON_MYSQL).sub(_literal, text))
        shape = self._shapes.get(key)
        if shape is None:
            shape = sql_fingerprint(text, protocol)
            if len(self._shapes) >= self.CACHED:
                self._shapes.clear()
            self._shapes[key] = shape
        return shape
