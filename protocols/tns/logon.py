"""The logon (AUTH phase one and two, and the server's answers): the user and the public key/value pairs.

Read: the database user an AUTH call names, and the whitelisted pairs (`PUBLIC_AUTH_KEYS`: program,
machine, OS pid, version, database and instance names...) in either layout. Never read: the session
keys, password verifiers and hashes the same messages carry, nor the ANO negotiation before them.
"""

from __future__ import annotations

import re
import struct

from protocols.tns.datatypes import MAX_SHORT_LENGTH, decode_ub, is_printable
from protocols.tns.ttc import NATIVE_POINTER, NULL_POINTER, build_function

PUBLIC_AUTH_KEYS = frozenset(
    {
        "AUTH_TERMINAL",
        "AUTH_PROGRAM_NM",
        "AUTH_MACHINE",
        "AUTH_PID",
        "AUTH_SID",
        "AUTH_VERSION_NO",
        "AUTH_VERSION_STRING",
        "AUTH_DBNAME",
        "AUTH_INSTANCENAME",
        "AUTH_INSTANCE_NO",
        "AUTH_SESSION_ID",
        "AUTH_SERIAL_NUM",
        "AUTH_SC_SERVICE_NAME",
        "AUTH_SC_INSTANCE_NAME",
        "AUTH_SC_DB_DOMAIN",
        "AUTH_SC_DBUNIQUE_NAME",
        "AUTH_SC_SERVER_HOST",
        "AUTH_SC_INSTANCE_START_TIME",
    }
)  # a whitelist: session keys, password verifiers and hashes are never read out
_KEY = re.compile(rb"[A-Z][A-Z0-9_]{2,62}\x00?")


def auth_user(message: bytes | bytearray) -> str | None:
    """The database user an AUTH call (0x76 or 0x73) logs on as."""
    if len(message) < 15:
        return None
    if bytes(message[3:11]) in (NATIVE_POINTER, NULL_POINTER):
        (length,) = struct.unpack_from("<I", message, 11)
        start = 19
    else:  # universal: pointer byte, compressed length
        item = decode_ub(message, 4)
        if item is None:
            return None
        length, start = item[0], 4 + item[1]
    if not 0 < length <= 128:
        return None
    for pos in range(start, min(len(message) - length, start + 120)):
        if message[pos] == length:
            raw = bytes(message[pos + 1 : pos + 1 + length])
            if len(raw) == length and is_printable(raw) and b" " not in raw:
                return raw.decode("utf-8", "replace")
    return None


def auth_pairs(data: bytes | bytearray) -> dict[str, str]:
    """The public logon key/value pairs in `data`, in either representation.

    Each key and value is a length (4 bytes little-endian natively, a compressed integer otherwise)
    followed by a TTC byte string; both lengths must agree. Only whitelisted keys are read.
    """
    out: dict[str, str] = {}
    for match in _KEY.finditer(data):
        pos = match.start()
        key_length = data[pos - 1] if pos else 0
        if key_length == 0 or pos < 3:
            continue
        if pos >= 5 and bytes(data[pos - 5 : pos - 1]) == bytes([key_length, 0, 0, 0]):
            native = True
        elif bytes(data[pos - 3 : pos - 1]) == bytes([1, key_length]):
            native = False
        else:
            continue
        key = bytes(data[pos : pos + key_length]).rstrip(b"\x00").decode("ascii", "replace")
        if key not in PUBLIC_AUTH_KEYS:
            continue
        value = _pair_value(data, pos + key_length, native)
        if value is not None:
            out.setdefault(key, value)
    return out


def _pair_value(data: bytes | bytearray, at: int, native: bool) -> str | None:
    if native:
        if len(data) < at + 4:
            return None
        (length,) = struct.unpack_from("<I", data, at)
        start = at + 4
    else:
        item = decode_ub(data, at)
        if item is None:
            return None
        length, start = item[0], at + item[1]
    if length == 0:
        return ""
    if not 0 < length <= MAX_SHORT_LENGTH or len(data) <= start or data[start] != length:
        return None
    return bytes(data[start + 1 : start + 1 + length]).rstrip(b"\x00").decode("utf-8", "replace")


def build_auth_native(function: int, sequence: int, user: str, pairs: dict[str, str], mode: int = 1) -> bytes:
    """An AUTH call in the native layout (for tests): user, then key/value pairs."""
    raw_user = user.encode()
    body = (
        NATIVE_POINTER
        + struct.pack("<II", len(raw_user), mode)
        + NATIVE_POINTER
        + struct.pack("<Q", len(pairs))
    )
    body += NATIVE_POINTER + NATIVE_POINTER + bytes([len(raw_user)]) + raw_user
    body += b"".join(native_pair(key, value) for key, value in pairs.items())
    return build_function(function, sequence, body)


def native_pair(key: str, value: str, flags: int = 0) -> bytes:
    raw_key, raw_value = key.encode(), value.encode()
    out = struct.pack("<I", len(raw_key)) + bytes([len(raw_key)]) + raw_key
    out += struct.pack("<I", len(raw_value)) + (bytes([len(raw_value)]) + raw_value if raw_value else b"")
    return out + struct.pack("<I", flags)


def version_from_number(number: int) -> str:
    """AUTH_VERSION_NO (e.g. 186647040) as Oracle prints it (11.2.0.2.0)."""
    return ".".join(
        str(part)
        for part in (
            (number >> 24) & 0xFF,
            (number >> 20) & 0x0F,
            (number >> 12) & 0xFF,
            (number >> 8) & 0x0F,
            number & 0xFF,
        )
    )
