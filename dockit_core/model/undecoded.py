"""What the summary says of a connection that no decoder claimed: where it went, how much crossed it,
how it began (printable, short, secrets cut off), and how to force a decoder on it.

A user who sees a socket with byte counts and nothing else cannot tell whether dockit failed or the
protocol is unknown to it; this object says which, and what to try.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from decoders.api import ChannelInfo, Direction
from decoders.records import CimChild, CimObject
from decoders.redact import REDACTED

SAMPLE_BYTES = 64  # of each direction: enough to recognise a protocol, too little to carry a payload
SOCKET_KINDS = frozenset({"tcp", "tcp6", "udp", "udp6", "unix"})  # pipes are not connections

# From the first word that smells of a credential on, the sample is cut: an unknown protocol's login
# (`PASS hunter2`, `AUTH s3cret`, `{"password": ...`) must not reach an output.
_SECRET_WORD = re.compile(rb"pass|auth|token|secret|credential|api[-_]?key|login|sasl|\bkey\b", re.I)


def printable(data: bytes) -> str:
    """Bytes as a person reads them: ASCII kept, `\\r` `\\n` `\\t` escaped, anything else `\\xNN`;
    from a credential-looking word on, `<redacted>`."""
    secret = _SECRET_WORD.search(data)
    shown = data if secret is None else data[: secret.end()]
    text = "".join(_char(byte) for byte in shown)
    return text + (" " + REDACTED if secret is not None else "")


def _char(byte: int) -> str:
    if byte == 0x5C:
        return "\\\\"
    if 0x20 <= byte < 0x7F:
        return chr(byte)
    return {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(byte, f"\\x{byte:02x}")


def undecoded_object(
    info: ChannelInfo, first_bytes: tuple[bytes, bytes], byte_counts: tuple[int, int], names: Iterable[str]
) -> CimObject:
    """`Dockit_UndecodedChannel` for a connection whose bytes no decoder claimed. `first_bytes` and
    `byte_counts` are (out, in), seen from the channel's local end."""
    port = (info.local_port if info.listening else info.remote_port) or info.remote_port or info.local_port
    known = ", ".join(sorted(names))
    if port:
        hint = f"undecoded; `--decode {port}=NAME` forces a decoder (known: {known})"
    else:
        hint = f"undecoded; no decoder recognised its first bytes (known: {known})"
    children = [
        CimChild("FirstBytes", (("Direction", direction.value),), printable(sample))
        for direction, sample in zip((Direction.OUT, Direction.IN), first_bytes, strict=True)
        if sample
    ]
    return CimObject.make(
        "Dockit_UndecodedChannel",
        {
            "Id": info.channel_id,
            "Kind": info.kind,
            "Local": info.local,
            "Remote": info.remote,
            "Process": info.pid,
            "Side": "server" if info.listening else "client",
            "BytesOut": byte_counts[0],
            "BytesIn": byte_counts[1],
            "Hint": hint,
        },
        children,
    )
