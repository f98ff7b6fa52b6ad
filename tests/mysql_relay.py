"""A TCP relay that records a real client/server MySQL exchange, for the decoder tests.

127.0.0.1:<ephemeral> -> 127.0.0.1:3306; every recv() becomes one recorded chunk (time, direction seen
from the client, bytes), in the order the relay saw them, exactly what a tracer on the client sees.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

SERVER = ("127.0.0.1", 3306)


@dataclass
class Recording:
    chunks: list[tuple[float, str, bytes]] = field(default_factory=list)  # (time, "out"|"in", data)
    closed: threading.Event = field(default_factory=threading.Event)


class Relay:
    def __init__(self, server: tuple[str, int] = SERVER) -> None:
        self.server = server
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.recordings: list[Recording] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            recording = Recording()
            self.recordings.append(recording)
            threading.Thread(target=self._pump, args=(client, recording), daemon=True).start()

    def _pump(self, client: socket.socket, recording: Recording) -> None:
        server = socket.create_connection(self.server)
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, ("out", server))
        selector.register(server, selectors.EVENT_READ, ("in", client))
        try:
            while True:
                for key, _ in selector.select():
                    direction, peer = key.data
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    recording.chunks.append((time.time(), direction, data))
                    peer.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()
            recording.closed.set()

    def last(self, timeout: float = 5.0) -> Recording:
        """The latest connection's recording, once both ends closed."""
        recording = self.recordings[-1]
        recording.closed.wait(timeout)
        return recording

    def close(self) -> None:
        self.listener.close()
