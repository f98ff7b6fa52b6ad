"""One HTTP/2 stream as an observer sees it: the request's and the response's header blocks, the bytes
of each side's frames, how each side ended; and the `HttpExchange` it becomes.

Sizes are the bytes of the stream's frames on the wire (frame headers included: HEADERS, CONTINUATION,
DATA, and the PUSH_PROMISE that opened a pushed stream), so `RequestBytes`/`ResponseBytes` mean what
they mean for HTTP/1.1, the bytes a message took, in HTTP/2's framing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from decoders.http2.grpc import CallFacts, CallState
from decoders.records import HttpExchange
from decoders.redact import redact_header, redact_url

MAX_HEADERS = 200  # headers kept per block (a block may hold more; they are counted in the bytes only)


@dataclass
class Head:
    """A decoded header block: pseudo-headers apart, then the others in order (raw, not redacted)."""

    pseudo: dict[str, str] = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in self.headers}


@dataclass
class H2Stream:
    stream_id: int
    start: float | None = None
    pid: int = 0
    call_index: int = 0
    request: Head | None = None
    response: Head | None = None  # the final response's head (1xx heads are only counted)
    interim: int = 0
    trailers: Head | None = None
    request_trailers: Head | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    response_data: int = 0  # DATA bytes of the response, to tell a body that came whole from one cut short
    request_ended: bool = False
    response_ended: bool = False
    end_time: float | None = None
    reset: str | None = None  # RST_STREAM's error code name
    reset_by: str | None = None  # "client" or "server"
    pushed: bool = False
    truncated: bool = False
    call: CallState | None = None  # a gRPC call's messages

    @property
    def done(self) -> bool:
        return self.reset is not None or (self.request_ended and self.response_ended)

    def body_complete(self) -> bool:
        """The response's body came whole by its content-length, though END_STREAM was not seen (a client
        such as curl closes the connection as soon as it has the body)."""
        length = self.response.get("content-length") if self.response else None
        return length is not None and length.isdigit() and int(length) == self.response_data


def status_of(head: Head | None) -> int | None:
    value = head.pseudo.get(":status") if head else None
    return int(value) if value is not None and value.isdigit() and len(value) == 3 else None


def exchange(stream: H2Stream, side: str, server: str | None, complete: bool) -> HttpExchange:
    request, response = stream.request, stream.response
    method = request.pseudo.get(":method") if request else None
    path = request.pseudo.get(":path") if request else None
    authority = request.pseudo.get(":authority") if request else None
    if path is None and method == "CONNECT":
        path = authority
    duration = None
    if stream.start is not None and stream.end_time is not None:
        duration = max(0.0, stream.end_time - stream.start)
    response_headers = list(response.headers) if response else []
    if stream.trailers is not None:
        response_headers += stream.trailers.headers
    return HttpExchange(
        side=side,
        process=stream.pid,
        method=method,
        url=redact_url(path) if path is not None else None,
        host=authority or (request.get("host") if request else None),
        status=status_of(response),
        start=stream.start,
        duration=duration,
        request_bytes=stream.request_bytes,
        response_bytes=stream.response_bytes,
        content_type=response.get("content-type") if response else None,
        http_version="2",
        server=server,
        truncated=stream.truncated,
        complete=(complete and stream.done or stream.request_ended and stream.body_complete())
        and stream.reset is None
        and request is not None
        and response is not None,
        request_headers=[(name, redact_header(name, value)) for name, value in request.headers]
        if request
        else [],
        response_headers=[(name, redact_header(name, value)) for name, value in response_headers],
        extra={
            "Stream": stream.stream_id,
            "Pushed": "true" if stream.pushed else None,
            "Reset": stream.reset,
            "ResetBy": stream.reset_by,
        },
    )


def call_facts(stream: H2Stream, side: str, session: str, server: str | None) -> CallFacts:
    request, response = stream.request, stream.response
    duration = None
    if stream.start is not None and stream.end_time is not None:
        duration = max(0.0, stream.end_time - stream.start)
    return CallFacts(
        path=request.pseudo.get(":path") if request else None,
        side=side,
        process=stream.pid,
        session=session,
        server=server,
        authority=request.pseudo.get(":authority") if request else None,
        stream=stream.stream_id,
        start=stream.start,
        duration=duration,
        request_headers=request.as_dict() if request else {},
        response_headers=response.as_dict() if response else {},
        trailers=stream.trailers.as_dict() if stream.trailers else {},
        http_status=status_of(response),
        reset=stream.reset,
        ended=stream.response_ended,
        truncated=stream.truncated,
    )
