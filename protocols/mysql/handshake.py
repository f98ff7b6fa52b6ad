"""The connection phase: the server's greeting and the client's login (or its SSL request).

Decoded: the greeting (handshake v10: server version, connection id, capabilities with MariaDB's
extended ones, character set, status, auth plugin), the 32-byte SSL request and HandshakeResponse41
(user, database, auth plugin, connection attributes such as `_client_name`), and the database a
COM_CHANGE_USER names. The auth response is
skipped and never kept. Not decoded: the old pre-4.1 handshake response (only its capabilities and
user), the auth switch and more-data exchanges that follow, anything after an SSL request (it is TLS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from construct import Bytes, Int8ul, Int32ul, Struct

from protocols.mysql.codec import MySqlError, Reader, lenenc_str, text
from protocols.mysql.constants import (
    CLIENT_CONNECT_ATTRS,
    CLIENT_CONNECT_WITH_DB,
    CLIENT_LONG_PASSWORD,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
    CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION,
    CLIENT_SSL,
)

SslRequest = Struct(
    "capabilities" / Int32ul,
    "max_packet_size" / Int32ul,
    "character_set" / Int8ul,
    "filler" / Bytes(19),
    "mariadb_capabilities" / Int32ul,
)


@dataclass(frozen=True, kw_only=True)
class Greeting:
    """The server's first packet (handshake v10)."""

    protocol_version: int
    server_version: str
    connection_id: int
    capabilities: int  # MariaDB's extended capabilities as bits 32+
    character_set: int | None = None
    status: int | None = None
    auth_plugin: str | None = None


def parse_greeting(payload: bytes) -> Greeting:
    r = Reader(payload)
    protocol_version = r.int(1)
    if protocol_version != 10:
        raise MySqlError(f"handshake protocol {protocol_version}, not 10")
    server_version = text(r.nul_string()) or ""
    connection_id = r.int(4)
    r.take(8 + 1)  # auth plugin data part 1, filler
    capabilities = r.int(2)
    if not r.remaining:
        return Greeting(
            protocol_version=10,
            server_version=server_version,
            connection_id=connection_id,
            capabilities=capabilities,
        )
    character_set = r.int(1)
    status = r.int(2)
    capabilities |= r.int(2) << 16
    auth_length = r.int(1)
    r.take(6)
    mariadb = r.int(4)
    if not capabilities & CLIENT_LONG_PASSWORD:
        capabilities |= mariadb << 32
    plugin = None
    if capabilities & CLIENT_SECURE_CONNECTION:
        r.take(min(r.remaining, max(13, auth_length - 8)))
    if capabilities & CLIENT_PLUGIN_AUTH and r.remaining:
        raw = r.rest()
        plugin = text(raw.split(b"\0", 1)[0])
    return Greeting(
        protocol_version=10,
        server_version=server_version,
        connection_id=connection_id,
        capabilities=capabilities,
        character_set=character_set,
        status=status,
        auth_plugin=plugin,
    )


