"""NATS, the text protocol (nats-server's client protocol), and the JetStream API carried over it.

Decoded: every control line (INFO, CONNECT, PUB, HPUB, SUB, UNSUB, MSG, HMSG, PING, PONG, +OK, -ERR;
operation names in any case, as the server accepts them), the header block of HPUB and HMSG
(`NATS/1.0 [status [description]]` and `Name: value` lines), the JSON of INFO and CONNECT (the
CONNECT's credentials are reported present, never kept: pass, auth_token, sig, jwt), and JetStream:
the API subjects (`$JS.API.STREAM.CREATE.<stream>`, `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`...,
with a JetStream domain too), their JSON requests and replies summarised into a few named fields,
publish acknowledgements (`{"stream": ..., "seq": ...}`), and the reply subjects of delivered
messages (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, in
both the old nine-token and the newer domain form) with the acknowledgement a client sends to them
(`+ACK`, `-NAK`, `+TERM`, `+WPI`, `+NXT`). Payloads are never kept: only their sizes and, for the
JetStream API, the summary.

The framing (a control line, then a payload of the size it names and CRLF) is the decoder's; this
module parses whole lines and blocks, and never raises: a line it cannot read is None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

CRLF = b"\r\n"
MAX_CONTROL_LINE = 4096  # nats-server's default max_control_line
CREDENTIAL_FIELDS = ("pass", "auth_token", "sig", "jwt")
# CONNECT fields that describe the client and are safe to show.
CONNECT_SHOWN = ("user", "name", "lang", "version", "protocol", "verbose", "pedantic", "echo", "headers")
INFO_SHOWN = (
    "server_id",
    "server_name",
    "version",
    "proto",
    "headers",
    "max_payload",
    "jetstream",
    "client_id",
)

OPERATIONS = frozenset(
    {"INFO", "CONNECT", "PUB", "HPUB", "SUB", "UNSUB", "MSG", "HMSG", "PING", "PONG", "+OK", "-ERR"}
)
CLIENT_OPERATIONS = frozenset({"CONNECT", "PUB", "HPUB", "SUB", "UNSUB"})
SERVER_OPERATIONS = frozenset({"INFO", "MSG", "HMSG", "+OK", "-ERR"})


@dataclass(frozen=True)
class Op:
    """One control line: its operation (upper case) and what it names. A PUB, HPUB, MSG or HMSG is
    followed by `size` bytes (the first `header_size` of them a header block), then CRLF."""

    name: str
    subject: str | None = None
    reply: str | None = None
    sid: str | None = None
    queue: str | None = None
    size: int = 0
    header_size: int = 0
    max_messages: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # INFO and CONNECT JSON
    text: str | None = None  # -ERR's message

    @property
    def has_payload(self) -> bool:
        return self.name in ("PUB", "HPUB", "MSG", "HMSG")


def _number(token: str) -> int | None:
    return int(token) if token.isascii() and token.isdigit() and len(token) < 19 else None


def parse_json(data: bytes | str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_line(line: bytes) -> Op | None:
    """A control line without its CRLF, or None when it is no NATS operation."""
    text = line.decode("utf-8", "replace")
    word, _, rest = text.partition(" ")
    if "\t" in word:  # the protocol allows tabs as separators too
        word, _, tail = word.partition("\t")
        rest = tail + (" " + rest if rest else "")
    name = word.upper()
    if name not in OPERATIONS:
        return None
    if name in ("INFO", "CONNECT"):
        fields = parse_json(rest.strip())
        return Op(name, fields=fields) if fields is not None else None
    if name in ("PING", "PONG", "+OK"):
        return Op(name) if not rest.strip() else None
    if name == "-ERR":
        return Op(name, text=rest.strip().strip("'"))
    args = rest.split()
    if name == "PUB" and len(args) in (2, 3):
        size = _number(args[-1])
        return (
            None
            if size is None
            else Op(name, subject=args[0], reply=args[1] if len(args) == 3 else None, size=size)
        )
    if name == "HPUB" and len(args) in (3, 4):
        header_size, size = _number(args[-2]), _number(args[-1])
        if header_size is None or size is None or header_size > size:
            return None
        return Op(
            name,
            subject=args[0],
            reply=args[1] if len(args) == 4 else None,
            header_size=header_size,
            size=size,
        )
    if name == "SUB" and len(args) in (2, 3):
        return Op(name, subject=args[0], queue=args[1] if len(args) == 3 else None, sid=args[-1])
    if name == "UNSUB" and len(args) in (1, 2):
        maximum = _number(args[1]) if len(args) == 2 else None
        return None if len(args) == 2 and maximum is None else Op(name, sid=args[0], max_messages=maximum)
    if name == "MSG" and len(args) in (3, 4):
        size = _number(args[-1])
        return (
            None
            if size is None
            else Op(name, subject=args[0], sid=args[1], reply=args[2] if len(args) == 4 else None, size=size)
        )
    if name == "HMSG" and len(args) in (4, 5):
        header_size, size = _number(args[-2]), _number(args[-1])
        if header_size is None or size is None or header_size > size:
            return None
        return Op(
            name,
            subject=args[0],
            sid=args[1],
            reply=args[2] if len(args) == 5 else None,
            header_size=header_size,
            size=size,
        )
    return None


def starts_operation(data: bytes | bytearray) -> bool:
    """Whether `data` begins with a NATS operation word followed by its separator (or is a prefix of
    one): where a stream out of step can take up again."""
    head = bytes(data[:8]).upper()
    for word in (
        b"PUB ",
        b"HPUB ",
        b"SUB ",
        b"UNSUB ",
        b"MSG ",
        b"HMSG ",
        b"PING\r",
        b"PONG\r",
        b"+OK\r",
        b"-ERR ",
        b"INFO ",
        b"CONNECT ",
    ):
        if head.startswith(word) or (len(head) < len(word) and word.startswith(head) and head):
            return True
    return False


@dataclass(frozen=True)
class Headers:
    status: int | None = None
    description: str | None = None
    items: list[tuple[str, str]] = field(default_factory=list)


def parse_headers(block: bytes) -> Headers:
    """`NATS/1.0 [status [description]]` then `Name: value` lines (a block cut short is read as far as
    it goes)."""
    lines = block.decode("utf-8", "replace").split("\r\n")
    status = description = None
    first = lines[0].split(" ", 2) if lines else []
    if first and first[0].startswith("NATS/") and len(first) > 1:
        status = _number(first[1])
        description = first[2].strip() if len(first) > 2 and first[2].strip() else None
    items = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and name:
            items.append((name.strip(), value.strip()))
    return Headers(status, description, items)


def connect_summary(fields: dict[str, Any]) -> dict[str, Any]:
    """What a CONNECT may show: the client's name, language, version... never its credentials."""
    return {
        key: fields[key]
        for key in CONNECT_SHOWN
        if key in fields and not isinstance(fields[key], (dict, list))
    }


