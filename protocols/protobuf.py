"""Protocol Buffers wire format, with or without a schema: what a gRPC message holds.

Without a schema, a message is a list of fields, each a number and a wire type (varint, 64-bit,
length-delimited, 32-bit; groups are refused): a length-delimited value is read as a nested message
when it parses as one whole, as text when it is printable UTF-8, else as bytes (shown by size).
With a schema, the same fields get their declared names and types (signed and zigzag integers,
floats, booleans, enums by name, nested messages by type, packed repeated scalars).

A schema comes from `FileDescriptorProto`s: a `FileDescriptorSet` (`protoc -o FILE --include_imports`)
or what a server's reflection service sends. They are read here with the same wire reader, by the
field numbers of google/protobuf/descriptor.proto; nothing else of protobuf is needed.

Everything is bounded: fields read per message, nesting depth, text shown, and the descriptors a
schema keeps. Functions never raise on bad bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
WIRE_NAMES = {VARINT: "varint", I64: "fixed64", LEN: "bytes", I32: "fixed32"}
MAX_FIELD_NUMBER = (1 << 29) - 1

# FieldDescriptorProto.Type
TYPE_NAMES = {
    1: "double",
    2: "float",
    3: "int64",
    4: "uint64",
    5: "int32",
    6: "fixed64",
    7: "fixed32",
    8: "bool",
    9: "string",
    10: "group",
    11: "message",
    12: "bytes",
    13: "uint32",
    14: "enum",
    15: "sfixed32",
    16: "sfixed64",
    17: "sint32",
    18: "sint64",
}
_PACKABLE_WIRE = {
    1: I64, 2: I32, 3: VARINT, 4: VARINT, 5: VARINT, 6: I64, 7: I32, 8: VARINT, 13: VARINT, 14: VARINT,
    15: I32, 16: I64, 17: VARINT, 18: VARINT,
}  # fmt: skip
LABEL_REPEATED = 3

MAX_TEXT = 64  # characters of a string value shown
MAX_DEPTH = 4
MAX_SCHEMA_MESSAGES = 4096  # descriptors kept from --proto files and reflection, whatever they claim
MAX_SCHEMA_METHODS = 4096


def read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when the varint is cut or longer than 10 bytes."""
    value = shift = 0
    end = min(len(data), pos + 10)
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    return None


@dataclass
class WireField:
    """One field as the wire says it: `value` is an int (varint, fixed) or bytes (length-delimited)."""

    number: int
    wire_type: int
    value: int | bytes


def fields(data: bytes | bytearray, limit: int = 10_000) -> list[WireField] | None:
    """The fields of a message, in order, or None when `data` is not a whole message (a cut field, a
    group, a field number 0). At most `limit` fields are read; the rest is not checked."""
    out: list[WireField] = []
    pos, size = 0, len(data)
    while pos < size and len(out) < limit:
        key = read_varint(data, pos)
        if key is None:
            return None
        tag, pos = key
        number, wire = tag >> 3, tag & 7
        if number == 0 or number > MAX_FIELD_NUMBER:
            return None
        if wire == VARINT:
            read = read_varint(data, pos)
            if read is None:
                return None
            value, pos = read
            out.append(WireField(number, wire, value))
        elif wire == I64 or wire == I32:
            width = 8 if wire == I64 else 4
            if pos + width > size:
                return None
            out.append(WireField(number, wire, int.from_bytes(data[pos : pos + width], "little")))
            pos += width
        elif wire == LEN:
            read = read_varint(data, pos)
            if read is None:
                return None
            length, pos = read
            if length > size - pos:
                return None
            out.append(WireField(number, wire, bytes(data[pos : pos + length])))
            pos += length
        else:
            return None
    return out


# -- values as text ---------------------------------------------------------------------------------


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\r\n" or 0x7F <= ord(c) < 0xA0 for c in text):
        return None
    return text


