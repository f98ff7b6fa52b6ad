"""The connection class: the server's product and version, the login (user only; the response
that carries the password is a `Secret`), tuning, the virtual host, and how the connection closed."""

from __future__ import annotations

from decoders.amqp.state import reply_error, text_of
from decoders.api import Direction
from decoders.measured_frames import MeasuredFrame as Frame
from decoders.messaging import (
    STATUS_OK,
)
from decoders.records import BrokerOperation, Output, Secret
from protocols import amqp as p


class ConnectionMixin:
    """The connection class: the server's product and version, the login (user only; the response Part of `AmqpDecoder`."""

    def _connection(self, method: p.Method, direction: Direction, frame: Frame, out: list[Output]) -> None:
        name, args, session = method.name, method.arguments, self.session
        if name == "connection.start":
            properties = args.get("server-properties") or {}
            session.server_product = text_of(properties["product"]) if "product" in properties else None
            session.server_version = text_of(properties["version"]) if "version" in properties else None
            version = (args.get("version-major"), args.get("version-minor"))
            if None not in version:  # 0-9-1 says 0, 9 here (the revision is in the protocol header only)
                session.protocol_version = "0-9-1" if version == (0, 9) else f"{version[0]}-{version[1]}"
            if "cluster_name" in properties:
                session.extra["Cluster"] = text_of(properties["cluster_name"])
        elif name in ("connection.start-ok", "connection.secure-ok", "connection.update-secret"):
            out.append(Secret(frame.call_index))
            if name == "connection.start-ok":
                self.mechanism = args.get("mechanism")
                response = args.get("response")
                if isinstance(response, bytes) and self.mechanism:
                    session.user = p.login_user(self.mechanism, response)
                if self.mechanism:
                    session.extra["Mechanism"] = self.mechanism
                properties = args.get("client-properties") or {}
                if "connection_name" in properties:
                    session.client_id = text_of(properties["connection_name"])
                if "product" in properties:
                    session.extra["ClientProduct"] = text_of(properties["product"])
                if "version" in properties:
                    session.extra["ClientVersion"] = text_of(properties["version"])
        elif name == "connection.tune-ok":
            session.extra["Heartbeat"] = args.get("heartbeat")
            session.extra["FrameMax"] = args.get("frame-max")
            session.extra["ChannelMax"] = args.get("channel-max")
        elif name == "connection.open":
            session.virtual_host = args.get("virtual-host")
        elif name == "connection.open-ok":
            session.extra["Opened"] = "true"
        elif name == "connection.close":
            code, text = args.get("reply-code"), args.get("reply-text")
            session.close_code, session.close_reason = code, text
            by = "client" if direction is self.client else "server"
            session.extra["ClosedBy"] = by
            failed = (args.get("class-id"), args.get("method-id"))
            if failed[0]:
                session.extra["FailedMethod"] = p.method_name(failed[0], failed[1] or 0)
            self.closing = (direction, frame.time)
            if code and code != 200:
                for state in list(self.channels.values()):
                    self._fail_channel(state, reply_error(code, text), frame.time, out)
        elif name == "connection.close-ok":
            session.end = frame.time
        elif name == "connection.blocked":
            out.append(
                BrokerOperation(
                    protocol="amqp",
                    process=frame.pid,
                    session=self.session.session_id,
                    operation=name,
                    time=frame.time,
                    status=STATUS_OK,
                    extra={"Reason": args.get("reason")},
                )
            )