def carries_credentials(fields: dict[str, Any]) -> bool:
    return any(fields.get(key) for key in CREDENTIAL_FIELDS)


# -- JetStream --------------------------------------------------------------------------------------------
# API verbs after `$JS.API.`: the tokens naming the operation, then what the following tokens are.
JS_OPERATIONS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("INFO",): (),
    ("STREAM", "CREATE"): ("stream",),
    ("STREAM", "UPDATE"): ("stream",),
    ("STREAM", "NAMES"): (),
    ("STREAM", "LIST"): (),
    ("STREAM", "INFO"): ("stream",),
    ("STREAM", "DELETE"): ("stream",),
    ("STREAM", "PURGE"): ("stream",),
    ("STREAM", "SNAPSHOT"): ("stream",),
    ("STREAM", "RESTORE"): ("stream",),
    ("STREAM", "MSG", "GET"): ("stream",),
    ("STREAM", "MSG", "DELETE"): ("stream",),
    ("STREAM", "PEER", "REMOVE"): ("stream",),
    ("STREAM", "LEADER", "STEPDOWN"): ("stream",),
    ("DIRECT", "GET"): ("stream",),
    ("CONSUMER", "CREATE"): ("stream", "consumer"),
    ("CONSUMER", "DURABLE", "CREATE"): ("stream", "consumer"),
    ("CONSUMER", "NAMES"): ("stream",),
    ("CONSUMER", "LIST"): ("stream",),
    ("CONSUMER", "INFO"): ("stream", "consumer"),
    ("CONSUMER", "DELETE"): ("stream", "consumer"),
    ("CONSUMER", "PAUSE"): ("stream", "consumer"),
    ("CONSUMER", "MSG", "NEXT"): ("stream", "consumer"),
    ("CONSUMER", "LEADER", "STEPDOWN"): ("stream", "consumer"),
    ("ACCOUNT", "PURGE"): (),
    ("META", "LEADER", "STEPDOWN"): (),
}