def shown_text(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


# -- schemas ----------------------------------------------------------------------------------------


@dataclass
class FieldSchema:
    name: str
    number: int
    type: int  # FieldDescriptorProto.Type
    type_name: str = ""  # ".pkg.Message" for messages and enums
    repeated: bool = False


@dataclass
class MessageSchema:
    name: str  # full name, without the leading dot: "helloworld.HelloRequest"
    fields: dict[int, FieldSchema] = field(default_factory=dict)


@dataclass
class MethodSchema:
    path: str  # "/helloworld.Greeter/SayHello"
    input_type: str
    output_type: str
    client_streaming: bool = False
    server_streaming: bool = False


@dataclass
class Schema:
    """Messages, enums and methods known from descriptors, bounded."""

    messages: dict[str, MessageSchema] = field(default_factory=dict)
    enums: dict[str, dict[int, str]] = field(default_factory=dict)
    methods: dict[str, MethodSchema] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.messages or self.methods)

    def add_file_set(self, data: bytes) -> int:
        """Every FileDescriptorProto of a FileDescriptorSet; returns how many were read."""
        found = fields(data)
        count = 0
        for item in found or ():
            if item.number == 1 and isinstance(item.value, bytes) and self.add_file(item.value):
                count += 1
        return count

    def add_file(self, data: bytes) -> bool:
        """One serialized FileDescriptorProto (a reflection reply carries them); False if it is none."""
        found = fields(data)
        if found is None:
            return False
        package = ""
        name = ""
        for item in found:
            if item.number == 2 and isinstance(item.value, bytes):
                package = item.value.decode("utf-8", "replace")
            elif item.number == 1 and isinstance(item.value, bytes):
                name = item.value.decode("utf-8", "replace")
        if name in self.files:
            return True
        if len(self.files) < MAX_SCHEMA_MESSAGES:
            self.files.add(name)
        prefix = f"{package}." if package else ""
        for item in found:
            if not isinstance(item.value, bytes):
                continue
            if item.number == 4:
                self._message(item.value, prefix)
            elif item.number == 5:
                self._enum(item.value, prefix)
            elif item.number == 6:
                self._service(item.value, prefix)
        return True

    def _message(self, data: bytes, prefix: str, depth: int = 0) -> None:
        found = fields(data)
        if found is None or depth > 32 or len(self.messages) >= MAX_SCHEMA_MESSAGES:
            return
        name = _text_of(found, 1)
        full = prefix + name
        schema = MessageSchema(full)
        self.messages[full] = schema
        for item in found:
            if not isinstance(item.value, bytes):
                continue
            if item.number == 2:
                described = _field(item.value)
                if described is not None:
                    schema.fields[described.number] = described
            elif item.number == 3:
                self._message(item.value, full + ".", depth + 1)
            elif item.number == 4:
                self._enum(item.value, full + ".")

    def _enum(self, data: bytes, prefix: str) -> None:
        found = fields(data)
        if found is None or len(self.enums) >= MAX_SCHEMA_MESSAGES:
            return
        values: dict[int, str] = {}
        for item in found:
            if item.number == 2 and isinstance(item.value, bytes):
                value = fields(item.value)
                if value is not None:
                    number = next((v.value for v in value if v.number == 2 and isinstance(v.value, int)), 0)
                    values[_signed(number, 64)] = _text_of(value, 1)
        self.enums[prefix + _text_of(found, 1)] = values

    def _service(self, data: bytes, prefix: str) -> None:
        found = fields(data)
        if found is None:
            return
        service = prefix + _text_of(found, 1)
        for item in found:
            if (
                item.number != 2
                or not isinstance(item.value, bytes)
                or len(self.methods) >= MAX_SCHEMA_METHODS
            ):
                continue
            method = fields(item.value)
            if method is None:
                continue
            path = f"/{service}/{_text_of(method, 1)}"
            flags = {v.number: v.value for v in method if v.wire_type == VARINT}
            self.methods[path] = MethodSchema(
                path,
                _text_of(method, 2).lstrip("."),
                _text_of(method, 3).lstrip("."),
                bool(flags.get(5)),
                bool(flags.get(6)),
            )


def _text_of(found: list[WireField], number: int) -> str:
    for item in found:
        if item.number == number and isinstance(item.value, bytes):
            return item.value.decode("utf-8", "replace")
    return ""


def _field(data: bytes) -> FieldSchema | None:
    found = fields(data)
    if found is None:
        return None
    ints = {item.number: item.value for item in found if item.wire_type == VARINT}
    number, kind = ints.get(3), ints.get(5)
    if not isinstance(number, int) or not isinstance(kind, int) or not number:
        return None
    return FieldSchema(
        _text_of(found, 1), number, kind, _text_of(found, 6).lstrip("."), ints.get(4) == LABEL_REPEATED
    )


# -- a message decoded ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedField:
    """One field of a decoded message: `path` is the field numbers from the top (`2.1`), `name` the
    schema's names likewise (`user.id`, None without a schema), `value` its text (None for a message)."""

    path: str
    number: int
    type: str
    name: str | None = None
    value: str | None = None
    size: int | None = None  # bytes of a length-delimited value


def decode(
    data: bytes,
    schema: Schema | None = None,
    message_type: str | None = None,
    max_fields: int = 32,
    secret: object = None,
) -> tuple[list[DecodedField], bool]:
    """The fields of a message, flattened with their paths, at most `max_fields`; and whether the bytes
    parsed as a message at all. `secret(name) -> bool` says which field names hide their value."""
    out: list[DecodedField] = []
    known = schema.messages.get(message_type or "") if schema else None
    ok = _walk(data, schema, known, "", "", 0, out, max_fields, secret)
    return out, ok


