"""The connect descriptor `(DESCRIPTION=(ADDRESS=...)(CONNECT_DATA=...))`, as a nested dict.

Read from the text a CONNECT carries (or the DATA packet after it, when long) and a REDIRECT's target.
Not here: resolving names through tnsnames.ora or LDAP, or checking the values.
"""

from __future__ import annotations

Descriptor = dict[str, "str | Descriptor | list[str | Descriptor]"]


def parse_descriptor(text: str) -> Descriptor:
    """`(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=h)))` as nested dicts with upper-case keys.

    A key seen twice at one level (several ADDRESS entries) becomes a list. A cut descriptor (the tracer
    stopped mid-way) yields what was complete; quoted values (`ARGS='(...)'`) stay strings.
    """
    root: Descriptor = {}
    stack: list[Descriptor] = [root]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "(":
            end = i + 1
            while end < n and text[end] not in "=()":
                end += 1
            key = text[i + 1 : end].strip().upper()
            if end >= n or text[end] != "=":
                i = end
                continue
            j = end + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] == "(":
                child: Descriptor = {}
                _add_value(stack[-1], key, child)
                stack.append(child)
                i = j
                continue
            value, i = _read_value(text, j)
            if i < n and text[i] == ")":
                _add_value(stack[-1], key, value)
                i += 1
            continue
        if ch == ")":
            if len(stack) > 1:
                stack.pop()
            i += 1
            continue
        i += 1
    return root


def _read_value(text: str, start: int) -> tuple[str, int]:
    if start < len(text) and text[start] in "'\"":
        quote = text[start]
        end = text.find(quote, start + 1)
        if end < 0:
            return text[start + 1 :], len(text)
        close = end + 1
        while close < len(text) and text[close] != ")":
            close += 1
        return text[start + 1 : end], close
    end = start
    while end < len(text) and text[end] != ")":
        end += 1
    return text[start:end].strip(), end


def _add_value(node: Descriptor, key: str, value: str | Descriptor) -> None:
    if key not in node:
        node[key] = value
        return
    existing = node[key]
    if isinstance(existing, list):
        existing.append(value)
    else:
        node[key] = [existing, value]


def find_in_descriptor(node: object, *path: str) -> str | None:
    """The first string at the end of `path`, searching nested levels and lists depth-first."""
    if not path:
        return node if isinstance(node, str) else None
    if isinstance(node, list):
        for item in node:
            found = find_in_descriptor(item, *path)
            if found is not None:
                return found
        return None
    if not isinstance(node, dict):
        return None
    head = path[0]
    if head in node:
        found = find_in_descriptor(node[head], *path[1:])
        if found is not None:
            return found
    for value in node.values():
        if isinstance(value, (dict, list)):
            found = find_in_descriptor(value, *path)
            if found is not None:
                return found
    return None


def descriptor_summary(text: str) -> dict[str, str]:
    """The fields a session record wants: protocol, host, port, SID or service, programs, OS user."""
    tree = parse_descriptor(text)
    out: dict[str, str] = {}
    for name, path in (
        ("protocol", ("ADDRESS", "PROTOCOL")),
        ("host", ("ADDRESS", "HOST")),
        ("port", ("ADDRESS", "PORT")),
        ("server_program", ("ADDRESS", "PROGRAM")),
        ("sid", ("CONNECT_DATA", "SID")),
        ("service_name", ("CONNECT_DATA", "SERVICE_NAME")),
        ("program", ("CID", "PROGRAM")),
        ("client_host", ("CID", "HOST")),
        ("os_user", ("CID", "USER")),
    ):
        value = find_in_descriptor(tree, *path)
        if value:
            out[name] = value
    return out
