"""The server's generic replies: OK, ERR and EOF.

Decoded: OK (affected rows, last insert id, status flags, warnings, info text, length-prefixed or
not), ERR (code, SQL state, message), the old-style EOF (warnings, status flags). Which 0xfe packet
is an EOF and which an OK (CLIENT_DEPRECATE_EOF) is the decoder's to say: it knows the capabilities.
Not decoded: the session-state tracking info an OK may carry (CLIENT_SESSION_TRACK).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.mysql.codec import MySqlError, Reader, lenenc_int, lenenc_str, text


@dataclass(frozen=True, kw_only=True)
class Ok:
    affected_rows: int
    last_insert_id: int
    status: int = 0
    warnings: int = 0
    info: str = ""


@dataclass(frozen=True, kw_only=True)
class Err:
    code: int
    sql_state: str | None
    message: str


@dataclass(frozen=True, kw_only=True)
class Eof:
    warnings: int
    status: int


def parse_ok(payload: bytes) -> Ok:
    """An OK packet (header 0x00, or 0xfe when it ends a result set under CLIENT_DEPRECATE_EOF)."""
    r = Reader(payload, 1)
    affected = r.lenenc() or 0
    last_id = r.lenenc() or 0
    status = r.int(2) if r.remaining >= 2 else 0
    warnings = r.int(2) if r.remaining >= 2 else 0
    info = r.rest()
    if info:
        # MariaDB (and MySQL under CLIENT_SESSION_TRACK) prefix the info with its length.
        inner = Reader(info)
        try:
            length = inner.lenenc()
            if length is not None and length == inner.remaining:
                info = inner.rest()
        except MySqlError:
            pass
    return Ok(
        affected_rows=affected,
        last_insert_id=last_id,
        status=status,
        warnings=warnings,
        info=text(info) or "",
    )


def build_ok(
    affected_rows: int = 0,
    last_insert_id: int = 0,
    status: int = 2,
    warnings: int = 0,
    header: int = 0,
    info: str = "",
) -> bytes:
    """An OK payload; `info` is written length-prefixed, as MariaDB does."""
    return (
        bytes([header])
        + lenenc_int(affected_rows)
        + lenenc_int(last_insert_id)
        + status.to_bytes(2, "little")
        + warnings.to_bytes(2, "little")
        + (lenenc_str(info.encode()) if info else b"")
    )


def parse_err(payload: bytes) -> Err:
    r = Reader(payload, 1)
    code = r.int(2)
    sql_state = None
    if r.remaining and payload[r.pos] == 0x23:  # '#': CLIENT_PROTOCOL_41
        r.take(1)
        sql_state = text(r.take(min(5, r.remaining)))
    return Err(code=code, sql_state=sql_state, message=text(r.rest()) or "")


def build_err(code: int, sql_state: str, message: str) -> bytes:
    return b"\xff" + code.to_bytes(2, "little") + b"#" + sql_state.encode()[:5] + message.encode()


def parse_eof(payload: bytes) -> Eof:
    r = Reader(payload, 1)
    if r.remaining < 4:
        return Eof(warnings=0, status=0)
    return Eof(warnings=r.int(2), status=r.int(2))


def eof_status(payload: bytes) -> int:
    """`parse_eof(payload).status` without building the Eof: a result set's end is read once per query."""
    return payload[3] | payload[4] << 8 if len(payload) >= 5 else 0


def build_eof(status: int = 2, warnings: int = 0) -> bytes:
    return b"\xfe" + warnings.to_bytes(2, "little") + status.to_bytes(2, "little")


def is_eof(payload: bytes) -> bool:
    """An old-style EOF packet: 0xfe and shorter than 9 bytes."""
    return len(payload) < 9 and payload[:1] == b"\xfe"