@dataclass(frozen=True)
class JsApi:
    operation: str  # "STREAM.CREATE", "CONSUMER.MSG.NEXT"
    stream: str | None = None
    consumer: str | None = None
    domain: str | None = None


def js_api(subject: str) -> JsApi | None:
    """The JetStream API call a subject names: `$JS.API.<verb...>.<stream>[.<consumer>]`, or
    `$JS.<domain>.API...` for a JetStream domain."""
    if not subject.startswith("$JS."):
        return None
    tokens = subject.split(".")
    domain = None
    if len(tokens) > 2 and tokens[1] == "API":
        rest = tokens[2:]
    elif len(tokens) > 3 and tokens[2] == "API":
        domain, rest = tokens[1], tokens[3:]
    else:
        return None
    for length in (3, 2, 1):
        names = JS_OPERATIONS.get(tuple(rest[:length]))
        if names is not None:
            values = dict(zip(names, rest[length:], strict=False))
            return JsApi(".".join(rest[:length]), values.get("stream"), values.get("consumer"), domain)
    return JsApi(".".join(rest), None, None, domain) if rest else None


@dataclass(frozen=True)
class JsAckSubject:
    """What the reply subject of a message delivered by a JetStream consumer says about it."""

    stream: str
    consumer: str
    delivered: int | None  # how many times it was delivered (1: first time)
    stream_sequence: int | None
    consumer_sequence: int | None
    pending: int | None
    domain: str | None = None


def js_ack_subject(subject: str | None) -> JsAckSubject | None:
    if not subject or not subject.startswith("$JS.ACK."):
        return None
    tokens = subject.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
        stream, consumer, numbers, domain = tokens[2], tokens[3], tokens[4:9], None
    elif len(tokens) >= 11:  # $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>...[.<token>]
        domain = None if tokens[2] == "_" else tokens[2]
        stream, consumer, numbers = tokens[4], tokens[5], tokens[6:11]
    else:
        return None
    delivered, stream_seq, consumer_seq, _, pending = (_number(t) for t in numbers)
    return JsAckSubject(stream, consumer, delivered, stream_seq, consumer_seq, pending, domain)


ACK_KINDS = {b"+ACK": "ack", b"-NAK": "nak", b"+TERM": "term", b"+WPI": "in-progress", b"+NXT": "ack-next"}


def js_ack_kind(payload: bytes) -> str | None:
    """The acknowledgement a client published to a `$JS.ACK...` subject (an empty payload is +ACK)."""
    if not payload.strip():
        return "ack"
    for word, kind in ACK_KINDS.items():
        if payload.startswith(word):
            return kind
    return None


