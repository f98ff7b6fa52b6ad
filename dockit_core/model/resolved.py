"""Names a traced program resolved, by address: what links a connection to `example.com:443` back to the
DNS lookup that found its address (a socket's `RemoteName`).

Fed by the summary's record spool with each `Dockit_DnsQuery` (its A and AAAA answers); asked by the
tracker when a socket connects. Bounded: the MAX_NAMES addresses used or learned last are kept, so a
resolver-heavy program traced for days costs a fixed few hundred kilobytes.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_NAMES = 4096
_ADDRESS_TYPES = frozenset({"A", "AAAA"})


def host_of(address: str) -> str:
    """`127.0.0.1:80` -> `127.0.0.1`; `[::1]:80` -> `::1`; `::ffff:127.0.0.1` maps to its IPv4."""
    if address.startswith("["):
        host = address[1 : address.find("]")] if "]" in address else address[1:]
    elif address.count(":") == 1:
        host = address.rsplit(":", 1)[0]
    else:
        host = address
    return host[7:] if host.lower().startswith("::ffff:") and "." in host else host


class ResolvedNames:
    def __init__(self, limit: int = MAX_NAMES) -> None:
        self.limit = limit
        self.names: OrderedDict[str, str] = OrderedDict()

    def learn(self, name: str, address: str) -> None:
        names = self.names
        names[address] = name
        names.move_to_end(address)
        if len(names) > self.limit:
            names.popitem(last=False)

    def learn_query(self, obj: object) -> None:
        """The answers of a `Dockit_DnsQuery` summary object (a `CimObject`)."""
        name = obj.attr("Name")  # type: ignore[attr-defined]
        if not isinstance(name, str) or obj.attr("Status") != "ok":  # type: ignore[attr-defined]
            return
        for child in obj.children:  # type: ignore[attr-defined]
            attrs = dict(child.attrs)
            if (
                child.tag == "Answer"
                and attrs.get("Type") in _ADDRESS_TYPES
                and isinstance(attrs.get("Value"), str)
            ):
                self.learn(name, str(attrs["Value"]))

    def name_of(self, address: str | None) -> str | None:
        if not address or not self.names:
            return None
        host = host_of(address)
        name = self.names.get(host)
        if name is not None:
            self.names.move_to_end(host)
        return name
