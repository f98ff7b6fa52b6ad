"""AMQP 0-9-1 (RabbitMQ's protocol): complete frames in, methods and content headers out.

Decoded: the protocol header (`AMQP\\0\\0\\x09\\x01`), the frame header (type, channel, size) and its end
octet, every method of the 0-9-1 specification with its arguments (classes connection, channel,
exchange, queue, basic, confirm and tx, RabbitMQ's extensions included: exchange.bind/unbind,
basic.nack, confirm.select, connection.blocked/unblocked/update-secret), field tables and arrays
with RabbitMQ's type letters, the content header with the basic class's fourteen properties, and the
user name inside a PLAIN or AMQPLAIN login response (never the password). Not decoded: bodies (only
their sizes matter here), the 0-8 and 0-10 dialects.

The method table is data (`METHODS`: class id, method id -> name and argument types, as the 0-9-1
specification and RabbitMQ's extensions list them); `parse_method` walks it. Parsers never raise: a
payload shorter than its arguments gives the arguments read so far and `complete=False`, so a frame
cut by the tracer still says what it was.

Modules: `frames` (framing), `methods` (the method table, properties, reply codes), `codec` (arguments,
tables, content headers, the login's user), `build` (frames from names, for tests). The names below are
the ones the decoder and the tests use (`from protocols import amqp`).
"""

from protocols.amqp.build import HEARTBEAT, build_content, build_frame, build_method, encode_table
from protocols.amqp.codec import ContentHeader, Method, login_user, parse_content_header, parse_method
from protocols.amqp.frames import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_OVERHEAD,
    FRAME_TYPES,
    PROTOCOL_HEADER,
    PROTOCOL_HEADER_SIZE,
    ContentHeaderPrefix,
    FrameHeader,
    ProtocolHeader,
    frame_fields,
    looks_like_frame,
    measure_frame,
)
from protocols.amqp.methods import (
    BASIC_PROPERTIES,
    CLASS_BASIC,
    CLASS_CHANNEL,
    CLASS_CONFIRM,
    CLASS_CONNECTION,
    CLASS_EXCHANGE,
    CLASS_NAMES,
    CLASS_QUEUE,
    CLASS_TX,
    CONTENT_METHODS,
    METHOD_IDS,
    METHODS,
    REPLY_CODES,
    method_name,
)

__all__ = [
    "BASIC_PROPERTIES",
    "CLASS_BASIC",
    "CLASS_CHANNEL",
    "CLASS_CONFIRM",
    "CLASS_CONNECTION",
    "CLASS_EXCHANGE",
    "CLASS_NAMES",
    "CLASS_QUEUE",
    "CLASS_TX",
    "CONTENT_METHODS",
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_HEADER",
    "FRAME_HEADER_SIZE",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "FRAME_OVERHEAD",
    "FRAME_TYPES",
    "HEARTBEAT",
    "METHODS",
    "METHOD_IDS",
    "PROTOCOL_HEADER",
    "PROTOCOL_HEADER_SIZE",
    "REPLY_CODES",
    "ContentHeader",
    "ContentHeaderPrefix",
    "FrameHeader",
    "Method",
    "ProtocolHeader",
    "build_content",
    "build_frame",
    "build_method",
    "encode_table",
    "frame_fields",
    "login_user",
    "looks_like_frame",
    "measure_frame",
    "method_name",
    "parse_content_header",
    "parse_method",
]
