"""TTC values: Oracle's compressed ("universal") integers, length-prefixed byte strings, NUMBER, DATE.

Pure codecs (the integer and byte-string readers take an offset and say how many bytes they used),
and `value_text`, which shows a column value whose type is not known: text, else DATE, else NUMBER,
else hex. Not decoded: the other types (BINARY_FLOAT/DOUBLE, TIMESTAMP, INTERVAL, ROWID, LOBs,
objects), which `value_text`, guessing from the bytes alone, shows as hex or as what they happen to
read as; character sets (text is read as UTF-8).
"""

from __future__ import annotations

from decimal import Decimal, localcontext

LONG_LENGTH_INDICATOR = 0xFE
NULL_LENGTH_INDICATOR = 0xFF
MAX_SHORT_LENGTH = 252


def encode_ub(value: int) -> bytes:
    """Oracle's compressed integer (universal representation): a length byte, then big-endian bytes.

    The length byte's high bit marks a negative value. Zero is the single byte 0.
    """
    if value == 0:
        return b"\x00"
    negative = value < 0
    magnitude = -value if negative else value
    raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
    return bytes([len(raw) | (0x80 if negative else 0)]) + raw


def decode_ub(data: bytes | bytearray, offset: int = 0) -> tuple[int, int] | None:
    """(value, bytes used) of the compressed integer at `offset`, or None if it is not there whole."""
    if offset >= len(data):
        return None
    head = data[offset]
    size = head & 0x7F
    if size > 8 or offset + 1 + size > len(data):
        return None
    value = int.from_bytes(data[offset + 1 : offset + 1 + size], "big")
    return (-value if head & 0x80 else value), 1 + size


def encode_bytes_with_length(raw: bytes, chunk: int = 32767) -> bytes:
    """A TTC byte string: one length byte when short, else 0xFE, chunks with compressed lengths, 0."""
    if len(raw) <= MAX_SHORT_LENGTH:
        return bytes([len(raw)]) + raw
    out = bytearray([LONG_LENGTH_INDICATOR])
    for start in range(0, len(raw), chunk):
        piece = raw[start : start + chunk]
        out += encode_ub(len(piece)) + piece
    out += b"\x00"
    return bytes(out)


def decode_bytes_with_length(
    data: bytes | bytearray, offset: int = 0
) -> tuple[bytes | None, int, bool] | None:
    """(bytes or None for NULL, bytes used, cut short) of the TTC byte string at `offset`."""
    if offset >= len(data):
        return None
    head = data[offset]
    if head in (0, NULL_LENGTH_INDICATOR):
        return None if head else b"", 1, False
    if head != LONG_LENGTH_INDICATOR:
        raw = bytes(data[offset + 1 : offset + 1 + head])
        return raw, 1 + len(raw), len(raw) < head
    pos, out = offset + 1, bytearray()
    while True:
        chunk = decode_ub(data, pos)
        if chunk is None:
            return bytes(out), pos - offset, True
        size, used = chunk
        pos += used
        if size <= 0:
            return bytes(out), pos - offset, False
        piece = data[pos : pos + size]
        out += piece
        pos += len(piece)
        if len(piece) < size:
            return bytes(out), pos - offset, True


def decode_number(raw: bytes) -> str | None:
    """Oracle's NUMBER (base-100 digits, excess-65 exponent) as a decimal string, or None if malformed."""
    if not raw:
        return None
    head = raw[0]
    if head == 0x80 and len(raw) == 1:
        return "0"
    if head & 0x80:
        exponent = (head & 0x7F) - 65
        digits = list(raw[1:])
        if any(not 1 <= d <= 100 for d in digits):
            return None
        values = [d - 1 for d in digits]
        sign = ""
    else:
        exponent = ((~head) & 0x7F) - 65
        digits = list(raw[1:])
        if digits and digits[-1] == 102:
            digits = digits[:-1]
        if any(not 2 <= d <= 101 for d in digits):
            return None
        values = [101 - d for d in digits]
        sign = "-"
    if not values:
        return None
    with localcontext() as context:
        context.prec = 200  # NUMBER holds 40 digits; the exponent spans 10^-130..10^126
        total = Decimal(0)
        for index, value in enumerate(values):
            total += Decimal(value).scaleb(2 * (exponent - index))
        text = format(total.normalize(), "f")
    return sign + text


def encode_number(text: str) -> bytes:
    """The NUMBER bytes of a non-negative integer (enough for tests that build rows)."""
    value = int(text)
    if value == 0:
        return b"\x80"
    if value < 0:
        raise ValueError("negative numbers are not needed by the tests")
    digits: list[int] = []
    while value:
        value, digit = divmod(value, 100)
        digits.insert(0, digit)
    exponent = len(digits) - 1
    while digits and digits[-1] == 0:
        digits.pop()
    return bytes([0xC1 + exponent] + [d + 1 for d in digits])


def is_printable(raw: bytes | bytearray) -> bool:
    if not raw:
        return False
    bad = sum(1 for b in raw if b < 0x20 and b not in (9, 10, 13))
    return bad == 0


def value_text(raw: bytes | None) -> str | None:
    """A column value for display: text when it reads as text, else a NUMBER, else hex."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
        if is_printable(raw):
            return text
    except UnicodeDecodeError:
        pass
    date = decode_date(raw)
    if date is not None:
        return date
    number = decode_number(raw)
    return number if number is not None else raw.hex()


def decode_date(raw: bytes) -> str | None:
    """Oracle's 7-byte DATE (century+100, year+100, month, day, hour+1, minute+1, second+1), if it is one."""
    if len(raw) != 7:
        return None
    century, year, month, day, hour, minute, second = raw
    if not (100 <= century <= 199 and 100 <= year <= 199 and 1 <= month <= 12 and 1 <= day <= 31):
        return None
    if not (1 <= hour <= 24 and 1 <= minute <= 60 and 1 <= second <= 60):
        return None
    return f"{(century - 100) * 100 + year - 100:04d}-{month:02d}-{day:02d} {hour - 1:02d}:{minute - 1:02d}:{second - 1:02d}"
