"""The connection phase: the server's greeting, the client's login, the auth reply; the `DatabaseSession`.

The login's auth response and any auth exchange after it are marked `Secret` (never decoded, never
kept). After an SSL request the socket carries TLS (`StartTls`): the login and what follows are read
from the plaintext when the trace shows it; an OK after the login switches both streams to the
compressed protocol when both ends agreed on it.
"""

from __future__ import annotations

from decoders.mysql.stream import At, Frame
from decoders.records import Annotation, DatabaseSession, Output, Secret, StartTls
from protocols import mysql as p


class SessionMixin:
    """The connection phase of `MySqlDecoder`.

    Its state: `_phase`, `_session`, `_session_extra`, the capabilities."""

    def _new_session(self, at: At) -> DatabaseSession:
        if self._session is None:
            self._session = DatabaseSession(
                session_id=self.channel.channel_id,
                protocol="mysql",
                process=at.pid or self.channel.pid,
                server=self.channel.server,
                start=at.time,
            )
        return self._session

    def _send_session(self, out: list[Output]) -> None:
        if self._session is not None and not self._session_sent:
            self._session.extra.update(self._session_extra)
            self._session_sent = True
            out.append(self._session)

    def _on_greeting(self, frame: Frame, out: list[Output]) -> None:
        session = self._new_session(frame.start)
        try:
            greeting = p.parse_greeting(frame.payload)
            version, connection_id = greeting.server_version, greeting.connection_id
            self._server_caps = greeting.capabilities
        except p.MySqlError:
            # A cut greeting: the version as far as it goes.
            version = p.text(frame.payload[1:].split(b"\0", 1)[0]) or ""
            rest = frame.payload[1:].partition(b"\0")[2]
            connection_id = int.from_bytes(rest[:4], "little") if len(rest) >= 4 else None
            self._session_extra["Truncated"] = "true"
        if version.startswith("5.5.5-"):
            version = version[6:]
        session.server_version = version
        session.connection_id = connection_id
        session.start = frame.start.time
        self._phase = "login"
        note = f"mysql greeting: server {version}"
        if connection_id is not None:
            note += f" connection {connection_id}"
        out.append(Annotation(frame.start.call_index, note))

    def _on_login(self, frame: Frame, out: list[Output]) -> None:
        out.append(Secret(frame.start.call_index))  # the auth response: a hash of the password
        session = self._new_session(frame.start)
        session.process = frame.start.pid or session.process
        payload = frame.payload
        try:
            response = p.parse_handshake_response(payload)
        except p.MySqlError:
            caps = int.from_bytes(payload[:4], "little") if len(payload) >= 4 else None
            self._client_caps = caps
            self._session_extra["Truncated"] = "true"
            if len(payload) > 36:
                user = payload[32:].split(b"\0", 1)[0]
                session.user = (p.text(user) or "") + ("" if b"\0" in payload[32:] else "...")
            self._phase = "auth"
            out.append(Annotation(frame.start.call_index, "mysql login (packet cut)"))
            return
        self._client_caps = response.capabilities
        if response.ssl_request:
            # The login follows inside TLS: the trace shows it only as plaintext (ltrace), which the
            # pipeline feeds here after `StartTls`; the session is sent after it, or at close.
            self._session_extra["Encrypted"] = "true"
            self._phase = "tls"
            out.append(Annotation(frame.start.call_index, "mysql ssl request: the login follows inside TLS"))
            out.append(StartTls(frame.start.call_index))
            return
        session.user = response.user
        session.database = response.database
        self._database = response.database or None
        client = response.attributes.get("_client_name")
        program = response.attributes.get("program_name")
        if client:
            self._session_extra["ClientName"] = client
        if program:
            self._session_extra["ProgramName"] = program
        self._phase = "auth"
        out.append(
            Annotation(
                frame.start.call_index,
                f"mysql login: user {response.user}"
                + (f" database {response.database}" if response.database else " (no database)"),
            )
        )

    def _on_auth_reply(self, frame: Frame, out: list[Output]) -> None:
        first = frame.payload[:1]
        if first == b"\x00":
            self._phase = "command"
            if self._caps(p.CLIENT_COMPRESS):
                self._session_extra["Compressed"] = "true"
                for direction, stream in self._streams.items():
                    stream.compress(self._compressed_acceptor(direction))
            self._send_session(out)
        elif first == b"\xff":
            try:
                err = p.parse_err(frame.payload)
                self._session_extra["LoginError"] = f"{err.code} {err.message}"
            except p.MySqlError:
                self._session_extra["LoginError"] = "error"
            self._phase = "command"
            self._send_session(out)
