"""PostgreSQL decoder (frontend/backend protocol 3.0): one `DatabaseSession` per connection, one `SqlQuery`
per statement execution.

Sans-IO state machine over the two byte streams of one connection: `stream` frames the messages,
`decoder` follows the connection's start (roles, encryption, startup, authentication,
session parameters), and `query` matches the queries with their answers.

Roles come from content: the client's first message has no type byte (StartupMessage, SSLRequest,
GSSENCRequest, CancelRequest); in a trace attached mid-connection, a message only one side sends
(Query, Parse, Bind... or ReadyForQuery, RowDescription...) tells; else `ChannelInfo.listening`. So a
client traced, a server traced (its backends read from sockets the postmaster accepted), over TCP or
a unix socket (psql's default), decode alike.

What comes out:
- `DatabaseSession` (Protocol "postgresql"): User, Database, ApplicationName from the startup
  message, ServerVersion from ParameterStatus, BackendPid from BackendKeyData, Encrypted ("true" when
  the server answered an SSLRequest or GSSENCRequest with S or G, else "false"), Authentication (what
  the server asked for: none, password, md5, the SASL mechanism the client chose such as
  SCRAM-SHA-256, gss, sspi), LoginError (SQLSTATE and message when the server refused the start). Sent
  at the first ReadyForQuery, a refusal, encryption, Terminate, or close. A CancelRequest connection
  gives a session with CancelBackendPid (its secret key is never read).
- `SqlQuery` per statement execution (see decoders/postgres/query.py): Status, ErrorCode (SQLSTATE),
  ErrorMessage, Rows, AffectedRows, Truncated, Text, tables (PostgreSQL dialect; each resolved against
  the session's search path, `search_path`; a RowDescription names tables by OID only: a cut SELECT
  gets the names its columns' OIDs were learned as from whole statements, `query._tables_by_oid`),
  parameters,
  columns, `--rows` samples; extra attributes Command (the CommandComplete tag), ErrorDetail,
  ErrorHint, ErrorPosition, ErrorSeverity (when not ERROR), Copy, CopyFormat, Bytes (COPY), MaxRows
  and Suspended (an Execute with a row limit), and `Notice` children (NoticeResponse).
- `Dockit_Message` (Protocol "postgresql", the brokers' shared record) per NotificationResponse
  (LISTEN/NOTIFY): Direction deliver, Destination the channel, Size of the payload (never the
  payload), Status unacknowledged, SenderPid.
- `Secret` for every call carrying an authentication message either way (passwords, MD5 salts and
  hashes, SASL exchanges); `Annotation`s for the calls file.

Encryption: after the server's `S` the socket carries TLS: the decoder returns `StartTls`, the pipeline
gives the records to the TLS decoder (`Dockit_TlsSession`: version, cipher, server name) and the
plaintext, when the trace shows it (ltrace's SSL_write/SSL_read), back to this decoder, where the
startup, the login and the queries go on as in clear; the session is sent after them (or at close,
`Encrypted="true"`, when no plaintext came). Records fed to the decoder itself (a pipeline that does not
read `StartTls`) go to a TLS decoder of its own. After `G` (GSSAPI) nothing more is decoded.

Not decoded: protocol 2.0, replication streams beyond their COPY framing, FunctionCall arguments and
results (the call is noted), the contents of CopyData (counted in bytes).

Modules: `decoder` (`PostgresDecoder`), `stream` (messages out of one direction's bytes), `query`
(requests matched with answers, the records), `sql` (a Query's statements, secret `$n` parameters,
auth hashes in values), `search_path` (the schema unqualified table names resolve to). The registry names `decoders.postgres:PostgresDecoder`.
"""

from decoders.postgres.decoder import PostgresDecoder

__all__ = ["PostgresDecoder"]
