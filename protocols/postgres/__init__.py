"""The PostgreSQL frontend/backend protocol 3.0: complete messages in, messages out (and back).

Framing, as the specification lays it out:
- the client's first message of a connection has no type byte: a 4-byte big-endian length (counting
  itself), then a 4-byte code: the protocol version (3.0 is 196608) of a StartupMessage followed by
  name/value pairs, or the codes of SSLRequest, GSSENCRequest and CancelRequest. An SSLRequest or a
  GSSENCRequest is answered by one byte, not a message (`S`/`G`: encryption follows, `N`: it does not);
- every other message, either way: a type byte, a 4-byte big-endian length (counting itself, not the
  type), the body.

Decoded here: the startup family (parameters of a StartupMessage; a CancelRequest's backend pid, never
its secret key), the frontend messages of the simple and extended query protocols (Query, Parse, Bind
with its raw parameter values and format codes, Describe, Execute, Close, Sync, Flush), COPY
(CopyData, CopyDone, CopyFail, and the Copy*Response formats), Terminate, FunctionCall's function;
the backend messages: Authentication (the request's code and, for SASL, the mechanisms offered, never
the challenges' content), ParameterStatus, BackendKeyData (pid only), ReadyForQuery,
NegotiateProtocolVersion, ParameterDescription, RowDescription, DataRow (raw values),
CommandComplete tags (command and row count), ErrorResponse and NoticeResponse fields,
NotificationResponse. PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse are never
parsed beyond a SASL mechanism's name: they hold credentials.

Builders for each message the tests and the benchmark need are at the end. Parsers raise `PgError` (a
ValueError) on a body too short or malformed for what it claims; framing, state and partial messages
are the decoder's business (decoders/postgres/stream.py, decoders/postgres/decoder.py).

The package has two modules: `messages` (framing constants, type bytes, parsers and builders of
each message) and `values` (a value as PostgreSQL's text output shows it, from its format code and
type OID: the binary formats of the built-in types). It re-exports `messages`' names, which its users
take from it (`from protocols import postgres as p`, then `p.QUERY`, `p.parse_bind`).
"""

from protocols.postgres import values  # noqa: F401 - `p.values.value_text`
from protocols.postgres.messages import *  # noqa: F403 - the package's names are its messages'
