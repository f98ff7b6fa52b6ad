"""MySQL / MariaDB decoder: one `SqlQuery` per statement execution, one `DatabaseSession` per login.

Sans-IO state machine over the two byte streams of one connection (protocols/mysql/ parses the
packets). Roles come from content: the server speaks first (handshake v10); a stream whose first
packet is a command with sequence id 0 is the client's. Without either (a trace attached mid-way),
`ChannelInfo.listening` decides.

What comes out:
- `DatabaseSession` once the login is known (the server's OK or ERR after authentication, or at
  close): server version (MariaDB's "5.5.5-" compatibility prefix removed), connection
  id, user, database, client name. Never the auth data.
- `SqlQuery` for COM_QUERY, each COM_STMT_EXECUTE (the prepared text, parameters decoded from the
  binary protocol), a COM_STMT_PREPARE that failed, and COM_INIT_DB, which is reported as the text
  `USE <db>` (the SQL equivalent of what was sent: the command carries only the name).
  Passwords in `IDENTIFIED BY '...'`, `PASSWORD('...')` and the like are replaced by `<redacted>`, and
  so are the parameters given to them (`PASSWORD(?)`) or compared with, assigned or inserted into a
  column named like a secret (`WHERE password = ?`, `INSERT INTO u (name, pwd) VALUES (?, ?)`).
  Result sets give the row count and column names; the first `max_rows` rows (`--rows`, or the
  constructor argument; default 0: row values may be personal data) as text. A column named after an
  expression that holds a password is redacted like the SQL, and so is an auth hash in a sampled value
  (`*` and 40 hex digits, `$A$005$...`, a JSON `"authentication_string"`), whatever its column's name.
- `Annotation` at the call that carried each request (and the greeting and login).

Replies are matched to requests first in, first out, so pipelined requests (MariaDB's
prepare-and-execute in one write) are followed. A multi-statement COM_QUERY (CLIENT_MULTI_STATEMENTS)
gives one record per statement, each with its own result (`statements` splits the text, `resultset`
pairs the k-th result with the k-th statement; those after an error never ran and get none); a CALL's
result sets are one record with their rows summed and the columns of the first. Table names are
resolved against the session's current database (the login's, then COM_INIT_DB and `USE`). When replies are never seen (one
direction not traced), at most MAX_PENDING requests wait; older ones are reported with status
"unknown", as are requests still waiting at close.

A buffer cut by the tracer (`Chunk.missing`): the packet is decoded as far as it goes and the record
marked truncated; the lost bytes are skipped exactly when they end inside that packet (a 2 MB row cut
at strace's 1 MB: the row count still holds), else the stream is out of step (row count unknown): the
client stream re-synchronises on the next chunk that starts like a command, the server stream on the
first chunk after the client's next request.

Compressed connections (CLIENT_COMPRESS, e.g. `mariadb --compress`, MySQLdb's compress=True): after
the login, zlib-wrapped packets are unwrapped and decoded the same way; a cut compressed packet
gives what its start inflates to.

TLS: an SSL request returns `StartTls`; the pipeline then feeds the TLS records to the TLS decoder and
the plaintext (ltrace's SSL_read/SSL_write) here, where the login and the commands go on as in clear.
With strace alone the session says `Encrypted="true"` and nothing more is decoded.

Not decoded: rows fetched through server-side cursors
(COM_STMT_FETCH), COM_STMT_BULK_EXECUTE parameters, replication.

Modules, in the order a connection meets them:
- `decoder`: `MySqlDecoder`, detection (`score`), roles, feeding both streams, close;
- `stream`: packets out of one direction's bytes (reassembly, 16 MB continuation, cut buffers,
  resynchronisation, the compressed protocol's zlib layer);
- `session`: greeting, login, auth reply, and the `DatabaseSession`;
- `commands`: the client's requests, described, annotated and queued for their replies;
- `replies`: the server's packets matched to the request at the head of the queue;
- `resultset`: columns and rows of a result set;
- `prepared`: PREPARE replies, the statements a connection holds, an execute's parameters;
- `queries`: the `SqlQuery` a finished request becomes (and the current database it follows);
- `statements`: the statements of a multi-statement COM_QUERY;
- `state` and `redaction`: the per-request records, and what is hidden besides `decoders.redact`.
`MySqlDecoder` is the one public name (`decoders.mysql:MySqlDecoder`, the registry's reference).
"""

from decoders.mysql.decoder import MySqlDecoder

__all__ = ["MySqlDecoder"]
