"""A real TAG1 client: python -m dockit_tag1.client --port N --user U 'buy 100 ACME 10.25' 'cancel c1' ...

Logs on (the password comes from $TAG1_PASSWORD, never from the command line), sends each request,
logs out, and prints one JSON line per message sent: its fields (never the password) and the server's
answer, so that a test can compare what really crossed the wire with what dockit decoded.

Requests: `buy|sell QUANTITY SYMBOL PRICE` (client order ids c1, c2... in order) and `cancel CLORDID`
(cancel ids x1, x2...). `--pipeline` sends everything before reading any answer; `--write-size N`
writes at most N bytes a call; `--split-logon` writes the logon in two calls cut inside the password;
`--bad-checksum K` spoils the checksum of the K-th request (the server then ignores it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

from dockit_tag1.server import DEFAULT_PASSWORD
from dockit_tag1.wire import Splitter, encode, parse

SIDE_CODES = {"buy": "1", "sell": "2"}


def requests_fields(specs: list[str]) -> list[list[tuple[int, str]]]:
    """The fields of each request given on the command line."""
    orders = cancels = 0
    messages = []
    for spec in specs:
        words = spec.split()
        if len(words) == 4 and words[0] in SIDE_CODES:
            orders += 1
            side, quantity, symbol, price = words
            messages.append(
                [
                    (35, "D"),
                    (11, f"c{orders}"),
                    (55, symbol),
                    (54, SIDE_CODES[side]),
                    (38, quantity),
                    (44, price),
                ]
            )
        elif len(words) == 2 and words[0] == "cancel":
            cancels += 1
            messages.append([(35, "F"), (11, f"x{cancels}"), (41, words[1])])
        else:
            raise ValueError(f"not a request: {spec!r} (buy|sell QUANTITY SYMBOL PRICE, or cancel CLORDID)")
    return messages


class Connection:
    """A socket that writes in pieces of at most `write_size` bytes and reads whole messages."""

    def __init__(self, sock: socket.socket, write_size: int) -> None:
        self.sock = sock
        self.write_size = write_size
        self.splitter = Splitter()
        self.ready: list[bytes] = []

    def send(self, data: bytes) -> None:
        for at in range(0, len(data), self.write_size):
            self.sock.sendall(data[at : at + self.write_size])

    def receive(self) -> dict[str, str] | None:
        while not self.ready:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.ready += self.splitter.feed(data)
        return parse(self.ready.pop(0))


def run(args: argparse.Namespace, password: str) -> int:
    logon = [(35, "A"), (553, args.user), (554, password)]
    requests = requests_fields(args.requests)
    messages = [logon, *requests, [(35, "5")]]
    spoiled = {args.bad_checksum} if args.bad_checksum else set()
    wires = [encode(fields, corrupt_checksum=i in spoiled) for i, fields in enumerate(messages)]
    with socket.create_connection((args.host, args.port), timeout=10) as sock:
        connection = Connection(sock, args.write_size)
        if args.split_logon:
            cut = wires[0].index(password.encode()) + len(password) // 2
            connection.send(wires[0][:cut])
            time.sleep(0.05)
            connection.send(wires[0][cut:])
        if args.pipeline:
            connection.send(b"".join(wires[1 if args.split_logon else 0 :]))
        replies = []
        for i, wire in enumerate(wires):
            if not args.pipeline and not (i == 0 and args.split_logon):
                connection.send(wire)
            reply = None if i in spoiled else connection.receive()
            replies.append(reply)
            shown = {str(tag): value for tag, value in messages[i] if tag != 554}
            print(json.dumps({"sent": shown, "checksum_ok": i not in spoiled, "reply": reply}), flush=True)
            if i == 0 and (reply is None or reply.get("35") != "A"):
                return 3  # logon refused: the server has closed the connection
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockit_tag1.client", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9878)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--pipeline", action="store_true", help="send everything, then read the answers")
    parser.add_argument(
        "--write-size", type=int, default=1 << 20, metavar="N", help="at most N bytes a write"
    )
    parser.add_argument("--split-logon", action="store_true", help="write the logon in two calls")
    parser.add_argument(
        "--bad-checksum", type=int, default=0, metavar="K", help="spoil the K-th request's checksum"
    )
    parser.add_argument("requests", nargs="*")
    args = parser.parse_args(argv)
    if args.write_size < 1:
        parser.error("--write-size must be at least 1")
    try:
        return run(args, os.environ.get("TAG1_PASSWORD", DEFAULT_PASSWORD))
    except ValueError as error:
        print(f"dockit_tag1.client: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"dockit_tag1.client: {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
