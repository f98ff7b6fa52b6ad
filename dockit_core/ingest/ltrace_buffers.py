r"""ltrace's printed buffers back into bytes, and which ltrace calls carry socket, pipe or SQL data.

What ltrace 0.7.3 prints for a buffer depends on the prototype it was given (all checked by running it):

- `array(char, N)*` (what dockit asks for): `[ 'G', 'E', '\0', '\377', ''', '\\' ]`, one element per
  byte, `'1'... ]` when `-A` cut it. Every byte is written unambiguously: a printable character as is
  (a quote too: `'''`), else `\0`, `\a \b \t \n \v \f \r \\`, or three octal digits.
- `string`, `string(array(char, N)*)`, `stringN` (older logs): `"GET /\r\n"`, `"..."...` when `-s` cut it.
  The same escapes, but a `"` is printed bare and NUL is `\0` even before a digit, so `\012` is either
  byte 0o12 or NUL followed by "12", and `\0` followed by one or two digits is ambiguous too. The three-digit
  reading is kept (ltrace writes every non-printable byte but NUL with three digits), except where the value
  could not have been printed that way (a printable byte, or one with a letter escape): there it is NUL
  and the digits. Strings from `string` or `stringN` stop at the first NUL: a string shorter than the
  call's byte count and not cut is followed by one NUL, and what comes after is unknown.
- no prototype: a raw pointer (`0x55a51edc25d0`, `nil`): no bytes at all.

Which calls: the libc calls that move socket and pipe bytes (`send`, `recv`, `read`, `write`...), shown
by ltrace as `libc.so.6->send(...)` or `mariadb->send(...)`, and the system calls under them
(`SYS_sendto(...)`, `sendto@SYS(...)` in older logs). A system call made inside a traced library call
that moves data shows the same bytes again (ltrace prints the library call's start, then the system
call, then `<... send resumed>`): it is ignored, the library call carries (and counts) the bytes. A system
call made outside one (libc's own buffered I/O, a statically linked client) is taken on its own.

Client-library calls carry SQL text directly (`mysql_real_query(conn, "SQL", len)`): see
`LibrarySqlCalls` for when they become `SqlQuery` records.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from dockit_core.ingest.events import Call
from dockit_core.ingest.syscall_names import X86_64_LATE_NUMBERS

# library or system call name -> (index of the buffer argument, "read" or "write")
DATA_CALLS: dict[str, tuple[int, str]] = {
    "send": (1, "write"),
    "sendto": (1, "write"),
    "write": (1, "write"),
    "recv": (1, "read"),
    "recvfrom": (1, "read"),
    "read": (1, "read"),
}
# calls whose inner system calls show the same bytes again (SSL_read/SSL_write are not among them: their
# plaintext goes to a channel of its own, dockit_core/model/tracker/library_tls.py, and the ciphertext their inner
# read/write calls carry is the socket's)
WRAPPING_CALLS = frozenset(
    {"send", "sendto", "sendmsg", "write", "writev", "recv", "recvfrom", "recvmsg", "read", "readv"}
)

_NAMED = {"0": 0, "a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, "\\": 92, "e": 27}
# Bytes ltrace writes as three octal digits: the non-printable ones without a letter escape.
_OCTAL_PRINTED = frozenset(
    b for b in range(1, 256) if not (32 <= b < 127) and b not in (7, 8, 9, 10, 11, 12, 13)
)
_ELEMENT = re.compile(r"'(?:\\[0-7]{1,3}|\\.|[^\\])'")
_RAW_POINTER = re.compile(r"\s*(?:0x[0-9a-fA-F]+|nil|NULL|0|-?\d+)\s*$")


def _element_table() -> dict[str, bytes]:
    table: dict[str, bytes] = {}
    for value in range(256):
        if value == 0:
            text = "\\0"
        elif value == 92:
            text = "\\\\"
        elif value in (7, 8, 9, 10, 11, 12, 13):
            text = "\\" + "abtnvfr"[value - 7]
        elif 32 <= value < 127:
            text = chr(value)
        else:
            text = f"\\{value:03o}"
        table[f"'{text}'"] = bytes((value,))
    return table


_ELEMENTS = _element_table()


@dataclass(frozen=True, slots=True)
class Buffer:
    """Bytes read back from a printed buffer. `cut`: the tracer printed less than the call moved (-A, -s,
    or a string that stopped at a NUL): the bytes after `data` are unknown."""

    data: bytes
    cut: bool
    ambiguous: bool = False  # a string whose `\0` + digits could be read two ways


def decode_array(text: str) -> Buffer | None:
    """`[ 'a', '\\0', ''' ]` -> bytes; None if `text` is not a char array."""
    text = text.strip()
    if not text.startswith("[") or not text.endswith("]"):
        return None
    body = text[1:-1].strip()
    cut = body.endswith("...")
    if cut:
        body = body[:-3]
    if not body:
        return Buffer(b"", cut)
    elements = _ELEMENT.findall(body)
    # Every element and its ", " separator: anything else means this was not a char array.
    if sum(len(e) for e in elements) + 2 * (len(elements) - 1) != len(body):
        return None
    get = _ELEMENTS.get
    parts = [get(e) or _odd_element(e) for e in elements]
    return Buffer(b"".join(parts), cut)


def _odd_element(element: str) -> bytes:
    """An element outside ltrace's own table: a non-ASCII character printed by a non-C locale, or a
    two-digit octal some other writer used."""
    inner = element[1:-1]
    if inner.startswith("\\") and inner[1:] and inner[1:].strip("01234567") == "":
        return bytes((int(inner[1:], 8) & 0xFF,))
    if inner.startswith("\\"):
        return inner[1:].encode("utf-8", "surrogateescape")
    return inner.encode("utf-8", "surrogateescape")


def decode_string(text: str, expected: int | None = None) -> Buffer | None:
    """`"GET /\\r\\n"` (ltrace escapes, bare quotes inside) -> bytes; None if `text` is not a string.

    The literal must be the whole of `text` (the argument), so its closing quote is the last one."""
    text = text.strip()
    if not text.startswith('"'):
        return None
    cut = text.endswith('"...')
    end = len(text) - 4 if cut else len(text) - 1
    if end < 1 or text[end] != '"':
        # The log line itself was cut inside the literal.
        end, cut = len(text), True
    body = text[1:end]
    data, ambiguous = _unescape(body)
    if expected is not None and len(data) < expected and not cut:
        # `string`/`stringN` stop at the first NUL: that NUL is known, what follows is not.
        data += b"\0"
        cut = len(data) < expected
    return Buffer(data, cut, ambiguous)


def _unescape(body: str) -> tuple[bytes, bool]:
    if "\\" not in body:
        return body.encode("utf-8", "surrogateescape"), False
    out = bytearray()
    ambiguous = False
    position = 0
    length = len(body)
    while position < length:
        backslash = body.find("\\", position)
        if backslash < 0:
            out += body[position:].encode("utf-8", "surrogateescape")
            break
        out += body[position:backslash].encode("utf-8", "surrogateescape")
        position = backslash + 1
        if position >= length:
            out.append(92)  # a lone backslash at a cut
            break
        char = body[position]
        digits = ""
        while (
            len(digits) < 3 and position + len(digits) < length and body[position + len(digits)] in "01234567"
        ):
            digits += body[position + len(digits)]
        if digits:
            value = int(digits, 8)
            if len(digits) == 3 and value in _OCTAL_PRINTED:
                ambiguous = ambiguous or digits[0] == "0"
                out.append(value)
                position += 3
            elif digits[0] == "0":
                out.append(0)  # NUL; the digits after it are characters
                position += 1
                ambiguous = ambiguous or len(digits) > 1
            else:
                out.append(value & 0xFF)  # another writer's short octal
                position += len(digits)
            continue
        named = _NAMED.get(char)
        if named is not None:
            out.append(named)
        elif char == "x" and re.match(r"[0-9a-fA-F]{2}", body[position + 1 : position + 3]):
            out.append(int(body[position + 1 : position + 3], 16))
            position += 2
        else:
            out += char.encode("utf-8", "surrogateescape")  # \" \' \? or an unknown escape: the char
        position += 1
    return bytes(out), ambiguous


def decode_buffer(text: str, expected: int | None = None) -> Buffer | None:
    """A printed buffer argument in any of ltrace's forms; None for a raw pointer (no bytes shown).

    `expected` is the number of bytes the call moved, when known."""
    stripped = text.strip()
    if stripped.startswith("["):
        return decode_array(stripped)
    if stripped.startswith('"'):
        return decode_string(stripped, expected)
    return None


def argument(args: str, index: int) -> str | None:
    """The `index`-th argument of an ltrace call whose other arguments are plain (numbers, pointers,
    flags): found without a general split, since a char array or a string may hold any of `,[]"'`."""
    if index == 0:
        comma = args.find(",")
        return args if comma < 0 else args[:comma]
    start = 0
    for _ in range(index):
        comma = args.find(",", start)
        if comma < 0:
            return None
        start = comma + 1
    rest = args[start:].lstrip()
    if rest.startswith("["):
        # A char array ends at its last element's quote and " ]" (an element is never `' ]`); an array
        # of numbers (`[ 65 ]`) at its first "]".
        ends = [i + 3 for i in (rest.find("' ]"), rest.find("'... ]")) if i >= 0]
        if ends:
            end = min(ends)
            return rest[: end + 3] if rest.startswith("...", end - 2) else rest[:end]
        close = rest.find("]")
        return rest[: close + 1] if close > 0 else rest
    if rest.startswith('"'):
        # The last quote, and `...` after it if the tracer cut the string.
        close = rest.rfind('"')
        if close <= 0:
            return rest
        if rest.startswith("...", close + 1):
            return rest[: close + 4]
        return rest[: close + 1]
    comma = rest.find(",")
    return rest if comma < 0 else rest[:comma]


def bare_name(name: str) -> str:
    """`libc.so.6->send` or `mariadb->send` -> `send` (the parser leaves the library out already)."""
    arrow = name.rfind("->")
    return name[arrow + 2 :] if arrow >= 0 else name


def is_ltrace_syscall(call: Call) -> bool:
    """A system call line written by ltrace -S: `SYS_sendto(` (0.7.3) or `sendto@SYS(` (older), or
    its `<... SYS_sendto resumed>`."""
    head = call.raw[:96]  # the pid and the time come first: the name is never further
    if "SYS" not in head:
        return False  # every strace line: one cheap test
    # `SYS_write(`, or `<... SYS_write resumed>` for one that another process's line interrupted
    if f"SYS_{call.name}" in head or f"{call.name}@SYS" in head:
        return True
    number = X86_64_LATE_NUMBERS.get(call.name)  # printed by number: `SYS_318(`
    return number is not None and f"SYS_{number}" in head


def inside_wrapping_call(pid: int, pending: dict[int, tuple[str, float | None, str, str]]) -> bool:
    """Whether `pid` is inside a traced library call that moves the same bytes (its start was printed,
    its end not yet)."""
    entry = pending.get(pid)
    if entry is None:
        return False
    name = entry[0]
    if "->" not in name:
        # A system call (the parser may have named it plainly), or ltrace run without -e, whose library
        # calls carry no `lib->` prefix: the start line tells.
        plain = name.removeprefix("SYS_").removesuffix("@SYS")
        head = entry[3][:96]
        if f"SYS_{plain}(" in head or f"{plain}@SYS(" in head:
            return False
    return bare_name(name) in WRAPPING_CALLS


def call_bytes(call: Call) -> Buffer | None:
    """The bytes a data call printed, cut to what it moved; None when it printed a raw pointer."""
    spec = DATA_CALLS.get(call.name)
    if spec is None:
        return None
    text = argument(call.args, spec[0])
    if text is None:
        return None
    size = call.retval if call.retval is not None and call.retval > 0 else 0
    buffer = decode_buffer(text, size)
    if buffer is None:
        return None
    if len(buffer.data) > size:
        return Buffer(buffer.data[:size], False, buffer.ambiguous)
    return Buffer(buffer.data, buffer.cut or len(buffer.data) < size, buffer.ambiguous)


def trim_array(line: str, keep: int) -> str | None:
    """The line with its buffer's char array cut to `keep` elements, the way ltrace's `-A` cuts one
    (`[ 'a', 'b'... ]`), so a replay reads it as cut; None if the line has no char array buffer.

    For the saved log: a file's bytes, or a failed call's stale buffer (ltrace prints `-A` elements of
    it when recv returns -1, as the length expression `retval` is then huge), are not worth keeping."""
    start = line.find(", [ ", 0, 256)
    if start < 0:
        return None
    position = start + 4
    match = None
    for count, match in enumerate(_ELEMENT.finditer(line, position), 1):
        if match.start() != position:
            return None  # not a run of elements: not a char array
        if count == keep:
            break
        position = match.end() + 2  # ", "
    if match is None:
        return None
    cut = match.end()
    end = line.find(" ]", cut)
    if end < 0:
        return None
    if end - cut <= 8:
        return line  # nothing worth cutting
    return line[:cut] + "..." + line[end:]


_EINPROGRESS = -115  # what ltrace shows for a non-blocking connect under way (it prints -errno)


def sockaddr(call: Call) -> tuple[str | None, str | None, int | None] | None:
    """(family, address, port) from the sockaddr bytes an ltrace system call printed (`SYS_connect(3,
    [ '\\002', '\\0', '\\f', '\\352', '\\177', ... ], 16)`), in the tracker's terms ("127.0.0.1:3306",
    "[::1]:3306", a unix path, "@name" for an abstract one); None when the line shows no such bytes.
    A call that failed (ltrace prints -errno, and no name) gives no address."""
    text = argument(call.args, 1)
    if text is None or not text.lstrip().startswith("[ '"):
        return None
    if call.retval is not None and call.retval < 0 and call.retval != _EINPROGRESS:
        return None, None, None
    buffer = decode_array(text)
    if buffer is None or len(buffer.data) < 2:
        return None, None, None
    data = buffer.data
    family = int.from_bytes(data[:2], "little")
    if family == 2 and len(data) >= 8:
        port = int.from_bytes(data[2:4], "big")
        return "AF_INET", f"{'.'.join(str(b) for b in data[4:8])}:{port}", port
    if family == 10 and len(data) >= 24:
        port = int.from_bytes(data[2:4], "big")
        return "AF_INET6", f"[{ipaddress.IPv6Address(data[8:24]).compressed}]:{port}", port
    if family == 1:
        path = data[2:]
        if path[:1] == b"\0":
            name = path[1:].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            return "AF_UNIX", ("@" + name) if name else None, None
        name = path.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return "AF_UNIX", name or None, None
    return None, None, None
