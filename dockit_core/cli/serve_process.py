"""The `--serve` server's own process: `python -m dockit_core.cli.serve_process STORE FD PARENT`.

Why a process: the server's threads (SQLite reads, JSON, sockets) would share the pipeline's interpreter
lock, so ten clients reading the event stream slowed a replay by a quarter; in a process of their own
they use the other CPU. It reads the store the pipeline writes (a SQLite file in WAL mode) and serves
on the socket the parent bound. It ends on SIGTERM (the parent stopping it) or when its parent is gone
(then it removes the store the parent could not); Ctrl-C in the terminal is the parent's to handle, so
it ignores SIGINT.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

PARENT_CHECK_SECONDS = 0.5


def main(argv: list[str]) -> int:
    store_path, fd, parent = argv[0], int(argv[1]), int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())

    from dockit_core.outputs.live.server import LiveServer
    from dockit_core.outputs.live.store import StoreReader

    server = LiveServer(StoreReader(store_path), socket.socket(fileno=fd))
    server.start()
    orphaned = False
    try:
        while not stopped.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != parent:
                orphaned = True  # the parent died without stopping us, nor removing its scratch store
                break
    finally:
        server.stop()
    if orphaned:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(store_path + suffix)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
