"""strace's fd decorations (`-y`, `-yy`): what `3<...>` says the descriptor is.

`/etc/passwd`, `pipe:[5648149]`, `TCP:[127.0.0.1:36632->127.0.0.1:3306]`, `TCP:[7423]` (before connect),
`TCPv6:[[::1]:80->[::1]:5555]`, `UNIX-STREAM:[7415->7416]`, `UNIX-STREAM:[7415,"/run/x.sock"]`,
`socket:[535040603]` (strace 4.x), `/dev/pts/2<char 136:2>`, `anon_inode:[eventfd]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from dockit_core.ingest.args import port_number
from dockit_core.ingest.cstring import literal_bytes, unescape

_SOCKET = re.compile(
    r"(TCP|TCPv6|UDP|UDPv6|UDPLITE|UDPLITEv6|UNIX|UNIX-STREAM|UNIX-DGRAM|UNIX-SEQPACKET|NETLINK|"
    r"RAW|RAWv6|PACKET|socket)(?::\[(.*)\])?$",
    re.S,
)
_ENDPOINTS = re.compile(r"(.+)->(.+)$")

_KINDS = {
    "TCP": "tcp",
    "TCPv6": "tcp6",
    "UDP": "udp",
    "UDPv6": "udp6",
    "UDPLITE": "udp",
    "UDPLITEv6": "udp6",
    "UNIX": "unix",
    "UNIX-STREAM": "unix",
    "UNIX-DGRAM": "unix",
    "UNIX-SEQPACKET": "unix",
    "NETLINK": "netlink",
    "RAW": "raw",
    "RAWv6": "raw",
    "PACKET": "packet",
    "socket": "unknown",
}


@dataclass(frozen=True, slots=True)
class Decoration:
    kind: str  # "file", "pipe", "socket", "other"
    path: str | None = None  # file path
    pipe_id: str | None = None
    socket_kind: str | None = None
    local: str | None = None
    remote: str | None = None
    inode: str | None = None
    peer_inode: str | None = None
    label: str | None = None


@lru_cache(maxsize=4096)
def parse_decoration(text: str) -> Decoration:
    if "\\" in text:  # -x/-xx escape the decoration too: `3<\x2f\x65\x74\x63...>`
        lt = text.find("<")
        head, tail = (text[:lt], text[lt:]) if lt > 0 else (text, "")
        text = unescape(head).decode("utf-8", "surrogateescape") + tail
    if text.startswith("/"):
        # -yy adds device numbers: /dev/pts/2<char 136:2>
        if text.endswith(">") and "<" in text:
            text = text[: text.rfind("<")]
        if text.endswith(" (deleted)"):
            text = text[: -len(" (deleted)")]
        return Decoration("file", path=text.partition("\0")[0])  # a C string: a damaged log's `\0` ends it
    if text.startswith("pipe:["):
        return Decoration("pipe", pipe_id=text[6:-1] if text.endswith("]") else text[6:])
    match = _SOCKET.match(text)
    if match:
        kind = _KINDS[match.group(1)]
        inner = match.group(2) or ""
        if kind == "unix":
            inode, _, path = inner.partition(",")
            inode, _, peer = inode.partition("->")
            return Decoration(
                "socket",
                socket_kind=kind,
                inode=inode or None,
                peer_inode=peer or None,
                local=_unix_path(path),
            )
        ends = _ENDPOINTS.match(inner)
        if ends:
            local, remote = ends.group(1), ends.group(2)
            if _bad_port(local) or _bad_port(remote):  # a damaged log's: no address is known
                return Decoration("socket", socket_kind=kind, label=inner)
            return Decoration("socket", socket_kind=kind, local=local, remote=remote)
        if inner.isdigit():
            return Decoration("socket", socket_kind=kind, inode=inner)
        if kind in ("tcp", "tcp6", "udp", "udp6") and ":" in inner and not _bad_port(inner):
            return Decoration("socket", socket_kind=kind, local=inner)
        return Decoration("socket", socket_kind=kind, label=inner or None)
    return Decoration("other", label=text)


def _bad_port(address: str) -> bool:
    """`1.2.3.4:99999999`: digits after the last colon that no port has (at most 65535)."""
    port = address.rpartition(":")[2]
    if not port.isdigit():  # no port (`TCP:[7423]` before connect) or no digits: not taken as one
        return False
    number = port_number(port)
    return number is None or number > 65535


def _unix_path(text: str) -> str | None:
    """`"/run/x.sock"` -> /run/x.sock; an abstract name `@"name"` -> @name, as a sun_path= is read."""
    abstract = text.startswith("@")
    body = text[1:] if abstract else text
    if not body:
        return None
    decoded = literal_bytes(body) if body.startswith('"') else None
    name = decoded[0].decode("utf-8", "surrogateescape") if decoded else body.strip('"')
    return "@" + name if abstract else name or None
