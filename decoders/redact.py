"""Secrets never reach an output: the one place that says which header and field names carry them."""

from __future__ import annotations

import re

REDACTED = "<redacted>"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "set-cookie2",
        "x-api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
        "x-amz-security-token",
        "www-authenticate",
        "proxy-authenticate",
    }
)


def is_secret_header(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in SECRET_HEADERS or "token" in lowered or "secret" in lowered or "password" in lowered


def redact_header(name: str, value: str) -> str:
    return REDACTED if is_secret_header(name) else value


# Query-string parameters that carry secrets: `?access_token=...`, `&api_key=...`, AWS signed URLs.
_SECRET_QUERY_PARAMETER = re.compile(
    r"(?i)([?&;](?:[\w.-]*(?:token|secret|passw(?:or)?d|api[_-]?key|signature|credential)[\w.-]*"
    r"|key|pass|pwd|sig|auth|session|sessionid)=)[^&#\s\"'\\]*"
)


def redact_url(text: str) -> str:
    """A URL or request target (or text holding some) with its secret query values replaced."""
    if "=" not in text:
        return text
    return _SECRET_QUERY_PARAMETER.sub(lambda m: m.group(1) + REDACTED, text)


# Passwords inside SQL: `IDENTIFIED BY 'x'` (MySQL, quoted), `PASSWORD('x')`, `SET PASSWORD FOR u = 'x'`,
# and Oracle's bare `IDENTIFIED BY tiger`.
_SQL_SECRET = re.compile(
    r"""((?:IDENTIFIED\s+(?:WITH\s+[\w'"`]+\s+)?(?:BY|AS)(?:\s+PASSWORD)?|PASSWORD\s*\(|PASSWORD\s*=|PASSWORD\s+FOR\s+\S+\s*=)\s*)"""
    r"""('(?:[^'\\]|\\.|'')*(?:'|$)|"(?:[^"\\]|\\.|"")*(?:"|$))""",
    re.I | re.S,
)
_SQL_BARE_SECRET = re.compile(r"""(IDENTIFIED\s+BY\s+)(?!VALUES\b|PASSWORD\b)([^\s;'"()]+)""", re.I)


def redact_sql(sql: str) -> str:
    """SQL with the literals that carry passwords replaced by '<redacted>'."""
    sql = _SQL_SECRET.sub(lambda m: m.group(1) + "'<redacted>'", sql)
    return _SQL_BARE_SECRET.sub(lambda m: m.group(1) + "'<redacted>'", sql)


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
