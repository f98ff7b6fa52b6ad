"""The subject of an X.509 certificate (RFC 5280 4.1), read from its DER bytes, as RFC 4514 writes it.

A TLS 1.2 server sends its certificate in clear: its subject says who the client talked to even when no
server name was sent. Decoded: the DER framing (tag, short and long lengths), the path to the subject
(Certificate -> tbsCertificate -> [version], serial, signature, issuer, validity, subject) and the
subject's attributes whose types have a short name in RFC 4514 (CN, O, OU, C, L, ST, and a few more);
other types print as their dotted OID. Not decoded: anything else (extensions, keys, signatures).
Nothing here raises on garbage: a certificate that does not parse has no subject (None).
"""

from __future__ import annotations

SEQUENCE, SET, OID, INTEGER = 0x30, 0x31, 0x06, 0x02
EXPLICIT_VERSION = 0xA0
_STRINGS = {
    0x0C: "utf-8",
    0x13: "ascii",
    0x16: "ascii",
    0x14: "latin-1",
    0x1E: "utf-16-be",
    0x1C: "utf-32-be",
}
# RFC 4514 3 (and RFC 4519's names for the usual ones)
SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
MAX_DEPTH_BYTES = 1 << 20  # a certificate larger than this is not one


def _tlv(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, start of the value, end of the value) of the element at `pos`, or None."""
    if pos + 2 > len(data):
        return None
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            return None
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data) or length > MAX_DEPTH_BYTES:
        return None
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    pos = start
    while pos < end:
        element = _tlv(data[:end], pos)
        if element is None:
            return found
        found.append(element)
        pos = element[2]
    return found


def _oid(raw: bytes) -> str:
    if not raw:
        return ""
    parts = [raw[0] // 40, raw[0] % 40] if raw[0] < 80 else [2, raw[0] - 80]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(part) for part in parts)


def _escape(value: str) -> str:
    """RFC 4514 2.4: the characters that would end or change an attribute value."""
    escaped = "".join("\\" + char if char in ',+"\\<>;' else char for char in value)
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def subject(der: bytes | None) -> str | None:
    """The certificate's subject (`CN=localhost,O=Example`: RFC 4514 lists the last RDN first)."""
    if not der:
        return None
    certificate = _tlv(der, 0)
    if certificate is None or certificate[0] != SEQUENCE:
        return None
    parts = _children(der, certificate[1], certificate[2])
    if not parts or parts[0][0] != SEQUENCE:
        return None
    fields = _children(der, parts[0][1], parts[0][2])
    if fields and fields[0][0] == EXPLICIT_VERSION:
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    if len(fields) < 5 or fields[0][0] != INTEGER or fields[4][0] != SEQUENCE:
        return None
    names = []
    for rdn_tag, rdn_start, rdn_end in _children(der, fields[4][1], fields[4][2]):
        if rdn_tag != SET:
            return None
        values = []
        for _tag, start, end in _children(der, rdn_start, rdn_end):
            pair = _children(der, start, end)
            if len(pair) != 2 or pair[0][0] != OID:
                return None
            oid = _oid(der[pair[0][1] : pair[0][2]])
            tag, value_start, value_end = pair[1]
            encoding = _STRINGS.get(tag)
            raw = der[value_start:value_end]
            if encoding is None:
                text = "#" + raw.hex()
            else:
                text = _escape(raw.decode(encoding, "replace"))
            values.append(f"{SHORT_NAMES.get(oid, oid)}={text}")
        names.append("+".join(values))
    return ",".join(reversed(names)) if names else None
