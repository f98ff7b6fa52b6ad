"""A real KV1 server, in memory: `python -m dockit_kvproto.server --port 7379`.

With `--port 0` the system picks a free port; the first line on stdout always says which one.
"""

from __future__ import annotations

import argparse
import socketserver
import threading


class KvHandler(socketserver.StreamRequestHandler):
    """One client connection: greet, then answer each command line in order."""

    server: KvServer

    def handle(self) -> None:
        self.reply(f"KV1 {self.server.name}")
        for raw in self.rfile:
            word, _, rest = raw.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            key, _, value = rest.partition(" ")
            if word == "QUIT":
                self.reply("OK")
                return
            self.reply(self.server.execute(word, key, value))

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\n")


class KvServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], name: str) -> None:
        super().__init__(address, KvHandler)
        self.name = name
        self.data: dict[str, str] = {}
        self.lock = threading.Lock()

    def execute(self, word: str, key: str, value: str) -> str:
        if word not in ("GET", "SET", "DEL"):
            return f"ERR unknown command {word!r}"
        if not key:
            return "ERR missing key"
        with self.lock:
            if word == "SET":
                self.data[key] = value
                return "OK"
            if key not in self.data:
                return "ERR no such key"
            if word == "GET":
                return f"VALUE {self.data[key]}"
            del self.data[key]
            return "OK"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dockit_kvproto.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7379)
    parser.add_argument("--name", default="kvd", help="the server name sent in the greeting")
    parser.add_argument("--connections", type=int, default=0, help="exit after serving N clients")
    args = parser.parse_args(argv)
    with KvServer((args.host, args.port), args.name) as server:
        host, port = server.server_address[:2]
        print(f"kvproto server {args.name} listening on {host}:{port}", flush=True)
        if args.connections:  # serve that many clients, wait for them, exit
            server.daemon_threads = False
            for _ in range(args.connections):
                server.handle_request()
            return
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
