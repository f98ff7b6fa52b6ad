"""Arguments of a traced call, read only when a call matters: fds, paths, buffers, socket addresses."""

from __future__ import annotations

import re
from functools import lru_cache

from dockit_core.ingest.cstring import literal_bytes, parse_quoted, unescape

_TOKEN = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"(?:\.\.\.)?|[\[\]{}()]|,|[^"\[\]{}(),]+', re.S)
# strace 6 marks a descriptor whose file was unlinked (O_TMPFILE too) after the brackets: `3</tmp/x>(deleted)`.
_FD = re.compile(r"\s*(-?\d+|AT_FDCWD)(?:<(.*)>(?:\(deleted\))?)?\s*$", re.S)
_IOV_BASE = re.compile(r'iov_base="([^"\\]*+(?:\\.[^"\\]*+)*+)"(\.\.\.)?')
_SOCKADDR_FAMILY = re.compile(r"sa_family=(\w+)")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR4 = re.compile(r'sin_addr=inet_addr\("([\d.]+)"\)')
_ADDR6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')
_SUN_PATH = re.compile(r'sun_path=(@?"[^"\\]*+(?:\\.[^"\\]*+)*+")')


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments, respecting quotes and brackets."""
    if "," not in text:
        return [text.strip()] if text.strip() else []
    args: list[str] = []
    depth = 0
    current: list[str] = []
    for token in _TOKEN.findall(text):
        if depth == 0 and token == ",":
            args.append("".join(current).strip())
            current = []
            continue
        if token in "([{" and len(token) == 1:
            depth += 1
        elif token in ")]}" and len(token) == 1:
            depth = max(0, depth - 1)
        current.append(token)
    args.append("".join(current).strip())
    return args


def buffer_arg(text: str, first: str | None = None) -> tuple[bytes, bool] | None:
    """The bytes of the second argument when it is a quoted literal (`3<...>, "GET /..."..., 4096`), read
    where it starts instead of splitting every argument: a socket's buffer is most of its line. None when
    the second argument is no literal or is cut with the line (then `split_args` has the last word).
    `first`: `first_arg(text)`, when the caller has it already."""
    start = len(first if first is not None else first_arg(text)) + 1
    if start > len(text):
        return None
    if text.startswith(" ", start):
        start += 1
    if not text.startswith('"', start):
        return None
    parsed = parse_quoted(text, start)
    if parsed is None:
        return None
    data, cut, end = parsed
    return (data, cut) if end == len(text) or text.startswith(",", end) else None


def first_arg(text: str) -> str:
    """The first argument without splitting the rest (cheap: fds come first). An fd's -yy decoration
    may hold a comma (`5<UNIX-STREAM:[57109->57108,"/run/app.sock"]>`, a server's end of a unix
    socket): it ends at its closing `>`."""
    comma = text.find(",")
    if comma < 0:
        return text
    lt = text.find("<", 0, comma)
    if lt < 0:
        return text[:comma]
    end = text.find(">, ", lt)
    deleted = text.find(">(deleted), ", lt, end + 12 if end >= 0 else len(text))  # an unlinked file's fd
    if deleted >= 0:
        return text[: deleted + 10]
    return text if end < 0 else text[: end + 1]


@lru_cache(maxsize=4096)
def parse_fd(arg: str) -> tuple[int | None, str | None]:
    """`3</etc/passwd>` -> (3, "/etc/passwd"); `AT_FDCWD` -> (-100, None). Cached: a directory walk
    names the same folder fd in thousands of calls in a row."""
    match = _FD.match(arg)
    if match is None:
        return None, None
    value = match.group(1)
    if value == "AT_FDCWD":
        fd = -100
    else:
        fd = decimal(value)
        if fd is None:
            return None, None
    return fd, match.group(2)


def parse_path(arg: str) -> str | None:
    """A path argument (a quoted literal) as text; undecodable bytes kept by surrogateescape. A path is
    a C string: it ends at a NUL (strace shows none in one; a damaged log's `\0` would reach open())."""
    decoded = literal_bytes(arg)
    if decoded is None:
        return None
    return decoded[0].partition(b"\0")[0].decode("utf-8", "surrogateescape")


def parse_string_array(arg: str) -> list[str]:
    """`["ls", "-l"]` -> ["ls", "-l"] (argv of execve); a cut element keeps what was shown."""
    items: list[str] = []
    position = arg.find("[")
    if position < 0:
        return items
    position += 1
    while True:
        quote = arg.find('"', position)
        if quote < 0:
            break
        parsed = parse_quoted(arg, quote)
        if parsed is None:
            items.append(unescape(arg[quote + 1 :]).decode("utf-8", "surrogateescape"))
            break
        data, _cut, position = parsed
        items.append(data.decode("utf-8", "surrogateescape"))
    return items


def iov_bytes(arg: str) -> tuple[bytes, bool]:
    """Concatenated iov_base buffers of readv/writev/sendmsg/recvmsg; cut if any was cut."""
    data = bytearray()
    cut = False
    for match in _IOV_BASE.finditer(arg):
        data += unescape(match.group(1))
        cut = cut or match.group(2) is not None
    return bytes(data), cut


def parse_sockaddr(arg: str) -> tuple[str | None, str | None, int | None]:
    """`{sa_family=AF_INET, sin_port=htons(3306), sin_addr=inet_addr("127.0.0.1")}` -> (family, address, port)."""
    family_match = _SOCKADDR_FAMILY.search(arg)
    family = family_match.group(1) if family_match else None
    if family in ("AF_INET", "PF_INET"):
        host = _ADDR4.search(arg)
        port = _PORT.search(arg)
        number = port_number(port.group(1)) if port else None
        if host and number is not None:
            return "AF_INET", f"{host.group(1)}:{port.group(1)}", number
    if family in ("AF_INET6", "PF_INET6"):
        host = _ADDR6.search(arg)
        port = _PORT.search(arg)
        number = port_number(port.group(1)) if port else None
        if host and number is not None:
            return "AF_INET6", f"[{host.group(1)}]:{port.group(1)}", number
    if family in ("AF_UNIX", "AF_LOCAL", "PF_LOCAL", "PF_UNIX"):
        path = _SUN_PATH.search(arg)
        if path:
            text = path.group(1)
            abstract = text.startswith("@")
            decoded = literal_bytes(text.lstrip("@"))
            name = decoded[0].decode("utf-8", "surrogateescape") if decoded else text
            return "AF_UNIX", ("@" + name) if abstract else name, None
        return "AF_UNIX", None, None
    return family, None, None


def port_number(text: str) -> int | None:
    """A port's digits as an int; None for what no port has the digits of (a damaged log's thousands of
    digits, or `²`, a digit to isdigit() that int() refuses)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else None


def decimal(text: str) -> int | None:
    """Digits as an int; None for a number too long for one (a damaged log's thousands of digits)."""
    try:
        return int(text)
    except ValueError:
        return None


def int_arg(arg: str) -> int | None:
    try:
        return int(arg, 0)
    except ValueError:
        return None
