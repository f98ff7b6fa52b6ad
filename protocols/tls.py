"""TLS records and the two hellos: what can be read of a TLS connection before encryption starts.

Decoded: the record header (RFC 8446 5.1: type, legacy version, length), the handshake header (type,
24-bit length), the ClientHello (legacy version, then skipping random, session id, cipher suites and
compression methods, the extensions: server_name type 0 = host_name (RFC 6066 3), supported_versions
(RFC 8446 4.2.1), ALPN (RFC 7301)), the ServerHello (legacy version, the cipher suite, supported_versions:
the version TLS 1.3 really chose, ALPN: the protocol the server chose) and, before TLS 1.3 (which
encrypts it), the server's Certificate message: the subject of its first certificate
(`protocols/x509.py`). Not decoded: anything else after the hellos (encrypted from TLS 1.3 on, and of no
use to dockit before), SSLv2-style hellos.

A hello cut by the tracer is parsed as far as it goes: every field is read only when all its bytes are
there, and the result says whether the end was reached. Nothing here raises on garbage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

CONTENT_TYPES = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
}
HANDSHAKE = 22
CLIENT_HELLO = 1
SERVER_HELLO = 2
CERTIFICATE = 11
RECORD_HEADER = 5
HANDSHAKE_HEADER = 4
MAX_RECORD = 2**14 + 2048  # RFC 8446 5.2: a TLSCiphertext is never longer

EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43
NAME_TYPE_HOST = 0

# IANA's TLS Cipher Suites registry, the suites a client or server of today offers; others print as hex.
CIPHER_SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
}

VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def version_name(version: int | None) -> str | None:
    if version is None:
        return None
    return VERSIONS.get(version, f"0x{version:04x}")


def cipher_name(suite: int | None) -> str | None:
    if suite is None:
        return None
    return CIPHER_SUITES.get(suite, f"0x{suite:04X}")


def is_grease(value: int) -> bool:
    """RFC 8701 values (0x0a0a, 0x1a1a...) that clients send to keep servers tolerant: not real."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


@dataclass(frozen=True)
class RecordHeader:
    content_type: int
    version: int
    length: int


def parse_record_header(data: bytes | bytearray, pos: int = 0) -> RecordHeader | None:
    """The record header at `pos`, or None when fewer than 5 bytes are there or it is not TLS."""
    if len(data) - pos < RECORD_HEADER:
        return None
    content_type, version, length = struct.unpack_from("!BHH", data, pos)
    if content_type not in CONTENT_TYPES or version >> 8 != 3 or length > MAX_RECORD:
        return None
    return RecordHeader(content_type, version, length)


def starts_a_record(data: bytes | bytearray) -> bool:
    """Whether `data` begins with a TLS record header (type 20-23, version 3.1 to 3.4). A protocol that
    turns to TLS tells its records from its own plaintext this way: no MySQL packet under 64 KiB (third
    byte 0) nor PostgreSQL message (a type letter, or a startup's length, first byte 0) begins so."""
    return len(data) >= 3 and 20 <= data[0] <= 23 and data[1] == 3 and 1 <= data[2] <= 4


def looks_like_client_hello(data: bytes | bytearray) -> bool:
    """A handshake record whose first message is a ClientHello: how every TLS connection starts."""
    header = parse_record_header(data)
    return (
        header is not None
        and header.content_type == HANDSHAKE
        and header.version <= 0x0304
        and len(data) > RECORD_HEADER
        and data[RECORD_HEADER] == CLIENT_HELLO
    )


