"""`--serve`: the store over HTTP, while the trace runs. Standard library only (http.server), one thread
per client, in a process of its own (dockit_core/cli/serve_process.py): the pipeline only writes the
store, so clients cost neither its thread nor its interpreter's lock, and a slow or stuck client can
cost its own thread, never the trace. A client that stops reading is dropped when a write has
waited `SEND_TIMEOUT` seconds; a client that falls far behind gets a `reset` and reloads the objects as
they stand instead of every event it missed.

Routes: `/` the page; `/api/summary` what the run is and how many objects of each class;
`/api/objects?class=C&Attr=value&s=FILTER&offset=&limit=` objects as they stand (filters as `-s`);
`/api/objects/<class>/<id>` one object and its links; `/api/digest` the query digest;
`/api/events?from=SEQ` a Server-Sent Events stream of create/update/delete, resumable with
`Last-Event-ID`; with `coalesce=1` (the page's), a client far behind gets `reset` instead of the backlog.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, unquote, urlsplit

from decoders.records import CimChild, CimObject
from dockit_core.outputs.live.store import StoreReader
from dockit_core.outputs.summary.filter import SummaryFilter, SummaryFilterError

SEND_TIMEOUT = 10.0
BEHIND = 20_000  # events a client may lag before it is told to reload instead
BLOCK = 500  # events read and sent at once; a whole block's text is kept for the next client
BLOCKS_KEPT = 64  # whole blocks kept (a block is about 500 KB at most: 32 MB)
PAGE_LIMIT = 1000
SCAN_LIMIT = 200_000  # objects a filtered listing looks at, at most


def parse_address(text: str) -> tuple[str, int]:
    """`--serve [HOST:]PORT`: the host defaults to 127.0.0.1 (this machine only)."""
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--serve {text!r}: expected [HOST:]PORT, e.g. 8765 or 0.0.0.0:8765")
    return host, int(port)


def _as_cim(document: dict) -> CimObject:
    """A stored object as a CimObject, for the `-s` filters (values as the summary shows them)."""
    children = tuple(
        CimChild(c["tag"], tuple((c.get("attrs") or {}).items()), c.get("text")) for c in document.get("children", ())
    )
    return CimObject(document["class"], tuple(document["attrs"].items()), children)


def listening_socket(address: tuple[str, int]) -> socket.socket:
    """Bound and listening before the server's process starts, so that a bad address is the caller's
    one-line error and the URL can be printed at once (connections wait in the backlog meanwhile)."""
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=64)


def url_of(listening: socket.socket) -> str:
    host, port = listening.getsockname()[:2]
    return f"http://{host if ':' not in str(host) else f'[{host}]'}:{port}/"


class BlockCache:
    """The text of whole blocks of events, as last sent: clients reading the stream from the same point
    (ten pages opened on one run, each from 0) cost one read and one rendering of each block, not ten.
    A block's documents are the objects as they stood when it was first read, a state they really had;
    any later change is an event of a later block, so a client still ends with every object's last state."""

    def __init__(self, kept: int = BLOCKS_KEPT) -> None:
        self.kept = kept
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, after: int) -> bytes | None:
        with self._lock:
            text = self._blocks.get(after)
            if text is not None:
                self._blocks.move_to_end(after)
            return text

    def put(self, after: int, text: bytes) -> None:
        with self._lock:
            self._blocks[after] = text
            while len(self._blocks) > self.kept:
                self._blocks.popitem(last=False)