def _walk(
    data: bytes,
    schema: Schema | None,
    message: MessageSchema | None,
    path: str,
    names: str,
    depth: int,
    out: list[DecodedField],
    limit: int,
    secret: object,
) -> bool:
    found = fields(data, limit=limit)
    if found is None:
        return False
    for item in found:
        if len(out) >= limit:
            break
        number = item.number
        described = message.fields.get(number) if message else None
        here = f"{path}{number}"
        name = f"{names}{described.name}" if described else None
        if described is not None:
            hidden = callable(secret) and secret(described.name)
            _typed(item, described, schema, here, name, depth, out, limit, secret, bool(hidden))
            continue
        if item.wire_type == LEN:
            assert isinstance(item.value, bytes)
            raw = item.value
            text = _printable(raw)
            if text is not None and raw:
                out.append(DecodedField(here, number, "string", None, shown_text(text), len(raw)))
                continue
            if raw and depth < MAX_DEPTH and fields(raw, limit=limit) is not None:
                out.append(DecodedField(here, number, "message", None, None, len(raw)))
                _walk(raw, schema, None, here + ".", "", depth + 1, out, limit, secret)
                continue
            out.append(DecodedField(here, number, "bytes", None, None, len(raw)))
        else:
            out.append(DecodedField(here, number, WIRE_NAMES[item.wire_type], None, str(item.value)))
    return True


def _typed(
    item: WireField,
    described: FieldSchema,
    schema: Schema | None,
    here: str,
    name: str | None,
    depth: int,
    out: list[DecodedField],
    limit: int,
    secret: object,
    hidden: bool,
) -> None:
    kind = described.type
    type_name = TYPE_NAMES.get(kind, str(kind))
    if kind == 14:
        type_name = described.type_name.rsplit(".", 1)[-1] or "enum"
    if kind == 11:
        type_name = described.type_name or "message"
    value = item.value
    if isinstance(value, bytes):
        if kind == 11:
            out.append(DecodedField(here, item.number, type_name, name, None, len(value)))
            if depth < MAX_DEPTH and schema is not None:
                nested = schema.messages.get(described.type_name)
                _walk(value, schema, nested, here + ".", f"{name}.", depth + 1, out, limit, secret)
            return
        if kind == 9:
            text = value.decode("utf-8", "replace")
            shown = "<redacted>" if hidden else shown_text(text)
            out.append(DecodedField(here, item.number, type_name, name, shown, len(value)))
            return
        if kind in _PACKABLE_WIRE:  # packed repeated scalars: each value, bounded
            values = _packed(value, kind, described, schema)
            shown = "<redacted>" if hidden else shown_text(", ".join(values))
            out.append(DecodedField(here, item.number, f"repeated {type_name}", name, shown, len(value)))
            return
        out.append(DecodedField(here, item.number, type_name, name, None, len(value)))
        return
    shown = "<redacted>" if hidden else _scalar(value, kind, described, schema)
    out.append(DecodedField(here, item.number, type_name, name, shown))


def _scalar(value: int, kind: int, described: FieldSchema, schema: Schema | None) -> str:
    if kind == 1:
        return repr(struct.unpack("<d", value.to_bytes(8, "little"))[0])
    if kind == 2:
        return repr(struct.unpack("<f", (value & 0xFFFFFFFF).to_bytes(4, "little"))[0])
    if kind in (3, 16):
        return str(_signed(value, 64))
    if kind in (5, 15):
        return str(_signed(value & 0xFFFFFFFF, 32)) if kind == 15 else str(_signed(value, 64))
    if kind in (17, 18):
        return str(_zigzag(value))
    if kind == 8:
        return "true" if value else "false"
    if kind == 14:
        names = schema.enums.get(described.type_name, {}) if schema else {}
        number = _signed(value, 64)
        return names.get(number, str(number))
    return str(value)


def _packed(data: bytes, kind: int, described: FieldSchema, schema: Schema | None) -> list[str]:
    wire = _PACKABLE_WIRE[kind]
    values: list[str] = []
    pos = 0
    while pos < len(data) and len(values) < 16:
        if wire == VARINT:
            read = read_varint(data, pos)
            if read is None:
                break
            value, pos = read
        else:
            width = 8 if wire == I64 else 4
            if pos + width > len(data):
                break
            value = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        values.append(_scalar(value, kind, described, schema))
    if pos < len(data):
        values.append("...")
    return values


# -- building (tests) -------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | bytes | str) -> bytes:
    """A varint field for an int, a length-delimited one for bytes or text."""
    if isinstance(value, int):
        return varint(number << 3 | VARINT) + varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | LEN) + varint(len(raw)) + raw