class _Reader:
    """Bounds-checked big-endian reads; `ok` turns False at the first read past the end."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else min(end, len(data))
        self.ok = True

    def take(self, size: int) -> bytes | None:
        if not self.ok or self.pos + size > self.end:
            self.ok = False
            return None
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def uint(self, size: int) -> int | None:
        raw = self.take(size)
        return int.from_bytes(raw, "big") if raw is not None else None

    def vector(self, length_size: int) -> bytes | None:
        length = self.uint(length_size)
        return None if length is None else self.take(length)

    def skip_vector(self, length_size: int) -> bool:
        return self.vector(length_size) is not None


@dataclass
class ClientHello:
    legacy_version: int | None = None
    server_name: str | None = None
    supported_versions: list[int] = field(default_factory=list)
    alpn: list[str] = field(default_factory=list)
    complete: bool = False  # every byte of the message was there

    @property
    def max_version(self) -> int | None:
        real = [v for v in self.supported_versions if not is_grease(v)]
        return max(real) if real else self.legacy_version


@dataclass
class ServerHello:
    legacy_version: int | None = None
    selected_version: int | None = None  # from supported_versions: TLS 1.3 says so only there
    cipher_suite: int | None = None
    alpn: str | None = None  # the protocol the server chose (RFC 7301 3.1: exactly one)
    complete: bool = False

    @property
    def version(self) -> int | None:
        return self.selected_version or self.legacy_version


def _extensions(reader: _Reader):
    """(type, body) of each whole extension; stops quietly at the first one that is cut."""
    total = reader.uint(2)
    if total is None:
        return
    end = min(reader.end, reader.pos + total)
    while reader.pos + 4 <= end:
        ext_type = reader.uint(2)
        body = reader.vector(2)
        if ext_type is None or body is None:
            return
        yield ext_type, body


def _server_name(body: bytes) -> str | None:
    reader = _Reader(body)
    names = reader.vector(2)
    if names is None:
        return None
    inner = _Reader(names)
    while inner.pos < inner.end:
        name_type = inner.uint(1)
        name = inner.vector(2)
        if name is None:
            return None
        if name_type == NAME_TYPE_HOST:
            return name.decode("ascii", "replace")
    return None


def parse_client_hello(body: bytes | bytearray, length: int | None = None) -> ClientHello:
    """A ClientHello body (after the 4-byte handshake header), whole or cut; `length` its full size."""
    body = bytes(body)
    hello = ClientHello()
    reader = _Reader(body)
    hello.legacy_version = reader.uint(2)
    reader.take(32)  # random
    reader.skip_vector(1)  # legacy session id
    reader.skip_vector(2)  # cipher suites
    reader.skip_vector(1)  # compression methods
    if not reader.ok:
        return hello
    for ext_type, ext in _extensions(reader):
        if ext_type == EXT_SERVER_NAME:
            hello.server_name = _server_name(ext)
        elif ext_type == EXT_SUPPORTED_VERSIONS:
            versions = _Reader(ext).vector(1) or b""
            hello.supported_versions = [
                int.from_bytes(versions[i : i + 2], "big") for i in range(0, len(versions) - 1, 2)
            ]
        elif ext_type == EXT_ALPN:
            protocols = _Reader(ext)
            names = _Reader(protocols.vector(2) or b"")
            while names.pos < names.end:
                name = names.vector(1)
                if name is None:
                    break
                hello.alpn.append(name.decode("ascii", "replace"))
    hello.complete = reader.ok and (length is None or len(body) >= length)
    return hello


def parse_server_hello(body: bytes | bytearray, length: int | None = None) -> ServerHello:
    """A ServerHello body (after the 4-byte handshake header), whole or cut."""
    body = bytes(body)
    hello = ServerHello()
    reader = _Reader(body)
    hello.legacy_version = reader.uint(2)
    reader.take(32)  # random
    reader.skip_vector(1)  # legacy session id echo
    hello.cipher_suite = reader.uint(2)
    reader.take(1)  # compression method
    if not reader.ok:
        return hello
    for ext_type, ext in _extensions(reader):
        if ext_type == EXT_SUPPORTED_VERSIONS and len(ext) == 2:
            hello.selected_version = int.from_bytes(ext, "big")
        elif ext_type == EXT_ALPN:
            names = _Reader(_Reader(ext).vector(2) or b"")
            name = names.vector(1)
            if name:
                hello.alpn = name.decode("ascii", "replace")
    hello.complete = reader.ok and (length is None or len(body) >= length)
    return hello


def first_certificate(body: bytes | bytearray) -> bytes | None:
    """The DER bytes of the first certificate of a (TLS 1.2 or older) Certificate message body: the
    server's own; None when it is cut before its end. (TLS 1.3 encrypts this message.)"""
    reader = _Reader(bytes(body))
    chain = reader.vector(3)
    if chain is None:
        return None
    return _Reader(chain).vector(3)