class LiveServer:
    """The HTTP server over a listening socket, in a thread of its own; what the run is (shown on the
    page) and its digest come from the store."""

    def __init__(self, store: StoreReader, listening: socket.socket):
        self.store = store
        self.about = store.about()
        self.blocks = BlockCache()
        handler = type("Handler", (_Handler,), {"live": self})
        self.httpd = ThreadingHTTPServer(listening.getsockname()[:2], handler, bind_and_activate=False)
        self.httpd.socket.close()
        self.httpd.socket = listening
        self.httpd.server_address = listening.getsockname()
        self.httpd.server_name, self.httpd.server_port = "dockit", self.httpd.server_address[1]
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="dockit-serve", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    live: LiveServer
    server_version = "dockit"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    # -- plumbing -----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.connection.settimeout(SEND_TIMEOUT)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = url.path
        try:
            if path == "/":
                page = resources.files("dockit_core.outputs.live").joinpath("page.html").read_bytes()
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif path == "/api/summary":
                store = self.live.store
                self._json({**self.live.about, "seq": store.last_seq(), "finished": store.finished,
                            "classes": store.classes(), "file_categories": store.file_categories()})  # fmt: skip
            elif path == "/api/objects":
                self._objects(query)
            elif path.startswith("/api/objects/"):
                self._object(path[len("/api/objects/") :])
            elif path == "/api/digest":
                self._digest()
            elif path == "/api/events":
                self._events(query)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away or stopped reading: dropped

    # -- the API ------------------------------------------------------------------------------------
    def _objects(self, query: dict[str, list[str]]) -> None:
        store = self.live.store
        cim_class = (query.get("class") or [None])[0]
        try:
            offset = max(0, int((query.get("offset") or ["0"])[0]))
            limit = min(PAGE_LIMIT, max(1, int((query.get("limit") or [str(PAGE_LIMIT)])[0])))
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "offset and limit are numbers")
            return
        filters = []
        try:
            filters = [SummaryFilter.parse(text) for text in query.get("s", [])]
        except SummaryFilterError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        conditions = {k: v for k, v in query.items() if k not in ("class", "s", "offset", "limit")}
        if cim_class and conditions:
            filters.append(SummaryFilter(cim_class, conditions))
        elif conditions:
            self._error(HTTPStatus.BAD_REQUEST, "attribute filters need a class=")
            return
        if not filters:
            total = store.count(cim_class)
            self._json({"total": total, "offset": offset, "objects": list(store.objects(cim_class, offset, limit))})
            return
        matched = []
        looked = 0
        classes = {f.cim_class for f in filters}
        for name in sorted(classes):
            for document in store.objects(name, 0, SCAN_LIMIT):
                looked += 1
                if any(f.matches(_as_cim(document)) for f in filters):
                    matched.append(document)
        self._json({"total": len(matched), "offset": offset, "objects": matched[offset : offset + limit],
                    "looked_at": looked})  # fmt: skip

    def _object(self, rest: str) -> None:
        cim_class, slash, object_id = rest.partition("/")
        if not slash:
            self._error(HTTPStatus.NOT_FOUND, "expected /api/objects/<class>/<id>")
            return
        store = self.live.store
        key = f"{unquote(cim_class)}/{unquote(object_id)}"
        found = store.get(key)
        if found is None:
            self._error(HTTPStatus.NOT_FOUND, f"no object {key}")
            return
        self._json({"object": found, "links": links(store, found)})

    def _digest(self) -> None:
        digest = self.live.store.digest()
        if digest is None:
            self._error(HTTPStatus.NOT_FOUND, "this run has no query digest")
            return
        self._json(digest)

    def _events(self, query: dict[str, list[str]]) -> None:
        store = self.live.store
        start = self.headers.get("Last-Event-ID") or (query.get("from") or ["0"])[0]
        last = int(start) if str(start).isdigit() else 0
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        self.close_connection = True
        write = self.wfile.write
        write(b"retry: 1000\n\n")
        idle = 0
        coalesce = (query.get("coalesce") or ["0"])[0] == "1"
        while True:
            if coalesce and store.seq - last > BEHIND:
                last = store.last_seq()
                write(f"id: {last}\nevent: reset\ndata: {json.dumps({'seq': last})}\n\n".encode())
                self.wfile.flush()
            after = last
            whole = after % BLOCK == 0  # reading from a block's start: its text may be kept already
            cached = self.live.blocks.get(after) if whole else None
            if cached is not None:
                write(cached)
                self.wfile.flush()
                last, idle = after + BLOCK, 0
                continue
            events = store.events_after(last, BLOCK - after % BLOCK)  # up to the block's end
            batch = []
            for seq, kind, key, text in events:
                last = seq
                if text is None and kind != "delete":
                    continue  # the object is gone since: its delete event follows
                payload = text if text is not None else json.dumps({"key": key})
                batch.append(f"id: {seq}\nevent: {kind}\ndata: {payload}\n\n")
            if events:
                data = "".join(batch).encode()
                if whole and len(events) == BLOCK:  # events are numbered without gaps: the whole block
                    self.live.blocks.put(after, data)
                write(data)  # one write a block
                self.wfile.flush()
                idle = 0
                continue
            if store.finished:
                write(f"id: {last}\nevent: end\ndata: {{}}\n\n".encode())
                self.wfile.flush()
                return
            store.wait_beyond(last, 1.0)
            idle += 1
            if idle >= 15:  # a comment now and then: proxies keep the stream, a gone client is noticed
                write(b": keepalive\n\n")
                self.wfile.flush()
                idle = 0


