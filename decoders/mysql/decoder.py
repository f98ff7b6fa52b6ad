"""`MySqlDecoder`: detection, roles, and the feeding of one connection's two byte streams.

The state machine's phases (start, login, auth, command, tls: between an SSL request and the login in
TLS's plaintext) move as the parts of the conversation are
read by the mixins this class is made of: `session` (greeting, login), `commands` (the client's
requests), `replies` and `resultset` (the server's answers), `prepared` (prepared statements) and
`queries` (the records). `stream` turns each direction's bytes into packets. The behaviour as a whole
is described in the package's docstring (decoders/mysql/__init__.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions, Direction
from decoders.mysql.commands import CommandsMixin
from decoders.mysql.prepared import PreparedMixin
from decoders.mysql.queries import QueriesMixin
from decoders.mysql.replies import RepliesMixin
from decoders.mysql.resultset import ResultSetMixin
from decoders.mysql.session import SessionMixin
from decoders.mysql.state import Request, Statement
from decoders.mysql.stream import At, Frame, PacketStream
from decoders.records import AttrValue, DatabaseSession, Output
from protocols import mysql as p
from protocols.tls import starts_a_record


class MySqlDecoder(
    SessionMixin, CommandsMixin, RepliesMixin, ResultSetMixin, PreparedMixin, QueriesMixin, Decoder
):
    """MySQL and MariaDB client/server protocol, seen from either end."""

    name = "mysql"
    ports = frozenset({3306})

    def __init__(self, channel: ChannelInfo, max_rows: int | None = None) -> None:
        super().__init__(channel)
        if max_rows is not None:  # a decoder used on its own (a test): what `--rows` would say
            self.options = DecoderOptions(rows=max_rows)
        self._streams = {d: PacketStream(self._acceptor(d)) for d in Direction}
        self._out, self._in = self._streams[Direction.OUT], self._streams[Direction.IN]
        self._server_dir: Direction | None = None
        self._phase = "start"  # start, login, auth, command, tls
        self._server_caps_value: int | None = None
        self._client_caps_value: int | None = None
        self._caps_memo: dict[int, bool | None] = {}  # flag -> _caps(flag), until the capabilities change
        self._queue: deque[Request] = deque()
        self._statements: dict[int, Statement] = {}
        self._last_statement: int | None = None
        self._resync_server = False
        self._session: DatabaseSession | None = None
        self._session_sent = False
        self._session_extra: dict[str, AttrValue] = {}
        self._last_server_time: float | None = None
        self._database: str | None = None  # the session's current database, when known

    def reading_since(self) -> int | None:
        """Where a packet not yet complete began: a login packet read or written in pieces is known as one
        (and its calls named by a Secret) only when its last piece comes; the calls file waits till then."""
        out, in_ = self._out.reading_since(), self._in.reading_since()
        if out is None:
            return in_
        return out if in_ is None else min(out, in_)

    # --- detection ------------------------------------------------------------------------------

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if len(data) < 5:
            return 0
        length = int.from_bytes(data[:3], "little")
        sequence_id, first = data[3], data[4]
        if sequence_id != 0 or length == 0:
            return 0
        if first == 0x0A and length >= 20:
            end = data.find(b"\0", 5, 5 + 64)
            version = data[5:end] if end > 5 else data[5:]
            if version[:1].isdigit() and all(32 <= b < 127 for b in version):
                return 100
            return 0
        if first == 0xFF and length < 1024 and len(data) >= 7:
            return 40  # a server refusing the connection before any greeting
        if first in p.COMMAND_NAMES and (len(data) - 4 == length or (len(data) - 4 < length < 1 << 24)):
            if first in (p.COM_QUERY, p.COM_STMT_PREPARE):
                sample = data[5:64]
                if sample and all(b in (9, 10, 13) or 32 <= b < 127 or b >= 128 for b in sample):
                    return 70 if len(data) - 4 == length else 50
                return 0
            # Any other command is a byte and a length: evidence enough on MySQL's port only (a
            # PostgreSQL server's `R\0\0\0\x08...` reads as a 82-byte COM_SHUTDOWN).
            if not any(port in cls.ports for port in channel.ports):
                return 0
            return 30 if len(data) - 4 == length else 10
        return 0

    def _acceptor(self, direction: Direction) -> Callable[[bytes], bool]:
        def accept(head: bytes) -> bool:
            if direction is self._server_dir:
                armed, self._resync_server = self._resync_server, False
                return armed  # the first chunk after the client's next request starts a reply
            return len(head) >= 5 and head[3] == 0 and head[4] in p.COMMAND_NAMES and head[:3] != b"\0\0\0"

        return accept

    def _compressed_acceptor(self, direction: Direction) -> Callable[[bytes], bool]:
        def accept(head: bytes) -> bool:
            if direction is self._server_dir:
                armed, self._resync_server = self._resync_server, False
                return armed
            return len(head) >= 7 and head[3] == 0 and head[:3] != b"\0\0\0"  # sequence ids restart

        return accept

    @property
    def _server_caps(self) -> int | None:
        return self._server_caps_value

    @_server_caps.setter
    def _server_caps(self, value: int | None) -> None:
        self._server_caps_value = value
        self._caps_memo.clear()

    @property
    def _client_caps(self) -> int | None:
        return self._client_caps_value

    @_client_caps.setter
    def _client_caps(self, value: int | None) -> None:
        self._client_caps_value = value
        self._caps_memo.clear()

    def _caps(self, flag: int) -> bool | None:
        """Whether both ends agreed on a capability; None when the login was not seen."""
        try:
            return self._caps_memo[flag]
        except KeyError:
            pass
        server, client = self._server_caps_value, self._client_caps_value
        if server is None and client is None:
            agreed = None
        else:
            agreed = bool((server if server is not None else -1) & (client or -1) & flag)
        self._caps_memo[flag] = agreed
        return agreed

    # --- feeding --------------------------------------------------------------------------------

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self._phase == "tls":
            if starts_a_record(chunk.data):
                return ()  # ciphertext: a pipeline that does not tell it from the plaintext fed it here
            self._phase = "login"  # the plaintext after the SSL request: the login, inside TLS
        direction = chunk.direction
        stream = self._out if direction is Direction.OUT else self._in  # (an Enum hashes slowly)
        at = At(chunk.time, chunk.pid, chunk.call_index)
        data = chunk.data
        missing = chunk.size - len(data)
        frames = stream.push(data, at, missing if missing > 0 else 0)
        out: list[Output] = []
        for frame in frames:
            if self._phase == "tls":
                break
            if self._server_dir is None:
                self._decide_roles(chunk.direction, frame)
            if chunk.direction is self._server_dir:
                self._last_server_time = frame.end_time
                self._on_server(frame, out)
            else:
                self._on_client(frame, out)
        if stream.lost:
            stream.lost = False
            if chunk.direction is self._server_dir:
                for request in self._queue:
                    request.cut = True
                    request.end_time = request.end_time or chunk.time
        return out

    def close(self, time: float | None) -> Sequence[Output]:
        out: list[Output] = []
        while self._queue:
            request = self._queue.popleft()
            if request.state == "optional_eof":
                request.status = request.status if request.status != "unknown" else "ok"
            elif not request.cut:
                request.status = "unknown" if request.status != "error" else "error"
                request.end_time = None if request.status == "unknown" else request.end_time
            self._finish(request, out)
        self._send_session(out)
        self._phase = "closed"
        # The streams' resync tests are closures over this decoder: cut that cycle, so that a closed
        # connection's state goes at once (an application that connects per request has thousands).
        for stream in self._streams.values():
            stream.accept_start = _never
            if stream.compressed is not None:
                stream.compressed.accept_start = _never
        return out

    def _decide_roles(self, direction: Direction, frame: Frame) -> None:
        first = frame.payload[:1]
        if frame.sequence_id == 0 and first == b"\x0a":
            self._server_dir = direction
            return
        if frame.sequence_id == 0 and first and first[0] in p.COMMAND_NAMES:
            self._server_dir = direction.reverse()
        else:
            self._server_dir = Direction.OUT if self.channel.listening else Direction.IN
        if self._phase == "start":
            self._phase = "command"


def _never(_head: bytes) -> bool:
    return False
