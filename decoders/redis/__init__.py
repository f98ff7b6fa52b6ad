"""Redis decoder (RESP2 and RESP3): one `Dockit_RedisCommand` per command, one `Dockit_DatabaseSession`
per connection, one `Dockit_Message` per message the server pushes.

Sans-IO state machine over the two byte streams of one connection: `protocols.resp` reads the values,
`decoder` matches each command with its reply, in order (pipelining needs nothing more), and `commands`
knows the commands (two-word names, keys read and written, blocking ones, secret arguments).

Roles come from content: the client sends arrays of bulk strings (or inline commands); a server's first
bytes are a reply's type byte. So a client traced, or redis-server traced, over TCP or a unix socket,
decode alike.

What comes out:
- `Dockit_RedisCommand` per command: Process, Session, Start, Duration (to the reply's arrival: a
  blocking command's real wait), Command (upper case, `CLIENT SETNAME` for a container's subcommand),
  Status (ok, error, unknown when no reply was seen), Error (the error reply's text), ReplyType
  (string, error, integer, bulk, null, array, map, set, double, boolean, verbatim, bignumber, push),
  ReplySize (bytes of a string reply, elements of an aggregate; pairs of a map), Arguments (how many),
  Transaction (exec, aborted, discarded, open: a command queued in MULTI), Blocking and TimedOut
  (a blocking command answered null), Truncated; children `<Argument Index=...>` (the arguments after
  the name, 64 at most, each cut at 256 bytes with Size and Truncated when longer; secrets
  `<redacted>`) and `<Key Name= Access=read|write>` (from the command table), which the summary counts
  into one `Dockit_RedisKey` per key (Reads, Writes).
- MULTI/EXEC: a queued command's record waits for EXEC, whose array gives each its reply (Duration is
  to its `+QUEUED`); a null EXEC (a WATCHed key changed) or EXECABORT leaves them `aborted`, DISCARD
  `discarded`.
- Pub/sub: SUBSCRIBE and its kin take one confirmation per channel; each `message`, `pmessage` or
  `smessage` (a RESP2 array while subscribed, a RESP3 push) is a `Dockit_Message` (Protocol redis,
  Direction deliver, Destination and Channel the channel, Pattern, Size of the payload, never the
  payload), not a reply. CLIENT TRACKING's `invalidate` pushes are messages too (Channel
  `__redis__:invalidate`, Keys), as is each line MONITOR streams (Destination MONITOR, the command's
  name, the client and database: never its arguments).
- Session (`Dockit_DatabaseSession` Protocol redis): User (AUTH, HELLO ... AUTH), Database (SELECT),
  ServerVersion and ConnectionId (HELLO's map, CLIENT ID), ClientName, ProtocolVersion (2, or 3 after
  HELLO 3), Encrypted, Commands; sent when the connection closes.
- `Secret` on every call carrying AUTH, HELLO ... AUTH, CONFIG SET requirepass/masterauth, MIGRATE's
  AUTH/AUTH2, ACL SETUSER's password rules, and on the replies of CONFIG GET of a secret parameter and
  ACL GETUSER/LIST (password hashes).

Not decoded: RESP3 streamed strings and aggregates, the Redis cluster bus, replication's RDB transfer
(a SYNC/PSYNC is one command; what follows is counted as damage and skipped).
"""

from decoders.redis.decoder import RedisDecoder

__all__ = ["RedisDecoder"]