def links(store: StoreReader, document: dict) -> dict[str, object]:
    """What an object leads to: a process to its parent, children, files, sockets, sessions, queries and
    requests; a socket to its session; a session to its queries and process; a query to its session."""
    attrs = document.get("attrs", {})
    cim_class = document["class"]
    found: dict[str, object] = {}
    if cim_class == "CIM_Process":
        pid = int(attrs["Handle"])
        parent = next((c.get("text") for c in document.get("children", ()) if c["tag"] == "ParentProcessId"), None)
        if parent is not None:
            found["parent"] = store.get(f"CIM_Process/{parent}")
        found["children"] = store.children_of(pid)
        for name, linked in (
            ("files", "CIM_DataFile"),
            ("sockets", "Dockit_Socket"),
            ("pipes", "Dockit_Pipe"),
            ("sessions", "Dockit_DatabaseSession"),
            ("queries", "Dockit_SqlQuery"),
            ("requests", "Dockit_HttpRequest"),
        ):
            found[name] = store.keys_of_pid(pid, linked)
    elif cim_class == "Dockit_Socket":
        found["sessions"] = store.of_channel(_channel(document), "Dockit_DatabaseSession") if _channel(document) else []
        found["processes"] = _processes(store, attrs.get("Process"))
    elif cim_class == "Dockit_DatabaseSession":
        found["queries"] = store.in_session(str(attrs.get("Id")))
        found["processes"] = _processes(store, attrs.get("Process"))
        found["sockets"] = store.of_channel(str(attrs.get("Id")), "Dockit_Socket")
    elif "Session" in attrs:
        found["sessions"] = store.of_channel(str(attrs["Session"]), "Dockit_DatabaseSession")
        found["processes"] = _processes(store, attrs.get("Process"))
    elif "Process" in attrs:
        found["processes"] = _processes(store, attrs.get("Process"))
    elif cim_class == "CIM_DataFile":
        pids = [c["attrs"]["Process"] for c in document.get("children", ()) if c["tag"] == "Access" and "attrs" in c]
        found["processes"] = _processes(store, " ".join(map(str, pids)))
    return found


def _channel(document: dict) -> str | None:
    attrs = document.get("attrs", {})
    local, remote, kind = attrs.get("Local"), attrs.get("Remote"), attrs.get("Family")
    if local and remote and kind in ("tcp", "tcp6", "udp", "udp6"):
        ends = sorted((str(local), str(remote)))
        return f"{kind}:{ends[0]}-{ends[1]}"
    return None


def _processes(store: StoreReader, value: object) -> list[dict]:
    pids = [part for part in str(value or "").split() if part.isdigit()]
    return [doc for doc in (store.get(f"CIM_Process/{pid}") for pid in pids) if doc is not None]
