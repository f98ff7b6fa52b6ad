"""A real TAG1 server, one thread per connection: python -m dockit_tag1.server --port N [--once].

It accepts any user whose password is the one in $TAG1_PASSWORD (so that no password is ever on a
command line), answers each message in order, and ignores a message whose checksum is wrong.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socketserver
import sys
import threading
from decimal import Decimal, InvalidOperation

from dockit_tag1.wire import Splitter, checksum_ok, encode, parse

DEFAULT_PASSWORD = "tag1-default-password"


class Session:
    """One client's state: logged on or not, and its orders by client order id."""

    order_ids = itertools.count(1)  # order ids unique across the server's connections
    order_ids_lock = threading.Lock()

    def __init__(self, password: str) -> None:
        self.password = password
        self.user: str | None = None
        self.orders: dict[str, tuple[str, str]] = {}  # client order id -> (order id, status)

    def answer(self, fields: dict[str, str]) -> tuple[bytes, bool]:
        """The reply to one message, and whether the connection ends after it."""
        kind = fields.get("35")
        if kind == "A":
            if fields.get("554") != self.password or not fields.get("553"):
                return encode([(35, "5"), (58, "logon refused")]), True
            self.user = fields["553"]
            return encode([(35, "A"), (58, "welcome")]), False
        if kind == "5":
            return encode([(35, "5"), (58, "bye")]), True
        if kind == "D":
            return self.new_order(fields), False
        if kind == "F":
            return self.cancel(fields), False
        return encode([(35, "3"), (58, f"unknown message type {kind}")]), False

    def new_order(self, fields: dict[str, str]) -> bytes:
        client_id = fields.get("11", "")
        with Session.order_ids_lock:
            order_id = f"O{next(Session.order_ids)}"
        reason = self.refusal(fields)
        status = "8" if reason else "0"
        if client_id and not reason:
            self.orders[client_id] = (order_id, status)
        report = [(35, "8"), (37, order_id), (11, client_id), (39, status), (58, reason or "accepted")]
        return encode(report)

    def refusal(self, fields: dict[str, str]) -> str | None:
        """Why an order is rejected, or None."""
        if self.user is None:
            return "not logged on"
        if not fields.get("11"):
            return "no client order id"
        if fields["11"] in self.orders:
            return "duplicate client order id"
        if not fields.get("55"):
            return "no symbol"
        if fields.get("54") not in ("1", "2"):
            return "side must be 1 or 2"
        quantity = fields.get("38", "")
        if not (quantity.isdigit() and int(quantity) > 0):
            return "quantity must be a positive integer"
        try:
            price = Decimal(fields.get("44", ""))
        except InvalidOperation:
            return "price is not a number"
        if not price.is_finite() or price <= 0:
            return "price must be positive"
        return None

    def cancel(self, fields: dict[str, str]) -> bytes:
        cancel_id, original = fields.get("11", ""), fields.get("41", "")
        known = self.orders.get(original)
        if self.user is None or known is None or known[1] != "0":
            why = "not logged on" if self.user is None else "unknown order" if known is None else "too late"
            return encode([(35, "9"), (11, cancel_id), (41, original), (58, why)])
        self.orders[original] = (known[0], "4")
        return encode(
            [(35, "8"), (37, known[0]), (11, cancel_id), (41, original), (39, "4"), (58, "cancelled")]
        )


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        session = Session(self.server.password)  # type: ignore[attr-defined]
        splitter = Splitter()
        while True:
            try:
                data = self.request.recv(65536)
                messages = splitter.feed(data) if data else []
            except (OSError, ValueError):
                return
            if not data:
                return
            for message in messages:
                if not checksum_ok(message):
                    continue  # a garbled message is ignored, as FIX engines do
                reply, last = session.answer(parse(message))
                self.request.sendall(reply)
                if last:
                    return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], password: str) -> None:
        super().__init__(address, Handler)
        self.password = password


def start(port: int = 0, password: str = DEFAULT_PASSWORD) -> tuple[Server, threading.Thread]:
    """A server on 127.0.0.1 in a thread of this process (for tests): stop it with `server.shutdown()`."""
    server = Server(("127.0.0.1", port), password)
    thread = threading.Thread(target=server.serve_forever, name="tag1-server", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockit_tag1.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9878, help="0 picks a free port")
    parser.add_argument("--once", action="store_true", help="serve one connection, then exit")
    args = parser.parse_args(argv)
    password = os.environ.get("TAG1_PASSWORD", DEFAULT_PASSWORD)
    try:
        server = Server((args.host, args.port), password)
    except OSError as error:
        print(f"dockit_tag1.server: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    with server:
        if args.once:
            server.daemon_threads = False
            server.handle_request()  # its thread is joined when the server closes
        else:
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