def _scalar(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ",".join(map(str, value))
    return value if isinstance(value, (str, int, float, bool)) else None


# The request fields worth showing, per API operation (nested ones by a dotted path).
JS_REQUEST_FIELDS: dict[str, tuple[str, ...]] = {
    "STREAM.CREATE": (
        "name",
        "subjects",
        "retention",
        "storage",
        "max_msgs",
        "max_bytes",
        "max_age",
        "num_replicas",
        "discard",
    ),
    "STREAM.UPDATE": (
        "name",
        "subjects",
        "retention",
        "storage",
        "max_msgs",
        "max_bytes",
        "max_age",
        "num_replicas",
        "discard",
    ),
    "STREAM.PURGE": ("filter", "seq", "keep"),
    "STREAM.MSG.GET": ("seq", "last_by_subj", "next_by_subj"),
    "STREAM.MSG.DELETE": ("seq", "no_erase"),
    "DIRECT.GET": ("seq", "last_by_subj", "next_by_subj", "batch"),
    "STREAM.NAMES": ("subject", "offset"),
    "STREAM.LIST": ("subject", "offset"),
    "CONSUMER.CREATE": (
        "config.durable_name",
        "config.name",
        "config.deliver_subject",
        "config.deliver_group",
        "config.deliver_policy",
        "config.ack_policy",
        "config.ack_wait",
        "config.max_deliver",
        "config.filter_subject",
        "config.filter_subjects",
        "config.max_ack_pending",
        "action",
    ),
    "CONSUMER.MSG.NEXT": ("batch", "expires", "no_wait", "max_bytes", "idle_heartbeat"),
}
JS_RESPONSE_FIELDS = (
    "config.name",
    "name",
    "stream_name",
    "state.messages",
    "state.bytes",
    "num_pending",
    "success",
    "purged",
    "total",
    "streams",
    "consumers",
    "seq",
    "memory",
    "storage",
)


def _path(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def summarise(document: dict[str, Any], paths: tuple[str, ...]) -> list[tuple[str, Any]]:
    found = []
    for dotted in paths:
        value = _scalar(_path(document, dotted))
        if value is not None and value != "":
            found.append((dotted.rsplit(".", 1)[-1], value))
    return found


def summarise_js_request(operation: str, payload: bytes) -> list[tuple[str, Any]]:
    """The named fields of a JetStream API request (its JSON), or [] when it has none or is no JSON."""
    document = parse_json(payload) if payload.strip() else None
    if document is None:
        return []
    paths = JS_REQUEST_FIELDS.get(operation)
    if paths is None:  # an operation without a list: its top-level scalars, a few
        paths = tuple(key for key, value in document.items() if _scalar(value) is not None)[:8]
    return summarise(document, paths)


@dataclass(frozen=True)
class JsReply:
    ok: bool
    error_code: int | None = None  # the HTTP-like code (404, 400...)
    error_name: int | None = None  # JetStream's err_code (10059: stream not found...)
    description: str | None = None
    fields: list[tuple[str, Any]] = field(default_factory=list)
    stream: str | None = None  # a publish acknowledgement's stream and sequence
    sequence: int | None = None
    duplicate: bool = False


def parse_js_reply(payload: bytes) -> JsReply | None:
    """A JetStream API reply or publish acknowledgement (JSON), or None when it is neither."""
    document = parse_json(payload) if payload[:1] == b"{" else None
    if document is None:
        return None
    error = document.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        name = error.get("err_code")
        return JsReply(
            False,
            code if isinstance(code, int) else None,
            name if isinstance(name, int) else None,
            str(error.get("description")) if error.get("description") is not None else None,
        )
    stream, sequence = document.get("stream"), document.get("seq")
    if isinstance(stream, str) and isinstance(sequence, int):
        return JsReply(True, stream=stream, sequence=sequence, duplicate=bool(document.get("duplicate")))
    return JsReply(True, fields=summarise(document, JS_RESPONSE_FIELDS))
