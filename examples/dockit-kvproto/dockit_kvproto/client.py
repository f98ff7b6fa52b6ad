"""A real KV1 client: `python -m dockit_kvproto.client --port 7379 'SET color blue' 'GET color'`.

Each argument is one command; without arguments, commands are read from stdin, one a line. Each reply
is printed on stdout. `--pipeline` sends every command in one write before reading any reply.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Iterable


def run(host: str, port: int, commands: Iterable[str], pipeline: bool = False) -> int:
    """Send the commands; return 1 if a reply was an error, else 0."""
    status = 0
    with socket.create_connection((host, port)) as sock, sock.makefile("rb") as replies:
        greeting = replies.readline().decode().rstrip("\n")
        if not greeting.startswith("KV1"):
            print(f"not a KV1 server: {greeting!r}", file=sys.stderr)
            return 2
        if pipeline:
            commands = list(commands)
            sock.sendall("".join(f"{command.strip()}\n" for command in commands).encode())
        for command in commands:  # read lazily: stdin commands are sent as they are typed
            if not pipeline:
                sock.sendall(f"{command.strip()}\n".encode())
            reply = replies.readline().decode("utf-8", "replace").rstrip("\n")
            print(reply, flush=True)
            status |= reply.startswith("ERR")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockit_kvproto.client", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7379)
    parser.add_argument("--pipeline", action="store_true", help="send all commands before reading replies")
    parser.add_argument("commands", nargs="*", metavar="COMMAND", help="e.g. 'GET color'")
    args = parser.parse_args(argv)
    commands = args.commands or (line for line in sys.stdin if line.strip())
    return run(args.host, args.port, commands, args.pipeline)


if __name__ == "__main__":
    sys.exit(main())
