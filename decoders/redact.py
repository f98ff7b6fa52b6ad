"""Secrets never reach an output: the one place that says which header and field names carry them."""

from __future__ import annotations

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
