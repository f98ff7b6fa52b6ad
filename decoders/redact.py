"""Secrets never reach an output: the one place that says which header and field names carry them."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "is_secret_column",
    "is_secret_header",
    "redact_header",
    "redact_row",
    "redact_sql",
    "redact_url",
]

REDACTED = "<redacted>"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "set-cookie2",
        "x-api-key",
        "api-key",
        "apikey",
        "x-goog-api-key",
        "x-functions-key",
        "ocp-apim-subscription-key",
        "private-token",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
        "x-amz-security-token",
        "www-authenticate",
        "proxy-authenticate",
    }
)

# Words that make any header name a secret one (`X-Vault-Token`, `X-Client-Secret`, `X-Myapp-Api-Key`).
SECRET_HEADER_WORDS = r"token|secret|passw(?:or)?d|api[-_]?key|auth|credential|signature|session"
_SECRET_HEADER_WORD = re.compile(SECRET_HEADER_WORDS)


def is_secret_header(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in SECRET_HEADERS or bool(_SECRET_HEADER_WORD.search(lowered))


def redact_header(name: str, value: str) -> str:
    """A header's value as outputs may show it: a credential header's is hidden whole, and a URL in any
    other (`Referer`, `Location`, `Link`...) loses its password and secret query parameters."""
    return REDACTED if is_secret_header(name) else redact_url(value)


# Query-string parameters that carry secrets: `?access_token=...`, `&api_key=...`, AWS signed URLs. A
# name is matched once percent-decoded and split at brackets and dots, so `user%5Bpassword%5D=` (Rails
# and PHP forms, `requests` encoding `user[password]`) and `access%5Ftoken=` are secret too.
_QUERY_PARAMETER = re.compile(r"([?&;])([^=&#?;\s\"'\\]{1,256})=([^&#\s\"'\\]*)")
_SECRET_NAME_PART = re.compile(
    r"(?i)[\w-]*(?:token|secret|passw(?:or)?d|api[_-]?key|signature|credential|private[_-]?key"
    r"|access[_-]?key)[\w-]*|key|pass|pwd|sig|auth|session|session[_-]?id|jwt"
)
_NAME_SEPARATORS = re.compile(r"[\[\].]")
# `scheme://user:password@host`: the password goes, the user stays.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^/\s:@\"'\\]*):[^@/\s\"'\\]*@")


def _secret_parameter(name: str) -> bool:
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    return any(_SECRET_NAME_PART.fullmatch(part) for part in _NAME_SEPARATORS.split(name) if part)


def _redact_parameter(match: re.Match[str]) -> str:
    if not _secret_parameter(match.group(2)):
        value = match.group(3)
        if "?" in value or ";" in value:  # `?b=c?password=x`: a parameter may hide in a value
            return f"{match.group(1)}{match.group(2)}={_QUERY_PARAMETER.sub(_redact_parameter, value)}"
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}={REDACTED}"


def redact_url(text: str) -> str:
    """A URL or request target (or text holding some) with its password and secret query values
    replaced."""
    if "@" in text and "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    if "=" not in text:
        return text
    return _QUERY_PARAMETER.sub(_redact_parameter, text)


# Passwords inside SQL: `IDENTIFIED BY 'x'` (MySQL, quoted), `PASSWORD('x')`, `SET PASSWORD FOR u = 'x'`,
# and Oracle's bare `IDENTIFIED BY tiger`.
_SQL_SECRET = re.compile(
    r"""((?:IDENTIFIED\s+(?:WITH\s+[\w'"`]+\s+)?(?:BY|AS)(?:\s+PASSWORD)?|PASSWORD\s*\(|PASSWORD\s*=|PASSWORD\s+FOR\s+\S+\s*=)\s*)"""
    r"""('(?:[^'\\]|\\.|'')*(?:'|$)|"(?:[^"\\]|\\.|"")*(?:"|$))""",
    re.I | re.S,
)
_SQL_BARE_SECRET = re.compile(r"""(IDENTIFIED\s+BY\s+)(?!VALUES\b|PASSWORD\b)([^\s;'"()]+)""", re.I)
# MariaDB's `IDENTIFIED VIA plugin USING 'hash or password'` (and `OR plugin USING '...'` after it).
_VIA_USING = re.compile(
    r"""(\b(?:VIA|OR)\s+[\w'"`]+\s+USING\s+)('(?:[^'\\]|\\.|'')*(?:'|$)|"(?:[^"\\]|\\.|"")*(?:"|$))""",
    re.I | re.S,
)


# PostgreSQL's `CREATE ROLE u [WITH] [ENCRYPTED] PASSWORD 'x'` (`ALTER USER`, psql's \password, a user
# mapping's OPTIONS (password 'x')): the literal right after the word, as a string, E'...' or $$...$$.
_PG_PASSWORD = re.compile(
    r"""(\bPASSWORD\s+)([eE]?'(?:[^'\\]|\\.|'')*(?:'|$)|\$(\w*)\$.*?(?:\$\3\$|$))""",
    re.I | re.S,
)


def redact_sql(sql: str) -> str:
    """SQL with the literals that carry passwords or auth hashes replaced by '<redacted>'."""
    sql = _SQL_SECRET.sub(lambda m: m.group(1) + "'<redacted>'", sql)
    sql = _SQL_BARE_SECRET.sub(lambda m: m.group(1) + "'<redacted>'", sql)
    sql = _PG_PASSWORD.sub(lambda m: m.group(1) + "'<redacted>'", sql)
    return _VIA_USING.sub(lambda m: m.group(1) + "'<redacted>'", sql) if "USING" in sql.upper() else sql


# Result-set columns whose values are secrets: a `--rows` sample of `SELECT user, authentication_string
# FROM mysql.user` must not print the hashes. Matched as a word of the name (`user_password`, `api_key`).
_SECRET_COLUMN = re.compile(
    r"(?:^|[^a-z])(?:pass|passwd|password|pwd|secret|token|authentication_string|auth_string|api_?key"
    r"|private_key|credentials?|password_hash|salt)(?:$|[^a-z])"
)


def is_secret_column(name: str) -> bool:
    lowered = name.lower()
    return bool(_SECRET_COLUMN.search(lowered)) or "password" in lowered or "secret" in lowered


def redact_row(columns: list[str], row: list[str | None]) -> list[str | None]:
    """A sampled row with the values of secret columns (by name) replaced."""
    if not any(is_secret_column(name) for name in columns):
        return row
    return [
        REDACTED if value is not None and i < len(columns) and is_secret_column(columns[i]) else value
        for i, value in enumerate(row)
    ]
