"""A TCP relay that records both directions of every connection through it, with times.

Tests put it between a real client (requests, curl, wget, an `ssl` socket) and a real server, then
replay what it recorded into a decoder as chunks, exactly as the trace pipeline would: from the
client's side (client-to-server bytes are OUT) or from the server's (they are IN, `listening=True`).
Each recv is recorded before it is forwarded, so the recorded order respects causality.
"""

from __future__ import annotations

import gc
import random
import socket
import threading
import time
from dataclasses import dataclass, field

from decoders.api import ChannelInfo, Chunk, Decoder, Direction

C2S = "c2s"
S2C = "s2c"


@dataclass
class Recording:
    """One relayed connection: (direction, time, bytes) per recv, in order."""

    client: str
    server: str
    pieces: list[tuple[str, float, bytes]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def total(self, direction: str) -> int:
        return sum(len(data) for d, _, data in self.pieces if d == direction)

    def stream(self, direction: str) -> bytes:
        return b"".join(data for d, _, data in self.pieces if d == direction)

    def channel(self, server_side: bool) -> ChannelInfo:
        local, remote = (self.server, self.client) if server_side else (self.client, self.server)
        return ChannelInfo(
            channel_id=f"{self.client}->{self.server}",
            kind="tcp",
            local=local,
            remote=remote,
            local_port=int(local.rsplit(":", 1)[1]),
            remote_port=int(remote.rsplit(":", 1)[1]),
            listening=server_side,
            pid=SERVER_PID if server_side else CLIENT_PID,
        )

    def chunks(self, server_side: bool = False) -> list[Chunk]:
        """One chunk per recorded recv; `call_index` is the recv's position in the recording."""
        out = []
        for index, (direction, when, data) in enumerate(self.pieces):
            sent_by_us = (direction == C2S) != server_side
            out.append(
                Chunk(
                    data=data,
                    direction=Direction.OUT if sent_by_us else Direction.IN,
                    time=when,
                    pid=SERVER_PID if server_side else CLIENT_PID,
                    size=len(data),
                    call_index=index,
                )
            )
        return out


CLIENT_PID = 1111
SERVER_PID = 2222


def merged(chunks: list[Chunk]) -> list[Chunk]:
    """Consecutive chunks of one direction as one (a reader with a big buffer)."""
    out: list[Chunk] = []
    for chunk in chunks:
        if out and out[-1].direction is chunk.direction and not out[-1].truncated:
            last = out[-1]
            out[-1] = Chunk(
                data=last.data + chunk.data,
                direction=last.direction,
                time=chunk.time,
                pid=last.pid,
                size=last.size + chunk.size,
                call_index=last.call_index,
            )
        else:
            out.append(chunk)
    return out


def split(chunks: list[Chunk], how: str, seed: int = 0) -> list[Chunk]:
    """Re-cut chunks: 'whole' (merged), 'bytes' (one byte each) or 'random' sizes; order is kept."""
    if how == "whole":
        return merged(chunks)
    rng = random.Random(seed)
    out = []
    for chunk in chunks:
        pos = 0
        while pos < len(chunk.data):
            size = 1 if how == "bytes" else rng.randint(1, 300)
            piece = chunk.data[pos : pos + size]
            out.append(
                Chunk(
                    data=piece,
                    direction=chunk.direction,
                    time=chunk.time,
                    pid=chunk.pid,
                    size=len(piece),
                    call_index=chunk.call_index,
                )
            )
            pos += size
    return out


def cut(chunks: list[Chunk], limit: int) -> list[Chunk]:
    """What `strace -s limit` shows of each call: the first `limit` bytes, the size unchanged."""
    return [
        Chunk(
            data=c.data[:limit],
            direction=c.direction,
            time=c.time,
            pid=c.pid,
            size=c.size,
            call_index=c.call_index,
        )
        for c in chunks
    ]


def run_decoder(decoder: Decoder, chunks: list[Chunk], close_time: float | None = None) -> list:
    outputs = []
    for chunk in chunks:
        outputs.extend(decoder.feed(chunk))
    outputs.extend(
        decoder.close(close_time if close_time is not None else (chunks[-1].time if chunks else None))
    )
    return outputs


class Relay:
    """Listens on 127.0.0.1, forwards each connection to `target`, records what crossed it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.recordings: list[Recording] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        peer = client.getpeername()
        recording = Recording(client=f"{peer[0]}:{peer[1]}", server=f"127.0.0.1:{self.port}")
        with self.lock:
            self.recordings.append(recording)
        threads = [
            threading.Thread(target=self._pump, args=(client, upstream, C2S, recording)),
            threading.Thread(target=self._pump, args=(upstream, client, S2C, recording)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.close()
        upstream.close()
        recording.done.set()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str, recording: Recording) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:
                recording.pieces.append((direction, time.time(), data))
            try:
                sink.sendall(data)
            except OSError:
                return

    def take(self, count: int = 1, timeout: float = 10.0) -> list[Recording]:
        """The next `count` recordings, once their connections have ended."""
        deadline = time.monotonic() + timeout
        while True:
            gc.collect()  # python-requests leaves pooled sockets for the garbage collector to close
            with self.lock:
                ready = list(self.recordings)
            if len(ready) >= count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay saw {len(ready)} connections, expected {count}")
            time.sleep(0.01)
        taken = ready[:count]
        for recording in taken:
            while not recording.done.wait(0.05):
                gc.collect()
                if time.monotonic() > deadline:
                    raise TimeoutError("a relayed connection did not end")
        with self.lock:
            del self.recordings[:count]
        return taken

    def last(self, timeout: float = 10.0) -> Recording:
        """The latest connection's recording, once it has ended (a test that made one connection)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                recording = self.recordings[-1] if self.recordings else None
            if recording is not None and recording.done.wait(0.05):
                return recording
            gc.collect()
            if time.monotonic() > deadline:
                raise TimeoutError("no relayed connection ended")

    def close(self) -> None:
        self.listener.close()