def build_greeting(
    server_version: str,
    connection_id: int,
    capabilities: int,
    *,
    auth_plugin: str = "mysql_native_password",
    character_set: int = 45,
    status: int = 2,
) -> bytes:
    """A handshake v10 payload (for tests and fuzzing); the scramble is a fixed dummy."""
    scramble = b"0123456789abcdefghij"
    mariadb = capabilities >> 32 if not capabilities & CLIENT_LONG_PASSWORD else 0
    return (
        b"\x0a"
        + server_version.encode() + b"\0"
        + connection_id.to_bytes(4, "little")
        + scramble[:8] + b"\0"
        + (capabilities & 0xFFFF).to_bytes(2, "little")
        + bytes([character_set])
        + status.to_bytes(2, "little")
        + ((capabilities >> 16) & 0xFFFF).to_bytes(2, "little")
        + bytes([len(scramble) + 1])
        + bytes(6)
        + mariadb.to_bytes(4, "little")
        + scramble[8:] + b"\0"
        + auth_plugin.encode() + b"\0"
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class HandshakeResponse:
    """The client's login packet; the auth response is skipped on purpose and never kept."""

    capabilities: int  # MariaDB's extended capabilities as bits 32+
    user: str | None = None
    database: str | None = None
    auth_plugin: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    ssl_request: bool = False


def parse_handshake_response(payload: bytes) -> HandshakeResponse:
    """HandshakeResponse41, the 32-byte SSL request, or (user only) the pre-4.1 response."""
    r = Reader(payload)
    capabilities = r.int(2)
    if not capabilities & CLIENT_PROTOCOL_41:
        r.take(3)  # max packet size (old protocol)
        return HandshakeResponse(capabilities=capabilities, user=text(r.nul_string()))
    capabilities |= r.int(2) << 16
    r.take(4 + 1 + 19)  # max packet size, character set, filler
    mariadb = r.int(4)
    if not capabilities & CLIENT_LONG_PASSWORD:
        capabilities |= mariadb << 32
    if not r.remaining:
        return HandshakeResponse(capabilities=capabilities, ssl_request=bool(capabilities & CLIENT_SSL))
    user = text(r.nul_string())
    if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        r.lenenc_bytes()
    elif capabilities & CLIENT_SECURE_CONNECTION:
        r.take(r.int(1))
    else:
        r.nul_string()
    database = None
    if capabilities & CLIENT_CONNECT_WITH_DB and r.remaining:
        database = text(r.nul_string())
    plugin = None
    if capabilities & CLIENT_PLUGIN_AUTH and r.remaining:
        plugin = text(r.nul_string())
    attributes: dict[str, str] = {}
    if capabilities & CLIENT_CONNECT_ATTRS and r.remaining:
        attrs = Reader(r.lenenc_bytes() or b"")
        while attrs.remaining:
            key = text(attrs.lenenc_bytes()) or ""
            attributes[key] = text(attrs.lenenc_bytes()) or ""
    return HandshakeResponse(
        capabilities=capabilities, user=user, database=database, auth_plugin=plugin, attributes=attributes
    )


def change_user_database(payload: bytes, capabilities: int) -> str | None:
    """The database a COM_CHANGE_USER asks for ("" for none; None when the packet is cut): after the
    user and the auth response (skipped, never kept), as HandshakeResponse41 lays them out."""
    try:
        r = Reader(payload, 1)
        r.nul_string()  # user
        if capabilities & CLIENT_SECURE_CONNECTION:
            r.take(r.int(1))
        else:
            r.nul_string()
        return text(r.nul_string()) if r.remaining else None
    except MySqlError:
        return None


def build_handshake_response(
    capabilities: int,
    user: str,
    *,
    database: str | None = None,
    auth_response: bytes = b"",
    auth_plugin: str | None = "mysql_native_password",
    attributes: dict[str, str] | None = None,
) -> bytes:
    """A HandshakeResponse41 payload (for tests)."""
    caps = capabilities | CLIENT_PROTOCOL_41
    if database is not None:
        caps |= CLIENT_CONNECT_WITH_DB
    mariadb = caps >> 32 if not caps & CLIENT_LONG_PASSWORD else 0
    out = bytearray(
        SslRequest.build(
            {
                "capabilities": caps & 0xFFFFFFFF,
                "max_packet_size": 1 << 24,
                "character_set": 45,
                "filler": bytes(19),
                "mariadb_capabilities": mariadb,
            }
        )
    )
    out += user.encode() + b"\0"
    if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        out += lenenc_str(auth_response)
    else:
        out += bytes([len(auth_response)]) + auth_response
    if database is not None:
        out += database.encode() + b"\0"
    if caps & CLIENT_PLUGIN_AUTH and auth_plugin is not None:
        out += auth_plugin.encode() + b"\0"
    if caps & CLIENT_CONNECT_ATTRS:
        blob = b"".join(
            lenenc_str(k.encode()) + lenenc_str(v.encode()) for k, v in (attributes or {}).items()
        )
        out += lenenc_str(blob)
    return bytes(out)
